import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Pool, type PoolClient } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { ConflictError } from '../common/errors/app-error';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { sleep } from '../openclaw/retry';

/** Runs of one agent that may wait in this instance's queue (the running one included). */
export const MAX_QUEUED_RUNS_PER_AGENT = 32;
const LOCK_RETRY_BASE_MS = 100;
const LOCK_RETRY_MAX_MS = 2_000;

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
 *   for a slot without holding anything. `pg_try_advisory_lock` with backoff, bounded by the run
 *   deadline, so a run held elsewhere fails with a clear error instead of blocking a connection;
 * - the run's own queries use the application pool one short query at a time, never pinning a
 *   connection across gateway I/O.
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

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.waitBudgetMs = config.provisioning.runTimeoutMs;
    this.concurrency = provisioningConcurrency(config);
    this.lockPool = new Pool({
      connectionString: config.database.url,
      max: this.concurrency,
      // Waiting for a run slot is bounded like waiting for the lock.
      connectionTimeoutMillis: this.waitBudgetMs,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
    });
    // An idle lock connection dropped by the server must not crash the process.
    this.lockPool.on('error', (error) =>
      this.logger.warn(`provision lock connection failed: ${error.message}`),
    );
  }

  async onModuleDestroy(): Promise<void> {
    await this.lockPool.end();
  }

  async run<T>(agentId: string, run: (manager: EntityManager) => Promise<T>): Promise<T> {
    // One spelling per agent (PostgreSQL prints uuids in lower case), for the queue and the key.
    agentId = agentId.toLowerCase();
    return this.queued(agentId, () => this.locked(agentId, () => run(this.dataSource.manager)));
  }

  /** Runs `work` after every earlier run of the agent in this process has finished. */
  private async queued<T>(agentId: string, work: () => Promise<T>): Promise<T> {
    const queue = this.queues.get(agentId) ?? { tail: Promise.resolve(), length: 0 };
    if (queue.length >= MAX_QUEUED_RUNS_PER_AGENT) {
      throw new ConflictError(
        `Agent ${agentId} already has ${queue.length} provision runs queued; try again later`,
      );
    }
    queue.length += 1;
    this.queues.set(agentId, queue);
    const previous = queue.tail;
    let finished!: () => void;
    queue.tail = new Promise<void>((resolve) => (finished = resolve));
    try {
      await previous;
      return await work();
    } finally {
      finished();
      queue.length -= 1;
      if (queue.length === 0) this.queues.delete(agentId);
    }
  }

  /** Runs `work` holding the agent's cross-instance lock (see the class comment). */
  private async locked<T>(agentId: string, work: () => Promise<T>): Promise<T> {
    const key = agentRunLockKey(agentId);
    const giveUpAt = Date.now() + this.waitBudgetMs;
    for (let delayMs = LOCK_RETRY_BASE_MS; ; delayMs = Math.min(delayMs * 2, LOCK_RETRY_MAX_MS)) {
      const client = await this.runSlot(agentId);
      let locked: boolean;
      try {
        const result = await client.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
          [key],
        );
        locked = result.rows[0]?.locked === true;
      } catch (error) {
        this.release(client, error as Error);
        throw error;
      }
      if (locked) {
        try {
          return await work();
        } finally {
          await this.unlock(client, key);
        }
      }
      this.release(client);
      this.contended += 1;
      const remaining = giveUpAt - Date.now();
      if (remaining <= 0) {
        throw new ConflictError(
          `Agent ${agentId} is being provisioned by another instance; gave up waiting after ` +
            `${Math.round(this.waitBudgetMs / 1000)} s`,
        );
      }
      await sleep(Math.min(remaining, delayMs * (0.75 + Math.random() / 2)));
    }
  }

  /**
   * A lock connection, watched while checked out: pg-pool listens for errors only on idle
   * clients, and an 'error' nobody listens to (the server dropping the connection during a run)
   * would crash the process. Losing it loses the lock; the run itself goes on.
   */
  private async runSlot(agentId: string): Promise<PoolClient> {
    try {
      const client = await this.lockPool.connect();
      client.on('error', this.onLockConnectionError);
      return client;
    } catch (error) {
      throw new ConflictError(
        `No provisioning slot for agent ${agentId} within ` +
          `${Math.round(this.waitBudgetMs / 1000)} s (${(error as Error).message})`,
      );
    }
  }

  private readonly onLockConnectionError = (error: Error) =>
    this.logger.warn(`provision lock connection lost during a run: ${error.message}`);

  private release(client: PoolClient, error?: Error): void {
    client.off('error', this.onLockConnectionError);
    // With an error the pool destroys the connection (which ends its session locks).
    client.release(error);
  }

  private async unlock(client: PoolClient, key: string): Promise<void> {
    try {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
      this.release(client);
    } catch (error) {
      this.release(client, error as Error);
      this.logger.warn(`provision lock release failed: ${(error as Error).message}`);
    }
  }
}
