import {
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In } from 'typeorm';
import { withDeadline } from '../../common/async/deadline';
import { ChangeLogListener } from '../../change-log/change-log.listener';
import {
  finalFrontier,
  findPosition,
  latestRowsPerEntity,
  type SqlQueryable,
} from '../../change-log/change-log.reader';
import {
  comparePositions,
  latestPerEntity,
  type ChangePosition,
  type ChangeRow,
} from '../../change-log/change-log.types';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { ADMIN_ROLES } from '../../organizations/roles';
import { toAgentRead } from '../dto/agent.dto';
import { Agent } from '../entities/agent.entity';
import { SseConnection } from '../../common/http/sse-connection';

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

export interface StreamClient {
  readonly userId: string;
  readonly organizationId: string;
  /** Only this board's agents (`?board_id=`), else every agent the caller may read. */
  readonly boardId: string | null;
  readonly connection: SseConnection;
  /** Rows at or before this position were sent (or deliberately skipped) already. */
  position: ChangePosition | null;
}

/** One event as fanned out: serialised once, shared by every client that may see it. */
interface AgentEvent {
  readonly row: ChangeRow;
  readonly organizationId: string;
  readonly boardId: string | null;
  readonly name: 'agent' | 'agent_deleted';
  readonly data: string;
}

/** A batch's events, the clients of their organizations, and those clients' grants. */
interface PreparedBatch {
  readonly events: AgentEvent[];
  readonly audience: StreamClient[];
  readonly grants: Record<string, StreamGrant>;
}

/** Why a client was closed (tests and logs). */
export type CloseReason = 'behind' | 'membership' | 'error';

/**
 * The live agent stream of one instance. It subscribes to the change log listener (one per
 * instance) and, per batch of new rows: collapses the batch to the latest change per agent,
 * loads those agents once, re-reads the grants of the distinct (user, organization) pairs of
 * its connected clients once (one query, whatever the number of clients), then writes each
 * event, serialised once, to every client allowed to see it. Database work per batch is thus
 * the listener's read and re-check plus these two queries, independent of the number of
 * clients (test: agent-stream.e2e-spec, 1 vs 50 clients). Access is re-checked for every batch,
 * so a revoked grant or membership takes effect with the next event; nothing about access is
 * cached between batches.
 */
@Injectable()
export class AgentStreamHub implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('AgentStream');
  private readonly clients = new Set<StreamClient>();
  private unsubscribe: (() => void) | null = null;
  /** Observability (and tests): clients closed, by reason. */
  readonly closed: Record<CloseReason, number> = { behind: 0, membership: 0, error: 0 };

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly listener: ChangeLogListener,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.unsubscribe = this.listener.subscribe((rows) => this.onBatch(rows));
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    for (const client of this.clients) client.connection.close();
    this.clients.clear();
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
   * Starts a stream: sends what the client missed (or a snapshot), then registers it for live
   * batches. Runs between batches (ChangeLogListener.run) with the listener's cursor: the
   * catch-up covers rows up to the cursor, live batches every row after it, so nothing falls
   * between them and nothing is sent twice.
   */
  async open(client: Omit<StreamClient, 'position'>, start: StreamStart): Promise<void> {
    const streamClient: StreamClient = { ...client, position: null };
    // Bounded like a batch: a stalled catch-up must not hold the listener (and every stream of
    // the instance) behind it. On timeout the caller closes the connection, so whatever the
    // stalled start writes later is dropped, and it does not register a closed client.
    const timeoutMs = this.config.changeLog.readTimeoutMs;
    await this.listener.run((cursor) =>
      withDeadline(
        this.start(streamClient, start, cursor),
        timeoutMs,
        () => new Error(`stream start reads took over ${timeoutMs} ms`),
      ),
    );
  }

  private async start(
    streamClient: StreamClient,
    start: StreamStart,
    cursor: ChangePosition | null,
  ): Promise<void> {
    if (streamClient.connection.closed) return;
    const grant = (await this.loadGrants([streamClient]))[grantKey(streamClient)];
    if (!grant) {
      this.close(streamClient, 'membership');
      return;
    }
    const resumeFrom = await this.resolveStart(start);
    if (resumeFrom === 'snapshot') {
      // Rows up to the frontier are in the snapshot's state; later ones come live.
      const frontier = await finalFrontier(this.dataSource);
      const startAt = comparePositions(frontier, cursor) > 0 ? frontier : cursor;
      streamClient.position = startAt;
      await this.sendSnapshot(streamClient, grant, startAt);
    } else {
      // Catch-up: the latest change of every agent changed in (resume point, cursor].
      streamClient.position = resumeFrom.after ?? null;
      if (cursor && comparePositions(resumeFrom.after ?? null, cursor) < 0) {
        const rows = await latestRowsPerEntity(
          this.dataSource,
          'agent',
          streamClient.organizationId,
          {
            ...resumeFrom,
            upTo: cursor,
          },
        );
        for (const event of await this.buildEvents(rows)) {
          this.deliver(streamClient, grant, event);
        }
      }
      // Past the cursor, unless the client's resume point is ahead of this instance (it
      // resumed from another instance that has read further): those rows are not sent twice.
      if (comparePositions(streamClient.position, cursor) < 0) streamClient.position = cursor;
    }
    if (streamClient.connection.closed) return;
    this.clients.add(streamClient);
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
        const retentionStart = Date.now() - this.config.changeLog.retentionSeconds * 1000;
        return start.since.getTime() < retentionStart ? 'snapshot' : { createdSince: start.since };
      }
    }
  }

  /**
   * The current state of every agent the client may read. Only the last event carries an id
   * (the cursor): a client cut off mid-snapshot still holds its old id and gets the snapshot
   * again, one that saw it all resumes after the cursor.
   */
  private async sendSnapshot(
    client: StreamClient,
    grant: StreamGrant,
    cursor: ChangePosition | null,
  ): Promise<void> {
    const agents = await this.dataSource.getRepository(Agent).find({
      where: {
        organizationId: client.organizationId,
        ...(client.boardId ? { boardId: client.boardId } : {}),
      },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
    const now = new Date();
    const visible = agents.filter((agent) =>
      canSee(grant, client, agent.organizationId, agent.boardId),
    );
    visible.forEach((agent, index) => {
      const last = index === visible.length - 1;
      client.connection.event(
        'agent',
        JSON.stringify({ agent: toAgentRead(agent, now) }),
        last && cursor ? cursor.id : undefined,
      );
    });
  }

  private async onBatch(rows: readonly ChangeRow[]): Promise<void> {
    if (this.clients.size === 0) return;
    // The clients this batch is for: a client opened while it loads starts after it (its
    // catch-up ran at the listener's cursor), so it is neither written to nor moved on.
    const clients = [...this.clients];
    const organizations = new Set(clients.map((client) => client.organizationId));
    const relevant = rows.filter(
      (row) => row.kind === 'agent' && organizations.has(row.organizationId),
    );
    const last = rows[rows.length - 1];
    if (relevant.length > 0) {
      const relevantOrgs = new Set(relevant.map((row) => row.organizationId));
      let batch: PreparedBatch;
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
        // batch (at most BATCH_ROWS events).
        if (client.connection.pending > this.config.stream.maxPendingEvents) {
          this.close(client, 'behind');
          continue;
        }
        const grant = grants[grantKey(client)];
        if (!grant) {
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

  /** The batch's database work: its agents (one query), then the grants of its audience. */
  private async prepareBatch(
    relevant: readonly ChangeRow[],
    clients: readonly StreamClient[],
  ): Promise<PreparedBatch> {
    const events = await this.buildEvents(latestPerEntity(relevant));
    const eventOrgs = new Set(events.map((event) => event.organizationId));
    const audience = clients.filter((client) => eventOrgs.has(client.organizationId));
    const grants = audience.length > 0 ? await this.loadGrants(audience) : {};
    return { events, audience, grants };
  }

  private deliver(client: StreamClient, grant: StreamGrant, event: AgentEvent): void {
    if (comparePositions(event.row, client.position) <= 0) return;
    client.position = { txid: event.row.txid, id: event.row.id };
    if (!canSee(grant, client, event.organizationId, event.boardId)) return;
    client.connection.event(event.name, event.data, event.row.id);
  }

  /** One query for the agents of the batch; an upsert of an agent gone since is skipped. */
  private async buildEvents(rows: readonly ChangeRow[]): Promise<AgentEvent[]> {
    const upserted = rows.filter((row) => row.op === 'upsert').map((row) => row.entityId);
    const agents =
      upserted.length > 0
        ? await this.dataSource.getRepository(Agent).findBy({ id: In(upserted) })
        : [];
    const byId = new Map(agents.map((agent) => [agent.id, agent]));
    const now = new Date();
    const events: AgentEvent[] = [];
    for (const row of rows) {
      if (row.op === 'delete') {
        events.push({
          row,
          organizationId: row.organizationId,
          boardId: row.boardId,
          name: 'agent_deleted',
          data: JSON.stringify({ agent_id: row.entityId }),
        });
        continue;
      }
      const agent = byId.get(row.entityId);
      // Gone meanwhile: its delete row follows in the log.
      if (!agent || agent.organizationId !== row.organizationId) continue;
      events.push({
        row,
        organizationId: agent.organizationId,
        boardId: agent.boardId,
        name: 'agent',
        data: JSON.stringify({ agent: toAgentRead(agent, now) }),
      });
    }
    return events;
  }

  /**
   * The current grants of the clients' (user, organization) pairs, in one query. Bounded by
   * this instance's clients; keyed by {@link grantKey}. A missing key: no longer a member.
   */
  private async loadGrants(
    clients: readonly Pick<StreamClient, 'userId' | 'organizationId'>[],
  ): Promise<Record<string, StreamGrant>> {
    return loadGrants(this.dataSource, clients);
  }

  private close(client: StreamClient, reason: CloseReason): void {
    this.closed[reason]++;
    this.clients.delete(client);
    client.connection.close(reason === 'behind');
    if (reason !== 'membership') this.logger.debug(`stream closed: ${reason}`);
  }
}

function grantKey(client: Pick<StreamClient, 'userId' | 'organizationId'>): string {
  return `${client.userId}:${client.organizationId}`;
}

/**
 * May the client see an agent of this organization and board? Boards the caller can read
 * (owners/admins and all-boards members: every board; others: their grants); a gateway main
 * agent (no board) only for owners/admins; `?board_id=` narrows to that board.
 */
export function canSee(
  grant: StreamGrant,
  client: Pick<StreamClient, 'organizationId' | 'boardId'>,
  organizationId: string,
  boardId: string | null,
): boolean {
  if (organizationId !== client.organizationId) return false;
  if (client.boardId !== null && boardId !== client.boardId) return false;
  if (boardId === null) return grant.isAdmin;
  return grant.isAdmin || grant.allBoards || grant.boardIds.has(boardId);
}

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
