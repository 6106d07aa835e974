import { Client } from 'pg';

export default async function globalTeardown(): Promise<void> {
  const embedded = globalThis.__MC_EMBEDDED_PG__;
  if (embedded) {
    // Its data directory goes with it.
    await embedded.stop();
    return;
  }
  // An external server (DATABASE_URL): leave it as it was found.
  const adminUrl = process.env.MC_TEST_ADMIN_URL;
  const template = process.env.MC_TEST_TEMPLATE_DATABASE;
  if (!adminUrl || !template) return;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
