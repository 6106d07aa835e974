import type { ChangeKind, ChangePosition, ChangeRow } from './change-log.types';

/** What the reader needs: `DataSource.query` or an EntityManager. */
export interface SqlQueryable {
  query<T = unknown>(sql: string, parameters?: unknown[]): Promise<T>;
}

/*
 * Commit-safe order. Row ids come from a sequence, and sequence values commit out of order: a
 * transaction that took id 5 may commit after one that took id 6, so a reader that advanced a
 * cursor to 6 would skip 5 for ever. Every row therefore records the id of the transaction that
 * wrote it (`txid`, xid8), and readers only read rows whose transaction is older than the
 * oldest transaction still running: `txid < pg_snapshot_xmin(pg_current_snapshot())`. Such a
 * transaction has ended, so those rows are final (visible if committed, never coming if rolled
 * back), and no transaction that is still running or starts later can have an id below that
 * bound. Reading in (txid, id) order with the cursor (txid, id) is thus lossless and
 * duplicate-free: whatever comes later sorts after the cursor. The price: a row waits until
 * every transaction older than its own has ended (milliseconds in this application, whose
 * transactions are short); the listener re-checks while rows wait (see ChangeLogListener).
 */
const FINAL = 'c.txid < pg_snapshot_xmin(pg_current_snapshot())';

/*
 * The position columns are read as text (xid8 and bigint exceed JavaScript's safe integers) under
 * their own names, so ORDER BY must name the table's columns (`c.txid`, `c.id`): a bare `txid`
 * there means the text output column, and as text '999' sorts after '1000'.
 */
const COLUMNS = `c.id::text AS id, c.txid::text AS txid, c.organization_id, c.board_id, c.kind,
  c.entity_id, c.op, c.created_at`;

interface RawChangeRow {
  id: string;
  txid: string;
  organization_id: string;
  board_id: string | null;
  kind: ChangeKind;
  entity_id: string;
  op: 'upsert' | 'delete';
  created_at: Date;
}

function toRow(raw: RawChangeRow): ChangeRow {
  return {
    id: raw.id,
    txid: raw.txid,
    organizationId: raw.organization_id,
    boardId: raw.board_id,
    kind: raw.kind,
    entityId: raw.entity_id,
    op: raw.op,
    createdAt: raw.created_at,
  };
}

/** Final rows after `after` (all final rows when null), in log order, at most `limit`. */
export async function readFinalRowsAfter(
  db: SqlQueryable,
  after: ChangePosition | null,
  limit: number,
): Promise<ChangeRow[]> {
  const rows = after
    ? await db.query<RawChangeRow[]>(
        `SELECT ${COLUMNS} FROM change_log c
          WHERE (c.txid, c.id) > ($1::xid8, $2::bigint) AND ${FINAL}
          ORDER BY c.txid, c.id LIMIT $3`,
        [after.txid, after.id, limit],
      )
    : await db.query<RawChangeRow[]>(
        `SELECT ${COLUMNS} FROM change_log c WHERE ${FINAL} ORDER BY c.txid, c.id LIMIT $1`,
        [limit],
      );
  return rows.map(toRow);
}

/** The last final row's position: where a reader starting now begins. */
export async function finalFrontier(db: SqlQueryable): Promise<ChangePosition | null> {
  const rows = await db.query<{ id: string; txid: string }[]>(
    `SELECT c.id::text AS id, c.txid::text AS txid FROM change_log c WHERE ${FINAL}
      ORDER BY c.txid DESC, c.id DESC LIMIT 1`,
  );
  return rows[0] ? { txid: rows[0].txid, id: rows[0].id } : null;
}

/**
 * Are there committed rows after `after` that a reader has not read? Rows that were not final
 * at the last read, or became final since (the older transaction ended between two queries):
 * either way the reader must look again. Asked after a read, so it never misses a row that was
 * waiting when the read ran.
 */
export async function hasRowsAfter(
  db: SqlQueryable,
  after: ChangePosition | null,
): Promise<boolean> {
  const rows = after
    ? await db.query<{ pending: boolean }[]>(
        `SELECT EXISTS (SELECT 1 FROM change_log
                         WHERE (txid, id) > ($1::xid8, $2::bigint)) AS pending`,
        [after.txid, after.id],
      )
    : await db.query<{ pending: boolean }[]>('SELECT EXISTS (SELECT 1 FROM change_log) AS pending');
  return rows[0]?.pending === true;
}

/** The position of final row `id`, or null when it is not (or no longer) in the log. */
export async function findPosition(db: SqlQueryable, id: string): Promise<ChangePosition | null> {
  const rows = await db.query<{ txid: string }[]>(
    `SELECT c.txid::text AS txid FROM change_log c WHERE c.id = $1::bigint AND ${FINAL}`,
    [id],
  );
  return rows[0] ? { txid: rows[0].txid, id } : null;
}

/** SQL twin of coalesceKey (change-log.types.ts): upserts per entity, deletions per board. */
const COALESCE_KEY = `CASE WHEN c.op = 'delete' THEN 'delete:' || COALESCE(c.board_id::text, '') ELSE '' END`;

/**
 * The latest row of each entity of `kind` in `organizationId` with a position in
 * (`after`, `upTo`], or created at or after `createdSince` and at most `upTo`; in log order.
 * One upsert per entity (plus a deletion per board it left), so the answer is bounded by the
 * organization's entities, however long the client was away.
 */
export async function latestRowsPerEntity(
  db: SqlQueryable,
  kind: ChangeKind,
  organizationId: string,
  range: { after?: ChangePosition; createdSince?: Date; upTo: ChangePosition },
): Promise<ChangeRow[]> {
  const params: unknown[] = [kind, organizationId, range.upTo.txid, range.upTo.id];
  let lower = '';
  if (range.after) {
    params.push(range.after.txid, range.after.id);
    lower = `AND (c.txid, c.id) > ($5::xid8, $6::bigint)`;
  } else if (range.createdSince) {
    params.push(range.createdSince);
    lower = `AND c.created_at >= $5`;
  }
  const rows = await db.query<RawChangeRow[]>(
    `SELECT * FROM (
       SELECT DISTINCT ON (c.entity_id, ${COALESCE_KEY}) ${COLUMNS},
              c.txid AS order_txid, c.id AS order_id
         FROM change_log c
        WHERE c.kind = $1 AND c.organization_id = $2
          AND (c.txid, c.id) <= ($3::xid8, $4::bigint) ${lower}
        ORDER BY c.entity_id, ${COALESCE_KEY}, c.txid DESC, c.id DESC) latest
     ORDER BY order_txid, order_id`,
    params,
  );
  return rows.map(toRow);
}
