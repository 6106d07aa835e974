import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { withDeadline } from '../common/async/deadline';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { finalFrontier, hasRowsAfter, readFinalRowsAfter } from './change-log.reader';
import type { ChangePosition, ChangeRow } from './change-log.types';

/** The NOTIFY channel the log's trigger announces new rows on (see the ChangeLog migration). */
export const CHANGE_LOG_CHANNEL = 'mc_change_log';
/** Rows read per query; a drain reads until it has caught up. */
const BATCH_ROWS = 500;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;
/** Re-check cadence while committed rows wait for an older transaction (see change-log.reader). */
const WAITING_RECHECK_MIN_MS = 20;
const WAITING_RECHECK_MAX_MS = 1_000;
/** How long shutdown waits for a drain in flight. */
const SHUTDOWN_WAIT_MS = 2_000;

export type ChangeBatchHandler = (rows: readonly ChangeRow[]) => Promise<void>;

/**
 * One per app instance: holds ONE dedicated PostgreSQL connection that LISTENs on the change
 * log's channel and, per notification batch, reads the new final rows once (through the pool)
 * and hands them to its in-process subscribers (the agent stream hub fans them out to clients).
 * Database work per change is therefore independent of the number of connected clients.
 *
 * Work is serialised: drains and {@link run} tasks execute one at a time, so a task sees a
 * cursor that no batch moves under it (a stream client catches up to exactly `cursor`, then
 * receives every later batch). Notifications arriving during a drain coalesce into one more
 * drain. The connection reconnects with bounded, jittered backoff and then drains from its
 * cursor, so a lost connection loses nothing. Nothing here throws out of a callback.
 */
@Injectable()
export class ChangeLogListener implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('ChangeLog');
  private readonly handlers = new Set<ChangeBatchHandler>();
  private client: Client | null = null;
  private cursor: ChangePosition | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private drainQueued = false;
  private stopped = false;
  private reconnectAttempts = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private waitingTimer: NodeJS.Timeout | null = null;
  private waitingDelayMs = WAITING_RECHECK_MIN_MS;
  private pingTimer: NodeJS.Timeout | null = null;
  private pingInFlight = false;
  /** Observability (and tests): connections made, drains and batches delivered. */
  readonly stats = { connects: 0, drains: 0, batches: 0 };

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.cursor = await finalFrontier(this.dataSource);
    await this.connect().catch((error: unknown) => {
      this.logger.warn(`change log listener could not connect: ${describe(error)}`);
      this.scheduleReconnect();
    });
    this.pingTimer = setInterval(() => this.ping(), this.config.changeLog.listenerPingMs);
    this.pingTimer.unref();
  }

  /**
   * A connection that went silent without closing (a dead peer, a dropped NAT entry; TCP
   * keep-alive notices only after hours) raises no error and delivers no notifications: probe
   * it, and replace it when it does not answer in time (the new one drains from the cursor).
   */
  private ping(): void {
    const client = this.client;
    if (!client || this.pingInFlight || this.stopped) return;
    this.pingInFlight = true;
    const timeoutMs = this.config.changeLog.listenerPingMs;
    void withDeadline(
      client.query('SELECT 1'),
      timeoutMs,
      () => new Error(`no answer in ${timeoutMs} ms`),
    )
      .catch((error: unknown) => {
        if (this.stopped || this.client !== client) return;
        this.logger.warn(`change log listener connection is silent: ${describe(error)}`);
        this.dropConnection(client);
      })
      .finally(() => {
        this.pingInFlight = false;
      });
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.waitingTimer) clearTimeout(this.waitingTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    const client = this.client;
    this.client = null;
    if (client) await client.end().catch(() => undefined);
    // A drain in flight when the database went away can wait on the pool for good (seen when
    // the DataSource is destroyed first): shutdown waits for it only so long.
    await withDeadline(
      this.tail,
      SHUTDOWN_WAIT_MS,
      () => new Error('change log drain still running at shutdown'),
    ).catch(() => undefined);
  }

  /** Receives every batch of new rows, in log order, until the returned function is called. */
  subscribe(handler: ChangeBatchHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /**
   * Runs `task` between batches with the position of the last row delivered (null: none yet):
   * every row up to it has been handed to subscribers, every later row will be.
   */
  run<T>(task: (cursor: ChangePosition | null) => Promise<T>): Promise<T> {
    const result = this.tail.then(() => task(this.cursor));
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Reads and delivers whatever is new (also the catch-up after a reconnect). */
  requestDrain(): void {
    if (this.drainQueued || this.stopped) return;
    this.drainQueued = true;
    void this.run(async () => {
      this.drainQueued = false;
      await this.drain();
    }).catch((error: unknown) => {
      this.logger.warn(`change log drain failed: ${describe(error)}`);
      this.scheduleWaitingRecheck();
    });
  }

  private async drain(): Promise<void> {
    if (this.stopped) return;
    this.stats.drains++;
    for (;;) {
      const rows = await readFinalRowsAfter(this.dataSource, this.cursor, BATCH_ROWS);
      if (rows.length === 0) break;
      await this.deliver(rows);
      const last = rows[rows.length - 1];
      this.cursor = { txid: last.txid, id: last.id };
      if (rows.length < BATCH_ROWS) break;
    }
    if (await hasRowsAfter(this.dataSource, this.cursor)) {
      this.scheduleWaitingRecheck();
    } else {
      this.waitingDelayMs = WAITING_RECHECK_MIN_MS;
    }
  }

  private async deliver(rows: readonly ChangeRow[]): Promise<void> {
    this.stats.batches++;
    for (const handler of [...this.handlers]) {
      try {
        await handler(rows);
      } catch (error) {
        this.logger.error(`change log subscriber failed: ${describe(error)}`);
      }
    }
  }

  /**
   * Committed rows wait for an older transaction that may commit without writing to the log
   * (so without a notification): re-check with backoff until they are final.
   */
  private scheduleWaitingRecheck(): void {
    if (this.waitingTimer || this.stopped) return;
    const delay = this.waitingDelayMs;
    this.waitingDelayMs = Math.min(this.waitingDelayMs * 2, WAITING_RECHECK_MAX_MS);
    this.waitingTimer = setTimeout(() => {
      this.waitingTimer = null;
      this.requestDrain();
    }, delay);
    this.waitingTimer.unref();
  }

  private async connect(): Promise<void> {
    const client = new Client({
      connectionString: this.config.database.url,
      keepAlive: true,
      application_name: 'mission-control change-log listener',
    });
    // Registered before connecting: an error while connecting must not be unhandled.
    client.on('error', (error: Error) => {
      if (!this.stopped) {
        this.logger.warn(`change log listener connection failed: ${describe(error)}`);
      }
      this.dropConnection(client);
    });
    client.on('end', () => this.dropConnection(client));
    client.on('notification', () => this.requestDrain());
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_LOG_CHANNEL}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.reconnectAttempts = 0;
    this.stats.connects++;
    // Whatever was committed while no connection listened.
    this.requestDrain();
  }

  private dropConnection(client: Client): void {
    if (this.client !== client) return;
    this.client = null;
    client.removeAllListeners('notification');
    void client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const base = Math.min(RECONNECT_MIN_MS * 2 ** this.reconnectAttempts, RECONNECT_MAX_MS);
    this.reconnectAttempts++;
    const delay = base / 2 + Math.random() * (base / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect().catch((error: unknown) => {
        this.logger.warn(`change log listener reconnect failed: ${describe(error)}`);
        this.scheduleReconnect();
      });
    }, delay);
    this.reconnectTimer.unref();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
