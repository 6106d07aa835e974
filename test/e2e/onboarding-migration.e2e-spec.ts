/**
 * Migration OnboardingTenancy on a database that already holds onboarding sessions (written the
 * way upstream wrote them: no organization, several `active` sessions per board): every session
 * gets its board's organization, only the newest active session of a board stays active, and
 * from then on the database admits one active session per board, fills the organization itself
 * and logs every change to the change log. down() restores the old schema with the rows.
 */
import { OnboardingTenancy1796400000000 } from '../../src/database/migrations/1796400000000-OnboardingTenancy';
import { buildBoard, buildGateway, buildOrganization } from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';

describe('migration OnboardingTenancy on existing sessions', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const runMigration = async (direction: 'up' | 'down') => {
    const runner = t.dataSource.createQueryRunner();
    try {
      await new OnboardingTenancy1796400000000()[direction](runner);
    } finally {
      await runner.release();
    }
  };

  const insertOld = (boardId: string, status: string, updatedAt: string) =>
    t.dataSource.query<{ id: string }[]>(
      `INSERT INTO board_onboarding_sessions (board_id, session_key, status, created_at, updated_at)
       VALUES ($1, 'agent:x:main', $2, $3, $3) RETURNING id`,
      [boardId, status, updatedAt],
    );

  it('backfills the organization, keeps the newest active session per board, then enforces and logs', async () => {
    const ds = t.dataSource;
    const orgA = (await buildOrganization(ds)).id;
    const orgB = (await buildOrganization(ds)).id;
    const boardA = (await buildBoard(ds, orgA, (await buildGateway(ds, orgA)).id)).id;
    const boardB = (await buildBoard(ds, orgB, (await buildGateway(ds, orgB)).id)).id;

    await runMigration('down');
    const [oldActive] = await insertOld(boardA, 'active', '2026-01-01T00:00:00Z');
    const [newActive] = await insertOld(boardA, 'active', '2026-01-02T00:00:00Z');
    const [done] = await insertOld(boardA, 'confirmed', '2026-01-03T00:00:00Z');
    const [onlyActive] = await insertOld(boardB, 'active', '2026-01-01T00:00:00Z');

    await runMigration('up');

    const rows = await ds.query<{ id: string; organization_id: string; status: string }[]>(
      `SELECT id, organization_id, status FROM board_onboarding_sessions`,
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(byId.get(oldActive.id)).toMatchObject({ organization_id: orgA, status: 'completed' });
    expect(byId.get(newActive.id)).toMatchObject({ organization_id: orgA, status: 'active' });
    expect(byId.get(done.id)).toMatchObject({ organization_id: orgA, status: 'confirmed' });
    expect(byId.get(onlyActive.id)).toMatchObject({ organization_id: orgB, status: 'active' });
    // The migration's own rewrites are not changes anyone streams.
    expect(await ds.query(`SELECT 1 FROM change_log WHERE kind = 'board_onboarding'`)).toHaveLength(
      0,
    );

    // One active session per board.
    await expect(insertOld(boardA, 'active', '2026-01-04T00:00:00Z')).rejects.toThrow(
      /uq_board_onboarding_sessions_one_active/,
    );
    // The organization is filled from the board when a writer leaves it out, and cannot be
    // another organization's.
    const [filled] = await insertOld(boardB, 'completed', '2026-01-04T00:00:00Z');
    await expect(
      ds.query(`SELECT organization_id FROM board_onboarding_sessions WHERE id = $1`, [filled.id]),
    ).resolves.toEqual([{ organization_id: orgB }]);
    await expect(
      ds.query(
        `INSERT INTO board_onboarding_sessions (organization_id, board_id, session_key, status)
         VALUES ($1, $2, 'k', 'completed')`,
        [orgA, boardB],
      ),
    ).rejects.toThrow(/foreign key/);
    // Inserts, updates and deletions are logged, one row per session changed.
    await ds.query(`UPDATE board_onboarding_sessions SET messages = '[]' WHERE board_id = $1`, [
      boardA,
    ]);
    await ds.query(`DELETE FROM board_onboarding_sessions WHERE id = $1`, [filled.id]);
    const logged = await ds.query<{ entity_id: string; op: string; organization_id: string }[]>(
      `SELECT entity_id, op, organization_id FROM change_log
        WHERE kind = 'board_onboarding' ORDER BY txid, id`,
    );
    expect(logged[0]).toEqual({ entity_id: filled.id, op: 'upsert', organization_id: orgB });
    expect(
      logged
        .slice(1, 4)
        .map((row) => row.entity_id)
        .sort(),
    ).toEqual([oldActive.id, newActive.id, done.id].sort());
    expect(
      logged.slice(1, 4).every((row) => row.op === 'upsert' && row.organization_id === orgA),
    ).toBe(true);
    expect(logged.slice(4)).toEqual([
      { entity_id: filled.id, op: 'delete', organization_id: orgB },
    ]);

    // down() restores the old schema, rows kept; up() again is the same schema.
    await runMigration('down');
    const columns = await ds.query<{ column_name: string }[]>(
      `SELECT column_name FROM information_schema.columns
        WHERE table_name = 'board_onboarding_sessions' AND column_name = 'organization_id'`,
    );
    expect(columns).toHaveLength(0);
    await insertOld(boardA, 'active', '2026-01-05T00:00:00Z');
    await runMigration('up');
    await expect(
      ds.query(
        `SELECT count(*)::int AS active FROM board_onboarding_sessions
          WHERE board_id = $1 AND status = 'active'`,
        [boardA],
      ),
    ).resolves.toEqual([{ active: 1 }]);
  });
});
