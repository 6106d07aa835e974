/**
 * Every wait on the database is bounded. A statement that runs past DATABASE_STATEMENT_TIMEOUT_MS
 * (here: blocked on a row lock another session holds) and a wait for a pool connection past
 * DATABASE_CONNECT_TIMEOUT_MS (every connection of the pool busy) are answered 503 with
 * Retry-After and the envelope, within the bound, with nothing written; once the lock is gone the
 * same requests succeed. Migrations are not bound by the statement timeout (they run on their own
 * connection): an instance whose start waits for another instance's migration lock for longer
 * than that still starts.
 */
import { Client } from 'pg';
import {
  DATABASE_UNAVAILABLE_DETAIL,
  STATEMENT_TIMEOUT_DETAIL,
} from '../../src/common/errors/database-unavailable';
import { Board } from '../../src/boards/entities/board.entity';
import { MIGRATION_LOCK_KEY } from '../../src/database/migrate';
import {
  buildBoard,
  buildGateway,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { waitUntil } from '../support/eventually';
import {
  createTestApp,
  createTestDatabase,
  dropTestDatabase,
  type TestApp,
} from '../support/test-app';

jest.setTimeout(60_000);

const API = '/api/v1';
const POOL_SIZE = 3;
const CONNECT_TIMEOUT_MS = 300;
const STATEMENT_TIMEOUT_MS = 2_500;
/** A bounded wait answers well within this (a hang, not a performance bound). */
const ANSWER_BOUND_MS = 15_000;

/** A session of its own holding `FOR UPDATE` on one board row until released. */
async function lockBoard(databaseUrl: string, boardId: string): Promise<() => Promise<void>> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query('SELECT 1 FROM boards WHERE id = $1 FOR UPDATE', [boardId]);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await client.query('ROLLBACK');
    await client.end();
  };
}

/** Sessions of the client's database that match `condition` (a pg_stat_activity filter). */
async function countSessions(client: Client, condition: string): Promise<number> {
  const {
    rows: [{ sessions }],
  } = await client.query<{ sessions: number }>(
    `SELECT count(*)::int AS sessions FROM pg_stat_activity
      WHERE datname = current_database() AND ${condition}`,
  );
  return sessions;
}

const APP_WAITING_ON_A_LOCK = `application_name = 'mission-control' AND wait_event_type = 'Lock'`;

describe('bounded database waits', () => {
  let t: TestApp;
  let owner: SignedInUser;
  let board: Board;

  beforeAll(async () => {
    t = await createTestApp({
      DATABASE_POOL_SIZE: String(POOL_SIZE),
      DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
      DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
    });
    const signedIn = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Timeouts');
    owner = signedIn.owner;
    const gateway = await buildGateway(t.dataSource, signedIn.orgId);
    board = await buildBoard(t.dataSource, signedIn.orgId, gateway.id, { name: 'Before' });
  });
  afterAll(async () => {
    await t?.close();
  });

  const rename = (name: string) =>
    t.http
      .patch(`${API}/boards/${board.id}`)
      .set(owner.headers)
      .send({ name })
      .timeout({ deadline: ANSWER_BOUND_MS });
  const storedName = async () =>
    (await t.dataSource.getRepository(Board).findOneByOrFail({ id: board.id })).name;

  it('a statement blocked past the statement timeout is a 503 "retry", nothing written', async () => {
    const release = await lockBoard(t.databaseUrl, board.id);
    try {
      const started = Date.now();
      const res = await rename('Blocked');
      expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status: 503 });
      expect(res.headers['retry-after']).toBe('1');
      expect(res.body).toEqual({
        detail: STATEMENT_TIMEOUT_DETAIL,
        request_id: res.headers['x-request-id'],
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_MS - 100);
    } finally {
      await release();
    }
    expect(await storedName()).toBe('Before');
    await rename('After').expect(200);
    expect(await storedName()).toBe('After');
  });

  it('a request finding every pool connection busy past the connect timeout is a 503', async () => {
    // Counts through a session of its own: the app's pool has no connection to spare.
    const observer = new Client({ connectionString: t.databaseUrl });
    await observer.connect();
    const release = await lockBoard(t.databaseUrl, board.id);
    let blocked: Promise<{ status: number; body: unknown }>[] = [];
    try {
      // Every connection of the pool held by a statement waiting on the lock.
      blocked = Array.from({ length: POOL_SIZE }, (_, i) =>
        rename(`Blocked ${i}`).then((res) => ({ status: res.status, body: res.body })),
      );
      await waitUntil(
        async () => (await countSessions(observer, APP_WAITING_ON_A_LOCK)) === POOL_SIZE,
        { timeoutMs: STATEMENT_TIMEOUT_MS, intervalMs: 20 },
      );
      const started = Date.now();
      const res = await t.http
        .get(`${API}/boards/${board.id}`)
        .set(owner.headers)
        .timeout({ deadline: ANSWER_BOUND_MS });
      const waited = Date.now() - started;
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.body).toEqual({
        detail: DATABASE_UNAVAILABLE_DETAIL,
        request_id: res.headers['x-request-id'],
      });
      // It gave up on the pool, not on a statement: before the blocked ones were cancelled.
      expect(waited).toBeLessThan(STATEMENT_TIMEOUT_MS);
      await release();
      for (const answer of await Promise.all(blocked)) {
        expect(answer.status === 200 || answer.status === 503).toBe(true);
      }
      expect(await countSessions(observer, APP_WAITING_ON_A_LOCK)).toBe(0);
    } finally {
      await release();
      await observer.end();
    }
    await t.http.get(`${API}/boards/${board.id}`).set(owner.headers).expect(200);
  });
});

describe('migrations and the statement timeout', () => {
  it('an instance waiting longer than the statement timeout for the migration lock still starts', async () => {
    const databaseUrl = await createTestDatabase({ empty: true });
    const holder = new Client({ connectionString: databaseUrl });
    await holder.connect();
    let app: TestApp | null = null;
    try {
      // Another instance migrating: it holds the lock this one's start waits for.
      await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      const starting = createTestApp(
        { DATABASE_STATEMENT_TIMEOUT_MS: '300' },
        { sharedDatabaseUrl: databaseUrl },
      );
      const outcome = starting.then(
        () => 'started',
        (error: Error) => `failed: ${error.message}`,
      );
      await waitUntil(async () => (await countSessions(holder, `wait_event = 'advisory'`)) === 1, {
        timeoutMs: 20_000,
      });
      // Well past the statement timeout, and the start is still waiting, not failed.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      expect(await outcome).toBe('started');
      app = await starting;
      await app.http.get('/readyz').expect(200);
      const [{ applied }] = await app.dataSource.query<{ applied: number }[]>(
        'SELECT count(*)::int AS applied FROM typeorm_migrations',
      );
      expect(applied).toBeGreaterThan(0);
    } finally {
      await holder.end();
      await app?.close();
      await dropTestDatabase(databaseUrl);
    }
  });
});
