import type { DataSourceOptions } from 'typeorm';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';
import { SnakeNamingStrategy } from './snake-naming.strategy';

export interface DatabaseSettings {
  url: string;
  poolSize?: number;
  /** Longest wait for a pool connection (a busy pool or an unreachable server); none if unset. */
  connectTimeoutMs?: number;
  /** PostgreSQL's statement_timeout for every connection of the pool; none if unset or 0. */
  statementTimeoutMs?: number;
}

/** The one place TypeORM is configured: used by the app, the migration CLI (ormconfig.ts) and tests. */
export function dataSourceOptions(settings: DatabaseSettings): DataSourceOptions {
  return {
    type: 'postgres',
    url: settings.url,
    entities: ENTITIES,
    migrations: MIGRATIONS as DataSourceOptions['migrations'],
    migrationsTableName: 'typeorm_migrations',
    migrationsTransactionMode: 'each',
    namingStrategy: new SnakeNamingStrategy(),
    // gen_random_uuid() is built into PostgreSQL >= 13; uuid-ossp needs an extension.
    uuidExtension: 'pgcrypto',
    synchronize: false,
    // Names this service's connections in pg_stat_activity (the listener and the provisioning
    // lock pool name theirs too).
    applicationName: 'mission-control',
    extra: {
      max: settings.poolSize ?? 10,
      ...(settings.connectTimeoutMs ? { connectionTimeoutMillis: settings.connectTimeoutMs } : {}),
      ...(settings.statementTimeoutMs ? { statement_timeout: settings.statementTimeoutMs } : {}),
    },
  };
}
