import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In } from 'typeorm';
import { ChangeLogListener } from '../../change-log/change-log.listener';
import { latestRowsPerEntity } from '../../change-log/change-log.reader';
import type { ChangePosition, ChangeRow } from '../../change-log/change-log.types';
import {
  ChangeStreamHub,
  mayReadBoard,
  type CatchUp,
  type CatchUpRange,
  type StreamClient,
  type StreamEvent,
  type StreamGrant,
} from '../../change-log/change-stream.hub';
import { Board } from '../../boards/entities/board.entity';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { toAgentRead } from '../dto/agent.dto';
import { Agent } from '../entities/agent.entity';

export interface AgentStreamClient extends StreamClient {
  /** Only this board's agents (`?board_id=`), else every agent the caller may read. */
  readonly boardId: string | null;
}

/** `agent` (`{"agent": AgentRead}`) or `agent_deleted` (`{"agent_id": …}`). */
interface AgentEvent extends StreamEvent {
  readonly name: 'agent' | 'agent_deleted';
}

/**
 * The live agent stream of one instance (see ChangeStreamHub for the mechanism): a batch's
 * changed agents are loaded in one query; a resuming client gets the latest change of every
 * agent changed since its resume point (bounded by the organization's agents), and one whose
 * resume point the log no longer holds gets the current state of every agent it may read.
 * Database work per batch is independent of the number of clients (test: agent-stream.e2e-spec,
 * 1 vs 50 clients).
 */
@Injectable()
export class AgentStreamHub extends ChangeStreamHub<AgentStreamClient, AgentEvent> {
  constructor(
    @InjectDataSource() dataSource: DataSource,
    listener: ChangeLogListener,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    super(dataSource, listener, config, 'agent', 'AgentStream');
  }

  /** A `?board_id=` stream ends with its board (kind `board`, logged by BoardDeletionChangeLog). */
  protected override endsWith(client: AgentStreamClient, row: ChangeRow): boolean {
    return (
      client.boardId !== null &&
      row.kind === 'board' &&
      row.op === 'delete' &&
      row.entityId === client.boardId
    );
  }

  /** A board deleted between the route's check and the start (its deletion is behind us). */
  protected override stillExists(client: AgentStreamClient): Promise<boolean> {
    if (client.boardId === null) return Promise.resolve(true);
    return this.dataSource
      .getRepository(Board)
      .existsBy({ id: client.boardId, organizationId: client.organizationId });
  }

  protected async catchUp(
    client: AgentStreamClient,
    range: CatchUpRange,
  ): Promise<CatchUp<AgentEvent>> {
    const rows = await latestRowsPerEntity(this.dataSource, 'agent', client.organizationId, range);
    return { events: await this.buildEvents(rows), complete: true };
  }

  /**
   * The current state of every agent the client may read. Only the last event carries an id
   * (the cursor): a client cut off mid-snapshot still holds its old id and gets the snapshot
   * again, one that saw it all resumes after the cursor.
   */
  protected override async sendSnapshot(
    client: AgentStreamClient,
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

  protected canSee(grant: StreamGrant, client: AgentStreamClient, event: AgentEvent): boolean {
    return canSee(grant, client, event.organizationId, event.boardId);
  }

  /** One query for the agents of the batch; an upsert of an agent gone since is skipped. */
  protected async buildEvents(rows: readonly ChangeRow[]): Promise<AgentEvent[]> {
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
}

/**
 * May the client see an agent of this organization and board? Boards the caller can read
 * (owners/admins and all-boards members: every board; others: their grants); a gateway main
 * agent (no board) only for owners/admins; `?board_id=` narrows to that board.
 */
export function canSee(
  grant: StreamGrant,
  client: Pick<AgentStreamClient, 'organizationId' | 'boardId'>,
  organizationId: string,
  boardId: string | null,
): boolean {
  if (organizationId !== client.organizationId) return false;
  if (client.boardId !== null && boardId !== client.boardId) return false;
  if (boardId === null) return grant.isAdmin;
  return mayReadBoard(grant, boardId);
}
