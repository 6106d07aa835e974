/**
 * Migration BoardSettings on a database that already holds boards: every existing board gets
 * upstream's defaults (empty description, max_agents 1, approval required for done, the other
 * flags off), and max_agents below 1 is refused by the database afterwards.
 */
import { Board } from '../../src/boards/entities/board.entity';
import { BoardSettings1796300000000 } from '../../src/database/migrations/1796300000000-BoardSettings';
import { buildGateway, buildOrganization } from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';

describe('migration BoardSettings on existing boards', () => {
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
      await new BoardSettings1796300000000()[direction](runner);
    } finally {
      await runner.release();
    }
  };

  it('fills existing rows with the defaults', async () => {
    const ds = t.dataSource;
    const orgId = (await buildOrganization(ds)).id;
    const gatewayId = (await buildGateway(ds, orgId)).id;
    // The schema before the migration, with boards written the way the old code wrote them.
    await runMigration('down');
    const inserted = await ds.query<{ id: string }[]>(
      `INSERT INTO boards (organization_id, gateway_id, name, slug, board_type)
       VALUES ($1, $2, 'Old one', 'old-one', 'goal'), ($1, NULL, 'Old two', 'old-two', 'general')
       RETURNING id`,
      [orgId, gatewayId],
    );
    expect(inserted).toHaveLength(2);

    await runMigration('up');

    const rows = await ds.getRepository(Board).findBy({ organizationId: orgId });
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toMatchObject({
        description: '',
        maxAgents: 1,
        requireApprovalForDone: true,
        requireReviewBeforeDone: false,
        commentRequiredForReview: false,
        blockStatusChangesWithPendingApproval: false,
        onlyLeadCanChangeStatus: false,
      });
    }
    await expect(
      ds.query('UPDATE boards SET max_agents = 0 WHERE id = $1', [rows[0].id]),
    ).rejects.toThrow(/ck_boards_max_agents_positive/);
  });
});
