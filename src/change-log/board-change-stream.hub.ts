import type { DataSource } from 'typeorm';
import { Board } from '../boards/entities/board.entity';
import type { AppConfig } from '../config/app-config';
import type { ChangeLogListener } from './change-log.listener';
import type { ChangeKind, ChangeRow } from './change-log.types';
import {
  ChangeStreamHub,
  hasBoardGrant,
  type StreamClient,
  type StreamEvent,
  type StreamGrant,
} from './change-stream.hub';

/** A client of one board's stream. */
export interface BoardStreamClient extends StreamClient {
  readonly boardId: string;
}

/** An event of one board. */
export interface BoardStreamEvent extends StreamEvent {
  readonly boardId: string;
}

/**
 * A stream of one board's changes (board memory, onboarding): opened by `@BoardAccess('read')`
 * and kept by the same rule, re-read for every batch; it ends when the board is deleted (the
 * board's logged deletion, migration BoardDeletionChangeLog; a board already gone at the start
 * ends it at once, and a reconnect is then 404). A concrete hub adds its own event filter in
 * {@link seesAlso}.
 */
export abstract class BoardChangeStreamHub<
  C extends BoardStreamClient,
  E extends BoardStreamEvent,
> extends ChangeStreamHub<C, E> {
  protected constructor(
    dataSource: DataSource,
    listener: ChangeLogListener,
    config: AppConfig,
    kind: ChangeKind,
    loggerName: string,
  ) {
    super(dataSource, listener, config, kind, loggerName);
  }

  protected override admits(grant: StreamGrant, client: C): boolean {
    // The stream is the board's: without read access (the rule its route checked when it
    // opened) there is nothing left to stream.
    return hasBoardGrant(grant, client.boardId);
  }

  protected override endsWith(client: C, row: ChangeRow): boolean {
    return row.kind === 'board' && row.op === 'delete' && row.entityId === client.boardId;
  }

  protected override stillExists(client: C): Promise<boolean> {
    return this.dataSource
      .getRepository(Board)
      .existsBy({ id: client.boardId, organizationId: client.organizationId });
  }

  protected canSee(grant: StreamGrant, client: C, event: E): boolean {
    return (
      event.organizationId === client.organizationId &&
      event.boardId === client.boardId &&
      hasBoardGrant(grant, event.boardId) &&
      this.seesAlso(client, event)
    );
  }

  /** A hub's own filter on top of the board rule (e.g. the memory stream's `?is_chat=`). */
  protected seesAlso(_client: C, _event: E): boolean {
    return true;
  }
}

/**
 * The log columns a board hub's catch-up selects beside its entity's (`change_id`, `txid`,
 * `change_created_at`, and the entity's `id`, `organization_id`, `board_id`).
 */
export interface CatchUpLogColumns {
  change_id: string;
  txid: string;
  change_created_at: Date;
  id: string;
  organization_id: string;
  board_id: string;
}

/** The upsert change a catch-up row stands for (its event's id and position). */
export function catchUpChangeRow(raw: CatchUpLogColumns, kind: ChangeKind): ChangeRow {
  return {
    id: raw.change_id,
    txid: raw.txid,
    organizationId: raw.organization_id,
    boardId: raw.board_id,
    kind,
    entityId: raw.id,
    op: 'upsert',
    createdAt: raw.change_created_at,
  };
}
