import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A board deletion is logged to the change log (kind `board`, op `delete`, entity and board id
 * the board's), by a statement-level trigger, so no deleter (the board route, an organization
 * deletion) can forget it. The memory stream of a board ends when it reads that row, on every
 * instance: without it a stream of a board with no memory (nothing else is logged) stayed open
 * for good, and one of a board with memory could not tell its items' deletions from the end.
 */
export class BoardDeletionChangeLog1796210000000 implements MigrationInterface {
  name = 'BoardDeletionChangeLog1796210000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE FUNCTION "mc_boards_change_log"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO "change_log" ("organization_id", "board_id", "kind", "entity_id", "op")
                SELECT "organization_id", "id", 'board', "id", 'delete' FROM removed;
                RETURN NULL;
            END
            $$
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_boards_change_log_delete" AFTER DELETE ON "boards"
            REFERENCING OLD TABLE AS removed
            FOR EACH STATEMENT EXECUTE FUNCTION "mc_boards_change_log"()
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "tr_boards_change_log_delete" ON "boards"`);
    await queryRunner.query(`DROP FUNCTION "mc_boards_change_log"()`);
  }
}
