import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In } from 'typeorm';
import { ChangeLogListener } from '../../change-log/change-log.listener';
import type { ChangeRow } from '../../change-log/change-log.types';
import {
  BoardChangeStreamHub,
  catchUpChangeRow,
  type BoardStreamClient,
  type CatchUpLogColumns,
  type BoardStreamEvent,
} from '../../change-log/board-change-stream.hub';
import type { CatchUp, CatchUpRange } from '../../change-log/change-stream.hub';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { toBoardMemoryRead } from '../dto/board-memory-read.dto';
import { BoardMemory } from '../entities/board-memory.entity';

export interface BoardMemoryStreamClient extends BoardStreamClient {
  /** `?is_chat=`: only chat items (true), only the others (false), or all (null). */
  readonly isChat: boolean | null;
}

/** `event: memory` with `data: {"memory": BoardMemoryRead}`. */
interface MemoryEvent extends BoardStreamEvent {
  readonly isChat: boolean;
}

interface RawCatchUpRow extends CatchUpLogColumns {
  content: string;
  tags: string[] | null;
  is_chat: boolean;
  source: string | null;
  created_at: Date;
}

/**
 * Upstream leaves out items whose content is blank (older rows): so do the streams, by the
 * list's and the catch-up's own rule, `length(btrim(content)) > 0`: btrim drops spaces only (a
 * tab or a newline is content), so a live client and a resuming one get the same items.
 */
function hasContent(memory: Pick<BoardMemory, 'content'>): boolean {
  return memory.content.replace(/^ +| +$/g, '').length > 0;
}

/**
 * The live memory stream of one board (see ChangeStreamHub for the mechanism): each new item
 * is one event, its change id the event id. Per batch, the batch's new items are loaded in one
 * query. A resuming client gets exactly the items logged after its resume point (read from the
 * log joined to the items, so a deleted item is not sent); a resume point the log no longer
 * holds (pruned, or not an id we issued) gets every item the log still holds for the board, so
 * those since the retention start. A catch-up is bounded (STREAM_MAX_PENDING_EVENTS items):
 * past the bound the client gets the first ones and is closed, and resumes from the last id.
 * Deletions are logged but not streamed (upstream's stream has no deletion event). The stream
 * ends when its board is deleted (the board's logged deletion; a board already gone at the
 * start ends it at once); a reconnect is then answered 404.
 */
@Injectable()
export class BoardMemoryStreamHub extends BoardChangeStreamHub<
  BoardMemoryStreamClient,
  MemoryEvent
> {
  constructor(
    @InjectDataSource() dataSource: DataSource,
    listener: ChangeLogListener,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    super(dataSource, listener, config, 'board_memory', 'BoardMemoryStream');
  }

  protected override seesAlso(client: BoardMemoryStreamClient, event: MemoryEvent): boolean {
    return client.isChat === null || event.isChat === client.isChat;
  }

  /** One query for the batch's new items; an item deleted since is skipped. */
  protected async buildEvents(rows: readonly ChangeRow[]): Promise<MemoryEvent[]> {
    const added = rows.filter((row) => row.op === 'upsert');
    if (added.length === 0) return [];
    const items = await this.dataSource
      .getRepository(BoardMemory)
      .findBy({ id: In(added.map((row) => row.entityId)) });
    const byId = new Map(items.map((item) => [item.id, item]));
    const events: MemoryEvent[] = [];
    for (const row of added) {
      const item = byId.get(row.entityId);
      if (!item || item.organizationId !== row.organizationId || !hasContent(item)) continue;
      events.push(memoryEvent(row, item));
    }
    return events;
  }

  protected async catchUp(
    client: BoardMemoryStreamClient,
    range: CatchUpRange,
  ): Promise<CatchUp<MemoryEvent>> {
    const limit = this.config.stream.maxPendingEvents;
    const params: unknown[] = [
      client.organizationId,
      client.boardId,
      range.upTo.txid,
      range.upTo.id,
      limit + 1,
    ];
    const conditions: string[] = [];
    if (range.after) {
      params.push(range.after.txid, range.after.id);
      conditions.push(`(l.txid, l.id) > ($${params.length - 1}::xid8, $${params.length}::bigint)`);
    } else if (range.createdSince) {
      params.push(range.createdSince);
      conditions.push(`m.created_at >= $${params.length}`);
    }
    if (client.isChat !== null) {
      params.push(client.isChat);
      conditions.push(`m.is_chat = $${params.length}`);
    }
    const rows = await this.dataSource.query<RawCatchUpRow[]>(
      `SELECT l.id::text AS change_id, l.txid::text AS txid, l.created_at AS change_created_at,
              m.id, m.organization_id, m.board_id, m.content, m.tags, m.is_chat, m.source,
              m.created_at
         FROM change_log l
         JOIN board_memory m ON m.id = l.entity_id AND m.organization_id = l.organization_id
        WHERE l.kind = 'board_memory' AND l.op = 'upsert'
          AND l.organization_id = $1 AND l.board_id = $2 AND m.board_id = $2
          AND (l.txid, l.id) <= ($3::xid8, $4::bigint)
          AND length(btrim(m.content)) > 0
          ${conditions.map((condition) => `AND ${condition}`).join(' ')}
        ORDER BY l.txid, l.id
        LIMIT $5`,
      params,
    );
    const events = rows.slice(0, limit).map((raw) =>
      memoryEvent(catchUpChangeRow(raw, 'board_memory'), {
        id: raw.id,
        organizationId: raw.organization_id,
        boardId: raw.board_id,
        content: raw.content,
        tags: raw.tags,
        isChat: raw.is_chat,
        source: raw.source,
        createdAt: raw.created_at,
      }),
    );
    return { events, complete: rows.length <= limit };
  }
}

function memoryEvent(row: ChangeRow, item: BoardMemory): MemoryEvent {
  return {
    row,
    organizationId: item.organizationId,
    boardId: item.boardId,
    isChat: item.isChat,
    name: 'memory',
    data: JSON.stringify({ memory: toBoardMemoryRead(item) }),
  };
}
