import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Board onboarding (issue 13):
 * - Sessions record their organization (tenancy is structural): added nullable, backfilled from
 *   their boards, made NOT NULL; the board is referenced by (board_id, organization_id), so a
 *   session cannot name a board of another organization. A BEFORE INSERT trigger fills the
 *   column from the board when a writer leaves it out.
 * - At most one `active` session per board (partial unique index), so two concurrent starts
 *   cannot both open one. Older duplicates (upstream allowed them; its start picked "any one")
 *   are marked `completed` first, keeping the newest active.
 * - The latest session of a board is read by (board_id, updated_at).
 * - Inserts, updates and deletions are logged to the change log (kind `board_onboarding`) by
 *   statement-level triggers, so the onboarding stream sees every writer's change, a board
 *   deletion's cascade too.
 */
export class OnboardingTenancy1796400000000 implements MigrationInterface {
  name = 'OnboardingTenancy1796400000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions" DROP CONSTRAINT "FK_554dcc878d9e151b2f1b4888141"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions" ADD "organization_id" uuid
        `);
    await queryRunner.query(`
            UPDATE "board_onboarding_sessions" s SET "organization_id" = b."organization_id"
            FROM "boards" b WHERE b."id" = s."board_id"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions" ALTER COLUMN "organization_id" SET NOT NULL
        `);
    await queryRunner.query(`
            UPDATE "board_onboarding_sessions" s SET "status" = 'completed'
            WHERE s."status" = 'active' AND EXISTS (
                SELECT 1 FROM "board_onboarding_sessions" newer
                 WHERE newer."board_id" = s."board_id" AND newer."status" = 'active'
                   AND (newer."updated_at", newer."id") > (s."updated_at", s."id"))
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "uq_board_onboarding_sessions_one_active" ON "board_onboarding_sessions" ("board_id")
            WHERE "status" = 'active'
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_board_onboarding_sessions_board_id_updated_at" ON "board_onboarding_sessions" ("board_id", "updated_at")
        `);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions"
            ADD CONSTRAINT "FK_d332e8c09ac9c9c247a5175dec1" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions"
            ADD CONSTRAINT "FK_17ccebb1a5d52de957962fd6b66" FOREIGN KEY ("board_id", "organization_id") REFERENCES "boards"("id", "organization_id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            CREATE FUNCTION "mc_board_onboarding_organization"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW."organization_id" IS NULL THEN
                    SELECT b."organization_id" INTO NEW."organization_id"
                      FROM "boards" b WHERE b."id" = NEW."board_id";
                END IF;
                RETURN NEW;
            END
            $$
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_board_onboarding_organization" BEFORE INSERT ON "board_onboarding_sessions"
            FOR EACH ROW EXECUTE FUNCTION "mc_board_onboarding_organization"()
        `);
    await queryRunner.query(`
            CREATE FUNCTION "mc_board_onboarding_change_log"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    INSERT INTO "change_log" ("organization_id", "board_id", "kind", "entity_id", "op")
                    SELECT "organization_id", "board_id", 'board_onboarding', "id", 'delete' FROM removed;
                ELSE
                    INSERT INTO "change_log" ("organization_id", "board_id", "kind", "entity_id", "op")
                    SELECT "organization_id", "board_id", 'board_onboarding', "id", 'upsert' FROM added;
                END IF;
                RETURN NULL;
            END
            $$
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_board_onboarding_change_log_insert" AFTER INSERT ON "board_onboarding_sessions"
            REFERENCING NEW TABLE AS added
            FOR EACH STATEMENT EXECUTE FUNCTION "mc_board_onboarding_change_log"()
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_board_onboarding_change_log_update" AFTER UPDATE ON "board_onboarding_sessions"
            REFERENCING NEW TABLE AS added
            FOR EACH STATEMENT EXECUTE FUNCTION "mc_board_onboarding_change_log"()
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_board_onboarding_change_log_delete" AFTER DELETE ON "board_onboarding_sessions"
            REFERENCING OLD TABLE AS removed
            FOR EACH STATEMENT EXECUTE FUNCTION "mc_board_onboarding_change_log"()
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `DROP TRIGGER "tr_board_onboarding_change_log_delete" ON "board_onboarding_sessions"`,
    );
    await queryRunner.query(
      `DROP TRIGGER "tr_board_onboarding_change_log_update" ON "board_onboarding_sessions"`,
    );
    await queryRunner.query(
      `DROP TRIGGER "tr_board_onboarding_change_log_insert" ON "board_onboarding_sessions"`,
    );
    await queryRunner.query(`DROP FUNCTION "mc_board_onboarding_change_log"()`);
    await queryRunner.query(
      `DROP TRIGGER "tr_board_onboarding_organization" ON "board_onboarding_sessions"`,
    );
    await queryRunner.query(`DROP FUNCTION "mc_board_onboarding_organization"()`);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions" DROP CONSTRAINT "FK_17ccebb1a5d52de957962fd6b66"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions" DROP CONSTRAINT "FK_d332e8c09ac9c9c247a5175dec1"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_board_onboarding_sessions_board_id_updated_at"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."uq_board_onboarding_sessions_one_active"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions" DROP COLUMN "organization_id"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions"
            ADD CONSTRAINT "FK_554dcc878d9e151b2f1b4888141" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }
}
