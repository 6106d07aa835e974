/**
 * `npm start` on a fresh machine: the built server with an embedded PostgreSQL in a data dir,
 * a generated local token, persistence across restarts, clean shutdown, clear port errors.
 * Runs the compiled dist/start-local.js (npm test builds first).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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
  for (const key of ['DATABASE_URL', 'LOCAL_AUTH_TOKEN', 'AUTH_MODE', 'AUTH_JWT_SECRET'])
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

      const me = await fetch(`http://127.0.0.1:${port}/api/v1/users/me`, {
        method: 'PATCH',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ preferred_name: 'Persisted' }),
      });
      expect(me.status).toBe(200);
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
    } finally {
      second.child.kill('SIGINT');
    }
    expect(await second.exited).toBe(0);
    expect(await isPortFree(pgPort)).toBe(true);
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
