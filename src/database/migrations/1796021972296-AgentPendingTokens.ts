import { MigrationInterface, QueryRunner } from 'typeorm';

export class AgentPendingTokens1796021972296 implements MigrationInterface {
  name = 'AgentPendingTokens1796021972296';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_pending_agent_token_hash"
        `);
    await queryRunner.query(`
            CREATE TABLE "agent_pending_tokens" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "organization_id" uuid NOT NULL,
                "agent_id" uuid NOT NULL,
                "token_hash" character varying NOT NULL,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
                CONSTRAINT "PK_80f7caead2b2f2fecdc2325eb4c" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agent_pending_tokens_organization_id" ON "agent_pending_tokens" ("organization_id")
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "ux_agent_pending_tokens_token_hash" ON "agent_pending_tokens" ("token_hash")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agent_pending_tokens_agent_id_created_at" ON "agent_pending_tokens" ("agent_id", "created_at")
        `);
    // Keep the one unconfirmed token each agent may have (it may be in its workspace).
    await queryRunner.query(`
            INSERT INTO "agent_pending_tokens" ("organization_id", "agent_id", "token_hash")
            SELECT g."organization_id", a."id", a."pending_agent_token_hash"
            FROM "agents" a JOIN "gateways" g ON g."id" = a."gateway_id"
            WHERE a."pending_agent_token_hash" IS NOT NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP COLUMN "pending_agent_token_hash"
        `);
    await queryRunner.query(`
            ALTER TABLE "agent_pending_tokens"
            ADD CONSTRAINT "FK_919765471a877c6524d040706a2" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "agent_pending_tokens"
            ADD CONSTRAINT "FK_32da8eaa9adb2842043a3a7d135" FOREIGN KEY ("agent_id") REFERENCES "agents"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "agent_pending_tokens" DROP CONSTRAINT "FK_32da8eaa9adb2842043a3a7d135"
        `);
    await queryRunner.query(`
            ALTER TABLE "agent_pending_tokens" DROP CONSTRAINT "FK_919765471a877c6524d040706a2"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD "pending_agent_token_hash" character varying
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agent_pending_tokens_agent_id_created_at"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ux_agent_pending_tokens_token_hash"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agent_pending_tokens_organization_id"
        `);
    // One slot: the newest unconfirmed token of each agent survives.
    await queryRunner.query(`
            UPDATE "agents" a SET "pending_agent_token_hash" = (
                SELECT p."token_hash" FROM "agent_pending_tokens" p
                WHERE p."agent_id" = a."id" ORDER BY p."created_at" DESC LIMIT 1
            )
        `);
    await queryRunner.query(`
            DROP TABLE "agent_pending_tokens"
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "ix_agents_pending_agent_token_hash" ON "agents" USING btree ("pending_agent_token_hash")
        `);
  }
}
