import net from 'node:net';
import { Client } from 'pg';
import { AgentStreamHub } from '../../src/agents/stream/agent-stream.hub';
import { ChangeLogListener } from '../../src/change-log/change-log.listener';
import { ChangeLogMaintenance } from '../../src/change-log/change-log.maintenance';
import { OrganizationBoardAccess } from '../../src/organizations/entities/organization-board-access.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  grantBoard,
  signInMember,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { eventually, waitUntil } from '../support/eventually';
import { listen, SseClient, type SseEvent } from '../support/sse-client';
import { createTestApp, TestApp } from '../support/test-app';

// Waits inside the tests are bounded (10 s) and say what they waited for; the test bound is above.
jest.setTimeout(30_000);

const STREAM = '/api/v1/agents/stream';
/** Sweeps and prunes run only when a test calls them. */
const QUIET = { PRESENCE_SWEEP_INTERVAL_MS: '600000', PROVISION_RUN_TIMEOUT_MS: '3600000' };

type AgentEventData = {
  agent: { id: string; status: string; last_provision_error: string | null };
};

/** Consecutive repeats collapsed (one agent changed twice in separate commits). */
const dedupe = (items: string[]) => items.filter((item, i) => item !== items[i - 1]);

const agentOf = (event: SseEvent) => (event.data as AgentEventData).agent;
/** `agent:<id>` / `agent_deleted:<id>` per event, in order. */
const summary = (events: SseEvent[]) =>
  events.map((e) =>
    e.event === 'agent_deleted'
      ? `agent_deleted:${(e.data as { agent_id: string }).agent_id}`
      : `${e.event}:${agentOf(e).id}`,
  );

describe('GET /agents/stream: live agent stream over the change log', () => {
  let a: TestApp;
  let b: TestApp;
  let urlA: string;
  let urlB: string;
  let sql: Client;
  let owner: SignedInUser;
  let orgId: string;
  let gatewayId: string;
  let boardA: string;
  let boardB: string;
  const open: SseClient[] = [];

  const stream = async (
    baseUrl: string,
    user: SignedInUser,
    query = '',
    headers: Record<string, string> = {},
    options: { paused?: boolean } = {},
  ) => {
    // A stream opened without a resume point starts at the log's final frontier: a change
    // committed just before it while an older transaction still ran comes to it too (harmless
    // to a client, but these tests count events). Start once every committed change is final.
    if (!headers['Last-Event-ID'] && !query.includes('since=2')) {
      await waitUntil(async () => {
        const { rows } = await sql.query<{ pending: number }>(
          `SELECT count(*)::int AS pending FROM change_log
            WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())`,
        );
        return rows[0].pending === 0;
      });
    }
    const client = await SseClient.open(
      baseUrl,
      `${STREAM}${query}`,
      { ...user.headers, ...headers },
      options,
    );
    open.push(client);
    return client;
  };

  /** Changes a column AgentRead shows, straight in the database (any writer is logged). */
  const touch = async (agentId: string, marker = `m-${Math.random()}`) => {
    await sql.query('UPDATE agents SET last_provision_error = $2 WHERE id = $1', [agentId, marker]);
    return marker;
  };

  const newAgent = async (boardId: string | null, fields = {}) =>
    (await buildAgent(a.dataSource, gatewayId, boardId, fields)).agent;

  /** Waits until every client has the sentinel agent's latest event; returns the events before it. */
  const barrier = async (clients: SseClient[], sentinelId: string, marker: string) => {
    try {
      await barrierOnce(clients, sentinelId, marker);
    } catch (error) {
      // What held the change back: transactions in flight and the log's tail.
      const activity = await sql.query(
        `SELECT pid, datname, application_name, state, backend_xid::text, backend_xmin::text,
                left(query, 80) AS query FROM pg_stat_activity WHERE backend_xid IS NOT NULL`,
      );
      const tail = await sql.query(
        `SELECT id, txid::text, entity_id, op, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin
           FROM change_log ORDER BY id DESC LIMIT 5`,
      );
      process.stderr.write(
        `stream barrier failed; xid holders: ${JSON.stringify(activity.rows)}; log tail: ${JSON.stringify(tail.rows)}; ` +
          `hub A: ${a.app.get(AgentStreamHub).clientCount} clients, closed ${JSON.stringify(a.app.get(AgentStreamHub).closed)}; ` +
          `hub B: ${b.app.get(AgentStreamHub).clientCount} clients, closed ${JSON.stringify(b.app.get(AgentStreamHub).closed)}; ` +
          `streams ended: ${JSON.stringify(clients.map((c) => c.ended))}\n`,
      );
      throw error;
    }
  };

  const barrierOnce = async (clients: SseClient[], sentinelId: string, marker: string) => {
    for (const client of clients) {
      await waitUntil(
        () =>
          client.events.some(
            (e) =>
              e.event === 'agent' &&
              agentOf(e).id === sentinelId &&
              agentOf(e).last_provision_error === marker,
          ),
        { timeoutMs: 10_000, what: () => JSON.stringify(summary(client.events)) },
      );
    }
  };

  beforeAll(async () => {
    a = await createTestApp(QUIET);
    b = await createTestApp(QUIET, { sharedDatabaseUrl: a.databaseUrl });
    urlA = await listen(a.app);
    urlB = await listen(b.app);
    sql = new Client({ connectionString: a.databaseUrl });
    await sql.connect();
    ({ owner, orgId } = await signInOwnerOfNewOrganization(a.http, a.dataSource, 'Stream'));
    gatewayId = (await buildGateway(a.dataSource, orgId)).id;
    boardA = (await buildBoard(a.dataSource, orgId, gatewayId)).id;
    boardB = (await buildBoard(a.dataSource, orgId, gatewayId)).id;
  });

  afterEach(() => {
    for (const client of open.splice(0)) client.close();
  });

  afterAll(async () => {
    await sql.end();
    await b.close();
    await a.close();
  });

  it('clients on both instances see a change made through either instance exactly once', async () => {
    const one = await buildAgent(a.dataSource, gatewayId, boardA);
    const two = await buildAgent(a.dataSource, gatewayId, boardB);
    const sentinel = await newAgent(boardA);
    const onA = await stream(urlA, owner);
    const onB = await stream(urlB, owner);

    await a.http
      .post('/api/v1/agent/heartbeat')
      .set('X-Agent-Token', one.token)
      .send({})
      .expect(200);
    await b.http
      .post('/api/v1/agent/heartbeat')
      .set('X-Agent-Token', two.token)
      .send({})
      .expect(200);
    const marker = await touch(sentinel.id);
    await barrier([onA, onB], sentinel.id, marker);

    // The agent-auth presence touch and the heartbeat are separate commits, so `one` may
    // have two changes; a batch that holds both collapses them into one event.
    const changes = await sql.query<{ id: string; entity_id: string }>(
      `SELECT id::text, entity_id FROM change_log WHERE entity_id = ANY($1) ORDER BY txid, id`,
      [[one.agent.id, two.agent.id, sentinel.id]],
    );
    const lastChangeOf = (agentId: string) =>
      changes.rows.filter((row) => row.entity_id === agentId).at(-1)?.id;
    for (const client of [onA, onB]) {
      expect(dedupe(summary(client.events))).toEqual([
        `agent:${one.agent.id}`,
        `agent:${two.agent.id}`,
        `agent:${sentinel.id}`,
      ]);
      // Never the same change twice, and every agent's latest change arrives.
      const ids = client.events.map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const agentId of [one.agent.id, two.agent.id, sentinel.id]) {
        const last = client.events.filter((e) => agentOf(e).id === agentId).at(-1);
        expect(last?.id).toBe(lastChangeOf(agentId));
      }
      expect(
        agentOf(client.events.filter((e) => agentOf(e).id === one.agent.id).at(-1)!).status,
      ).toBe('online');
    }
  });

  it('answers text/event-stream with the contract payload; null/empty query values are absent', async () => {
    const agent = await newAgent(boardA);
    const client = await stream(urlA, owner, '?board_id=null&since=null');
    expect(client.status).toBe(200);
    const empty = await stream(urlB, owner, '?board_id=&since=');
    expect(empty.status).toBe(200);
    const marker = await touch(agent.id);
    await barrier([client, empty], agent.id, marker);
    const read = agentOf(client.events[0]) as unknown as Record<string, unknown>;
    expect(Object.keys(read).sort()).toEqual(
      [
        'board_id',
        'created_at',
        'gateway_id',
        'heartbeat_config',
        'id',
        'identity_profile',
        'identity_template',
        'is_board_lead',
        'is_gateway_main',
        'last_provision_error',
        'last_seen_at',
        'name',
        'openclaw_session_id',
        'soul_template',
        'status',
        'updated_at',
      ].sort(),
    );
    expect(read).not.toHaveProperty('agent_token_hash');

    const bad = await SseClient.open(urlA, `${STREAM}?board_id=not-a-uuid`, owner.headers);
    expect(bad.status).toBe(422);
    const anonymous = await SseClient.open(urlA, STREAM);
    expect(anonymous.status).toBe(401);
  });

  it('is documented in /openapi.json as a text/event-stream response', async () => {
    const doc = (await a.http.get('/openapi.json').expect(200)).body as {
      paths: Record<string, { get: { responses: Record<string, { content?: object }> } }>;
    };
    const ok = doc.paths['/api/v1/agents/stream'].get.responses['200'];
    expect(Object.keys(ok.content ?? {})).toEqual(['text/event-stream']);
  });

  it('records deletions as agent_deleted events and does not re-announce unchanged agents', async () => {
    const doomed = await newAgent(boardA);
    const quiet = await newAgent(boardA);
    const sentinel = await newAgent(boardA);
    const client = await stream(urlB, owner);
    // Bookkeeping only (no AgentRead column changes): nothing to announce.
    await sql.query(
      `UPDATE agents SET provision_action = 'update', provision_requested_at = now(),
              updated_at = now() WHERE id = $1`,
      [quiet.id],
    );
    await sql.query('DELETE FROM agents WHERE id = $1', [doomed.id]);
    const marker = await touch(sentinel.id);
    await barrier([client], sentinel.id, marker);
    expect(summary(client.events)).toEqual([`agent_deleted:${doomed.id}`, `agent:${sentinel.id}`]);
    expect(client.events[0].data).toEqual({ agent_id: doomed.id });
  });

  it('a client resuming with Last-Event-ID gets exactly the changes it missed, once per agent', async () => {
    const first = await newAgent(boardA);
    const missedTwice = await newAgent(boardA);
    const missedOnce = await newAgent(boardB);
    const sentinel = await newAgent(boardB);
    const client = await stream(urlA, owner);
    const seen = await touch(first.id);
    await barrier([client], first.id, seen);
    const lastId = client.lastEventId as string;
    client.close();

    await touch(missedTwice.id);
    await touch(missedOnce.id);
    const latest = await touch(missedTwice.id);
    // Resumes on the other instance.
    const resumed = await stream(urlB, owner, '', { 'Last-Event-ID': lastId });
    const marker = await touch(sentinel.id);
    await barrier([resumed], sentinel.id, marker);
    expect(summary(resumed.events)).toEqual([
      `agent:${missedOnce.id}`,
      `agent:${missedTwice.id}`,
      `agent:${sentinel.id}`,
    ]);
    expect(agentOf(resumed.events[1]).last_provision_error).toBe(latest);
  });

  it('is lossless when changes commit out of id order (a lower id committed after a higher one)', async () => {
    const early = await newAgent(boardA);
    const late = await newAgent(boardA);
    const sentinel = await newAgent(boardA);
    const client = await stream(urlA, owner);
    const slow = new Client({ connectionString: a.databaseUrl });
    const fast = new Client({ connectionString: a.databaseUrl });
    await slow.connect();
    await fast.connect();
    try {
      // `slow` takes the lower change id, `fast` the higher one and commits first.
      await slow.query('BEGIN');
      await slow.query(`UPDATE agents SET last_provision_error = 'slow' WHERE id = $1`, [early.id]);
      const listener = a.app.get(ChangeLogListener);
      const drainsBefore = listener.stats.drains;
      await fast.query('BEGIN');
      await fast.query(`UPDATE agents SET last_provision_error = 'fast' WHERE id = $1`, [late.id]);
      await fast.query('COMMIT');
      // Give the instance the chance to read (and, with an id cursor, to skip) the lower id.
      await waitUntil(() => listener.stats.drains > drainsBefore);
      await slow.query('COMMIT');
      const marker = await touch(sentinel.id);
      await barrier([client], sentinel.id, marker);
      // Both changes exactly once (in commit-safe order: the older transaction's first).
      expect(summary(client.events).slice(0, 2).sort()).toEqual(
        [`agent:${late.id}`, `agent:${early.id}`].sort(),
      );
      expect(summary(client.events)).toHaveLength(3);
      const rows = await sql.query<{ id: string }>(
        `SELECT id::text FROM change_log WHERE entity_id = $1 AND op = 'upsert' ORDER BY id DESC LIMIT 1`,
        [early.id],
      );
      const lateRow = await sql.query<{ id: string }>(
        `SELECT id::text FROM change_log WHERE entity_id = $1 ORDER BY id DESC LIMIT 1`,
        [late.id],
      );
      // The event order differs from the id order: exactly the case an id cursor would lose.
      expect(BigInt(rows.rows[0].id)).toBeLessThan(BigInt(lateRow.rows[0].id));
    } finally {
      await slow.end();
      await fast.end();
    }
  });

  it('delivers a change that waited for an older transaction which then commits without changes', async () => {
    const waiting = await newAgent(boardA);
    const client = await stream(urlB, owner);
    const older = new Client({ connectionString: a.databaseUrl });
    await older.connect();
    try {
      await older.query('BEGIN');
      // Holds a transaction id older than the change below, so the change is not final yet.
      await older.query('SELECT pg_current_xact_id()');
      const marker = await touch(waiting.id);
      await older.query('COMMIT');
      await barrier([client], waiting.id, marker);
      expect(summary(client.events)).toEqual([`agent:${waiting.id}`]);
    } finally {
      await older.end();
    }
  });

  it('a member without access to a board never sees its agents; main agents only for admins', async () => {
    const member = await signInMember(a.http, a.dataSource, orgId);
    await grantBoard(a.dataSource, member.memberId, boardA);
    const admin = await signInMember(a.http, a.dataSource, orgId, { role: 'admin' });
    const visible = await newAgent(boardA);
    const hidden = await newAgent(boardB);
    const otherGateway = await buildGateway(a.dataSource, orgId);
    const main = (await buildAgent(a.dataSource, otherGateway.id, null)).agent;
    const sentinel = await newAgent(boardA);

    const memberStream = await stream(urlA, member);
    const memberOnBoard = await stream(urlB, member, `?board_id=${boardA}`);
    const adminStream = await stream(urlB, admin);
    const forbidden = await SseClient.open(urlA, `${STREAM}?board_id=${boardB}`, member.headers);
    expect(forbidden.status).toBe(403);

    await touch(hidden.id);
    await touch(main.id);
    await touch(visible.id);
    const marker = await touch(sentinel.id);
    await barrier([memberStream, memberOnBoard, adminStream], sentinel.id, marker);
    expect(summary(memberStream.events)).toEqual([`agent:${visible.id}`, `agent:${sentinel.id}`]);
    expect(summary(memberOnBoard.events)).toEqual([`agent:${visible.id}`, `agent:${sentinel.id}`]);
    expect(summary(adminStream.events)).toEqual([
      `agent:${hidden.id}`,
      `agent:${main.id}`,
      `agent:${visible.id}`,
      `agent:${sentinel.id}`,
    ]);

    // Another organization's owner sees none of it.
    const stranger = await signInOwnerOfNewOrganization(a.http, a.dataSource, 'Other');
    const strangerStream = await stream(urlA, stranger.owner);
    const strangerGateway = await buildGateway(a.dataSource, stranger.orgId);
    const strangerBoard = await buildBoard(a.dataSource, stranger.orgId, strangerGateway.id);
    const own = (await buildAgent(a.dataSource, strangerGateway.id, strangerBoard.id)).agent;
    await touch(visible.id);
    const ownMarker = await touch(own.id);
    await barrier([strangerStream], own.id, ownMarker);
    // Its creation and the change (possibly collapsed into one event).
    expect(dedupe(summary(strangerStream.events))).toEqual([`agent:${own.id}`]);
  });

  it('an agent moved to another board is deleted for readers of only the old board, live and on resume', async () => {
    const onlyA = await signInMember(a.http, a.dataSource, orgId);
    await grantBoard(a.dataSource, onlyA.memberId, boardA);
    const onlyB = await signInMember(a.http, a.dataSource, orgId);
    await grantBoard(a.dataSource, onlyB.memberId, boardB);
    const mover = await newAgent(boardA);
    const sentinelA = await newAgent(boardA);
    const sentinelB = await newAgent(boardB);
    const resumer = await stream(urlB, onlyA);
    const seen = await touch(sentinelA.id);
    await barrier([resumer], sentinelA.id, seen);
    const lastId = resumer.lastEventId as string;
    resumer.close();

    const liveA = await stream(urlA, onlyA);
    const liveB = await stream(urlB, onlyB);
    await sql.query('UPDATE agents SET board_id = $2 WHERE id = $1', [mover.id, boardB]);
    const markerA = await touch(sentinelA.id);
    const markerB = await touch(sentinelB.id);
    const resumed = await stream(urlA, onlyA, '', { 'Last-Event-ID': lastId });
    await barrier([liveA, resumed], sentinelA.id, markerA);
    await barrier([liveB], sentinelB.id, markerB);
    expect(summary(liveA.events)).toEqual([`agent_deleted:${mover.id}`, `agent:${sentinelA.id}`]);
    expect(summary(resumed.events)).toEqual([`agent_deleted:${mover.id}`, `agent:${sentinelA.id}`]);
    expect(summary(liveB.events)).toEqual([`agent:${mover.id}`, `agent:${sentinelB.id}`]);
  });

  it('a client whose access is revoked stops receiving that board at the next event', async () => {
    const member = await signInMember(a.http, a.dataSource, orgId);
    await grantBoard(a.dataSource, member.memberId, boardA);
    await grantBoard(a.dataSource, member.memberId, boardB);
    const onA = await newAgent(boardA);
    const onB = await newAgent(boardB);
    const client = await stream(urlA, member);
    const before = await touch(onA.id);
    await barrier([client], onA.id, before);

    await a.dataSource
      .getRepository(OrganizationBoardAccess)
      .delete({ organizationMemberId: member.memberId, boardId: boardA });
    await touch(onA.id);
    const marker = await touch(onB.id);
    await barrier([client], onB.id, marker);
    expect(summary(client.events)).toEqual([`agent:${onA.id}`, `agent:${onB.id}`]);

    // Removed from the organization: the stream ends.
    await sql.query('DELETE FROM organization_members WHERE id = $1', [member.memberId]);
    await touch(onB.id);
    await client.waitForEnd();
    expect(client.events).toHaveLength(2);
  });

  it('an admin downgraded to member stops seeing gateway main agents at the next event', async () => {
    const admin = await signInMember(a.http, a.dataSource, orgId, { role: 'admin' });
    const otherGateway = await buildGateway(a.dataSource, orgId);
    const main = (await buildAgent(a.dataSource, otherGateway.id, null)).agent;
    const sentinel = await newAgent(boardA);
    const client = await stream(urlB, admin);
    const seen = await touch(main.id);
    await barrier([client], main.id, seen);

    await sql.query(`UPDATE organization_members SET role = 'member' WHERE id = $1`, [
      admin.memberId,
    ]);
    await touch(main.id);
    await grantBoard(a.dataSource, admin.memberId, boardA);
    const marker = await touch(sentinel.id);
    await barrier([client], sentinel.id, marker);
    expect(summary(client.events)).toEqual([`agent:${main.id}`, `agent:${sentinel.id}`]);
  });

  it('does the same database work per change with 1 and with 50 connected clients', async () => {
    const admin = await signInMember(a.http, a.dataSource, orgId, { role: 'admin' });
    const agent = await newAgent(boardA);
    const hub = a.app.get(AgentStreamHub);
    const baseClients = hub.clientCount;

    /** Queries sent by every pg client in this process while one change reaches every stream. */
    const queriesPerChange = async (clients: SseClient[]): Promise<number> => {
      const counts: number[] = [];
      for (let round = 0; round < 3; round++) {
        // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound below
        const original = Client.prototype.query;
        let count = 0;
        const counting = function (this: Client, ...args: unknown[]) {
          count++;
          return (original as (...a: unknown[]) => unknown).apply(this, args);
        };
        Client.prototype.query = counting as typeof original;
        try {
          const marker = await touch(agent.id);
          await barrier(clients, agent.id, marker);
        } finally {
          Client.prototype.query = original;
        }
        counts.push(count);
      }
      // Unrelated background work (a sweeper tick) can only add: the minimum is the change's.
      return Math.min(...counts);
    };

    const single = [await stream(urlA, owner)];
    await waitUntil(() => hub.clientCount === baseClients + 1);
    const withOne = await queriesPerChange(single);
    const many: SseClient[] = [...single];
    for (let i = 1; i < 50; i++) many.push(await stream(urlA, i % 2 ? admin : owner));
    await waitUntil(() => hub.clientCount === baseClients + 50);
    const withFifty = await queriesPerChange(many);

    expect(withOne).toBeGreaterThan(0);
    expect(withFifty).toBe(withOne);
    for (const client of many) expect(client.events.length).toBeGreaterThanOrEqual(3);

    // Closed streams leave the hub.
    for (const client of many) client.close();
    await waitUntil(() => hub.clientCount === baseClients, {
      what: () => `${hub.clientCount} clients`,
    });
  });

  it('after its listening connection is killed, an instance reconnects and catches up', async () => {
    const agent = await newAgent(boardB);
    const client = await stream(urlA, owner);
    const listener = a.app.get(ChangeLogListener);
    const connects = listener.stats.connects;
    const killed = await sql.query<{ pid: number }>(
      `SELECT pg_terminate_backend(pid) AS ok, pid FROM pg_stat_activity
        WHERE application_name = 'mission-control change-log listener'
          AND datname = current_database()`,
    );
    expect(killed.rows.length).toBe(2); // one per instance
    // Changed while no instance listens.
    const marker = await touch(agent.id);
    await barrier([client], agent.id, marker);
    await waitUntil(() => listener.stats.connects > connects);
    expect(summary(client.events)).toEqual([`agent:${agent.id}`]);
  });

  it('a ?board_id= stream ends when its board is deleted, on every instance; others go on', async () => {
    const doomed = (await buildBoard(a.dataSource, orgId, gatewayId)).id;
    const agent = await newAgent(boardA);
    const onA = await stream(urlA, owner, `?board_id=${doomed}`);
    const onB = await stream(urlB, owner, `?board_id=${doomed}`);
    const everything = await stream(urlA, owner);
    await a.http.delete(`/api/v1/boards/${doomed}`).set(owner.headers).expect(200);
    await onA.waitForEnd();
    await onB.waitForEnd();
    const marker = await touch(agent.id);
    await barrier([everything], agent.id, marker);
    expect(everything.ended).toBe(false);
    expect((await SseClient.open(urlA, `${STREAM}?board_id=${doomed}`, owner.headers)).status).toBe(
      403,
    );
  });

  it('an id older than the retained log gets the current state of every readable agent, then live', async () => {
    const { owner: soloOwner, orgId: soloOrg } = await signInOwnerOfNewOrganization(
      a.http,
      a.dataSource,
      'Retention',
    );
    const gateway = await buildGateway(a.dataSource, soloOrg);
    const board = await buildBoard(a.dataSource, soloOrg, gateway.id);
    const first = (await buildAgent(a.dataSource, gateway.id, board.id)).agent;
    const second = (await buildAgent(a.dataSource, gateway.id, board.id)).agent;
    const main = (await buildAgent(a.dataSource, gateway.id, null)).agent;
    const client = await stream(urlA, soloOwner);
    const seen = await touch(first.id);
    await barrier([client], first.id, seen);
    const oldId = client.lastEventId as string;
    client.close();

    await a.app.get(ChangeLogMaintenance).prune(new Date(Date.now() + 60_000));
    const resumed = await stream(urlB, soloOwner, '', { 'Last-Event-ID': oldId });
    await resumed.waitForEvents(3);
    expect(summary(resumed.events).sort()).toEqual(
      [`agent:${first.id}`, `agent:${second.id}`, `agent:${main.id}`].sort(),
    );
    const marker = await touch(second.id);
    await barrier([resumed], second.id, marker);
    expect(resumed.events).toHaveLength(4);
    expect(resumed.events[3].id).toMatch(/^\d+$/);
  });

  it('?since= (as upstream) sends the current state of the agents changed since then, then live', async () => {
    const before = await newAgent(boardA);
    const changed = await newAgent(boardB);
    const sentinel = await newAgent(boardA);
    await touch(before.id);
    // Milliseconds, as the query carries them, after `before`'s change; `changed` comes later.
    const since = (
      await sql.query<{ since: Date }>(
        `SELECT date_trunc('milliseconds', clock_timestamp()) + interval '1 millisecond' AS since`,
      )
    ).rows[0].since;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await touch(changed.id);
    await touch(changed.id);
    const client = await stream(urlB, owner, `?since=${encodeURIComponent(since.toISOString())}`);
    await client.waitForEvents(1);
    const marker = await touch(sentinel.id);
    await barrier([client], sentinel.id, marker);
    expect(summary(client.events)).toEqual([`agent:${changed.id}`, `agent:${sentinel.id}`]);

    // Older than the retained log (CHANGE_LOG_RETENTION_SECONDS, default a day): a snapshot.
    const old = await stream(urlA, owner, '?since=2000-01-01T00:00:00Z');
    const agents = await sql.query<{ id: string }>(
      'SELECT id FROM agents WHERE organization_id = $1',
      [orgId],
    );
    await old.waitForEvents(agents.rows.length);
    expect(new Set(old.agentIds())).toEqual(new Set(agents.rows.map((row) => row.id)));
  });

  it('shows an agent going offline when the presence sweep logs the threshold crossing', async () => {
    const agent = await newAgent(boardA, { status: 'online', lastSeenAt: new Date() });
    const client = await stream(urlB, owner);
    // Ten minutes pass without a heartbeat (moved back in time without logging a change).
    await sql.query('BEGIN');
    await sql.query('SET LOCAL session_replication_role = replica');
    await sql.query(
      `UPDATE agents SET last_seen_at = now() - interval '11 minutes' WHERE id = $1`,
      [agent.id],
    );
    await sql.query('COMMIT');
    await sql.query(
      `UPDATE change_log_presence_sweep SET swept_until = now() - interval '2 minutes'`,
    );
    expect(await a.app.get(ChangeLogMaintenance).sweepPresence()).toBeGreaterThanOrEqual(1);
    await client.waitForEvents(1);
    expect(summary(client.events)).toEqual([`agent:${agent.id}`]);
    expect(agentOf(client.events[0]).status).toBe('offline');
    // Logged once: the next sweep finds no new crossing.
    expect(await b.app.get(ChangeLogMaintenance).sweepPresence()).toBe(0);
  });
});

describe('GET /agents/stream: a client that falls behind is closed and resumes by id', () => {
  let t: TestApp;
  let url: string;

  beforeAll(async () => {
    t = await createTestApp({
      ...QUIET,
      STREAM_MAX_PENDING_EVENTS: '3',
      STREAM_KEEPALIVE_MS: '200',
    });
    url = await listen(t.app);
  });
  afterAll(async () => {
    await t.close();
  });

  it('sends keep-alive comments (STREAM_KEEPALIVE_MS; 15 s by default)', async () => {
    const { owner } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Ping');
    const client = await SseClient.open(url, STREAM, owner.headers);
    try {
      await waitUntil(() => client.comments >= 3, { timeoutMs: 10_000 });
      expect(client.events).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('closes a client that stopped reading; it resumes with Last-Event-ID and gets the rest', async () => {
    const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Slow');
    const gateway = await buildGateway(t.dataSource, orgId);
    const board = await buildBoard(t.dataSource, orgId, gateway.id);
    const sentinel = (await buildAgent(t.dataSource, gateway.id, board.id)).agent;
    const big: string[] = [];
    for (let i = 0; i < 30; i++) {
      big.push((await buildAgent(t.dataSource, gateway.id, board.id)).agent.id);
    }
    const hub = t.app.get(AgentStreamHub);
    const slow = await SseClient.open(url, STREAM, owner.headers);
    const fast = await SseClient.open(url, STREAM, owner.headers);
    try {
      await t.dataSource.query(`UPDATE agents SET soul_template = 'first' WHERE id = $1`, [
        sentinel.id,
      ]);
      await slow.waitForEvents(1);
      slow.pause();
      // 30 events of ~512 KiB each: far more than the socket buffers hold.
      await t.dataSource.query(
        `UPDATE agents SET identity_template = repeat('x', 524288) WHERE id = ANY($1)`,
        [big],
      );
      await fast.waitForEvents(31, 30_000);
      await t.dataSource.query(`UPDATE agents SET soul_template = 'second' WHERE id = $1`, [
        sentinel.id,
      ]);
      await fast.waitForEvents(32);
      await waitUntil(() => hub.closed.behind >= 1, { timeoutMs: 10_000 });
      expect(fast.events.map((e) => e.event)).toEqual(Array(32).fill('agent'));

      const lastId = slow.lastEventId as string;
      expect(lastId).toMatch(/^\d+$/);
      slow.close();
      const resumed = await SseClient.open(url, STREAM, {
        ...owner.headers,
        'Last-Event-ID': lastId,
      });
      try {
        await resumed.waitForEvents(31, 30_000);
        expect(new Set(resumed.agentIds())).toEqual(new Set([...big, sentinel.id]));
        expect(resumed.events).toHaveLength(31);
      } finally {
        resumed.close();
      }
    } finally {
      slow.close();
      fast.close();
    }
  });
});

describe('GET /agents/stream: a batch the database fails or stalls never loses events', () => {
  let t: TestApp;
  let url: string;
  let sql: Client;

  beforeAll(async () => {
    t = await createTestApp({ ...QUIET, CHANGE_LOG_READ_TIMEOUT_MS: '1000' });
    url = await listen(t.app);
    sql = new Client({ connectionString: t.databaseUrl });
    await sql.connect();
  });
  afterAll(async () => {
    await sql.end();
    await t.close();
  });

  const touch = async (agentId: string) => {
    const marker = `m-${Math.random()}`;
    await sql.query('UPDATE agents SET last_provision_error = $2 WHERE id = $1', [agentId, marker]);
    return marker;
  };
  const sawMarker = (client: SseClient, agentId: string, marker: string) =>
    client.events.some(
      (e) =>
        e.event === 'agent' &&
        agentOf(e).id === agentId &&
        agentOf(e).last_provision_error === marker,
    );

  /**
   * Commits a change to `agentId`, then holds an ACCESS EXCLUSIVE lock on `agents` so the hub's
   * read of the changed agent blocks. The change is held back (an older open transaction) until
   * the lock is taken, so the hub cannot read it before. Returns the marker, the blocked
   * backend's pid and the lock holder (roll it back to release).
   */
  const stallHubOn = async (agentId: string) => {
    const older = new Client({ connectionString: t.databaseUrl });
    const locker = new Client({ connectionString: t.databaseUrl });
    await older.connect();
    await locker.connect();
    await older.query('BEGIN');
    await older.query('SELECT pg_current_xact_id()');
    const marker = await touch(agentId);
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE agents IN ACCESS EXCLUSIVE MODE');
    await older.query('COMMIT');
    await older.end();
    const pid = await eventually(
      async () =>
        (
          await sql.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND query LIKE 'SELECT "Agent"."id" AS "Agent_id"%'`,
          )
        ).rows[0]?.pid,
      { timeoutMs: 10_000, what: () => 'the hub blocked on the agents lock' },
    );
    return { marker, pid, locker };
  };

  it('a batch whose database read fails closes its clients; they resume by id and get the change', async () => {
    const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Fail');
    const gateway = await buildGateway(t.dataSource, orgId);
    const board = await buildBoard(t.dataSource, orgId, gateway.id);
    const changed = (await buildAgent(t.dataSource, gateway.id, board.id)).agent;
    const client = await SseClient.open(url, STREAM, owner.headers);
    try {
      const seen = await touch(changed.id);
      await waitUntil(() => sawMarker(client, changed.id, seen));
      const lastId = client.lastEventId as string;

      const { marker, pid, locker } = await stallHubOn(changed.id);
      try {
        await sql.query('SELECT pg_cancel_backend($1)', [pid]);
      } finally {
        await locker.query('ROLLBACK');
        await locker.end();
      }
      // The batch was not delivered: the stream ends, so the client resumes by id.
      await client.waitForEnd();
      expect(sawMarker(client, changed.id, marker)).toBe(false);
      const resumed = await SseClient.open(url, STREAM, {
        ...owner.headers,
        'Last-Event-ID': lastId,
      });
      try {
        await waitUntil(() => sawMarker(resumed, changed.id, marker), {
          what: () => JSON.stringify(resumed.events),
        });
      } finally {
        resumed.close();
      }
    } finally {
      client.close();
    }
  });

  it('a batch stalled on the database does not stop the instance: its clients end and resume by id, other streams open and flow', async () => {
    const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Stall');
    const gateway = await buildGateway(t.dataSource, orgId);
    const board = await buildBoard(t.dataSource, orgId, gateway.id);
    const changed = (await buildAgent(t.dataSource, gateway.id, board.id)).agent;
    const other = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Elsewhere');
    const otherGateway = await buildGateway(t.dataSource, other.orgId);
    const otherBoard = await buildBoard(t.dataSource, other.orgId, otherGateway.id);
    const otherAgent = (await buildAgent(t.dataSource, otherGateway.id, otherBoard.id)).agent;
    const hub = t.app.get(AgentStreamHub);
    const client = await SseClient.open(url, STREAM, owner.headers);
    let second: SseClient | null = null;
    try {
      const seen = await touch(changed.id);
      await waitUntil(() => sawMarker(client, changed.id, seen));
      const lastId = client.lastEventId as string;

      const { marker, locker } = await stallHubOn(changed.id);
      try {
        // The lock is never released while we wait (a stalled database): the batch gives up.
        await client.waitForEnd();
        const registered = hub.clientCount;
        second = await SseClient.open(url, STREAM, other.owner.headers);
        await waitUntil(() => hub.clientCount === registered + 1, {
          what: () => `${hub.clientCount} clients registered, ${registered} before`,
        });
      } finally {
        await locker.query('ROLLBACK');
        await locker.end();
      }
      const otherMarker = await touch(otherAgent.id);
      await waitUntil(() => sawMarker(second!, otherAgent.id, otherMarker));
      const resumed = await SseClient.open(url, STREAM, {
        ...owner.headers,
        'Last-Event-ID': lastId,
      });
      try {
        await waitUntil(() => sawMarker(resumed, changed.id, marker));
      } finally {
        resumed.close();
      }
    } finally {
      client.close();
      second?.close();
    }
  });

  it('a resume id kept by the prune has every later change kept too (a transaction that began before an earlier row but sorts after it)', async () => {
    const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Prune');
    const gateway = await buildGateway(t.dataSource, orgId);
    const board = await buildBoard(t.dataSource, orgId, gateway.id);
    const early = (await buildAgent(t.dataSource, gateway.id, board.id)).agent;
    const late = (await buildAgent(t.dataSource, gateway.id, board.id)).agent;
    const client = await SseClient.open(url, STREAM, owner.headers);
    const long = new Client({ connectionString: t.databaseUrl });
    await long.connect();
    try {
      // `long` starts first (its rows' created_at) but writes after `early` committed, so its
      // row comes after early's in the log's order while being older by created_at.
      await long.query('BEGIN');
      await long.query('SELECT now()');
      await new Promise((resolve) => setTimeout(resolve, 50));
      const earlyMarker = await touch(early.id);
      const lateMarker = `m-${Math.random()}`;
      await long.query('UPDATE agents SET last_provision_error = $2 WHERE id = $1', [
        late.id,
        lateMarker,
      ]);
      await long.query('COMMIT');
      await waitUntil(
        () => sawMarker(client, early.id, earlyMarker) && sawMarker(client, late.id, lateMarker),
      );
      const resumeId = client.events.find(
        (e) => agentOf(e).id === early.id && agentOf(e).last_provision_error === earlyMarker,
      )?.id as string;
      client.close();
      // Retention ends between the two rows' created_at: late's row is past it, early's not.
      const cutoff = (
        await sql.query<{ cutoff: Date }>(
          `SELECT created_at + interval '10 milliseconds' AS cutoff FROM change_log
            WHERE entity_id = $1 ORDER BY id DESC LIMIT 1`,
          [late.id],
        )
      ).rows[0].cutoff;
      await t.app.get(ChangeLogMaintenance).prune(cutoff);
      const resumed = await SseClient.open(url, STREAM, {
        ...owner.headers,
        'Last-Event-ID': resumeId,
      });
      try {
        await waitUntil(() => sawMarker(resumed, late.id, lateMarker), {
          what: () => JSON.stringify(summary(resumed.events)),
        });
      } finally {
        resumed.close();
      }
    } finally {
      client.close();
      await long.end();
    }
  });
});

/**
 * A TCP proxy to PostgreSQL that can silently stop forwarding the change log listener's
 * connection (no FIN, no RST: a dead peer or a dropped NAT entry), found by the
 * application_name in its startup packet.
 */
async function listenerProxy(databaseUrl: string) {
  const target = new URL(databaseUrl);
  const sockets = new Set<net.Socket>();
  const listeners = new Set<net.Socket>();
  const frozen = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      if (chunk.includes('change-log listener')) listeners.add(client);
      if (!frozen.has(client)) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!frozen.has(client)) client.write(chunk);
    });
    const destroy = () => {
      if (frozen.has(client)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', destroy).on('close', destroy);
    upstream.on('error', destroy).on('close', destroy);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(databaseUrl);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as net.AddressInfo).port);
  return {
    url: proxied.toString(),
    /** The listener connections open now go silent for good; connections made later work. */
    freeze: () => {
      for (const socket of listeners) frozen.add(socket);
      return frozen.size;
    },
    close: async () => {
      frozen.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('GET /agents/stream: a listening connection that went silent is detected', () => {
  let base: TestApp;
  let t: TestApp;
  let proxy: Awaited<ReturnType<typeof listenerProxy>>;
  let url: string;

  beforeAll(async () => {
    base = await createTestApp(QUIET);
    proxy = await listenerProxy(base.databaseUrl);
    t = await createTestApp(
      { ...QUIET, CHANGE_LOG_LISTENER_PING_MS: '300' },
      { sharedDatabaseUrl: proxy.url },
    );
    url = await listen(t.app);
  });
  afterAll(async () => {
    await t.close();
    await proxy.close();
    await base.close();
  });

  it('reconnects and catches up when its connection stops answering without closing', async () => {
    const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Silent');
    const gateway = await buildGateway(t.dataSource, orgId);
    const board = await buildBoard(t.dataSource, orgId, gateway.id);
    const agent = (await buildAgent(t.dataSource, gateway.id, board.id)).agent;
    const hub = t.app.get(AgentStreamHub);
    const clientsBefore = hub.clientCount;
    const client = await SseClient.open(url, STREAM, owner.headers);
    try {
      // The stream is registered (its start's reads are done) before the connection goes silent.
      await waitUntil(() => hub.clientCount === clientsBefore + 1);
      const listener = t.app.get(ChangeLogListener);
      const connects = listener.stats.connects;
      // The one listener connection of this instance is silent from now on: only new ones work.
      expect(proxy.freeze()).toBe(1);
      await base.dataSource.query(
        `UPDATE agents SET last_provision_error = 'while silent' WHERE id = $1`,
        [agent.id],
      );
      await waitUntil(
        () =>
          client.events.some(
            (e) => e.event === 'agent' && agentOf(e).last_provision_error === 'while silent',
          ),
        { what: () => `${listener.stats.connects - connects} reconnects` },
      );
      expect(listener.stats.connects).toBeGreaterThan(connects);
    } finally {
      client.close();
    }
  });
});
