import { MigrationInterface, QueryRunner } from 'typeorm';

export class GatewayClient1795508497583 implements MigrationInterface {
  name = 'GatewayClient1795508497583';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "openclaw_device_identities" (
                "name" character varying NOT NULL,
                "device_id" character varying NOT NULL,
                "private_key_pem" text NOT NULL,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_72cce60343f72a8cf49c3cfaf99" PRIMARY KEY ("name")
            )
        `);
    await queryRunner.query(`
            ALTER TABLE "gateways"
            ADD "disable_device_pairing" boolean
        `);
    await queryRunner.query(`
            ALTER TABLE "gateways"
            ADD "allow_insecure_tls" boolean
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "gateways" DROP COLUMN "allow_insecure_tls"
        `);
    await queryRunner.query(`
            ALTER TABLE "gateways" DROP COLUMN "disable_device_pairing"
        `);
    await queryRunner.query(`
            DROP TABLE "openclaw_device_identities"
        `);
  }
}
