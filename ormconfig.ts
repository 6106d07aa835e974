/**
 * The TypeORM DataSource used by the migration CLI. The npm scripts run the compiled copy
 * (dist/database/cli-data-source.js); with ts-node this file works directly:
 *   DATABASE_URL=... npx typeorm-ts-node-commonjs migration:run -d ormconfig.ts
 */
export { default } from './src/database/cli-data-source';
