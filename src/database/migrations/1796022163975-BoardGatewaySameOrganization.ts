import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A board's gateway must belong to the board's organization: boards (gateway_id, organization_id)
 * reference gateways (id, organization_id), which gets the unique constraint that needs.
 */
export class BoardGatewaySameOrganization1796022163975 implements MigrationInterface {
  name = 'BoardGatewaySameOrganization1796022163975';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "boards" DROP CONSTRAINT "FK_3cefed683cbe504f4c9f39f1faa"
        `);
    await queryRunner.query(`
            ALTER TABLE "gateways"
            ADD CONSTRAINT "uq_gateways_organization_id_id" UNIQUE ("organization_id", "id")
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD CONSTRAINT "FK_4d88409b77cabe9ac2bab5f5033" FOREIGN KEY ("gateway_id", "organization_id") REFERENCES "gateways"("id", "organization_id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "boards" DROP CONSTRAINT "FK_4d88409b77cabe9ac2bab5f5033"
        `);
    await queryRunner.query(`
            ALTER TABLE "gateways" DROP CONSTRAINT "uq_gateways_organization_id_id"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD CONSTRAINT "FK_3cefed683cbe504f4c9f39f1faa" FOREIGN KEY ("gateway_id") REFERENCES "gateways"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
  }
}
