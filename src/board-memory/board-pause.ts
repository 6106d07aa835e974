import type { SqlQueryable } from '../change-log/change-log.reader';

/**
 * A chat entry's command as upstream reads it (Python `strip().lower()`): every leading and
 * trailing whitespace character goes, newlines and tabs included (`btrim` only drops spaces).
 * The same expression is the predicate of the partial index `ix_board_memory_pause_commands`
 * (migration BoardMemoryTenancy): the planner uses that index only for this exact expression.
 */
const COMMAND = `lower(regexp_replace(m.content, '^\\s+|\\s+$', '', 'g'))`;

/** The SQL of {@link pausedBoardIds} (exported for the EXPLAIN test). */
export const PAUSED_BOARDS_SQL = `
  SELECT b.id::text AS board_id
    FROM unnest($2::uuid[]) AS b(id)
    CROSS JOIN LATERAL (
      SELECT ${COMMAND} AS command
        FROM board_memory m
       WHERE m.organization_id = $1 AND m.board_id = b.id
         AND m.is_chat AND ${COMMAND} IN ('/pause', '/resume')
       ORDER BY m.created_at DESC, m.id DESC
       LIMIT 1) latest
   WHERE latest.command = '/pause'`;

/**
 * The boards (of `organizationId`, among `boardIds`) whose latest `/pause` or `/resume` chat
 * entry is `/pause`: a paused board, which template sync skips. One query; per board one probe
 * of the partial index over those commands (newest first), never a scan of the board's memory.
 */
export async function pausedBoardIds(
  db: SqlQueryable,
  organizationId: string,
  boardIds: readonly string[],
): Promise<Set<string>> {
  if (boardIds.length === 0) return new Set();
  const rows = await db.query<{ board_id: string }[]>(PAUSED_BOARDS_SQL, [
    organizationId,
    [...boardIds],
  ]);
  return new Set(rows.map((row) => row.board_id));
}
