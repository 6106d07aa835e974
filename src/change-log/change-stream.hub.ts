import { Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Response } from 'express';
import type { DataSource } from 'typeorm';
import { withDeadline } from '../common/async/deadline';
import { SseConnection } from '../common/http/sse-connection';
import { parseIsoDateTime } from '../common/validation/decorators';
import type { AppConfig } from '../config/app-config';
import { ADMIN_ROLES } from '../organizations/roles';
import type { ChangeLogListener } from './change-log.listener';
import { finalFrontier, findPosition, type SqlQueryable } from './change-log.reader';
import {
  comparePositions,
  latestPerEntity,
  type ChangeKind,
  type ChangePosition,
  type ChangeRow,
} from './change-log.types';

/*
 * The machinery every live stream over the change log shares (GET /agents/stream, GET
 * /boards/{id}/memory/stream). A concrete hub says which kind of change it streams, how a
 * batch of rows becomes events (one query), what a client catches up with when it resumes,
 * and who may see an event; this base does the rest: the subscription to the instance's one
 * ChangeLogListener, the start between batches (lossless resume), the per-batch re-read of
 * access (one query for all clients), the bounded per-client buffer, and the bounded reads.
 */

/** What a caller may read in one organization, re-read once per batch (see {@link loadGrants}). */
export interface StreamGrant {
  readonly isAdmin: boolean;
  readonly allBoards: boolean;
  readonly boardIds: ReadonlySet<string>;
}

/** Where a new stream starts. */
export type StreamStart =
  | { kind: 'live'; at: ChangePosition | null }
  | { kind: 'after-id'; id: string }
  | { kind: 'since'; since: Date }
  | { kind: 'snapshot' };

/** One connected client of a stream; concrete hubs add their filters. */
export interface StreamClient {
  readonly userId: string;
  readonly organizationId: string;
  readonly connection: SseConnection;
  /** Rows at or before this position were sent (or deliberately skipped) already. */
  position: ChangePosition | null;
}

/** What identifies a client when it opens: everything but its connection and position. */
export type StreamClientFields<C extends StreamClient> = Omit<C, 'connection' | 'position'>;

/** One event as fanned out: serialised once, shared by every client that may see it. */
export interface StreamEvent {
  /** The change it comes from: its id is the event's `id:`. */
  readonly row: ChangeRow;
  readonly organizationId: string;
  readonly boardId: string | null;
  readonly name: string;
  readonly data: string;
}

/** The catch-up window of a starting client: (after | created since, upTo]. */
export interface CatchUpRange {
  readonly after?: ChangePosition;
  readonly createdSince?: Date;
  readonly upTo: ChangePosition;
}

/** A catch-up's events; `complete` false: more follow (the client is closed and resumes by id). */
export interface CatchUp<E extends StreamEvent> {
  readonly events: E[];
  readonly complete: boolean;
}

/**
 * Why a client was closed (tests and logs). `partial`: its catch-up was cut at the bound;
 * `gone`: what it streams was deleted (see {@link ChangeStreamHub.endsWith}).
 */
export type CloseReason = 'behind' | 'membership' | 'error' | 'partial' | 'gone';

/** A batch's events, the clients of their organizations, and those clients' grants. */
interface PreparedBatch<C, E> {
  readonly events: E[];
  readonly audience: C[];
  readonly grants: Record<string, StreamGrant>;
}

const EVENT_ID = /^\d{1,18}$/;

/**
 * `Last-Event-ID` (a change id) wins; one that is not an id we issued gets a snapshot (the
 * client holds state we cannot place). Else `since` (ISO, as upstream; invalid means now).
 */
export function streamStart(
  lastEventId: string | undefined,
  since: string | undefined,
): StreamStart {
  const id = lastEventId?.trim();
  if (id) return EVENT_ID.test(id) ? { kind: 'after-id', id } : { kind: 'snapshot' };
  const sinceDate = since ? parseIsoDateTime(since) : null;
  return sinceDate ? { kind: 'since', since: sinceDate } : { kind: 'live', at: null };
}

/** May a grant read this board (owners/admins and all-boards members: every board)? */
export function mayReadBoard(grant: StreamGrant, boardId: string): boolean {
  return grant.isAdmin || hasBoardGrant(grant, boardId);
}

/**
 * The board routes' own rule (`@BoardAccess('read')`, upstream require_board_access): the
 * all-boards flags or a grant for the board; the admin role alone does not open a board.
 */
export function hasBoardGrant(grant: StreamGrant, boardId: string): boolean {
  return grant.allBoards || grant.boardIds.has(boardId);
}

/**
 * The live stream of one kind of change on one instance. Per batch of new rows from the
 * listener: collapses the batch to the latest change per entity, builds the events once (the
 * concrete hub's one query), re-reads the grants of the distinct (user, organization) pairs of
 * the connected clients once (one query, whatever the number of clients), then writes each
 * event, serialised once, to every client allowed to see it. Database work per batch is thus
 * independent of the number of clients. Access is re-checked for every batch, so a revoked
 * grant or membership takes effect with the next event; nothing about access is cached between
 * batches.
 */
export abstract class ChangeStreamHub<C extends StreamClient, E extends StreamEvent>
  implements OnModuleInit, OnModuleDestroy
{
  protected readonly logger: Logger;
  private readonly clients = new Set<C>();
  private unsubscribe: (() => void) | null = null;
  /** Set by {@link drain}: the instance is shutting down, a stream starting now ends at once. */
  private draining = false;
  /** Observability (and tests): clients closed, by reason. */
  readonly closed: Record<CloseReason, number> = {
    behind: 0,
    membership: 0,
    error: 0,
    partial: 0,
    gone: 0,
  };

  protected constructor(
    protected readonly dataSource: DataSource,
    private readonly listener: ChangeLogListener,
    protected readonly config: AppConfig,
    /** The change-log kind this hub streams. */
    private readonly kind: ChangeKind,
    loggerName: string,
  ) {
    this.logger = new Logger(loggerName);
  }

  /** Events for the batch's rows of this hub's kind (collapsed, in log order): one query. */
  protected abstract buildEvents(rows: readonly ChangeRow[]): Promise<E[]>;

  /** The events a client starting at `range` missed, in log order (bounded). */
  protected abstract catchUp(client: C, range: CatchUpRange): Promise<CatchUp<E>>;

  /** May the client see the event? */
  protected abstract canSee(grant: StreamGrant, client: C, event: E): boolean;

  /**
   * The current state the client may read, for a resume point the log no longer holds. The
   * last event carries `cursor`'s id. Without it a hub answers such a client with everything
   * the log still holds (a catch-up from the retention start).
   */
  protected sendSnapshot?(
    client: C,
    grant: StreamGrant,
    cursor: ChangePosition | null,
  ): Promise<void>;

  /** Whether the client may keep its stream at all (false: it is closed). */
  protected admits(_grant: StreamGrant, _client: C): boolean {
    return true;
  }

  /**
   * Does this deletion end the client's stream (what it streams was deleted)? Asked for every
   * deletion row of every batch, whatever its kind; such a client is closed (`gone`).
   */
  protected endsWith(_client: C, _row: ChangeRow): boolean {
    return false;
  }

  /**
   * Does what the client streams still exist when it starts? A deletion logged at or before
   * the listener's cursor is not in any batch the client will see: this check covers it.
   */
  protected stillExists(_client: C): Promise<boolean> {
    return Promise.resolve(true);
  }

  onModuleInit(): void {
    this.unsubscribe = this.listener.subscribe((rows) => this.onBatch(rows));
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    this.drain();
  }

  /**
   * Ends every stream of this hub with a reconnect hint (`retry:`, SHUTDOWN_STREAM_RETRY_MS) and
   * every stream that starts from now on as soon as its headers are out: the instance is going
   * away (graceful shutdown, src/shutdown.ts). Clients resume with their Last-Event-ID wherever
   * they reconnect; nothing is lost.
   */
  drain(): void {
    this.draining = true;
    for (const client of this.clients) this.drainConnection(client.connection);
    this.clients.clear();
  }

  private drainConnection(connection: SseConnection): void {
    connection.drain(this.config.shutdown.streamRetryMs, 'server shutting down, reconnect');
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * The database's frontier now: where a live stream opened by this request starts. Read
   * before the response starts, so every change committed after the client saw the stream
   * open comes after it, however far this instance has read.
   */
  frontier(): Promise<ChangePosition | null> {
    return finalFrontier(this.dataSource);
  }

  /**
   * Answers the request with the stream: sends the headers, starts the client, and ends the
   * response when the start fails (the client reconnects with its id). Never rejects.
   */
  async serve(res: Response, fields: StreamClientFields<C>, start: StreamStart): Promise<void> {
    const from: StreamStart =
      start.kind === 'live' ? { kind: 'live', at: await this.frontier() } : start;
    const connection = new SseConnection(res);
    connection.open(this.config.stream.keepAliveMs);
    if (this.draining) {
      this.drainConnection(connection);
      return;
    }
    // The response's close: the client went away (or we ended it).
    res.on('close', () => this.remove(connection));
    try {
      await this.open({ ...fields, connection, position: null } as unknown as C, from);
    } catch (error) {
      // The headers are sent: the client sees the stream end and reconnects with its id.
      this.logger.warn(
        `stream start failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      this.remove(connection);
    }
    if (connection.closed) this.remove(connection);
  }

  /**
   * Starts a stream: sends what the client missed (or a snapshot), then registers it for live
   * batches. Runs between batches (ChangeLogListener.run) with the listener's cursor: the
   * catch-up covers rows up to the cursor, live batches every row after it, so nothing falls
   * between them and nothing is sent twice.
   */
  async open(client: C, start: StreamStart): Promise<void> {
    // Bounded like a batch: a stalled catch-up must not hold the listener (and every stream of
    // the instance) behind it. On timeout the caller closes the connection, so whatever the
    // stalled start writes later is dropped, and it does not register a closed client.
    const timeoutMs = this.config.changeLog.readTimeoutMs;
    await this.listener.run((cursor) =>
      withDeadline(
        this.start(client, start, cursor),
        timeoutMs,
        () => new Error(`stream start reads took over ${timeoutMs} ms`),
      ),
    );
  }

  private async start(client: C, start: StreamStart, cursor: ChangePosition | null): Promise<void> {
    if (client.connection.closed) return;
    const grant = (await loadGrants(this.dataSource, [client]))[grantKey(client)];
    if (!grant || !this.admits(grant, client)) {
      this.close(client, 'membership');
      return;
    }
    if (!(await this.stillExists(client))) {
      this.close(client, 'gone');
      return;
    }
    const resumeFrom = await this.resolveStart(start);
    if (resumeFrom === 'snapshot' && this.sendSnapshot) {
      // Rows up to the frontier are in the snapshot's state; later ones come live.
      const startAt = maxPosition(await finalFrontier(this.dataSource), cursor);
      client.position = startAt;
      await this.sendSnapshot(client, grant, startAt);
    } else {
      // Catch-up: what changed in (resume point, upTo]. Without a snapshot, a resume point the
      // log no longer holds catches up from the retention start, up to the frontier.
      const range = resumeFrom === 'snapshot' ? {} : resumeFrom;
      const upTo =
        resumeFrom === 'snapshot'
          ? maxPosition(await finalFrontier(this.dataSource), cursor)
          : cursor;
      client.position = range.after ?? null;
      if (upTo && comparePositions(range.after ?? null, upTo) < 0) {
        const caught = await this.catchUp(client, { ...range, upTo });
        for (const event of caught.events) this.deliver(client, grant, event);
        if (!caught.complete) {
          // Bounded: the client gets the rest when it resumes from the last id it received.
          this.close(client, 'partial');
          return;
        }
      }
      // Past upTo, unless the client's resume point is ahead of this instance (it resumed
      // from another instance that has read further): those rows are not sent twice.
      if (comparePositions(client.position, upTo) < 0) client.position = upTo;
    }
    if (client.connection.closed) return;
    if (this.draining) {
      // Shutdown began while this stream was starting: what it caught up with is sent.
      this.drainConnection(client.connection);
      return;
    }
    this.clients.add(client);
  }

  remove(connection: SseConnection): void {
    for (const client of this.clients) {
      if (client.connection === connection) this.clients.delete(client);
    }
    connection.close();
  }

  private async resolveStart(
    start: StreamStart,
  ): Promise<'snapshot' | { after?: ChangePosition; createdSince?: Date }> {
    switch (start.kind) {
      case 'live':
        // From the frontier read when the request arrived (null: the log was empty then).
        return start.at ? { after: start.at } : {};
      case 'snapshot':
        return 'snapshot';
      case 'after-id': {
        const after = await findPosition(this.dataSource, start.id);
        return after ? { after } : 'snapshot';
      }
      case 'since': {
        // Older than the retention window: the log may have lost changes since then, so a hub
        // with a snapshot sends the current state. One without catches up with what the log
        // still holds, still only what was created since then (rows past the window wait for
        // the next prune: they can be older than `since`).
        const retentionStart = Date.now() - this.config.changeLog.retentionSeconds * 1000;
        return start.since.getTime() < retentionStart && this.sendSnapshot
          ? 'snapshot'
          : { createdSince: start.since };
      }
    }
  }

  private async onBatch(rows: readonly ChangeRow[]): Promise<void> {
    if (this.clients.size === 0) return;
    // The clients this batch is for: a client opened while it loads starts after it (its
    // catch-up ran at the listener's cursor), so it is neither written to nor moved on. A
    // client whose subject the batch deletes ends here (nothing later can be for it).
    const deletions = rows.filter((row) => row.op === 'delete');
    const clients = [...this.clients].filter((client) => {
      if (!deletions.some((row) => this.endsWith(client, row))) return true;
      this.close(client, 'gone');
      return false;
    });
    if (clients.length === 0) return;
    const organizations = new Set(clients.map((client) => client.organizationId));
    const relevant = rows.filter(
      (row) => row.kind === this.kind && organizations.has(row.organizationId),
    );
    const last = rows[rows.length - 1];
    if (relevant.length > 0) {
      const relevantOrgs = new Set(relevant.map((row) => row.organizationId));
      let batch: PreparedBatch<C, E>;
      try {
        // Bounded: a read that stalls (a lock, a dead connection; the pool has no statement
        // timeout) would otherwise hold the listener, and with it every stream of the instance.
        batch = await withDeadline(
          this.prepareBatch(relevant, clients),
          this.config.changeLog.readTimeoutMs,
          () => new Error(`reads took over ${this.config.changeLog.readTimeoutMs} ms`),
        );
      } catch (error) {
        // The listener moves on past these rows: a client left open would never get them.
        // Closed, it reconnects with its Last-Event-ID and catches up. A stalled read that
        // finishes later writes nothing: only the code after this await writes.
        this.logger.warn(
          `stream batch failed, closing its clients: ${error instanceof Error ? error.message : String(error)}`,
        );
        for (const client of clients) {
          if (relevantOrgs.has(client.organizationId)) this.close(client, 'error');
        }
        return;
      }
      const { events, audience, grants } = batch;
      for (const client of audience) {
        if (client.connection.closed) {
          this.clients.delete(client);
          continue;
        }
        // Checked before writing this batch: a client still holding more than the bound from
        // earlier batches stopped reading. Memory per client stays under the bound plus one
        // batch (at most the listener's batch of rows).
        if (client.connection.pending > this.config.stream.maxPendingEvents) {
          this.close(client, 'behind');
          continue;
        }
        const grant = grants[grantKey(client)];
        if (!grant || !this.admits(grant, client)) {
          this.close(client, 'membership');
          continue;
        }
        for (const event of events) this.deliver(client, grant, event);
      }
    }
    for (const client of clients) {
      if (comparePositions(client.position, last) < 0) {
        client.position = { txid: last.txid, id: last.id };
      }
    }
  }

  /** The batch's database work: its events (one query), then the grants of its audience. */
  private async prepareBatch(
    relevant: readonly ChangeRow[],
    clients: readonly C[],
  ): Promise<PreparedBatch<C, E>> {
    const events = await this.buildEvents(latestPerEntity(relevant));
    const eventOrgs = new Set(events.map((event) => event.organizationId));
    const audience = clients.filter((client) => eventOrgs.has(client.organizationId));
    const grants = audience.length > 0 ? await loadGrants(this.dataSource, audience) : {};
    return { events, audience, grants };
  }

  private deliver(client: C, grant: StreamGrant, event: E): void {
    if (comparePositions(event.row, client.position) <= 0) return;
    client.position = { txid: event.row.txid, id: event.row.id };
    if (!this.canSee(grant, client, event)) return;
    client.connection.event(event.name, event.data, event.row.id);
  }

  private close(client: C, reason: CloseReason): void {
    this.closed[reason]++;
    this.clients.delete(client);
    // A client that fell behind is dropped at once; the others get what was written first.
    client.connection.close(reason === 'behind');
    if (reason !== 'membership') this.logger.debug(`stream closed: ${reason}`);
  }
}

function maxPosition(a: ChangePosition | null, b: ChangePosition | null): ChangePosition | null {
  return comparePositions(a, b) > 0 ? a : b;
}

function grantKey(client: Pick<StreamClient, 'userId' | 'organizationId'>): string {
  return `${client.userId}:${client.organizationId}`;
}

/**
 * The current grants of the clients' (user, organization) pairs, in one query. Bounded by
 * this instance's clients; keyed by user and organization. A missing key: no longer a member.
 */
export async function loadGrants(
  db: SqlQueryable,
  clients: readonly Pick<StreamClient, 'userId' | 'organizationId'>[],
): Promise<Record<string, StreamGrant>> {
  const users = [...new Set(clients.map((client) => client.userId))];
  const organizations = [...new Set(clients.map((client) => client.organizationId))];
  const rows = await db.query<
    {
      user_id: string;
      organization_id: string;
      role: string;
      all_boards: boolean;
      board_ids: string[];
    }[]
  >(
    `SELECT m.user_id, m.organization_id, m.role,
            (m.all_boards_read OR m.all_boards_write) AS all_boards,
            COALESCE(array_agg(a.board_id::text)
                       FILTER (WHERE a.board_id IS NOT NULL AND (a.can_read OR a.can_write)),
                     '{}') AS board_ids
       FROM organization_members m
       LEFT JOIN organization_board_access a ON a.organization_member_id = m.id
      WHERE m.user_id = ANY($1::uuid[]) AND m.organization_id = ANY($2::uuid[])
      GROUP BY m.id`,
    [users, organizations],
  );
  const grants: Record<string, StreamGrant> = {};
  for (const row of rows) {
    grants[grantKey({ userId: row.user_id, organizationId: row.organization_id })] = {
      isAdmin: ADMIN_ROLES.has(row.role),
      allBoards: row.all_boards,
      boardIds: new Set(row.board_ids),
    };
  }
  return grants;
}
