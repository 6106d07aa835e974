import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { ChangeLogListener } from '../../change-log/change-log.listener';
import type { ChangePosition, ChangeRow } from '../../change-log/change-log.types';
import {
  BoardChangeStreamHub,
  catchUpChangeRow,
  type BoardStreamClient,
  type CatchUpLogColumns,
  type BoardStreamEvent,
} from '../../change-log/board-change-stream.hub';
import type { CatchUp, CatchUpRange, StreamGrant } from '../../change-log/change-stream.hub';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import type {
  BoardOnboardingSession,
  OnboardingMessage,
  OnboardingStatus,
} from '../entities/board-onboarding-session.entity';
import { onboardingEventData } from './onboarding-event';

export type OnboardingStreamClient = BoardStreamClient;

/** `event: onboarding` with `data: {"onboarding": BoardOnboardingRead}`. */
type OnboardingEvent = BoardStreamEvent;

/** A session row as SQL returns it (every reader here is one statement: see {@link NEWER}). */
interface RawSession {
  id: string;
  organization_id: string;
  board_id: string;
  session_key: string;
  status: OnboardingStatus;
  messages: OnboardingMessage[] | null;
  draft_goal: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
}

type RawCatchUpRow = RawSession & CatchUpLogColumns;

const SESSION_COLUMNS = `s.id, s.organization_id, s.board_id, s.session_key, s.status, s.messages,
  s.draft_goal, s.created_at, s.updated_at`;

/**
 * "The log holds a later change of this session than position ($txid, $id)". Every reader
 * loads a session's current state together with this test in one statement (one snapshot):
 * a session whose state already carries a change after the position the reader answers for
 * is left out there, and sent once with that later change (it comes live after the cursor),
 * so a client never gets the same state twice under two ids. Only the log's tail after the
 * position is scanned (index on (txid, id)).
 */
function newerChange(txidParam: string, idParam: string): string {
  return `EXISTS (SELECT 1 FROM change_log n
                   WHERE (n.txid, n.id) > (${txidParam}::xid8, ${idParam}::bigint)
                     AND n.kind = 'board_onboarding' AND n.entity_id = s.id)`;
}
/** The same with no position (a log without final rows, so a short one): any change. */
const ANY_CHANGE = `EXISTS (SELECT 1 FROM change_log n
                     WHERE n.kind = 'board_onboarding' AND n.entity_id = s.id)`;

/**
 * The live onboarding stream of one board (see ChangeStreamHub for the mechanism): every
 * change of one of the board's onboarding sessions (started, a question or an answer appended,
 * completed, confirmed) is one `onboarding` event carrying the session's current state, its
 * change id the event id. Per batch, the batch's changed sessions are loaded in one query;
 * several changes of one session in a batch are one event (the latest state).
 *
 * Resuming (`Last-Event-ID`, or `?since=` as the other streams) sends the current state of
 * every session of the board changed after the resume point, once, under its latest change
 * id, then live: nothing missed, nothing twice. A resume point the log no longer holds
 * (pruned, or not an id we issued), or a `since` older than the retained log, gets the current
 * state of the board's sessions (a snapshot, as the agent stream: a session changed before the
 * prune is not lost); only its last event carries an id. Catch-ups and snapshots are bounded
 * (STREAM_MAX_PENDING_EVENTS sessions): a cut catch-up ends the stream and the client resumes
 * from the last id; a snapshot holds the board's most recently updated sessions.
 *
 * Deleting a session is not an event (as the memory stream: sessions are only deleted with
 * their board). The stream ends when its board is deleted (the board's logged deletion; a
 * board already gone at the start ends it at once; a reconnect is then 404). Board read access
 * is re-read for every batch: revoked, the stream ends.
 */
@Injectable()
export class OnboardingStreamHub extends BoardChangeStreamHub<
  OnboardingStreamClient,
  OnboardingEvent
> {
  constructor(
    @InjectDataSource() dataSource: DataSource,
    listener: ChangeLogListener,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    super(dataSource, listener, config, 'board_onboarding', 'OnboardingStream');
  }

  /**
   * One query for the batch's changed sessions (the rows are collapsed: one per session). A
   * session deleted since is skipped, and so is one whose state already carries a later change
   * (it is sent with that change).
   */
  protected async buildEvents(rows: readonly ChangeRow[]): Promise<OnboardingEvent[]> {
    const changed = rows.filter((row) => row.op === 'upsert');
    if (changed.length === 0) return [];
    // Rows of a batch are a contiguous stretch of the log, collapsed per session: no row of a
    // session lies between its row here and the last one, so "later than the last" is "later
    // than its own".
    const last = changed[changed.length - 1];
    const sessions = await this.dataSource.query<RawSession[]>(
      `SELECT ${SESSION_COLUMNS}
         FROM board_onboarding_sessions s
        WHERE s.id = ANY($1::uuid[]) AND NOT ${newerChange('$2', '$3')}`,
      [changed.map((row) => row.entityId), last.txid, last.id],
    );
    const byId = new Map(sessions.map((raw) => [raw.id, toSession(raw)]));
    const events: OnboardingEvent[] = [];
    for (const row of changed) {
      const session = byId.get(row.entityId);
      if (!session || session.organizationId !== row.organizationId) continue;
      events.push(onboardingEvent(row, session));
    }
    return events;
  }

  /**
   * The latest change of every session of the board in the range, with the session's current
   * state, in log order; bounded (one more row read tells whether the catch-up is complete).
   */
  protected async catchUp(
    client: OnboardingStreamClient,
    range: CatchUpRange,
  ): Promise<CatchUp<OnboardingEvent>> {
    const limit = this.config.stream.maxPendingEvents;
    const params: unknown[] = [
      client.organizationId,
      client.boardId,
      range.upTo.txid,
      range.upTo.id,
      limit + 1,
    ];
    let lower = '';
    if (range.after) {
      params.push(range.after.txid, range.after.id);
      lower = `AND (l.txid, l.id) > ($6::xid8, $7::bigint)`;
    } else if (range.createdSince) {
      params.push(range.createdSince);
      lower = `AND l.created_at >= $6`;
    }
    const rows = await this.dataSource.query<RawCatchUpRow[]>(
      `SELECT latest.id::text AS change_id, latest.txid::text AS txid,
              latest.created_at AS change_created_at, ${SESSION_COLUMNS}
         FROM (SELECT DISTINCT ON (l.entity_id) l.entity_id, l.id, l.txid, l.created_at
                 FROM change_log l
                WHERE l.kind = 'board_onboarding' AND l.op = 'upsert'
                  AND l.organization_id = $1 AND l.board_id = $2
                  AND (l.txid, l.id) <= ($3::xid8, $4::bigint) ${lower}
                ORDER BY l.entity_id, l.txid DESC, l.id DESC) latest
         JOIN board_onboarding_sessions s
           ON s.id = latest.entity_id AND s.organization_id = $1 AND s.board_id = $2
        WHERE NOT ${newerChange('$3', '$4')}
        ORDER BY latest.txid, latest.id
        LIMIT $5`,
      params,
    );
    const events = rows
      .slice(0, limit)
      .map((raw) => onboardingEvent(catchUpChangeRow(raw, 'board_onboarding'), toSession(raw)));
    return { events, complete: rows.length <= limit };
  }

  /**
   * The current state of the board's sessions (the most recently updated, bounded), oldest
   * first. Only the last event carries an id (the cursor): a client cut off mid-snapshot still
   * holds its old id and gets the snapshot again; one that saw it all resumes after the cursor.
   * A session changed after the cursor comes live instead (see {@link newerChange}).
   */
  protected override async sendSnapshot(
    client: OnboardingStreamClient,
    _grant: StreamGrant,
    cursor: ChangePosition | null,
  ): Promise<void> {
    const params: unknown[] = [
      client.organizationId,
      client.boardId,
      this.config.stream.maxPendingEvents,
    ];
    if (cursor) params.push(cursor.txid, cursor.id);
    const rows = await this.dataSource.query<RawSession[]>(
      `SELECT ${SESSION_COLUMNS}
         FROM board_onboarding_sessions s
        WHERE s.organization_id = $1 AND s.board_id = $2
          AND NOT ${cursor ? newerChange('$4', '$5') : ANY_CHANGE}
        ORDER BY s.updated_at DESC, s.id DESC
        LIMIT $3`,
      params,
    );
    const sessions = rows.reverse();
    sessions.forEach((raw, index) => {
      const last = index === sessions.length - 1;
      client.connection.event(
        'onboarding',
        onboardingEventData(toSession(raw)),
        last && cursor ? cursor.id : undefined,
      );
    });
  }
}

function toSession(raw: RawSession): BoardOnboardingSession {
  return {
    id: raw.id,
    organizationId: raw.organization_id,
    boardId: raw.board_id,
    sessionKey: raw.session_key,
    status: raw.status,
    messages: raw.messages,
    draftGoal: raw.draft_goal,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
  };
}

function onboardingEvent(row: ChangeRow, session: BoardOnboardingSession): OnboardingEvent {
  return {
    row,
    organizationId: session.organizationId,
    boardId: session.boardId,
    name: 'onboarding',
    data: onboardingEventData(session),
  };
}
