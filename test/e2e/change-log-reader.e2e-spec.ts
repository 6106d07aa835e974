import { randomUUID } from 'node:crypto';
import { ChangeLogMaintenance } from '../../src/change-log/change-log.maintenance';
import {
  finalFrontier,
  latestRowsPerEntity,
  readFinalRowsAfter,
} from '../../src/change-log/change-log.reader';
import { createTestApp, TestApp } from '../support/test-app';

/*
 * The reader orders by (txid, id) as numbers. Transaction ids and row ids grow past powers of
 * ten (999 → 1000) in every database's life: compared as text, '999' sorts after '1000', which
 * froze a fresh stream's start at the last row before the boundary (every later fresh stream got
 * the whole log since then) and could skip rows within a batch. These rows straddle both
 * boundaries on purpose; their transaction ids are below any running transaction, so final.
 */
describe('change log reader: (txid, id) order is numeric, not text', () => {
  let app: TestApp;
  const organizationId = randomUUID();
  const entity = randomUUID();
  const other = randomUUID();

  beforeAll(async () => {
    app = await createTestApp();
    await app.dataSource.query(
      `INSERT INTO change_log (id, txid, organization_id, kind, entity_id, op) VALUES
         (99, '99', $1, 'agent', $2, 'upsert'),
         (9, '100', $1, 'agent', $3, 'upsert'),
         (100, '100', $1, 'agent', $2, 'upsert')`,
      [organizationId, entity, other],
    );
  });

  afterAll(async () => {
    await app.close();
  });

  it('finalFrontier is the numerically last final row', async () => {
    expect(await finalFrontier(app.dataSource)).toEqual({ txid: '100', id: '100' });
  });

  it('readFinalRowsAfter reads in numeric (txid, id) order, from the start and after a position', async () => {
    const all = await readFinalRowsAfter(app.dataSource, null, 10);
    expect(all.map((row) => [row.txid, row.id])).toEqual([
      ['99', '99'],
      ['100', '9'],
      ['100', '100'],
    ]);
    const after = await readFinalRowsAfter(app.dataSource, { txid: '100', id: '9' }, 10);
    expect(after.map((row) => [row.txid, row.id])).toEqual([['100', '100']]);
    const limited = await readFinalRowsAfter(app.dataSource, { txid: '99', id: '99' }, 1);
    expect(limited.map((row) => [row.txid, row.id])).toEqual([['100', '9']]);
  });

  it('latestRowsPerEntity keeps the numerically latest row of each entity, in log order', async () => {
    const rows = await latestRowsPerEntity(app.dataSource, 'agent', organizationId, {
      upTo: { txid: '100', id: '100' },
    });
    expect(rows.map((row) => [row.entityId, row.txid, row.id])).toEqual([
      [other, '100', '9'],
      [entity, '100', '100'],
    ]);
  });

  it('prune bounds the deletion by the numerically last due row (all three are due)', async () => {
    expect(await app.app.get(ChangeLogMaintenance).prune(new Date(Date.now() + 60_000))).toBe(3);
    const left = await app.dataSource.query<unknown[]>(
      'SELECT id FROM change_log WHERE organization_id = $1',
      [organizationId],
    );
    expect(left).toEqual([]);
  });
});
