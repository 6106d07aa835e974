/**
 * The kinds of entity the change log records. `board`: only deletions (streams of a board end
 * on it; see migration BoardDeletionChangeLog).
 */
export type ChangeKind = 'agent' | 'board_memory' | 'activity' | 'board' | 'board_onboarding';
export type ChangeOp = 'upsert' | 'delete';

/**
 * Where a row sits in the log's commit-safe order: (writing transaction id, row id), both as
 * decimal strings (xid8 and bigint exceed JavaScript's safe integers in principle).
 */
export interface ChangePosition {
  readonly txid: string;
  readonly id: string;
}

/** One row of `change_log`. */
export interface ChangeRow extends ChangePosition {
  readonly organizationId: string;
  readonly boardId: string | null;
  readonly kind: ChangeKind;
  readonly entityId: string;
  readonly op: ChangeOp;
  readonly createdAt: Date;
}

/** Orders positions: negative when `a` comes first. A null position is before every row. */
export function comparePositions(a: ChangePosition | null, b: ChangePosition | null): number {
  if (a === null) return b === null ? 0 : -1;
  if (b === null) return 1;
  const byTx = BigInt(a.txid) - BigInt(b.txid);
  if (byTx !== 0n) return byTx < 0n ? -1 : 1;
  const byId = BigInt(a.id) - BigInt(b.id);
  return byId === 0n ? 0 : byId < 0n ? -1 : 1;
}

export function positionOf(row: ChangePosition): ChangePosition {
  return { txid: row.txid, id: row.id };
}

/**
 * What collapses: all upserts of an entity (readers load its current state, so earlier ones
 * add nothing); deletions per entity and board (a move to another board logs a deletion for
 * the old board, which readers of only that board must see). SQL twin in change-log.reader.ts.
 */
function coalesceKey(row: ChangeRow): string {
  return row.op === 'delete'
    ? `${row.kind}:${row.entityId}:delete:${row.boardId ?? ''}`
    : `${row.kind}:${row.entityId}`;
}

/** The rows left after collapsing (see {@link coalesceKey}), in log order. */
export function latestPerEntity(rows: readonly ChangeRow[]): ChangeRow[] {
  const latest = new Map<string, ChangeRow>();
  for (const row of rows) {
    const key = coalesceKey(row);
    const previous = latest.get(key);
    if (!previous || comparePositions(previous, row) < 0) latest.set(key, row);
  }
  return [...latest.values()].sort(comparePositions);
}
