/**
 * `npm start`: the zero-setup way to run the service. Without DATABASE_URL it starts an embedded
 * PostgreSQL with its data in `.data/pg` (kept across restarts) and a random password generated
 * once into `.data/pg-password`; without LOCAL_AUTH_TOKEN (local auth) it generates one into
 * `.data/local-auth-token`; without SECRETS_KEY it generates the key that encrypts gateway tokens
 * into `.data/secrets-key`. The files are mode 0600. PostgreSQL is stopped on Ctrl-C/SIGTERM.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { createApp, listen } from './bootstrap';
import { parseSecretsKey } from './common/secrets/secret-box';
import { ConfigError, loadConfig, localTokenProblem } from './config/app-config';
import {
  EmbeddedPostgres,
  startEmbeddedPostgres,
  THROWAWAY_PASSWORD,
} from './database/embedded-postgres';

const DEFAULT_EMBEDDED_PG_PORT = 54329;
const logger = new Logger('StartLocal');

function ensureLocalAuthToken(dataDir: string): void {
  const mode = (process.env.AUTH_MODE ?? 'local').trim().toLowerCase() || 'local';
  if (mode !== 'local' || process.env.LOCAL_AUTH_TOKEN?.trim()) return;
  const tokenFile = join(dataDir, 'local-auth-token');
  let token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
  if (localTokenProblem(token) !== null) {
    token = randomBytes(48).toString('base64url');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    logger.log(`Generated a local auth token in ${tokenFile}`);
  }
  process.env.LOCAL_AUTH_TOKEN = token;
  logger.log(
    `Authenticate with: curl -H "Authorization: Bearer $(cat ${tokenFile})" http://127.0.0.1:${process.env.PORT ?? 8000}/api/v1/users/me`,
  );
}

/**
 * The key that encrypts gateway tokens at rest, kept in the data dir (mode 0600) so tokens saved
 * today decrypt tomorrow. Like the database password, a file that exists but does not hold a
 * key is never replaced: the tokens in the database were sealed with what it held.
 */
function ensureSecretsKey(dataDir: string): void {
  if (process.env.SECRETS_KEY?.trim()) return;
  const keyFile = join(dataDir, 'secrets-key');
  if (existsSync(keyFile)) {
    const stored = readFileSync(keyFile, 'utf8').trim();
    if (typeof parseSecretsKey(stored) === 'string') {
      throw new Error(
        `${keyFile} does not hold a SECRETS_KEY (64 hex digits). Restore it: the gateway tokens ` +
          `in the database were encrypted with it. Only if no gateway was saved yet, delete it ` +
          `to generate a new one.`,
      );
    }
    if ((statSync(keyFile).mode & 0o077) !== 0) chmodSync(keyFile, 0o600);
    process.env.SECRETS_KEY = stored;
    return;
  }
  const key = randomBytes(32).toString('hex');
  const partial = `${keyFile}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(partial, `${key}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(partial, keyFile);
  } finally {
    rmSync(partial, { force: true });
  }
  logger.log(`Generated the gateway-token encryption key (SECRETS_KEY) in ${keyFile}`);
  process.env.SECRETS_KEY = key;
}

const DATABASE_PASSWORD = /^[0-9a-f]{64}$/;

/**
 * The embedded database's password: generated once, kept in the data dir readable by this user
 * only (other local users can reach the loopback port, not the file). A file that exists but
 * does not hold a password is never replaced: the cluster in the data dir may need what it held,
 * and a new one would lock its data out. Start-up stops with the fix instead.
 */
function ensureDatabasePassword(dataDir: string): string {
  const passwordFile = join(dataDir, 'pg-password');
  if (existsSync(passwordFile)) {
    const stored = readFileSync(passwordFile, 'utf8').trim();
    if (!DATABASE_PASSWORD.test(stored)) {
      throw new Error(
        `${passwordFile} does not hold an embedded PostgreSQL password (64 hex digits). ` +
          `Restore it: the database in ${join(dataDir, 'pg')} was set up with it. ` +
          `Only if that database does not exist yet, delete the file to generate a new one.`,
      );
    }
    if ((statSync(passwordFile).mode & 0o077) !== 0) chmodSync(passwordFile, 0o600);
    return stored;
  }
  const password = randomBytes(32).toString('hex');
  // Written whole or not at all: a crash mid-write must not leave a truncated password behind.
  const partial = `${passwordFile}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(partial, `${password}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(partial, passwordFile);
  } finally {
    rmSync(partial, { force: true });
  }
  logger.log(`Generated the embedded PostgreSQL password in ${passwordFile}`);
  return password;
}

async function main(): Promise<void> {
  const dataDir = resolve(process.env.DATA_DIR ?? '.data');
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  ensureLocalAuthToken(dataDir);
  ensureSecretsKey(dataDir);

  let database: EmbeddedPostgres | undefined;
  if (!process.env.DATABASE_URL?.trim()) {
    const port = Number(process.env.EMBEDDED_PG_PORT ?? DEFAULT_EMBEDDED_PG_PORT);
    logger.log(
      `Starting embedded PostgreSQL on 127.0.0.1:${port} (data in ${join(dataDir, 'pg')})`,
    );
    database = await startEmbeddedPostgres({
      dataDir: join(dataDir, 'pg'),
      port,
      database: 'mission_control',
      persistent: true,
      password: ensureDatabasePassword(dataDir),
      // Data dirs created before the password was random still have the fixed one.
      previousPasswords: [THROWAWAY_PASSWORD],
    });
    process.env.DATABASE_URL = database.url;
  }

  let closing = false;
  const shutdown = async (reason: string): Promise<void> => {
    if (closing) return;
    closing = true;
    logger.log(`Shutting down (${reason})`);
    await app?.close().catch((error: unknown) => logger.error(String(error)));
    await database?.stop().catch((error: unknown) => logger.error(String(error)));
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => void shutdown(signal));
  }
  // `npm start` does not forward SIGTERM: when npm dies, this process is re-parented. Notice that
  // and stop, so the embedded PostgreSQL is never orphaned.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void shutdown('parent process exited');
  }, 1000).unref();

  let app: Awaited<ReturnType<typeof createApp>> | undefined;
  try {
    const config = loadConfig(process.env);
    // Signals are handled above: the app closes first, then PostgreSQL.
    app = await createApp(config, { shutdownHooks: false });
    await listen(app, config);
  } catch (error) {
    await app?.close().catch(() => undefined);
    await database?.stop().catch(() => undefined);
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError || error instanceof Error ? error.message : error);
  process.exit(1);
});
