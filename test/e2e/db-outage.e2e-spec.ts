/**
 * PostgreSQL drops every connection while the API is under a steady write load and a client
 * reads the agent stream: the service keeps answering (503 with the envelope or success, never a
 * 500 or a hang), readiness is 503 while the database refuses connections and 200 again without
 * a restart, no request leaves a partial write, the change-log listener LISTENs again and a
 * client resuming with its last event id gets every change, once.
 *
 * The outage: `pg_terminate_backend` on every backend of the test's database, several times,
 * then the database closed to new connections (`ALLOW_CONNECTIONS false`) and every backend
 * terminated again, then reopened. The proof for the listener connection alone is in
 * agent-stream.e2e-spec.ts; this one covers the pool, the run-lock pool and the listener at once.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { ChangeLogListener } from '../../src/change-log/change-log.listener';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import type { FakeGateway } from '../support/fake-gateway';
import { gatewayFieldsFor, startOpenClawFake } from '../support/fake-openclaw-state';
import { eventually, waitUntil } from '../support/eventually';
import { listen, SseClient, type SseEvent } from '../support/sse-client';
import { createTestApp, type TestApp } from '../support/test-app';

jest.setTimeout(90_000);

const API = '/api/v1';
const STREAM = `${API}/agents/stream`;
/** No request may take longer than this (a hang, not a performance bound). */
const ANSWER_BOUND_MS = 20_000;
const WAIT = { timeoutMs: 20_000, intervalMs: 50 };

type Kind = 'heartbeat' | 'memory' | 'patch';
interface Answer {
  kind: Kind;
  /** Agent id (heartbeat, patch) or memory content. */
  key: string;
  /** The name a PATCH set. */
  value?: string;
  /** 0: no answer within ANSWER_BOUND_MS, or the connection failed. */
  status: number;
  body: unknown;
  error?: string;
}

const TERMINATE_ALL = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid()`;

/**
 * A stream client that resumes as EventSource does: when its stream ends it opens a new one with
 * `Last-Event-ID` set to the last id it received, retrying while the server cannot serve it.
 */
class ResumingStream {
  readonly events: SseEvent[] = [];
  opens = 0;
  /** Failed reopen attempts and the last one's error; whether a reopen is awaiting its answer. */
  failedOpens = 0;
  lastOpenError = '';
  opening = false;
  private current: SseClient | null = null;
  private consumed = 0;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly baseUrl: string,
    private readonly headers: Record<string, string>,
  ) {}

  async start(): Promise<void> {
    await this.open();
    this.loop = this.watch();
  }

  get lastEventId(): string | undefined {
    return [...this.events].reverse().find((event) => event.id !== undefined)?.id;
  }

  private async open(): Promise<void> {
    const last = this.lastEventId;
    const client = await SseClient.open(
      this.baseUrl,
      STREAM,
      last === undefined ? this.headers : { ...this.headers, 'Last-Event-ID': last },
    );
    if (client.status !== 200) {
      client.close();
      throw new Error(`stream answered ${client.status}: ${client.body}`);
    }
    this.current = client;
    this.consumed = 0;
    this.opens++;
  }

  private collect(): void {
    const client = this.current;
    if (!client) return;
    this.events.push(...client.events.slice(this.consumed));
    this.consumed = client.events.length;
  }

  private async watch(): Promise<void> {
    while (!this.stopped) {
      this.collect();
      if (this.current === null || this.current.ended) {
        this.collect();
        this.current = null;
        this.opening = true;
        try {
          await this.open();
        } catch (error) {
          // The database is still away (the stream's access check answers 503): try again.
          this.failedOpens++;
          this.lastOpenError = String(error);
        } finally {
          this.opening = false;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.collect();
  }

  /** Drops the connection (as a network blip would): the client resumes by id. */
  cut(): void {
    this.current?.close();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.loop;
    this.current?.close();
  }
}

describe('PostgreSQL drops every connection mid-run', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let baseUrl: string;
  let owner: SignedInUser;
  let boardId: string;
  let databaseName: string;
  let admin: Client;
  const beaters: { id: string; token: string }[] = [];
  const patched: string[] = [];
  let stream: ResumingStream | null = null;

  beforeAll(async () => {
    t = await createTestApp({
      // Sweeps run only when the test asks; runs are not swept mid-test.
      PRESENCE_SWEEP_INTERVAL_MS: '600000',
      CHANGE_LOG_LISTENER_PING_MS: '1000',
      // A read stalled by the outage gives up (and closes its streams) within the test's waits.
      CHANGE_LOG_READ_TIMEOUT_MS: '5000',
      LOG_LEVEL: process.env.MC_DEBUG_LOG ?? 'error',
    });
    baseUrl = await listen(t.app);
    ({ fake } = await startOpenClawFake());
    const created = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Outage');
    owner = created.owner;
    const gateway = await buildGateway(t.dataSource, created.orgId, gatewayFieldsFor(fake));
    boardId = (await buildBoard(t.dataSource, created.orgId, gateway.id)).id;
    for (let index = 0; index < 4; index++) {
      const { agent, token } = await buildAgent(t.dataSource, gateway.id, boardId);
      beaters.push({ id: agent.id, token });
    }
    // Provisioned once, so their PATCHes are updates on the fake gateway.
    for (let index = 0; index < 2; index++) {
      const res = await t.http
        .post(`${API}/agents`)
        .set(owner.headers)
        .send({ name: `Patched ${randomUUID().slice(0, 8)}`, board_id: boardId })
        .expect(200);
      patched.push((res.body as { id: string }).id);
    }
    databaseName = new URL(t.databaseUrl).pathname.slice(1);
    admin = new Client({ connectionString: process.env.MC_TEST_ADMIN_URL });
    await admin.connect();
  });

  afterAll(async () => {
    await stream?.stop();
    await admin
      ?.query(`ALTER DATABASE ${databaseName} WITH ALLOW_CONNECTIONS true`)
      .catch(() => undefined);
    await admin?.end();
    await t?.close();
    await fake?.stop();
  });

  /** A SQL client on the test database (a new one each time: the outage kills them). */
  async function sql<T extends object>(text: string, values: unknown[] = []): Promise<T[]> {
    const client = new Client({ connectionString: t.databaseUrl });
    // The outage may end this connection too; its query then fails, nothing else.
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  async function readyz(): Promise<number> {
    return (await t.http.get('/readyz').timeout({ deadline: ANSWER_BOUND_MS })).status;
  }

  it('keeps answering, reports readiness, writes nothing partial and loses no change to a resuming client', async () => {
    const answers: Answer[] = [];
    let stopLoad = false;

    const send = async (
      kind: Kind,
      key: string,
      request: () => Promise<{ status: number; body: unknown }>,
      value?: string,
    ) => {
      try {
        const res = await request();
        answers.push({ kind, key, value, status: res.status, body: res.body });
        // A steady load, not a busy loop: a failed request is retried a moment later.
        if (res.status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
      } catch (error) {
        answers.push({ kind, key, value, status: 0, body: null, error: String(error) });
      }
    };
    const heartbeatLoop = async (agent: { id: string; token: string }) => {
      for (let beat = 0; !stopLoad; beat++) {
        await send('heartbeat', agent.id, () =>
          t.http
            .post(`${API}/agent/heartbeat`)
            .set('X-Agent-Token', agent.token)
            .send({ status: beat % 2 === 0 ? 'busy' : 'online' })
            .timeout({ deadline: ANSWER_BOUND_MS }),
        );
      }
    };
    const memoryLoop = async () => {
      while (!stopLoad) {
        const content = `memory ${randomUUID()}`;
        await send('memory', content, () =>
          t.http
            .post(`${API}/boards/${boardId}/memory`)
            .set(owner.headers)
            .send({ content })
            .timeout({ deadline: ANSWER_BOUND_MS }),
        );
      }
    };
    const patchLoop = async (agentId: string) => {
      while (!stopLoad) {
        const name = `Patched ${randomUUID().slice(0, 8)}`;
        await send(
          'patch',
          agentId,
          () =>
            t.http
              .patch(`${API}/agents/${agentId}`)
              .set(owner.headers)
              .send({ name })
              .timeout({ deadline: ANSWER_BOUND_MS }),
          name,
        );
      }
    };
    const answered = (status: number) => answers.filter((a) => a.status === status).length;
    const moreAnswers = async (status: number, count: number) => {
      const before = answered(status);
      await waitUntil(() => answered(status) >= before + count, {
        ...WAIT,
        what: () => `${answered(status) - before}/${count} more ${status}s`,
      });
    };

    // The stream client starts once every committed change is final (a stream opened without
    // a resume point starts at the log's final frontier), and holds an id before the outage.
    await waitUntil(async () => {
      const [row] = await sql<{ pending: number }>(
        `SELECT count(*)::int AS pending FROM change_log
          WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())`,
      );
      return row.pending === 0;
    }, WAIT);
    const [{ start }] = await sql<{ start: string }>(
      `SELECT coalesce(max(id), 0)::text AS start FROM change_log`,
    );
    const resuming = new ResumingStream(baseUrl, owner.headers);
    stream = resuming;
    await resuming.start();
    const listener = t.app.get(ChangeLogListener);
    const connectsBefore = listener.stats.connects;

    const load = Promise.all([
      ...beaters.map((agent) => heartbeatLoop(agent)),
      memoryLoop(),
      memoryLoop(),
      ...patched.map((id) => patchLoop(id)),
    ]);
    const readiness: number[] = [];
    try {
      await moreAnswers(200, 20);
      await waitUntil(() => resuming.events.length > 0, WAIT);

      // Every connection dropped, several times, while the load goes on.
      for (let round = 0; round < 3; round++) {
        const [{ killed }] = await sql<{ killed: number }>(
          `SELECT count(*)::int AS killed FROM (${TERMINATE_ALL}) AS terminated`,
        );
        expect(killed).toBeGreaterThan(0);
        await moreAnswers(200, 10);
      }

      // Unreachable: no new connection is accepted, and every open one is dropped.
      await admin.query(`ALTER DATABASE ${databaseName} WITH ALLOW_CONNECTIONS false`);
      try {
        await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`,
          [databaseName],
        );
        readiness.push(await readyz());
        // The client loses its stream while the database is away; it resumes by id.
        resuming.cut();
        await moreAnswers(503, 5);
        readiness.push(await readyz());
      } finally {
        await admin.query(`ALTER DATABASE ${databaseName} WITH ALLOW_CONNECTIONS true`);
      }
      // Back without a restart.
      await eventually(async () => ((await readyz()) === 200 ? true : undefined), WAIT);
      readiness.push(200);
      await moreAnswers(200, 20);
    } finally {
      stopLoad = true;
      await load;
    }

    // No hang, no 500: every request answered, 2xx or 503 with the envelope.
    const unanswered = answers.filter((a) => a.status === 0);
    expect(unanswered).toEqual([]);
    const failures = answers.filter((a) => a.status !== 200);
    expect(failures.filter((a) => a.status !== 503)).toEqual([]);
    for (const failure of failures) {
      expect(failure.body).toEqual({
        detail: expect.any(String) as unknown,
        request_id: expect.any(String) as unknown,
      });
    }
    expect(readiness.slice(0, 2)).toContain(503);
    expect(readiness.at(-1)).toBe(200);

    // No partial write. Heartbeats: one activity row per 2xx heartbeat, none for the others.
    const activity = await sql<{ agent_id: string; count: number }>(
      `SELECT agent_id, count(*)::int AS count FROM activity_events
        WHERE event_type = 'agent.heartbeat' AND agent_id = ANY($1) GROUP BY agent_id`,
      [beaters.map((agent) => agent.id)],
    );
    for (const agent of beaters) {
      const ok = answers.filter((a) => a.kind === 'heartbeat' && a.key === agent.id);
      expect({
        agent: agent.id,
        activities: activity.find((row) => row.agent_id === agent.id)?.count ?? 0,
      }).toEqual({ agent: agent.id, activities: ok.filter((a) => a.status === 200).length });
    }
    // Memory: a 2xx item exists with its change-log entry; a failed one left nothing.
    const memories = await sql<{ content: string; logged: boolean }>(
      `SELECT m.content, EXISTS (SELECT 1 FROM change_log c
                                  WHERE c.kind = 'board_memory' AND c.entity_id = m.id) AS logged
         FROM board_memory m WHERE m.board_id = $1`,
      [boardId],
    );
    const stored = new Map(memories.map((row) => [row.content, row.logged]));
    for (const post of answers.filter((a) => a.kind === 'memory')) {
      expect({ post: post.key, status: post.status, stored: stored.get(post.key) }).toEqual({
        post: post.key,
        status: post.status,
        stored: post.status === 200 ? true : undefined,
      });
    }
    // PATCH: an agent whose last PATCH succeeded has that name, and no run is left behind.
    for (const agentId of patched) {
      const mine = answers.filter((a) => a.kind === 'patch' && a.key === agentId);
      const [row] = await sql<{ name: string; status: string }>(
        'SELECT name, status FROM agents WHERE id = $1',
        [agentId],
      );
      if (mine.at(-1)?.status === 200) expect(row.name).toBe(mine.at(-1)?.value);
      expect(row.status).not.toBe('updating');
    }
    expect(answered(503)).toBeGreaterThan(0);

    // The listener LISTENs again on a new connection.
    expect(listener.stats.connects).toBeGreaterThan(connectsBefore);
    await waitUntil(
      async () =>
        (
          await sql(
            `SELECT 1 FROM pg_stat_activity
              WHERE datname = current_database()
                AND application_name = 'mission-control change-log listener'`,
          )
        ).length === 1,
      WAIT,
    );

    // Every change reached the resuming client, once: for every logged change of an agent
    // after the start, the client received that agent at that position or a later one.
    const marker = `after ${randomUUID()}`;
    await sql('UPDATE agents SET last_provision_error = $2 WHERE id = $1', [beaters[0].id, marker]);
    try {
      await waitUntil(
        () =>
          resuming.events.some(
            (event) =>
              (event.data as { agent?: { last_provision_error?: string } }).agent
                ?.last_provision_error === marker,
          ),
        {
          ...WAIT,
          what: () =>
            `stream opens ${resuming.opens} (failed ${resuming.failedOpens}: ${resuming.lastOpenError}; opening ${resuming.opening}), events ${resuming.events.length}, listener ${JSON.stringify(listener.stats)}, last ${JSON.stringify(resuming.events.at(-1))}`,
        },
      );
    } catch (error) {
      const holders = await sql(
        `SELECT pid, datname, application_name, state, backend_xid::text, backend_xmin::text,
                left(query, 80) AS query FROM pg_stat_activity
          WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL`,
      );
      const tail = await sql(
        `SELECT id, txid::text, entity_id, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin
           FROM change_log ORDER BY id DESC LIMIT 3`,
      );
      process.stderr.write(
        `xid holders: ${JSON.stringify(holders)}; tail: ${JSON.stringify(tail)}; ` +
          `listener cursor: ${JSON.stringify(Reflect.get(listener, 'cursor'))} ` +
          `stats ${JSON.stringify(listener.stats)}\n`,
      );
      throw error;
    }
    await resuming.stop();
    const ids = resuming.events.map((event) => event.id);
    expect(ids.every((id) => id !== undefined)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const logged = await sql<{ id: string; txid: string; entity_id: string }>(
      `SELECT id::text, txid::text, entity_id FROM change_log
        WHERE kind = 'agent' AND id > $1 ORDER BY txid, id`,
      [start],
    );
    const position = new Map(logged.map((row, index) => [row.id, index]));
    const receivedAt = new Map<string, number>();
    for (const event of resuming.events) {
      const agentId = (event.data as { agent?: { id: string } }).agent?.id;
      const at = position.get(event.id as string);
      if (agentId && at !== undefined) {
        receivedAt.set(agentId, Math.max(receivedAt.get(agentId) ?? -1, at));
      }
    }
    const lost = logged.filter((row, index) => (receivedAt.get(row.entity_id) ?? -1) < index);
    expect(lost).toEqual([]);
    // The stream really was cut and resumed (else this proves nothing about resuming).
    expect(resuming.opens).toBeGreaterThan(1);
  });
});
