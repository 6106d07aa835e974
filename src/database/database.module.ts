import { Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, DataSourceOptions } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { dataSourceOptions } from './data-source-options';
import { runMigrationsExclusively } from './migrate';

/**
 * PostgreSQL through TypeORM. Pending migrations are applied at start-up (never `synchronize`),
 * under an advisory lock so that instances starting together do not race. They run on a
 * connection of their own without the app's statement timeout: a migration (an index on a large
 * table) or the wait for another instance's migrations may rightly take longer than any request.
 * The app's pool bounds every wait: for a connection (DATABASE_CONNECT_TIMEOUT_MS) and for a
 * statement (DATABASE_STATEMENT_TIMEOUT_MS); both are answered 503 with a Retry-After.
 */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        ...dataSourceOptions(config.database),
        // Fail fast at boot instead of retrying for minutes against a wrong URL.
        retryAttempts: 2,
        retryDelay: 1000,
      }),
      dataSourceFactory: async (options?: DataSourceOptions) => {
        const appOptions = options!;
        const { statement_timeout: _none, ...migrationExtra } = ((
          appOptions as { extra?: Record<string, unknown> }
        ).extra ?? {}) as { statement_timeout?: number };
        const migrator = await new DataSource({
          ...appOptions,
          // The advisory lock's connection and one for the migrations.
          extra: { ...migrationExtra, max: 2 },
        }).initialize();
        try {
          const applied = await runMigrationsExclusively(migrator);
          if (applied.length > 0)
            new Logger('Database').log(`Applied migrations: ${applied.join(', ')}`);
        } finally {
          await migrator.destroy();
        }
        return new DataSource(appOptions).initialize();
      },
    }),
  ],
})
export class DatabaseModule {}
