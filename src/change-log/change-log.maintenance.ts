import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { OFFLINE_AFTER_MS } from '../agents/dto/agent.dto';
import { APP_CONFIG, type AppConfig } from '../config/app-config';

/** Rows deleted per prune statement (a prune repeats until done). */
const PRUNE_BATCH = 5_000;
/** Prune at least this often. */
const MAX_PRUNE_INTERVAL_MS = 10 * 60_000;

/**
 * Scheduled upkeep of the change log, on every instance:
 *
 * - Presence sweep: an agent's computed status turns `offline` 10 minutes after its last
 *   heartbeat without any row change, so no trigger sees it. The sweep logs an `agent` change
 *   for every agent whose `last_seen_at` crossed that threshold since the previous sweep, so
 *   streams show agents going offline. The sweep state is one row, locked with SKIP LOCKED: one
 *   instance sweeps at a time, the others skip; each threshold crossing is logged once.
 * - Prune: rows older than CHANGE_LOG_RETENTION_SECONDS, and every row before them in the log's
 *   order, are deleted (a stream resuming from before that gets a snapshot instead).
 *   Idempotent, so every instance may run it.
 */
@Injectable()
export class ChangeLogMaintenance implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('ChangeLog');
  private timers: NodeJS.Timeout[] = [];
  private running = new Set<Promise<unknown>>();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const { presenceSweepIntervalMs, retentionSeconds } = this.config.changeLog;
    const pruneEvery = Math.min((retentionSeconds * 1000) / 4, MAX_PRUNE_INTERVAL_MS);
    this.timers.push(
      setInterval(
        () => this.track(this.sweepPresence(), 'presence sweep'),
        presenceSweepIntervalMs,
      ),
      setInterval(() => this.track(this.prune(), 'prune'), pruneEvery),
    );
    for (const timer of this.timers) timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await Promise.allSettled([...this.running]);
  }

  private track(work: Promise<unknown>, what: string): void {
    const tracked = work.catch((error: unknown) =>
      this.logger.warn(
        `change log ${what} failed: ${error instanceof Error ? error.message : String(error)}`,
      ),
    );
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
  }

  /**
   * Logs the agents that turned offline since the last sweep; returns how many (null when
   * another instance is sweeping).
   */
  async sweepPresence(): Promise<number | null> {
    return this.dataSource.transaction(async (manager) => {
      const state = await manager.query<{ swept_until: Date }[]>(
        `SELECT swept_until FROM change_log_presence_sweep WHERE id = 1 FOR UPDATE SKIP LOCKED`,
      );
      if (state.length === 0) return null;
      // Crossed the threshold in (swept_until, now]: last_seen_at + offline-after lies there.
      // computedStatus says offline when now - last_seen_at > OFFLINE_AFTER_MS (strictly).
      const inserted = await manager.query<{ id: string }[]>(
        `INSERT INTO change_log (organization_id, board_id, kind, entity_id, op)
         SELECT a.organization_id, a.board_id, 'agent', a.id, 'upsert'
           FROM agents a
          WHERE a.last_seen_at < now() - make_interval(secs => $1)
            AND a.last_seen_at >= $2::timestamptz - make_interval(secs => $1)
            AND a.status NOT IN ('updating', 'deleting')
         RETURNING id::text AS id`,
        [OFFLINE_AFTER_MS / 1000, state[0].swept_until],
      );
      await manager.query(`UPDATE change_log_presence_sweep SET swept_until = now() WHERE id = 1`);
      return inserted.length;
    });
  }

  /**
   * Deletes rows created before `olderThan` (default: the retention window) and every row before
   * them in the log's order; returns how many. created_at is its transaction's start, which
   * does not follow the log's (txid, id) order: pruning by time alone could delete a row while
   * keeping an earlier one, and a client resuming from the earlier one would miss it for good.
   * Pruned up to a position, the log keeps a suffix: a resume id still there has all its
   * successors (one that is gone gets a snapshot).
   */
  async prune(olderThan?: Date): Promise<number> {
    const cutoff =
      olderThan ?? new Date(Date.now() - this.config.changeLog.retentionSeconds * 1000);
    // ORDER BY names due's columns: a bare `txid` would be the text output column ('999' > '1000').
    // Materialized: found through the created_at index (the rows due anyway), not by walking
    // the (txid, id) index back through the whole retained window.
    const bound = await this.dataSource.query<{ txid: string; id: string }[]>(
      `WITH due AS MATERIALIZED (
         SELECT txid, id FROM change_log
          WHERE created_at < $1 AND txid < pg_snapshot_xmin(pg_current_snapshot()))
       SELECT due.txid::text AS txid, due.id::text AS id FROM due
        ORDER BY due.txid DESC, due.id DESC LIMIT 1`,
      [cutoff],
    );
    if (bound.length === 0) return 0;
    let total = 0;
    for (;;) {
      // Counted by a SELECT over the deletion: TypeORM answers a bare DELETE ... RETURNING with
      // [rows, affected], whose length is always 2 (the loop stopped after one batch).
      const [{ deleted }] = await this.dataSource.query<{ deleted: number }[]>(
        `WITH gone AS (
           DELETE FROM change_log WHERE id IN (
             SELECT id FROM change_log WHERE (txid, id) <= ($1::xid8, $2::bigint)
              ORDER BY txid, id LIMIT $3)
           RETURNING 1)
         SELECT count(*)::int AS deleted FROM gone`,
        [bound[0].txid, bound[0].id, PRUNE_BATCH],
      );
      total += deleted;
      if (deleted < PRUNE_BATCH) return total;
    }
  }
}
