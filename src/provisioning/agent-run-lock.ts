import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Pool, type PoolClient } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import type { SqlSession } from '../auth/agent-token';
import { withDeadline } from '../common/async/deadline';
import { ConflictError } from '../common/errors/app-error';
import { isDatabaseUnavailable } from '../common/errors/database-unavailable';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { sleep } from '../openclaw/retry';

/** Runs of one agent that may wait in this instance's queue (the running one included). */
export const MAX_QUEUED_RUNS_PER_AGENT = 32;
const LOCK_RETRY_BASE_MS = 100;
const LOCK_RETRY_MAX_MS = 2_000;

/** A run that never started: it gave up waiting for its turn, a slot or the lock (HTTP 409). */
export class RunNotStartedError extends ConflictError {}

/** A run whose lock connection was lost: another run on the agent may already be executing. */
export class RunLockLostError extends Error {
  constructor(cause: Error, how = 'database connection dropped') {
    super(
      `the provision run lost its run lock (${how}: ${cause.message}); ` +
        'provision the agent again',
      { cause },
    );
    this.name = 'RunLockLostError';
  }
}

/**
 * A run's hold on its agent's lock. The lock lives in a database session; when that session's
 * connection is lost the lock is gone and another run may start, so the run must stop:
 * `signal` aborts then, and `transaction` runs its statements IN the lock's session, so a
 * statement that must only happen under the lock (registering or promoting a token) cannot
 * commit once the lock is lost: that session is the fence.
 */
export interface RunLease {
  readonly signal: AbortSignal;
  transaction<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
}

/**
 * The advisory-lock key of an agent's runs. The SQL twin is in provision-run-sweeper.ts
 * (`'mission-control:agent-provision:' || id::text`, lower case): keep them equal.
 */
export const agentRunLockKey = (agentId: string) =>
  `mission-control:agent-provision:${agentId.toLowerCase()}`;

/**
 * Runs one instance executes at once: PROVISION_CONCURRENCY, but never more than half the
 * application pool (DATABASE_POOL_SIZE), since each executing run issues its queries there: the
 * other half always serves requests.
 */
export function provisioningConcurrency(config: AppConfig): number {
  return Math.max(
    1,
    Math.min(config.provisioning.concurrency, Math.floor(config.database.poolSize / 2)),
  );
}

/**
 * Serialises provision runs on one agent, in this process and across instances, without
 * letting provisioning starve the application's database pool:
 *
 * - runs of one agent queue in process first (a promise chain, bounded), so waiting costs no
 *   connection at all;
 * - the run at the head takes the cross-instance lock, a session-level advisory lock, on a
 *   connection of a small pool of its own (provisioningConcurrency connections, beside
 *   DATABASE_POOL_SIZE): at most that many runs execute at once per instance, the others wait
 *   for a slot without holding anything. `pg_try_advisory_lock` with backoff;
 * - ONE wait budget (the run deadline, PROVISION_RUN_TIMEOUT_MS) counted from the moment a run
 *   is queued covers the queue, the slot and the lock: past it the run fails with a clear
 *   ConflictError instead of waiting on;
 * - the run's own queries use the application pool one short query at a time, never pinning a
 *   connection across gateway I/O; the statements that must only happen under the lock run in
 *   the lock's session (RunLease), and losing that connection aborts the run.
 *
 * A crashed instance's locks go with its connections; its rows are swept (ProvisionRunSweeper).
 */
@Injectable()
export class AgentRunLock implements OnModuleDestroy {
  private readonly logger = new Logger('Provisioning');
  private readonly lockPool: Pool;
  private readonly waitBudgetMs: number;
  private readonly queues = new Map<string, { tail: Promise<void>; length: number }>();
  /** Runs this instance executes at once (see provisioningConcurrency). */
  readonly concurrency: number;
  /** How often a lock attempt found another session holding the agent's lock (a metric). */
  contended = 0;
  /** How often a lock connection was lost during a run (a metric). */
  lost = 0;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.waitBudgetMs = config.provisioning.runTimeoutMs;
    this.concurrency = provisioningConcurrency(config);
    this.lockPool = new Pool({
      connectionString: config.database.url,
      max: this.concurrency,
      connectionTimeoutMillis: this.waitBudgetMs,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
      application_name: 'mission-control provision lock',
      // A lock connection is idle for a whole run: notice a dead peer, and bound every statement
      // on the server (a timed-out statement must not keep running, holding row locks) as well
      // as in the client (a half-open socket answers nothing), the server's bound first.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      statement_timeout: config.provisioning.lockStatementTimeoutMs,
      lock_timeout: config.provisioning.lockStatementTimeoutMs,
      idle_in_transaction_session_timeout: config.provisioning.lockStatementTimeoutMs,
      query_timeout: 2 * config.provisioning.lockStatementTimeoutMs,
    });
    // An idle lock connection dropped by the server must not crash the process.
    this.lockPool.on('error', (error) =>
      this.logger.warn(`provision lock connection failed: ${error.message}`),
    );
  }

  async onModuleDestroy(): Promise<void> {
    await this.lockPool.end();
  }

  async run<T>(
    agentId: string,
    run: (manager: EntityManager, lease: RunLease) => Promise<T>,
  ): Promise<T> {
    // One spelling per agent (PostgreSQL prints uuids in lower case), for the queue and the key.
    agentId = agentId.toLowerCase();
    const giveUpAt = Date.now() + this.waitBudgetMs;
    return this.queued(agentId, giveUpAt, () =>
      this.locked(agentId, giveUpAt, (lease) => run(this.dataSource.manager, lease)),
    );
  }

  private gaveUp(agentId: string, waitingFor: string): RunNotStartedError {
    return new RunNotStartedError(
      `Agent ${agentId} ${waitingFor}; gave up waiting after ` +
        `${Math.round(this.waitBudgetMs / 1000)} s`,
    );
  }

  /**
   * Runs `work` after every earlier run of the agent in this process has finished, or fails once
   * `giveUpAt` passes first (the queue's order is kept: a run that gave up passes its turn on
   * only when the run before it has finished).
   */
  private async queued<T>(agentId: string, giveUpAt: number, work: () => Promise<T>): Promise<T> {
    const queue = this.queues.get(agentId) ?? { tail: Promise.resolve(), length: 0 };
    if (queue.length >= MAX_QUEUED_RUNS_PER_AGENT) {
      throw new RunNotStartedError(
        `Agent ${agentId} already has ${queue.length} provision runs queued; try again later`,
      );
    }
    queue.length += 1;
    this.queues.set(agentId, queue);
    const previous = queue.tail;
    let finished!: () => void;
    queue.tail = new Promise<void>((resolve) => (finished = resolve));
    let turn = false;
    try {
      turn = await withinDeadline(
        previous.then(() => true),
        giveUpAt,
      );
      if (!turn) throw this.gaveUp(agentId, 'has earlier provision runs still under way');
      return await work();
    } finally {
      if (turn) finished();
      else void previous.then(finished);
      queue.length -= 1;
      if (queue.length === 0 && this.queues.get(agentId) === queue) this.queues.delete(agentId);
    }
  }

  /** Runs `work` holding the agent's cross-instance lock (see the class comment). */
  private async locked<T>(
    agentId: string,
    giveUpAt: number,
    work: (lease: RunLease) => Promise<T>,
  ): Promise<T> {
    const key = agentRunLockKey(agentId);
    for (let delayMs = LOCK_RETRY_BASE_MS; ; delayMs = Math.min(delayMs * 2, LOCK_RETRY_MAX_MS)) {
      const slot = await this.runSlot(agentId, giveUpAt);
      let locked: boolean;
      try {
        const result = await slot.client.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
          [key],
        );
        locked = result.rows[0]?.locked === true;
      } catch (error) {
        this.release(slot, error as Error);
        throw error;
      }
      if (locked) {
        try {
          return await work(slot.lease);
        } finally {
          await this.unlock(slot, key);
        }
      }
      this.release(slot);
      this.contended += 1;
      const remaining = giveUpAt - Date.now();
      if (remaining <= 0) throw this.gaveUp(agentId, 'is being provisioned by another instance');
      await sleep(Math.min(remaining, delayMs * (0.75 + Math.random() / 2)));
    }
  }

  /**
   * A lock connection within the wait budget, watched while checked out: pg-pool listens for
   * errors only on idle clients, and an 'error' nobody listens to (the server dropping the
   * connection during a run) would crash the process. Losing it loses the lock, so it aborts
   * the run holding it.
   */
  private async runSlot(agentId: string, giveUpAt: number): Promise<LockSlot> {
    const connecting = this.lockPool.connect();
    let client: PoolClient | false;
    try {
      client = await withinDeadline(connecting, giveUpAt);
    } catch (error) {
      // Refused, not waited for: the database is away (503), nothing waited 300 s for a slot.
      if (isDatabaseUnavailable(error)) throw error;
      throw new RunNotStartedError(
        `No provisioning slot for agent ${agentId} within ` +
          `${Math.round(this.waitBudgetMs / 1000)} s (${(error as Error).message})`,
      );
    }
    if (client === false) {
      // The slot came too late: hand it back when it comes.
      connecting.then(
        (late) => late.release(),
        () => undefined,
      );
      throw this.gaveUp(agentId, 'found no free provisioning slot');
    }
    const lockClient = client;
    const controller = new AbortController();
    const onError = (error: Error) => {
      this.lost += 1;
      this.logger.warn(`provision lock connection lost during a run: ${error.message}`);
      if (!controller.signal.aborted) controller.abort(new RunLockLostError(error));
    };
    lockClient.on('error', onError);
    const slot: LockSlot = {
      client: lockClient,
      onError,
      released: false,
      lease: {
        signal: controller.signal,
        transaction: async (unit) => {
          controller.signal.throwIfAborted();
          const session: SqlSession = {
            query: async <R>(sql: string, params?: unknown[]) =>
              (await lockClient.query(sql, params)).rows as R,
          };
          try {
            await lockClient.query('BEGIN');
            const result = await unit(session);
            await lockClient.query('COMMIT');
            return result;
          } catch (error) {
            if (!controller.signal.aborted && (await this.rolledBack(lockClient, error))) {
              throw error;
            }
            // The session may still be in the transaction, holding its row locks (a statement
            // the client gave up on keeps running on the server): end it now, before the run
            // goes on to record its failure on those very rows. That ends the lock too.
            if (!controller.signal.aborted) {
              this.lost += 1;
              const cause = error instanceof Error ? error : new Error(String(error));
              controller.abort(new RunLockLostError(cause, 'its session was ended'));
            }
            this.release(slot, controller.signal.reason as Error);
            throw controller.signal.reason;
          }
        },
      },
    };
    return slot;
  }

  /** A clean ROLLBACK; not attempted after a client-side timeout (the statement still runs). */
  private async rolledBack(client: PoolClient, error: unknown): Promise<boolean> {
    if (error instanceof Error && /query read timeout/i.test(error.message)) return false;
    return client.query('ROLLBACK').then(
      () => true,
      () => false,
    );
  }

  private release(slot: LockSlot, error?: Error): void {
    if (slot.released) return;
    slot.released = true;
    slot.client.off('error', slot.onError);
    // With an error the pool destroys the connection (which ends its session locks).
    slot.client.release(error);
  }

  /** Bounded by the lock pool's query_timeout; on any failure the connection is destroyed. */
  private async unlock(slot: LockSlot, key: string): Promise<void> {
    if (slot.lease.signal.aborted) {
      this.release(slot, slot.lease.signal.reason as Error);
      return;
    }
    try {
      await slot.client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
      this.release(slot);
    } catch (error) {
      this.release(slot, error as Error);
      this.logger.warn(`provision lock release failed: ${(error as Error).message}`);
    }
  }
}

interface LockSlot {
  client: PoolClient;
  lease: RunLease;
  onError: (error: Error) => void;
  /** Handed back to the pool (or destroyed): never twice. */
  released: boolean;
}

/** Marks the wait budget running out (turned into `false` by {@link withinDeadline}). */
class DeadlinePassed extends Error {}

/** The promise's value, or false once `deadlineAt` passes first. */
async function withinDeadline<T>(promise: Promise<T>, deadlineAt: number): Promise<T | false> {
  try {
    return await withDeadline(promise, deadlineAt - Date.now(), () => new DeadlinePassed());
  } catch (error) {
    if (error instanceof DeadlinePassed) return false;
    throw error;
  }
}
