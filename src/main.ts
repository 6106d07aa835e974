/**
 * Production entry point (`npm run start:prod`): runs against DATABASE_URL, never an embedded
 * database. Configuration problems are reported and the process exits 1.
 */
import 'reflect-metadata';
import { createApp, listen } from './bootstrap';
import { ConfigError, loadConfig } from './config/app-config';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const app = await createApp(config);
  await listen(app, config);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
