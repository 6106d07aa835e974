import { NestExpressApplication } from '@nestjs/platform-express';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { DataSource } from 'typeorm';
import { createApp, CreateAppOptions } from '../../src/bootstrap';
import { loadConfig } from '../../src/config/app-config';

export const TEST_JWT_SECRET = 'test-hs256-secret-for-mission-control-e2e-suite';
/** One gateway-token key for every test app of a process (instances on one database agree). */
export const TEST_SECRETS_KEY = randomBytes(32).toString('hex');
export const TEST_LOCAL_TOKEN = `local-${'x'.repeat(20)}-${randomBytes(24).toString('hex')}`;

export interface TestApp {
  app: NestExpressApplication;
  http: TestAgent;
  dataSource: DataSource;
  databaseUrl: string;
  close(): Promise<void>;
}

let databaseCounter = 0;

/**
 * A fresh database cloned from the migrated template (see global-setup.ts), or an empty one
 * (no tables at all) with `{ empty: true }`.
 */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<string> {
  const adminUrl = process.env.MC_TEST_ADMIN_URL;
  const template = process.env.MC_TEST_TEMPLATE_DATABASE;
  if (!adminUrl || !template) throw new Error('e2e tests need the jest global setup (npm test)');
  const name = `mc_test_${process.pid}_${Date.now()}_${databaseCounter++}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${options.empty ? 'template0' : template}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops a database made by {@link createTestDatabase} (matters with an external DATABASE_URL). */
export async function dropTestDatabase(databaseUrl: string): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  if (!name.startsWith('mc_test_')) throw new Error(`Refusing to drop ${name}`);
  const admin = new Client({ connectionString: process.env.MC_TEST_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * The real application over HTTP on its own database. Defaults to AUTH_MODE=jwt with an HS256
 * secret so tests can act as many users (test/support/auth.ts); pass env to change anything.
 * `sharedDatabaseUrl` starts another instance on an existing test database (several instances
 * on one database); closing such an instance leaves the database to its owner.
 */
export async function createTestApp(
  env: Record<string, string | undefined> = {},
  options: CreateAppOptions & { sharedDatabaseUrl?: string } = {},
): Promise<TestApp> {
  const { sharedDatabaseUrl, ...appOptions } = options;
  const databaseUrl = sharedDatabaseUrl ?? (await createTestDatabase());
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: '5',
    AUTH_MODE: 'jwt',
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    SECRETS_KEY: TEST_SECRETS_KEY,
    LOG_LEVEL: 'error',
    // The in-process fake gateways have no hot reload to wait out; the real one (MC_IT_*) does.
    OPENCLAW_CONFIG_SETTLE_MS: process.env.MC_IT_GATEWAY_URL ? undefined : '0',
    ...env,
  });
  const app = await createApp(config, appOptions);
  await app.init();
  const dataSource = app.get(DataSource);
  return {
    app,
    http: request(app.getHttpServer()),
    dataSource,
    databaseUrl,
    close: async () => {
      await app.close();
      if (!sharedDatabaseUrl) await dropTestDatabase(databaseUrl);
    },
  };
}
