import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Board memory (issue 12):
 *
 * - Tenancy is structural: every item records its organization (backfilled from its board), and
 *   the board is referenced by (id, organization_id), so an item can never belong to another
 *   organization's board. A writer that names only the board gets the board's organization
 *   (BEFORE INSERT trigger); one that names a different organization is refused by the key.
 * - Inserts and deletions are logged to the change log (kind `board_memory`) by statement-level
 *   triggers, so no writer (the memory routes, a board or organization deletion) can forget it
 *   and a deletion of a whole board's memory is one INSERT into the log. The log's own trigger
 *   sends the NOTIFY. Items are never updated by the API; an UPDATE is not logged.
 * - Pause detection (template sync) reads the latest `/pause` or `/resume` chat entry of a
 *   board: a partial index over exactly those entries, newest first per board, so that read is
 *   one index probe per board, whatever the size of the board's memory. The predicate is the
 *   template sync's command expression (Python `strip().lower()`).
 *
 * Written by hand around the generated column and keys: triggers and expression indexes are not
 * something the generator sees.
 */
export class BoardMemoryTenancy1796200000000 implements MigrationInterface {
  name = 'BoardMemoryTenancy1796200000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "board_memory" DROP CONSTRAINT "FK_1a298157559a4417d2a93058903"
        `);
    // Added nullable, backfilled from the boards the rows point at, then made NOT NULL.
    await queryRunner.query(`
            ALTER TABLE "board_memory" ADD "organization_id" uuid
        `);
    await queryRunner.query(`
            UPDATE "board_memory" m SET "organization_id" = b."organization_id"
            FROM "boards" b WHERE b."id" = m."board_id"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_memory" ALTER COLUMN "organization_id" SET NOT NULL
        `);
    await queryRunner.query(`
            ALTER TABLE "board_memory"
            ADD CONSTRAINT "FK_fec2ca2f4c1402aa7bd3836369b" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "board_memory"
            ADD CONSTRAINT "FK_7771b3bac61a2dca841b3bb9f73" FOREIGN KEY ("board_id", "organization_id") REFERENCES "boards"("id", "organization_id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            CREATE FUNCTION "mc_board_memory_organization"() RETURNS trigger LANGUAGE plpgsql AS $$
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
            CREATE TRIGGER "tr_board_memory_organization" BEFORE INSERT ON "board_memory"
            FOR EACH ROW EXECUTE FUNCTION "mc_board_memory_organization"()
        `);
    await queryRunner.query(`
            CREATE FUNCTION "mc_board_memory_change_log"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    INSERT INTO "change_log" ("organization_id", "board_id", "kind", "entity_id", "op")
                    SELECT "organization_id", "board_id", 'board_memory', "id", 'delete' FROM removed;
                ELSE
                    INSERT INTO "change_log" ("organization_id", "board_id", "kind", "entity_id", "op")
                    SELECT "organization_id", "board_id", 'board_memory', "id", 'upsert' FROM added;
                END IF;
                RETURN NULL;
            END
            $$
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_board_memory_change_log_insert" AFTER INSERT ON "board_memory"
            REFERENCING NEW TABLE AS added
            FOR EACH STATEMENT EXECUTE FUNCTION "mc_board_memory_change_log"()
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_board_memory_change_log_delete" AFTER DELETE ON "board_memory"
            REFERENCING OLD TABLE AS removed
            FOR EACH STATEMENT EXECUTE FUNCTION "mc_board_memory_change_log"()
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_board_memory_pause_commands"
            ON "board_memory" ("board_id", "created_at" DESC, "id" DESC)
            WHERE "is_chat"
              AND lower(regexp_replace("content", '^\\s+|\\s+$', '', 'g')) IN ('/pause', '/resume')
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "ix_board_memory_pause_commands"`);
    await queryRunner.query(`DROP TRIGGER "tr_board_memory_change_log_delete" ON "board_memory"`);
    await queryRunner.query(`DROP TRIGGER "tr_board_memory_change_log_insert" ON "board_memory"`);
    await queryRunner.query(`DROP FUNCTION "mc_board_memory_change_log"()`);
    await queryRunner.query(`DROP TRIGGER "tr_board_memory_organization" ON "board_memory"`);
    await queryRunner.query(`DROP FUNCTION "mc_board_memory_organization"()`);
    await queryRunner.query(`
            ALTER TABLE "board_memory" DROP CONSTRAINT "FK_7771b3bac61a2dca841b3bb9f73"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_memory" DROP CONSTRAINT "FK_fec2ca2f4c1402aa7bd3836369b"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_memory" DROP COLUMN "organization_id"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_memory"
            ADD CONSTRAINT "FK_1a298157559a4417d2a93058903" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }
}
