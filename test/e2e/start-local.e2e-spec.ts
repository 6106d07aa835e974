/**
 * `npm start` on a fresh machine: the built server with an embedded PostgreSQL in a data dir,
 * a generated local token, persistence across restarts, clean shutdown, clear port errors.
 * Runs the compiled dist/start-local.js (npm test builds first).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { freePort, isPortFree } from '../../src/database/embedded-postgres';
import { waitUntil } from '../support/eventually';

const ROOT = resolve(__dirname, '../..');
const ENTRY = join(ROOT, 'dist/start-local.js');

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(env: Record<string, string>): Running {
  const clean = { ...process.env };
  for (const key of [
    'DATABASE_URL',
    'LOCAL_AUTH_TOKEN',
    'AUTH_MODE',
    'AUTH_JWT_SECRET',
    'SECRETS_KEY',
  ])
    delete clean[key];
  const child = spawn(process.execPath, [ENTRY], {
    cwd: ROOT,
    env: { ...clean, LOG_LEVEL: 'log', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) =>
    child.once('exit', (code) => resolveExit(code)),
  );
  return { child, output: () => output, exited };
}

/** Whether PostgreSQL on `port` lets `postgres` in with `password`; false on a refused login. */
async function canLogIn(port: number, password: string): Promise<boolean> {
  const client = new Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database: 'postgres',
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (error) {
    // 28P01 invalid_password: anything else is a real failure of the test setup.
    if ((error as { code?: string }).code === '28P01') return false;
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function ready(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    return res.status === 200;
  } catch {
    return false;
  }
}

describe('npm start (embedded database)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mc-start-'));
  let port: number;
  let pgPort: number;

  beforeAll(async () => {
    expect(existsSync(ENTRY)).toBe(true);
    port = await freePort();
    pgPort = await freePort();
  });

  it('serves /readyz on a new data dir, keeps data across a restart and stops PostgreSQL on SIGTERM', async () => {
    const env = { DATA_DIR: dataDir, PORT: String(port), EMBEDDED_PG_PORT: String(pgPort) };
    const first = start(env);
    try {
      await waitUntil(() => ready(port), {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: first.output,
      });
      const tokenFile = join(dataDir, 'local-auth-token');
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      const token = readFileSync(tokenFile, 'utf8').trim();
      expect(token.length).toBeGreaterThanOrEqual(50);
      expect(first.output()).toContain(`http://127.0.0.1:${port}`);
      expect(first.output()).not.toContain(token);

      // The database password is random, kept in the data dir for this user only, and the
      // well-known default does not get in.
      const passwordFile = join(dataDir, 'pg-password');
      expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
      const password = readFileSync(passwordFile, 'utf8').trim();
      expect(password).toMatch(/^[0-9a-f]{64}$/);
      expect(first.output()).not.toContain(password);
      expect(await canLogIn(pgPort, 'postgres')).toBe(false);
      expect(await canLogIn(pgPort, password)).toBe(true);

      const me = await fetch(`http://127.0.0.1:${port}/api/v1/users/me`, {
        method: 'PATCH',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ preferred_name: 'Persisted' }),
      });
      expect(me.status).toBe(200);

      // The key that seals gateway tokens is generated once, for this user only, never printed.
      const keyFile = join(dataDir, 'secrets-key');
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const key = readFileSync(keyFile, 'utf8').trim();
      expect(key).toMatch(/^[0-9a-f]{64}$/);
      expect(first.output()).not.toContain(key);
      const gateway = await fetch(`http://127.0.0.1:${port}/api/v1/gateways`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({
          name: 'Persisted gateway',
          url: 'ws://127.0.0.1:9',
          token: 'persisted-gateway-token',
          workspace_root: '/srv/openclaw',
        }),
      });
      expect(gateway.status).toBe(200);
    } finally {
      first.child.kill('SIGTERM');
    }
    expect(await first.exited).toBe(0);
    expect(first.output()).not.toMatch(/ERROR/);
    expect(await isPortFree(pgPort)).toBe(true);

    const second = start(env);
    try {
      await waitUntil(() => ready(port), {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: second.output,
      });
      const token = readFileSync(join(dataDir, 'local-auth-token'), 'utf8').trim();
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/users/me`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(((await res.json()) as { preferred_name: string }).preferred_name).toBe('Persisted');
      // The kept key opens the gateway token sealed by the first run.
      const gateways = await fetch(`http://127.0.0.1:${port}/api/v1/gateways`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(await gateways.json()).toMatchObject({
        items: [{ name: 'Persisted gateway', token: 'persisted-gateway-token', token_error: null }],
      });
    } finally {
      second.child.kill('SIGINT');
    }
    expect(await second.exited).toBe(0);
    expect(await isPortFree(pgPort)).toBe(true);
  }, 120_000);

  it('moves a data dir made with the old fixed password to a random one', async () => {
    const legacyDir = mkdtempSync(join(tmpdir(), 'mc-start-legacy-'));
    const legacyPgPort = await freePort();
    // An earlier version's data dir: initialised (in a child process, the package is ESM-only)
    // with the fixed password, then stopped.
    const script =
      `require(${JSON.stringify(join(ROOT, 'dist/database/embedded-postgres.js'))})` +
      `.startEmbeddedPostgres(${JSON.stringify({
        dataDir: join(legacyDir, 'pg'),
        port: legacyPgPort,
        database: 'mission_control',
        persistent: true,
      })}).then((pg) => pg.stop())`;
    const made = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(made.status).toBe(0);
    const run = start({
      DATA_DIR: legacyDir,
      PORT: String(port),
      EMBEDDED_PG_PORT: String(legacyPgPort),
    });
    try {
      await waitUntil(() => ready(port), { timeoutMs: 60_000, intervalMs: 100, what: run.output });
      const password = readFileSync(join(legacyDir, 'pg-password'), 'utf8').trim();
      expect(await canLogIn(legacyPgPort, 'postgres')).toBe(false);
      expect(await canLogIn(legacyPgPort, password)).toBe(true);
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exited).toBe(0);
  }, 120_000);

  it('keeps the initdb password file out of the shared temporary directory', async () => {
    const freshDir = mkdtempSync(join(tmpdir(), 'mc-start-pwfile-'));
    // The TMPDIR the server is given, as shared /tmp would be: watch what appears directly in it.
    const sharedTmp = mkdtempSync(join(tmpdir(), 'mc-shared-tmp-'));
    chmodSync(sharedTmp, 0o1777); // like /tmp (as root, initdb runs as another user)
    const appeared = new Set<string>();
    const watcher = watch(sharedTmp, (_event, name) => {
      if (name) appeared.add(name.toString());
    });
    const run = start({
      DATA_DIR: freshDir,
      PORT: String(port),
      EMBEDDED_PG_PORT: String(await freePort()),
      TMPDIR: sharedTmp,
    });
    try {
      await waitUntil(() => ready(port), { timeoutMs: 60_000, intervalMs: 100, what: run.output });
    } finally {
      run.child.kill('SIGTERM');
      watcher.close();
    }
    expect(await run.exited).toBe(0);
    // The package writes `pg-password-<id>` into os.tmpdir() with default permissions; it must
    // land in a private directory instead (0700, or 0711 as root), removed after initdb.
    expect([...appeared].filter((name) => name.startsWith('pg-password-'))).toEqual([]);
    expect(readdirSync(sharedTmp).filter((name) => name.startsWith('mc-initdb-'))).toEqual([]);
    expect([...appeared].some((name) => name.startsWith('mc-initdb-'))).toBe(true);
  }, 120_000);

  it('refuses to start when pg-password exists but holds no password, and leaves it alone', async () => {
    const brokenDir = mkdtempSync(join(tmpdir(), 'mc-start-broken-'));
    const passwordFile = join(brokenDir, 'pg-password');
    writeFileSync(passwordFile, 'not a password\n', { mode: 0o600 });
    const run = start({
      DATA_DIR: brokenDir,
      PORT: String(port),
      EMBEDDED_PG_PORT: String(await freePort()),
    });
    // Bounded: either it exits, or (the bug) it serves with a new password.
    let exitCode: number | null | undefined;
    void run.exited.then((code) => (exitCode = code));
    await waitUntil(async () => exitCode !== undefined || (await ready(port)), {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: run.output,
    });
    const outcome = { exited: exitCode === undefined ? 'still serving' : exitCode };
    if (exitCode === undefined) {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    expect(outcome).toEqual({ exited: 1 });
    expect(run.output()).toContain(`${passwordFile} does not hold an embedded PostgreSQL password`);
    expect(readFileSync(passwordFile, 'utf8')).toBe('not a password\n');
    expect(existsSync(join(brokenDir, 'pg'))).toBe(false);
  }, 120_000);

  it('says clearly when the HTTP port is busy, and leaves no PostgreSQL running', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, '0.0.0.0', r));
    try {
      const run = start({
        DATA_DIR: dataDir,
        PORT: String(port),
        EMBEDDED_PG_PORT: String(pgPort),
      });
      expect(await run.exited).toBe(1);
      expect(run.output()).toContain(`Port ${port}`);
      expect(run.output()).toContain('already in use');
      expect(await isPortFree(pgPort)).toBe(true);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  }, 60_000);

  it('says clearly when the embedded PostgreSQL port is busy', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(pgPort, '127.0.0.1', r));
    try {
      const run = start({
        DATA_DIR: dataDir,
        PORT: String(port),
        EMBEDDED_PG_PORT: String(pgPort),
      });
      expect(await run.exited).toBe(1);
      expect(run.output()).toContain(`Port ${pgPort} is already in use`);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  }, 60_000);
});
