import { BeforeApplicationShutdown, Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityNotFoundError } from 'typeorm';
import { agentFromRow } from './agent-row';
import { Agent } from './entities/agent.entity';
import { HeartbeatQueue, type QueuedHeartbeat } from './heartbeat-queue';
import { CoalescedFlush } from '../common/async/coalesced-flush';
import { ServiceBusyError } from '../common/errors/app-error';

/** Most heartbeats one statement writes. */
export const HEARTBEAT_MAX_BATCH = 256;
/** Most heartbeats waiting for a batch in one instance; further callers wait for room. */
export const HEARTBEAT_MAX_WAITING = 4096;
/** Batches written at once (each holds one pool connection for one statement). */
export const HEARTBEAT_MAX_CONCURRENT_BATCHES = 2;
/** Longest a heartbeat waits for room in a full queue before it is answered 503 (retry). */
export const HEARTBEAT_ROOM_WAIT_MS = 5_000;

/** The bounds above; a test constructs a batcher with smaller ones (or provides HEARTBEAT_LIMITS). */
export interface HeartbeatLimits {
  readonly maxBatch: number;
  readonly maxWaiting: number;
  readonly roomWaitMs: number;
}
export const HEARTBEAT_LIMITS = Symbol('HEARTBEAT_LIMITS');
const DEFAULT_LIMITS: HeartbeatLimits = {
  maxBatch: HEARTBEAT_MAX_BATCH,
  maxWaiting: HEARTBEAT_MAX_WAITING,
  roomWaitMs: HEARTBEAT_ROOM_WAIT_MS,
};

interface Waiter {
  resolve(agent: Agent): void;
  reject(error: unknown): void;
}

/*
 * One statement writes a whole batch, so it commits (or fails) as a unit: the heartbeat rules of
 * contract §7.3 per row (blank: provisioning becomes online; a claimed status unless the engine
 * holds the agent in updating/deleting), then one activity row per updated agent. No agent occurs
 * twice in a batch (HeartbeatQueue), so the join is one-to-one.
 */
const WRITE_BATCH_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[]) AS input(id, status)
), locked AS (
  -- The batch's rows locked in id order first: two batches (or a batch and a multi-row delete)
  -- sharing rows then wait for each other instead of deadlocking on opposite plan orders.
  SELECT agent.id FROM agents AS agent
   WHERE agent.id = ANY($1::uuid[])
   ORDER BY agent.id
     FOR NO KEY UPDATE
), updated AS (
  UPDATE agents AS agent
     SET status = CASE
           WHEN agent.status IN ('updating', 'deleting') THEN agent.status
           WHEN input.status IS NOT NULL THEN input.status
           WHEN agent.status = 'provisioning' THEN 'online'
           ELSE agent.status
         END,
         last_seen_at = now(),
         updated_at = now()
    FROM input
   WHERE agent.id = input.id
     AND agent.id IN (SELECT locked.id FROM locked)
RETURNING agent.*
), logged AS (
  INSERT INTO activity_events (organization_id, event_type, message, agent_id, board_id)
  SELECT organization_id, 'agent.heartbeat', 'Heartbeat received from ' || name || '.', id, board_id
    FROM updated
)
SELECT * FROM updated`;

/**
 * Group commit for heartbeats: the heartbeats that arrive while earlier batches are being written
 * are written together by one `UPDATE … FROM unnest(…)` with a multi-row activity INSERT, in one
 * statement (one transaction), and each request is answered only after that commit, so a 200
 * still means "stored". A failed batch fails each of its heartbeats with the error the statement
 * raised (nothing of it was written). The only state is the batches waiting or in flight: any
 * number of instances may write heartbeats side by side.
 */
@Injectable()
export class HeartbeatBatcher implements BeforeApplicationShutdown {
  private readonly logger = new Logger(HeartbeatBatcher.name);
  private readonly queue: HeartbeatQueue<Waiter>;
  private readonly limits: HeartbeatLimits;
  /** Callers waiting for room, oldest first; each leaves at its deadline. */
  private readonly roomWaiters = new Set<() => void>();
  private readonly batchesInFlight = new Set<Promise<void>>();
  private readonly flushSoon = new CoalescedFlush(() => this.flush());

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Optional() @Inject(HEARTBEAT_LIMITS) limits?: Partial<HeartbeatLimits>,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.queue = new HeartbeatQueue<Waiter>(this.limits.maxBatch, this.limits.maxWaiting);
  }

  /**
   * Writes the heartbeat with the next batch; the agent row as updated by it. When the queue is
   * full (the database writes slower than heartbeats arrive) the caller waits for room, at most
   * `roomWaitMs`; then it is told to retry (503), so neither the waiting nor the waiters grow
   * without bound.
   */
  async record(agentId: string, status: string | null): Promise<Agent> {
    if (!this.queue.hasRoom()) await this.waitForRoom();
    const written = new Promise<Agent>((resolve, reject) =>
      this.queue.push({ agentId, status, waiter: { resolve, reject } }),
    );
    this.flushSoon.request();
    return written;
  }

  /**
   * Writes what is still queued before the pool closes: every beforeApplicationShutdown hook ends
   * before any onApplicationShutdown, where the TypeORM module closes the data source.
   */
  async beforeApplicationShutdown(): Promise<void> {
    while (this.queue.size > 0 || this.batchesInFlight.size > 0) {
      this.flush();
      await Promise.all([...this.batchesInFlight]);
    }
  }

  private flush(): void {
    while (this.batchesInFlight.size < HEARTBEAT_MAX_CONCURRENT_BATCHES) {
      const batch = this.queue.take();
      this.releaseRoomWaiters();
      if (batch.length === 0) return;
      const written: Promise<void> = this.write(batch).finally(() => {
        this.batchesInFlight.delete(written);
        this.queue.settle(batch);
        if (this.queue.size > 0) this.flushSoon.request();
      });
      this.batchesInFlight.add(written);
    }
  }

  private async waitForRoom(): Promise<void> {
    const deadline = Date.now() + this.limits.roomWaitMs;
    while (!this.queue.hasRoom()) {
      const remaining = deadline - Date.now();
      const gotRoom = await new Promise<boolean>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(
          () => {
            this.roomWaiters.delete(wake);
            resolve(false);
          },
          Math.max(0, remaining),
        );
        this.roomWaiters.add(wake);
      });
      if (!gotRoom) {
        throw new ServiceBusyError(
          `Too many heartbeats are waiting to be written (${this.limits.maxWaiting}); retry shortly.`,
        );
      }
    }
  }

  private releaseRoomWaiters(): void {
    for (const wake of this.roomWaiters) {
      if (!this.queue.hasRoom()) return;
      this.roomWaiters.delete(wake);
      wake();
    }
  }

  /** Never rejects: every outcome goes to the batch's waiters. */
  private async write(batch: QueuedHeartbeat<Waiter>[]): Promise<void> {
    let rows: Record<string, unknown>[];
    try {
      rows = await this.dataSource.query<Record<string, unknown>[]>(WRITE_BATCH_SQL, [
        batch.map((entry) => entry.agentId),
        batch.map((entry) => entry.status),
      ]);
    } catch (error) {
      this.logger.warn(`a batch of ${batch.length} heartbeats failed: ${String(error)}`);
      for (const entry of batch) entry.waiter.reject(error);
      return;
    }
    const byId = new Map(rows.map((row) => [row.id as string, row]));
    for (const entry of batch) {
      const row = byId.get(entry.agentId);
      if (row) entry.waiter.resolve(agentFromRow(this.dataSource, row));
      // Deleted since its token was checked: what the single-row write's reload threw.
      else entry.waiter.reject(new EntityNotFoundError(Agent, { id: entry.agentId }));
    }
  }
}
