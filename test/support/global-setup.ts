/**
 * Jest global setup: one real PostgreSQL for the whole run (embedded, unless DATABASE_URL is set),
 * and a template database with every migration applied. Each e2e test file clones the template
 * into a database of its own (test/support/test-app.ts), so files never see each other's rows.
 */
import 'reflect-metadata';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { freePort, startEmbeddedPostgres } from '../../src/database/embedded-postgres';

export const TEMPLATE_DATABASE = 'mc_test_template';

declare global {
  var __MC_EMBEDDED_PG__: { stop(): Promise<void> } | undefined;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export default async function globalSetup(): Promise<void> {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'mc-test-'));
    const server = await startEmbeddedPostgres({
      dataDir: join(dir, 'pg'),
      port: await freePort(),
      database: 'postgres',
      persistent: false,
      ephemeralTuning: true,
    });
    globalThis.__MC_EMBEDDED_PG__ = server;
    adminUrl = server.url;
  }

  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }

  const template = new DataSource(
    dataSourceOptions({ url: withDatabase(adminUrl, TEMPLATE_DATABASE) }),
  );
  await template.initialize();
  await template.runMigrations({ transaction: 'each' });
  await template.destroy();

  // Workers are forked after this runs, so they inherit these.
  process.env.MC_TEST_ADMIN_URL = adminUrl;
  process.env.MC_TEST_TEMPLATE_DATABASE = TEMPLATE_DATABASE;
}
