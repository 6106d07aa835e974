import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { MIGRATIONS } from '../../src/database/migrations';
import { runMigrationsExclusively } from '../../src/database/migrate';
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

  it('instances starting together on an empty database migrate one at a time', async () => {
    const url = await createTestDatabase({ empty: true });
    const instances = await Promise.all(
      Array.from({ length: 4 }, () => new DataSource(dataSourceOptions({ url })).initialize()),
    );
    try {
      const applied = await Promise.all(instances.map((ds) => runMigrationsExclusively(ds)));
      // Exactly one instance applied each migration; the others found nothing pending.
      expect(applied.flat().sort()).toEqual(MIGRATIONS.map((m) => m.name).sort());
      const rows: { count: string }[] = await instances[0].query(
        'SELECT count(*) AS count FROM typeorm_migrations',
      );
      expect(Number(rows[0].count)).toBe(MIGRATIONS.length);
    } finally {
      await Promise.all(instances.map((ds) => ds.destroy()));
      await dropTestDatabase(url);
    }
  });
});
