import { MigrationInterface, QueryRunner } from 'typeorm';

export class ProvisioningEngine1795511720044 implements MigrationInterface {
  name = 'ProvisioningEngine1795511720044';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD "pending_agent_token_hash" character varying
        `);
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD "last_provision_error" text
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "ix_agents_pending_agent_token_hash" ON "agents" ("pending_agent_token_hash")
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "ux_agents_board_lead" ON "agents" ("board_id")
            WHERE "is_board_lead"
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "ux_agents_gateway_main" ON "agents" ("gateway_id")
            WHERE "board_id" IS NULL
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            DROP INDEX "public"."ux_agents_gateway_main"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ux_agents_board_lead"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_pending_agent_token_hash"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP COLUMN "last_provision_error"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP COLUMN "pending_agent_token_hash"
        `);
  }
}
