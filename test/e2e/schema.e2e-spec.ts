import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { createTestDatabase, dropTestDatabase } from '../support/test-app';

describe('database schema', () => {
  it('the migrations produce exactly the schema the entities describe (no drift)', async () => {
    const url = await createTestDatabase();
    const dataSource = new DataSource(dataSourceOptions({ url }));
    await dataSource.initialize();
    try {
      const pending = await dataSource.driver.createSchemaBuilder().log();
      expect(pending.upQueries.map((query) => query.query)).toEqual([]);
    } finally {
      await dataSource.destroy();
      await dropTestDatabase(url);
    }
  });

  it('stores timestamps as timestamptz and JSON as jsonb', async () => {
    const url = await createTestDatabase();
    const dataSource = new DataSource(dataSourceOptions({ url }));
    await dataSource.initialize();
    try {
      const rows: { data_type: string }[] = await dataSource.query(
        `SELECT DISTINCT data_type FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name <> 'typeorm_migrations'
            AND (column_name LIKE '%\\_at' OR data_type LIKE 'json%' OR data_type LIKE 'timestamp%')`,
      );
      expect(rows.map((r) => r.data_type).sort()).toEqual(['jsonb', 'timestamp with time zone']);
    } finally {
      await dataSource.destroy();
      await dropTestDatabase(url);
    }
  });
});
