import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Agent names are unique ignoring case on a board (its lead included) and among the non-lead
 * board agents of one gateway (upstream's "same gateway workspace" rule; leads keep the default
 * name on every board). Enforced by the database so that concurrent creates of one name cannot
 * both succeed. Existing duplicates (upstream's check was skipped on renames and heartbeat
 * creates) are renamed first, the oldest agent keeping its name, the others getting their id
 * appended, which is unique.
 */
export class AgentNameUniqueness1796040000000 implements MigrationInterface {
  name = 'AgentNameUniqueness1796040000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            WITH ranked AS (
                SELECT "id", row_number() OVER (
                    PARTITION BY "board_id", lower("name") ORDER BY "created_at", "id") AS n
                FROM "agents" WHERE "board_id" IS NOT NULL)
            UPDATE "agents" a SET "name" = a."name" || ' (' || a."id" || ')'
            FROM ranked r WHERE r."id" = a."id" AND r.n > 1
        `);
    await queryRunner.query(`
            WITH ranked AS (
                SELECT "id", row_number() OVER (
                    PARTITION BY "gateway_id", lower("name") ORDER BY "created_at", "id") AS n
                FROM "agents" WHERE "board_id" IS NOT NULL AND NOT "is_board_lead")
            UPDATE "agents" a SET "name" = a."name" || ' (' || a."id" || ')'
            FROM ranked r WHERE r."id" = a."id" AND r.n > 1
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "ux_agents_board_lower_name" ON "agents" ("board_id", lower("name"))
            WHERE "board_id" IS NOT NULL
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "ux_agents_gateway_worker_lower_name" ON "agents" ("gateway_id", lower("name"))
            WHERE "board_id" IS NOT NULL AND NOT "is_board_lead"
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."ux_agents_gateway_worker_lower_name"`);
    await queryRunner.query(`DROP INDEX "public"."ux_agents_board_lower_name"`);
  }
}
