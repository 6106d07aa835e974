/**
 * DataSource for the TypeORM CLI, compiled to dist/database/cli-data-source.js
 * (`npm run migration:run`). ormconfig.ts at the top level re-exports it.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from './data-source-options';

const url = process.env.DATABASE_URL;
if (!url) {
  throw new Error(
    'DATABASE_URL is required for the migration CLI, e.g. postgres://user:pass@127.0.0.1:5432/mission_control',
  );
}

export default new DataSource(dataSourceOptions({ url }));
