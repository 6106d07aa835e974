import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The durable change log (src/change-log): an outbox of changes to tenant data, written in the
 * same transaction as the change and announced with NOTIFY (delivered on commit).
 *
 * Written by hand, not generated: the table has no TypeORM entity (TypeORM has no `xid8`
 * column type; the rows are read with SQL by the change-log listener only), so the entity/schema
 * drift check does not cover it, and triggers are not something the generator sees.
 *
 * - `txid` (the writing transaction's id) gives readers a commit-safe order: see
 *   change-log.reader.ts.
 * - Agents are logged structurally by triggers, so no writer (provisioning engine, heartbeats,
 *   routes, deletions of a whole organization) can forget it. An UPDATE is logged only when a
 *   column AgentRead shows (or that feeds its computed status) changed; `updated_at` alone and
 *   the provision_* / token bookkeeping are not, so unchanged agents are never re-announced.
 * - One statement-level trigger on the log itself sends the NOTIFY, whatever wrote the rows
 *   (agent triggers, the presence sweep, later kinds). NOTIFY payloads are coalesced per
 *   transaction, so a transaction changing many rows sends one notification.
 */
export class ChangeLog1796031066627 implements MigrationInterface {
  name = 'ChangeLog1796031066627';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "change_log" (
                "id" bigserial PRIMARY KEY,
                "txid" xid8 NOT NULL DEFAULT pg_current_xact_id(),
                "organization_id" uuid NOT NULL,
                "board_id" uuid,
                "kind" varchar NOT NULL,
                "entity_id" uuid NOT NULL,
                "op" varchar NOT NULL CONSTRAINT "ck_change_log_op" CHECK ("op" IN ('upsert', 'delete')),
                "created_at" timestamptz NOT NULL DEFAULT now()
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_change_log_txid_id" ON "change_log" ("txid", "id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_change_log_created_at" ON "change_log" ("created_at")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_change_log_organization_id_kind" ON "change_log" ("organization_id", "kind")
        `);
    // Where the presence sweep stopped: agents whose last_seen_at crossed the offline threshold
    // after this are logged by the next sweep (one row, locked by the sweeping instance).
    await queryRunner.query(`
            CREATE TABLE "change_log_presence_sweep" (
                "id" integer PRIMARY KEY CONSTRAINT "ck_change_log_presence_sweep_one_row" CHECK ("id" = 1),
                "swept_until" timestamptz NOT NULL
            )
        `);
    await queryRunner.query(`
            INSERT INTO "change_log_presence_sweep" ("id", "swept_until") VALUES (1, now())
        `);
    await queryRunner.query(`
            CREATE FUNCTION "mc_change_log_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                -- An INSERT ... SELECT that inserted nothing (an idle presence sweep) is silent.
                IF EXISTS (SELECT 1 FROM inserted) THEN
                    PERFORM pg_notify('mc_change_log', '');
                END IF;
                RETURN NULL;
            END
            $$
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_change_log_notify" AFTER INSERT ON "change_log"
            REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION "mc_change_log_notify"()
        `);
    await queryRunner.query(`
            CREATE FUNCTION "mc_agents_change_log"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    INSERT INTO "change_log" ("organization_id", "board_id", "kind", "entity_id", "op")
                    VALUES (OLD."organization_id", OLD."board_id", 'agent', OLD."id", 'delete');
                    RETURN OLD;
                END IF;
                -- Moved to another board: gone from the old board's point of view (readers of
                -- only the old board get a deletion), then present on the new one.
                IF TG_OP = 'UPDATE' AND OLD."board_id" IS DISTINCT FROM NEW."board_id" THEN
                    INSERT INTO "change_log" ("organization_id", "board_id", "kind", "entity_id", "op")
                    VALUES (OLD."organization_id", OLD."board_id", 'agent', OLD."id", 'delete');
                END IF;
                INSERT INTO "change_log" ("organization_id", "board_id", "kind", "entity_id", "op")
                VALUES (NEW."organization_id", NEW."board_id", 'agent', NEW."id", 'upsert');
                RETURN NEW;
            END
            $$
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_agents_change_log_insert" AFTER INSERT ON "agents"
            FOR EACH ROW EXECUTE FUNCTION "mc_agents_change_log"()
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_agents_change_log_delete" AFTER DELETE ON "agents"
            FOR EACH ROW EXECUTE FUNCTION "mc_agents_change_log"()
        `);
    await queryRunner.query(`
            CREATE TRIGGER "tr_agents_change_log_update" AFTER UPDATE ON "agents"
            FOR EACH ROW WHEN (
                (OLD."organization_id", OLD."board_id", OLD."gateway_id", OLD."name", OLD."status",
                 OLD."heartbeat_config", OLD."identity_profile", OLD."identity_template",
                 OLD."soul_template", OLD."is_board_lead", OLD."openclaw_session_id",
                 OLD."last_seen_at", OLD."last_provision_error", OLD."created_at")
                IS DISTINCT FROM
                (NEW."organization_id", NEW."board_id", NEW."gateway_id", NEW."name", NEW."status",
                 NEW."heartbeat_config", NEW."identity_profile", NEW."identity_template",
                 NEW."soul_template", NEW."is_board_lead", NEW."openclaw_session_id",
                 NEW."last_seen_at", NEW."last_provision_error", NEW."created_at")
            )
            EXECUTE FUNCTION "mc_agents_change_log"()
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "tr_agents_change_log_update" ON "agents"`);
    await queryRunner.query(`DROP TRIGGER "tr_agents_change_log_delete" ON "agents"`);
    await queryRunner.query(`DROP TRIGGER "tr_agents_change_log_insert" ON "agents"`);
    await queryRunner.query(`DROP FUNCTION "mc_agents_change_log"()`);
    await queryRunner.query(`DROP TRIGGER "tr_change_log_notify" ON "change_log"`);
    await queryRunner.query(`DROP FUNCTION "mc_change_log_notify"()`);
    await queryRunner.query(`DROP TABLE "change_log_presence_sweep"`);
    await queryRunner.query(`DROP TABLE "change_log"`);
  }
}
