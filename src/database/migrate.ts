import { DataSource } from 'typeorm';

/** Arbitrary, fixed key of the advisory lock that serialises migrations across app instances. */
export const MIGRATION_LOCK_KEY = 7_231_904_118;

/**
 * Applies pending migrations while holding a PostgreSQL advisory lock, so several app instances
 * starting at once on one database migrate one after the other instead of racing on the same
 * CREATE TABLE. Instances that wait find nothing left to do. Returns the names applied.
 */
export async function runMigrationsExclusively(dataSource: DataSource): Promise<string[]> {
  const lockRunner = dataSource.createQueryRunner();
  await lockRunner.connect();
  try {
    await lockRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return applied.map((migration) => migration.name);
    } finally {
      await lockRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await lockRunner.release();
  }
}
