import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';

/** Rows repaired per sweep statement (the next sweep takes the rest). */
const SWEEP_BATCH = 500;
/** Sweep at least this often, and at most every run deadline. */
const MAX_SWEEP_INTERVAL_MS = 60_000;

/**
 * Repairs provision runs that can no longer finish: a run older than the run deadline
 * (PROVISION_RUN_TIMEOUT_MS) whose agent's run lock nobody holds was abandoned (its instance
 * stopped mid-run), so an `updating` agent goes back to a stable status and the row records why
 * (`last_provision_error`). Runs at start-up and periodically on every instance: one UPDATE, safe
 * across instances, skipping any agent whose run lock (AgentRunLock) another session holds.
 */
@Injectable()
export class ProvisionRunSweeper implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Provisioning');
  private readonly deadlineMs: number;
  /** The periodic sweep (unref'd: it never keeps the process alive); null when stopped. */
  timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<unknown> | null = null;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.deadlineMs = config.provisioning.runTimeoutMs;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.sweepSafely();
    const every = Math.min(this.deadlineMs, MAX_SWEEP_INTERVAL_MS);
    this.timer = setInterval(() => void this.sweepSafely(), every);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.sweeping;
  }

  /** Repairs abandoned runs now; returns the ids of the agents repaired. */
  async sweep(): Promise<string[]> {
    const seconds = Math.round(this.deadlineMs / 1000);
    const explanation =
      `provision run did not finish within ${seconds} s (the instance running it stopped?); ` +
      'provision the agent again';
    const neverStarted =
      `the agent's first provision run never started within ${2 * seconds} s of its creation ` +
      '(the instance creating it stopped?); provision the agent again';
    // The lock key must match agentRunLockKey (agent-run-lock.ts). The conditions are repeated
    // in the UPDATE so a run that started or finished meanwhile is left alone.
    // Abandoned: a run started before the deadline that neither finished (success clears
    // provision_requested_at) nor recorded a failure (a run clears the previous error when it
    // starts), or left the agent `updating`; or any agent (lead, board or main agent) created
    // before the deadline on a gateway that can be provisioned whose first run never started
    // (its creator died between the insert and the run): ensureBoardLead then provisions a lead
    // again, and the error tells an admin to provision the others. A first run may wait a whole
    // deadline for its turn before it starts, so that case waits twice the deadline. A run that
    // failed before starting recorded its error, so it is not taken for either.
    const abandoned = (row: string) => `(
        (${row}.provision_requested_at < now() - make_interval(secs => $1)
          AND (${row}.status = 'updating' OR ${row}.last_provision_error IS NULL))
        OR (${row}.provision_requested_at IS NULL
          AND ${row}.agent_token_hash IS NULL AND ${row}.last_provision_error IS NULL
          AND ${row}.created_at < now() - make_interval(secs => 2 * $1::double precision)
          AND EXISTS (SELECT 1 FROM gateways g
                      WHERE g.id = ${row}.gateway_id AND btrim(g.url) <> '')))`;
    const rows = await this.dataSource.query<{ id: string }[]>(
      `WITH candidates AS MATERIALIZED (
         SELECT id FROM agents a WHERE ${abandoned('a')}
         LIMIT ${SWEEP_BATCH}
       ), repaired AS (
         UPDATE agents a SET
           status = CASE
             WHEN a.status <> 'updating' THEN a.status
             WHEN a.last_seen_at IS NULL THEN 'provisioning'
             ELSE 'online' END,
           last_provision_error = CASE
             WHEN a.provision_requested_at IS NULL THEN $3 ELSE $2 END,
           updated_at = now()
         FROM candidates c
         WHERE a.id = c.id
           AND ${abandoned('a')}
           AND pg_try_advisory_xact_lock(
             hashtextextended('mission-control:agent-provision:' || a.id::text, 0))
         RETURNING a.id
       )
       SELECT id FROM repaired`,
      [this.deadlineMs / 1000, explanation, neverStarted],
    );
    if (rows.length > 0) {
      this.logger.warn(`Swept ${rows.length} abandoned provision run(s) (${seconds} s deadline)`);
    }
    return rows.map((row) => row.id);
  }

  /** A sweep that never rejects (timer callbacks must not) and never overlaps another. */
  private async sweepSafely(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = this.sweep().catch((error: unknown) =>
      this.logger.warn(`Provision run sweep failed: ${(error as Error).message}`),
    );
    try {
      await this.sweeping;
    } finally {
      this.sweeping = null;
    }
  }
}
