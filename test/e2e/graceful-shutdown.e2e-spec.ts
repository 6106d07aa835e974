/**
 * SIGTERM on the real server (`node dist/main.js`, built by `npm test`'s pretest) while requests
 * are in flight (held in the fake gateway) and live streams are open: the requests finish with
 * their normal answers, new connections are refused, every stream ends cleanly with a `retry:`
 * hint, the process exits 0, and neither a database connection nor a gateway socket is left.
 * The server exits by itself once nothing holds its event loop (src/main.ts exits 1 when
 * something still does a moment after the shutdown), so exit code 0 means every socket, pool and
 * timer was closed, not cut by the exit.
 */
import { ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  signInOwnerOfNewOrganization,
} from '../support/builders';
import { eventually, waitUntil } from '../support/eventually';
import { FakeGateway, NEVER } from '../support/fake-gateway';
import { FAKE_GATEWAY_TOKEN, gatewayFieldsFor } from '../support/fake-openclaw-state';
import { SseClient } from '../support/sse-client';
import {
  createTestApp,
  createTestDatabase,
  dropTestDatabase,
  TEST_JWT_SECRET,
  TEST_SECRETS_KEY,
} from '../support/test-app';

jest.setTimeout(40_000);

const ROOT = resolve(__dirname, '../..');
const ENTRY = join(ROOT, 'dist/main.js');
/** This file's fixed port (the s19 multi-instance range 18940-18949). */
const PORT = 18941;
const BASE = `http://127.0.0.1:${PORT}`;
const RETRY_MS = 1500;

interface Answer {
  status: number;
  body: string;
}

/** A GET on a connection of its own; rejects when the connection is refused. */
function get(path: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolveAnswer, reject) => {
    const request = http.get(new URL(path, BASE), { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    request.on('error', reject);
  });
}

describe('graceful shutdown (SIGTERM on node dist/main.js)', () => {
  let databaseUrl: string;
  let fake: FakeGateway;
  let sql: Client;
  let child: ChildProcess | null = null;
  const streams: SseClient[] = [];

  /** Connections the server process holds on the test database (its pools and listener). */
  const serverConnections = async () =>
    (
      await sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE 'mission-control%'`,
      )
    ).rows[0].n;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    fake = await FakeGateway.start({ token: FAKE_GATEWAY_TOKEN });
    sql = new Client({ connectionString: databaseUrl, application_name: 'graceful-shutdown test' });
    await sql.connect();
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await sql.end();
    await fake.stop();
    await dropTestDatabase(databaseUrl);
  });

  /** Starts `node dist/main.js` on the test database and waits until it listens. */
  async function startServer(graceMs: string) {
    let text = '';
    const started = spawn(process.execPath, [ENTRY], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: databaseUrl,
        DATABASE_POOL_SIZE: '4',
        AUTH_MODE: 'jwt',
        AUTH_JWT_SECRET: TEST_JWT_SECRET,
        SECRETS_KEY: TEST_SECRETS_KEY,
        PORT: String(PORT),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'log',
        OPENCLAW_CONFIG_SETTLE_MS: '0',
        SHUTDOWN_GRACE_MS: graceMs,
        SHUTDOWN_STREAM_RETRY_MS: String(RETRY_MS),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    started.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolveExit) =>
      started.once('exit', (code, signal) => resolveExit({ code, signal })),
    );
    await waitUntil(() => text.includes('Mission Control API listening on'), {
      timeoutMs: 20_000,
      what: () => `server start: ${text}`,
    });
    return { child: started, exited, output: () => text };
  }

  /** Resolves with the exit, or 'timeout' after `ms`. */
  const exitWithin = (
    exited: Promise<{ code: number | null; signal: string | null }>,
    ms: number,
  ) =>
    Promise.race([
      exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref()),
    ]);

  it('finishes in-flight requests, ends streams with a retry hint, refuses new connections, exits 0 and leaves nothing open', async () => {
    // The data, written by an in-process instance that is closed before the server starts (so
    // every mission-control connection on this database is the server's).
    const setup = await createTestApp({}, { sharedDatabaseUrl: databaseUrl });
    const { owner, orgId } = await signInOwnerOfNewOrganization(
      setup.http,
      setup.dataSource,
      'Shutdown',
    );
    const gateway = await buildGateway(setup.dataSource, orgId, gatewayFieldsFor(fake));
    const board = await buildBoard(setup.dataSource, orgId, gateway.id);
    await buildAgent(setup.dataSource, gateway.id, board.id);
    await setup.close();

    // sessions.list is held until released: the requests that call it are in flight.
    let release!: () => void;
    const held = new Promise<void>((resolveHeld) => (release = resolveHeld));
    fake.methods['sessions.list'] = async () => {
      await held;
      return { count: 1, sessions: [{ key: 'agent:main:main', label: 'held' }] };
    };

    const server = await startServer('20000');
    const exited = server.exited;
    const output = server.output;

    const agentStream = await SseClient.open(BASE, '/api/v1/agents/stream', owner.headers);
    const memoryStream = await SseClient.open(
      BASE,
      `/api/v1/boards/${board.id}/memory/stream`,
      owner.headers,
    );
    streams.push(agentStream, memoryStream);
    expect([agentStream.status, memoryStream.status]).toEqual([200, 200]);

    const sessionsPath = `/api/v1/gateways/sessions?board_id=${board.id}`;
    const inFlight = [get(sessionsPath, owner.headers), get(sessionsPath, owner.headers)];
    await waitUntil(() => fake.requests.filter((r) => r.method === 'sessions.list').length === 2, {
      what: () => `sessions.list calls: ${JSON.stringify(fake.requests)}\n${output()}`,
    });
    expect(fake.sockets.size).toBe(1);
    // 1000 when the server closes it; 1006 when it is dropped (the process died with it open).
    const socketClosed = new Promise<number>((resolveClose) =>
      [...fake.sockets][0].once('close', (code: number) => resolveClose(code)),
    );
    expect(await serverConnections()).toBeGreaterThan(0);

    server.child.kill('SIGTERM');

    // Streams end at once, cleanly, with the reconnect hint; the requests are still held.
    for (const stream of [agentStream, memoryStream]) {
      await stream.waitForEnd();
      expect(stream.completed).toBe(true);
      expect(stream.retry).toBe(RETRY_MS);
    }
    // New connections are refused while the held requests are still running.
    const refused = await eventually(
      () =>
        get('/healthz', {}).then(
          () => undefined,
          (error: NodeJS.ErrnoException) => error.code,
        ),
      { what: () => `server still accepting: ${output()}` },
    );
    expect(refused).toBe('ECONNREFUSED');
    expect(server.child.exitCode).toBeNull();

    release();
    const answers = await Promise.all(inFlight);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({
        sessions: [expect.objectContaining({ key: 'agent:main:main' })],
      });
    }

    const exit = await exitWithin(exited, 15_000);
    expect({ exit, output: exit === 'timeout' || exit.code !== 0 ? output() : '' }).toEqual({
      exit: { code: 0, signal: null },
      output: '',
    });
    expect(await socketClosed).toBe(1000);
    // A closed client's backend leaves pg_stat_activity a moment after the process exits.
    await waitUntil(async () => (await serverConnections()) === 0, {
      what: () => 'server connections left in pg_stat_activity',
    });
  });

  it('drops a request still running after SHUTDOWN_GRACE_MS and still exits 0, closing everything', async () => {
    const setup = await createTestApp({}, { sharedDatabaseUrl: databaseUrl });
    const { owner, orgId } = await signInOwnerOfNewOrganization(
      setup.http,
      setup.dataSource,
      'Grace',
    );
    const gateway = await buildGateway(setup.dataSource, orgId, gatewayFieldsFor(fake));
    const board = await buildBoard(setup.dataSource, orgId, gateway.id);
    await setup.close();
    // Never answered: the request outlives the grace period.
    fake.methods['sessions.list'] = () => NEVER;
    const calls = fake.requests.length;

    const server = await startServer('500');
    const stuck = get(`/api/v1/gateways/sessions?board_id=${board.id}`, owner.headers).then(
      (answer) => answer.status,
      (error: NodeJS.ErrnoException) => error.code ?? error.message,
    );
    await waitUntil(() => fake.requests.slice(calls).some((r) => r.method === 'sessions.list'));
    const socketClosed = new Promise<number>((resolveClose) =>
      [...fake.sockets][0].once('close', (code: number) => resolveClose(code)),
    );
    server.child.kill('SIGTERM');

    // Its connection is dropped once the grace period is over (no answer was ever made).
    expect(await stuck).toMatch(/ECONNRESET|socket hang up/);
    const exit = await exitWithin(server.exited, 15_000);
    expect({ exit, output: exit === 'timeout' || exit.code !== 0 ? server.output() : '' }).toEqual({
      exit: { code: 0, signal: null },
      output: '',
    });
    expect(server.output()).toContain('still running after SHUTDOWN_GRACE_MS=500');
    expect(await socketClosed).toBe(1000);
    await waitUntil(async () => (await serverConnections()) === 0, {
      what: () => 'server connections left in pg_stat_activity',
    });
  });
});
