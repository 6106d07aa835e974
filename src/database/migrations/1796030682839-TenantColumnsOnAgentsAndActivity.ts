import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Agents and activity events record their organization. An agent's gateway and board are now
 * referenced by (id, organization_id), so the database refuses an agent whose gateway or board
 * belongs to another organization.
 */

export class TenantColumnsOnAgentsAndActivity1796030682839 implements MigrationInterface {
  name = 'TenantColumnsOnAgentsAndActivity1796030682839';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "agents" DROP CONSTRAINT "FK_9b6d46769271ee7e2be2e78c683"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP CONSTRAINT "FK_417f1bb41b03dc239ccbd21ab62"
        `);
    // Added nullable, backfilled from the rows they already point at, then made NOT NULL.
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD "organization_id" uuid
        `);
    await queryRunner.query(`
            UPDATE "agents" a SET "organization_id" = g."organization_id"
            FROM "gateways" g WHERE g."id" = a."gateway_id"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" ALTER COLUMN "organization_id" SET NOT NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events"
            ADD "organization_id" uuid
        `);
    await queryRunner.query(`
            UPDATE "activity_events" e SET "organization_id" = COALESCE(
                (SELECT b."organization_id" FROM "boards" b WHERE b."id" = e."board_id"),
                (SELECT a."organization_id" FROM "agents" a WHERE a."id" = e."agent_id"),
                (SELECT b."organization_id" FROM "tasks" t JOIN "boards" b ON b."id" = t."board_id"
                  WHERE t."id" = e."task_id"))
        `);
    // An event that names no board, agent or task belongs to no tenant: no feed could show it.
    await queryRunner.query(`
            DELETE FROM "activity_events" WHERE "organization_id" IS NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events" ALTER COLUMN "organization_id" SET NOT NULL
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_organization_id" ON "agents" ("organization_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_activity_events_organization_id_created_at" ON "activity_events" ("organization_id", "created_at")
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD CONSTRAINT "uq_boards_organization_id_id" UNIQUE ("organization_id", "id")
        `);
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD CONSTRAINT "FK_28ac537f8c7bc3c96f7d1753ec4" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD CONSTRAINT "FK_ac14fcb2d38b251fb16d73ffadd" FOREIGN KEY ("board_id", "organization_id") REFERENCES "boards"("id", "organization_id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD CONSTRAINT "FK_6e62d80cf0b5b52ebe23a788a55" FOREIGN KEY ("gateway_id", "organization_id") REFERENCES "gateways"("id", "organization_id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events"
            ADD CONSTRAINT "FK_62a37c43dbb396515852364b5e4" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "activity_events" DROP CONSTRAINT "FK_62a37c43dbb396515852364b5e4"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP CONSTRAINT "FK_6e62d80cf0b5b52ebe23a788a55"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP CONSTRAINT "FK_ac14fcb2d38b251fb16d73ffadd"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP CONSTRAINT "FK_28ac537f8c7bc3c96f7d1753ec4"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP CONSTRAINT "uq_boards_organization_id_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_activity_events_organization_id_created_at"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_organization_id"
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events" DROP COLUMN "organization_id"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP COLUMN "organization_id"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD CONSTRAINT "FK_417f1bb41b03dc239ccbd21ab62" FOREIGN KEY ("gateway_id") REFERENCES "gateways"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD CONSTRAINT "FK_9b6d46769271ee7e2be2e78c683" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
  }
}
