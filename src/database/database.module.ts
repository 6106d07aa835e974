import { Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, DataSourceOptions } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { dataSourceOptions } from './data-source-options';
import { runMigrationsExclusively } from './migrate';

/**
 * PostgreSQL through TypeORM. Pending migrations are applied at start-up (never `synchronize`),
 * under an advisory lock so that instances starting together do not race.
 */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        ...dataSourceOptions({ url: config.database.url, poolSize: config.database.poolSize }),
        // Fail fast at boot instead of retrying for minutes against a wrong URL.
        retryAttempts: 2,
        retryDelay: 1000,
      }),
      dataSourceFactory: async (options?: DataSourceOptions) => {
        const dataSource = await new DataSource(options!).initialize();
        const applied = await runMigrationsExclusively(dataSource).catch(async (error: unknown) => {
          await dataSource.destroy();
          throw error;
        });
        if (applied.length > 0)
          new Logger('Database').log(`Applied migrations: ${applied.join(', ')}`);
        return dataSource;
      },
    }),
  ],
})
export class DatabaseModule {}
