/**
 * GET /boards/{board_id}/onboarding/stream: a board's onboarding sessions over the change log,
 * on two app instances sharing one database.
 */
import { Client } from 'pg';
import { ChangeLogMaintenance } from '../../src/change-log/change-log.maintenance';
import { toBoardOnboardingRead } from '../../src/onboarding/dto/board-onboarding-read.dto';
import {
  BoardOnboardingSession,
  type OnboardingMessage,
} from '../../src/onboarding/entities/board-onboarding-session.entity';
import { OnboardingStreamHub } from '../../src/onboarding/stream/onboarding-stream.hub';
import { OrganizationBoardAccess } from '../../src/organizations/entities/organization-board-access.entity';
import {
  buildBoard,
  buildGateway,
  buildMainAgent,
  grantBoard,
  signInMember,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { waitUntil } from '../support/eventually';
import { gatewayFieldsFor, startOpenClawFake } from '../support/fake-openclaw-state';
import { listen, SseClient, type SseEvent } from '../support/sse-client';
import { createTestApp, type TestApp } from '../support/test-app';

jest.setTimeout(30_000);

/** Sweeps and prunes run only when a test calls them. */
const QUIET = { PRESENCE_SWEEP_INTERVAL_MS: '600000', PROVISION_RUN_TIMEOUT_MS: '3600000' };
/** Instance B bounds a catch-up at 3 sessions and pings every 100 ms. */
const B_MAX_PENDING = 3;

type OnboardingRead = {
  id: string;
  board_id: string;
  session_key: string;
  status: string;
  messages: OnboardingMessage[] | null;
  draft_goal: Record<string, unknown> | null;
  created_at: string;
  updated_at: string;
};

const onboardingOf = (event: SseEvent) => (event.data as { onboarding: OnboardingRead }).onboarding;
/** What a client saw, one `<session label>:<status>:<messages>` per event. */
const seen = (client: SseClient, labels: Record<string, string>) =>
  client.events.map((event) => {
    const session = onboardingOf(event);
    return `${labels[session.id] ?? session.id}:${session.status}:${session.messages?.length ?? 0}`;
  });

describe('GET /boards/{board_id}/onboarding/stream', () => {
  let a: TestApp;
  let b: TestApp;
  let urlA: string;
  let urlB: string;
  let sql: Client;
  let owner: SignedInUser;
  let orgId: string;
  let gatewayId: string;
  const open: SseClient[] = [];

  const newBoard = async () => (await buildBoard(a.dataSource, orgId, gatewayId)).id;
  const path = (boardId: string, query = '') =>
    `/api/v1/boards/${boardId}/onboarding/stream${query}`;
  const sessions = () => a.dataSource.getRepository(BoardOnboardingSession);

  /** No committed change waits for an older transaction: a live stream starts after them all. */
  const logSettled = () =>
    waitUntil(async () => {
      const { rows } = await sql.query<{ pending: number }>(
        `SELECT count(*)::int AS pending FROM change_log
          WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())`,
      );
      return rows[0].pending === 0;
    });

  const stream = async (
    baseUrl: string,
    user: SignedInUser,
    boardId: string,
    query = '',
    headers: Record<string, string> = {},
  ) => {
    // A live stream starts at the log's final frontier: start once every committed change is
    // final, so a change committed just before does not count as new (see agent-stream tests).
    if (!headers['Last-Event-ID'] && !query.includes('since=')) await logSettled();
    const client = await SseClient.open(baseUrl, path(boardId, query), {
      ...user.headers,
      ...headers,
    });
    open.push(client);
    return client;
  };

  const message = (role: 'user' | 'assistant', content: string): OnboardingMessage => ({
    role,
    content,
    timestamp: new Date().toISOString().slice(0, 19),
  });

  /** Starts a session the way the start route stores one (through instance A's repository). */
  const start = async (boardId: string): Promise<string> =>
    (
      await sessions().save({
        organizationId: orgId,
        boardId,
        sessionKey: `agent:gateway-${gatewayId}:main`,
        status: 'active',
        messages: [message('user', 'BOARD ONBOARDING REQUEST')],
        draftGoal: null,
      })
    ).id;

  /** Appends a message (the agent's question, the user's answer), as the routes do. */
  const append = async (sessionId: string, role: 'user' | 'assistant', content: string) => {
    const session = await sessions().findOneByOrFail({ id: sessionId });
    await sessions().update(
      { id: sessionId },
      { messages: [...(session.messages ?? []), message(role, content)] },
    );
  };

  const complete = async (sessionId: string) => {
    const session = await sessions().findOneByOrFail({ id: sessionId });
    const draftGoal = { status: 'complete', board_type: 'general' };
    await sessions().update(
      { id: sessionId },
      {
        status: 'completed',
        draftGoal,
        messages: [...(session.messages ?? []), message('assistant', JSON.stringify(draftGoal))],
      },
    );
  };

  /** Waits until every client saw `expected` as its last event. */
  const reached = async (
    clients: SseClient[],
    labels: Record<string, string>,
    expected: string,
  ) => {
    for (const client of clients) {
      await waitUntil(() => seen(client, labels).at(-1) === expected, {
        timeoutMs: 10_000,
        what: () =>
          `${expected} in ${JSON.stringify(seen(client, labels))} (ended: ${client.ended})`,
      });
    }
  };

  /** The change ids the log holds for a session, oldest first. */
  const changeIds = async (sessionId: string) =>
    (
      await sql.query<{ id: string }>(
        `SELECT id::text FROM change_log WHERE kind = 'board_onboarding' AND entity_id = $1
          ORDER BY txid, id`,
        [sessionId],
      )
    ).rows.map((row) => row.id);

  beforeAll(async () => {
    a = await createTestApp(QUIET);
    b = await createTestApp(
      { ...QUIET, STREAM_MAX_PENDING_EVENTS: String(B_MAX_PENDING), STREAM_KEEPALIVE_MS: '100' },
      { sharedDatabaseUrl: a.databaseUrl },
    );
    urlA = await listen(a.app);
    urlB = await listen(b.app);
    sql = new Client({ connectionString: a.databaseUrl });
    await sql.connect();
    ({ owner, orgId } = await signInOwnerOfNewOrganization(a.http, a.dataSource, 'OnbStream'));
    gatewayId = (await buildGateway(a.dataSource, orgId)).id;
  });

  afterEach(() => {
    for (const client of open.splice(0)) client.close();
  });

  afterAll(async () => {
    await sql.end();
    await b.close();
    await a.close();
  });

  it("a viewer sees a new session and each later change (the agent's question, the answer, completion) without polling, in order, on both instances", async () => {
    const board = await newBoard();
    const viewer = await signInMember(a.http, a.dataSource, orgId);
    await grantBoard(a.dataSource, viewer.memberId, board);
    const onA = await stream(urlA, viewer, board);
    const onB = await stream(urlB, viewer, board);
    expect([onA.status, onB.status]).toEqual([200, 200]);
    expect(onA.events).toEqual([]);

    // Written through instance A: reaches the clients of A and of B.
    const session = await start(board);
    const labels = { [session]: 'S' };
    await reached([onA, onB], labels, 'S:active:1');
    await append(session, 'assistant', '{"question":"What is the goal?","options":[]}');
    await reached([onA, onB], labels, 'S:active:2');
    await append(session, 'user', 'Ship it');
    await reached([onA, onB], labels, 'S:active:3');
    await complete(session);
    await reached([onA, onB], labels, 'S:completed:4');

    const ids = await changeIds(session);
    const stored = await sessions().findOneByOrFail({ id: session });
    for (const client of [onA, onB]) {
      expect(seen(client, labels)).toEqual([
        'S:active:1',
        'S:active:2',
        'S:active:3',
        'S:completed:4',
      ]);
      expect(client.events.map((event) => event.event)).toEqual(Array(4).fill('onboarding'));
      expect(client.events.map((event) => event.id)).toEqual(ids);
      // The session as the onboarding routes answer it (BoardOnboardingRead).
      expect(onboardingOf(client.events[3])).toEqual(
        JSON.parse(JSON.stringify(toBoardOnboardingRead(stored))),
      );
    }
    expect(onboardingOf(onA.events[1]).messages?.[1].content).toContain('What is the goal?');
    expect(onboardingOf(onA.events[3])).toMatchObject({
      id: session,
      board_id: board,
      status: 'completed',
      draft_goal: { status: 'complete', board_type: 'general', objective: null },
    });
  });

  it("through the onboarding routes (in-process gateway): start, the agent's question, the answer and the completion reach viewers on both instances as the routes answer them", async () => {
    const { fake } = await startOpenClawFake();
    try {
      const gateway = await buildGateway(a.dataSource, orgId, gatewayFieldsFor(fake));
      const main = await buildMainAgent(a.dataSource, gateway.id);
      const board = (await buildBoard(a.dataSource, orgId, gateway.id)).id;
      const viewer = await signInMember(a.http, a.dataSource, orgId);
      await grantBoard(a.dataSource, viewer.memberId, board);
      const onA = await stream(urlA, viewer, board);
      const onB = await stream(urlB, viewer, board);
      const route = (tail: string) => `/api/v1/boards/${board}/onboarding${tail}`;
      const answers: OnboardingRead[] = [];
      const step = async (response: Promise<{ body: unknown }>) => {
        const { resent: _resent, ...read } = (await response).body as OnboardingRead & {
          resent?: boolean;
        };
        answers.push(read);
        for (const client of [onA, onB]) {
          await waitUntil(() => client.events.length === answers.length, {
            timeoutMs: 10_000,
            what: () => `${answers.length} events: ${JSON.stringify(seen(client, {}))}`,
          });
        }
      };

      // The user starts on A; the gateway agent asks on A (O4) and completes on B (C10).
      await step(a.http.post(route('/start')).set(owner.headers).send({}).expect(200));
      await step(
        a.http
          .post(route('/agent'))
          .set('X-Agent-Token', main.token)
          .send({ question: 'What is the goal?', options: [{ id: '1', label: 'Ship' }] })
          .expect(200),
      );
      await step(
        b.http.post(route('/answer')).set(owner.headers).send({ answer: 'Ship' }).expect(200),
      );
      await step(
        b.http
          .post(`/api/v1/agent/boards/${board}/onboarding`)
          .set('X-Agent-Token', main.token)
          .send({ status: 'complete', board_type: 'general' })
          .expect(200),
      );

      for (const client of [onA, onB]) {
        expect(client.events.map(onboardingOf)).toEqual(answers);
      }
      expect(answers.map((answer) => `${answer.status}:${answer.messages?.length}`)).toEqual([
        'active:1',
        'active:2',
        'active:3',
        'completed:4',
      ]);
      expect(onA.events[1].id).toBe((await changeIds(answers[0].id))[1]);
    } finally {
      await fake.stop();
    }
  });

  it('clients of another board or another organization see nothing of it', async () => {
    const board = await newBoard();
    const otherBoard = await newBoard();
    const { owner: stranger, orgId: otherOrg } = await signInOwnerOfNewOrganization(
      a.http,
      a.dataSource,
      'OnbStreamOther',
    );
    const strangersBoard = (await buildBoard(a.dataSource, otherOrg, null)).id;
    const mine = await stream(urlA, owner, board);
    const sameOrgOtherBoard = await stream(urlB, owner, otherBoard);
    const otherOrgClient = await stream(urlA, stranger, strangersBoard);

    const session = await start(board);
    await reached([mine], { [session]: 'S' }, 'S:active:1');
    await append(session, 'assistant', 'Q1');
    // Then one change each for the other clients: when it arrives, ours went by them.
    const elsewhere = await start(otherBoard);
    const strangers = (
      await sessions().save({
        organizationId: otherOrg,
        boardId: strangersBoard,
        sessionKey: 'agent:gateway-x:main',
        status: 'active',
        messages: null,
        draftGoal: null,
      })
    ).id;
    const labels = { [session]: 'S', [elsewhere]: 'E', [strangers]: 'X' };
    await reached([mine], labels, 'S:active:2');
    await reached([sameOrgOtherBoard], labels, 'E:active:1');
    await reached([otherOrgClient], labels, 'X:active:0');
    expect(seen(mine, labels)).toEqual(['S:active:1', 'S:active:2']);
    expect(seen(sameOrgOtherBoard, labels)).toEqual(['E:active:1']);
    expect(seen(otherOrgClient, labels)).toEqual(['X:active:0']);
  });

  it('answers text/event-stream; 401 without credentials, 404 for an unknown board, 403 for a board of another organization and for a member without access to the board, 422 for a bad board id', async () => {
    const board = await newBoard();
    const client = await stream(urlA, owner, board, '?since=null');
    expect(client.status).toBe(200);
    const doc = await a.http.get('/openapi.json').expect(200);
    const op = doc.body.paths['/api/v1/boards/{boardId}/onboarding/stream'].get;
    expect(Object.keys(op.responses['200'].content)).toEqual(['text/event-stream']);

    expect((await SseClient.open(urlA, path(board))).status).toBe(401);
    expect(
      (await SseClient.open(urlA, path('5b0c2c4a-1d7e-4a43-9b52-8d0b4e1f7a11'), owner.headers))
        .status,
    ).toBe(404);
    const { owner: stranger } = await signInOwnerOfNewOrganization(
      a.http,
      a.dataSource,
      'OnbStreamStranger',
    );
    const foreign = await SseClient.open(urlA, path(board), stranger.headers);
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body).detail).toBe('No org access');
    const noAccess = await signInMember(a.http, a.dataSource, orgId);
    const denied = await SseClient.open(urlA, path(board), noAccess.headers);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body).detail).toBe('Board access denied');
    expect((await SseClient.open(urlA, path('not-a-uuid'), owner.headers)).status).toBe(422);
  });

  it('sends keep-alive comments (STREAM_KEEPALIVE_MS)', async () => {
    const client = await stream(urlB, owner, await newBoard());
    await waitUntil(() => client.comments >= 3, { what: () => `${client.comments} comments` });
  });

  it('a client resuming with Last-Event-ID after missed updates gets the latest state of each changed session once, then live', async () => {
    const board = await newBoard();
    const client = await stream(urlA, owner, board);
    const session = await start(board);
    const quiet = await start(await newBoard());
    const labels = { [session]: 'S', [quiet]: 'Q' };
    await reached([client], labels, 'S:active:1');
    const lastId = client.lastEventId as string;
    client.close();

    await append(session, 'assistant', 'Q1');
    await append(session, 'user', 'A1');
    await complete(session);
    await append(quiet, 'assistant', 'another board');
    const resumed = await stream(urlB, owner, board, '', { 'Last-Event-ID': lastId });
    await reached([resumed], labels, 'S:completed:4');
    await append(session, 'user', 'more context');
    await reached([resumed], labels, 'S:completed:5');

    expect(seen(resumed, labels)).toEqual(['S:completed:4', 'S:completed:5']);
    const ids = await changeIds(session);
    // The caught-up state carries its latest change's id, the live one the next.
    expect(resumed.events.map((event) => event.id)).toEqual(ids.slice(-2));
  });

  it('several changes of a session in one batch are one event: its latest state, with the last change id', async () => {
    const board = await newBoard();
    const client = await stream(urlA, owner, board);
    const session = await start(board);
    const labels = { [session]: 'S' };
    await reached([client], labels, 'S:active:1');
    // One transaction: its change rows become final together, so they arrive in one batch.
    await a.dataSource.transaction(async (manager) => {
      const repo = manager.getRepository(BoardOnboardingSession);
      const stored = await repo.findOneByOrFail({ id: session });
      await repo.update(
        { id: session },
        { messages: [...(stored.messages ?? []), message('assistant', 'Q1')] },
      );
      await repo.update({ id: session }, { status: 'completed' });
    });
    await reached([client], labels, 'S:completed:2');
    expect(seen(client, labels)).toEqual(['S:active:1', 'S:completed:2']);
    expect(client.lastEventId).toBe((await changeIds(session)).at(-1));
  });

  it('a live batch whose session already carries a later change (not final yet) leaves it to that change: the state arrives once', async () => {
    const board = await newBoard();
    const markerBoard = await newBoard();
    const client = await stream(urlB, owner, board);
    const markers = await stream(urlB, owner, markerBoard);
    const session = await start(board);
    const labels: Record<string, string> = { [session]: 'S' };
    await reached([client], labels, 'S:active:1');
    await logSettled();

    const early = new Client({ connectionString: a.databaseUrl });
    const blocker = new Client({ connectionString: a.databaseUrl });
    await early.connect();
    await blocker.connect();
    try {
      // `early` takes its transaction id before `blocker`, which takes one before the answer:
      // once `early` commits, its change is final and read, while the answer (committed
      // before it) waits for `blocker`. `early`'s write comes last, so the session's state
      // when its change is read already carries the answer.
      await early.query('BEGIN');
      await early.query('SELECT pg_current_xact_id()');
      await blocker.query('BEGIN');
      await blocker.query('SELECT pg_current_xact_id()');
      await append(session, 'user', 'answer');
      await early.query(
        `UPDATE board_onboarding_sessions SET status = 'completed', updated_at = now() WHERE id = $1`,
        [session],
      );
      // A marker in the same transaction: when it arrives, so did the batch with early's change.
      const { rows } = await early.query<{ id: string }>(
        `INSERT INTO board_onboarding_sessions (board_id, session_key) VALUES ($1, 'marker')
         RETURNING id`,
        [markerBoard],
      );
      labels[rows[0].id] = 'M';
      await early.query('COMMIT');
      await reached([markers], labels, 'M:active:0');
      expect(seen(client, labels)).toEqual(['S:active:1']);
      await blocker.query('COMMIT');
      await reached([client], labels, 'S:completed:2');
      await append(session, 'assistant', 'next');
      await reached([client], labels, 'S:completed:3');
      expect(seen(client, labels)).toEqual(['S:active:1', 'S:completed:2', 'S:completed:3']);
      // The answer's change is after early's in the log: the state went out under its id.
      const ids = await changeIds(session);
      expect(client.events.map((event) => event.id)).toEqual([ids[0], ids[2], ids[3]]);
    } finally {
      for (const connection of [early, blocker]) {
        await connection.query('ROLLBACK').catch(() => undefined);
        await connection.end();
      }
    }
  });

  it('a resume (or a snapshot) whose session already carries a change the log has not made final yet sends that state once, with that change, not twice', async () => {
    const board = await newBoard();
    const live = await stream(urlA, owner, board);
    const session = await start(board);
    const labels = { [session]: 'S' };
    await reached([live], labels, 'S:active:1');
    const lastId = live.lastEventId as string;
    live.close();
    await append(session, 'assistant', 'Q1');
    await logSettled();

    // An older transaction still running keeps the next change from being final: the
    // listeners' cursor stays before it, though the session's row already shows it.
    const blocker = new Client({ connectionString: a.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT pg_current_xact_id()');
      await complete(session);
      const resumed = await stream(urlB, owner, board, '', { 'Last-Event-ID': lastId });
      // A snapshot (an id we did not issue) likewise leaves the session to the live change.
      const snapshot = await stream(urlA, owner, board, '', { 'Last-Event-ID': 'not-an-id' });
      expect([resumed.status, snapshot.status]).toEqual([200, 200]);
      await blocker.query('COMMIT');
      await reached([resumed, snapshot], labels, 'S:completed:3');
      await append(session, 'user', 'after');
      await reached([resumed, snapshot], labels, 'S:completed:4');
      const ids = (await changeIds(session)).slice(-2);
      for (const client of [resumed, snapshot]) {
        expect(seen(client, labels)).toEqual(['S:completed:3', 'S:completed:4']);
        expect(client.events.map((event) => event.id)).toEqual(ids);
      }
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end();
    }
  });

  it('a catch-up is bounded: past STREAM_MAX_PENDING_EVENTS sessions the client gets the first ones, ends, and resumes by id', async () => {
    const board = await newBoard();
    const client = await stream(urlB, owner, board);
    const first = await start(board);
    const labels: Record<string, string> = { [first]: 'S0' };
    await reached([client], labels, 'S0:active:1');
    const lastId = client.lastEventId as string;
    client.close();
    // Five sessions change (one active per board: the others are completed first).
    await complete(first);
    for (let i = 1; i <= 4; i++) {
      const id = await start(board);
      labels[id] = `S${i}`;
      await complete(id);
    }

    const cut = await stream(urlB, owner, board, '', { 'Last-Event-ID': lastId });
    await cut.waitForEnd();
    expect(seen(cut, labels)).toEqual(['S0:completed:2', 'S1:completed:2', 'S2:completed:2']);
    expect(b.app.get(OnboardingStreamHub).closed.partial).toBeGreaterThanOrEqual(1);
    const rest = await stream(urlB, owner, board, '', {
      'Last-Event-ID': cut.lastEventId as string,
    });
    await reached([rest], labels, 'S4:completed:2');
    await append(first, 'user', 'later');
    await reached([rest], labels, 'S0:completed:3');
    expect(seen(rest, labels)).toEqual(['S3:completed:2', 'S4:completed:2', 'S0:completed:3']);
  });

  it('?since= (as upstream) sends the current state of the sessions changed since then, then live', async () => {
    const board = await newBoard();
    const before = await start(board);
    await complete(before);
    await logSettled();
    const since = new Date().toISOString();
    // The database's clock stamps the log: wait until it passed `since`.
    await waitUntil(async () => {
      const { rows } = await sql.query<{ after: boolean }>('SELECT now() > $1 AS after', [since]);
      return rows[0].after;
    });
    const after = await start(board);
    const labels = { [before]: 'B', [after]: 'A' };
    const client = await stream(urlA, owner, board, `?since=${encodeURIComponent(since)}`);
    await reached([client], labels, 'A:active:1');
    await append(after, 'assistant', 'Q1');
    await reached([client], labels, 'A:active:2');
    expect(seen(client, labels)).toEqual(['A:active:1', 'A:active:2']);
  });

  it("a pruned or unknown id (or a since older than the retained log) gets the current state of the board's sessions, then live", async () => {
    const board = await newBoard();
    const old = await stream(urlA, owner, board);
    const done = await start(board);
    const labels: Record<string, string> = { [done]: 'D' };
    await reached([old], labels, 'D:active:1');
    const oldId = old.lastEventId as string;
    old.close();
    await complete(done);
    const active = await start(board);
    labels[active] = 'A';
    await logSettled();
    // Both sessions' changes are pruned: only a snapshot still has them.
    await a.app.get(ChangeLogMaintenance).prune(new Date(Date.now() + 60_000));
    expect(await changeIds(done)).toEqual([]);

    const pruned = await stream(urlB, owner, board, '', { 'Last-Event-ID': oldId });
    const garbage = await stream(urlA, owner, board, '', { 'Last-Event-ID': 'not-an-id' });
    const ancient = await stream(
      urlA,
      owner,
      board,
      `?since=${encodeURIComponent(new Date(Date.now() - 3 * 86_400_000).toISOString())}`,
    );
    const clients = [pruned, garbage, ancient];
    await reached(clients, labels, 'A:active:1');
    await append(active, 'assistant', 'Q1');
    await reached(clients, labels, 'A:active:2');
    for (const client of clients) {
      expect(seen(client, labels)).toEqual(['D:completed:2', 'A:active:1', 'A:active:2']);
      // Only the snapshot's last event carries a position; the live one its change id.
      expect(client.events[0].id).toBeUndefined();
      expect(client.events[1].id).toMatch(/^\d+$/);
      expect(client.events[2].id).toBe((await changeIds(active)).at(-1));
    }
  });

  it('a member whose board grant is revoked stops receiving at the next change; it cannot reopen', async () => {
    const board = await newBoard();
    const member = await signInMember(a.http, a.dataSource, orgId);
    await grantBoard(a.dataSource, member.memberId, board);
    const client = await stream(urlB, member, board);
    const session = await start(board);
    const labels = { [session]: 'S' };
    await reached([client], labels, 'S:active:1');

    await a.dataSource
      .getRepository(OrganizationBoardAccess)
      .delete({ organizationMemberId: member.memberId, boardId: board });
    await append(session, 'assistant', 'hidden question');
    await client.waitForEnd();
    expect(seen(client, labels)).toEqual(['S:active:1']);
    expect(b.app.get(OnboardingStreamHub).closed.membership).toBeGreaterThanOrEqual(1);
    expect((await SseClient.open(urlB, path(board), member.headers)).status).toBe(403);
  });

  it('does the same database work per change with 1 and with 20 connected clients', async () => {
    const board = await newBoard();
    const reader = await signInMember(a.http, a.dataSource, orgId, { allBoardsRead: true });
    const session = await start(board);
    const labels = { [session]: 'S' };
    const hub = a.app.get(OnboardingStreamHub);
    // The streams of earlier tests are closed: wait until the hub saw them go.
    await waitUntil(() => hub.clientCount === 0, { what: () => `${hub.clientCount} clients` });
    let messages = 1;

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
        messages++;
        try {
          await sql.query(
            `UPDATE board_onboarding_sessions
                SET messages = messages || jsonb_build_array(jsonb_build_object(
                      'role', 'assistant', 'content', $2::text, 'timestamp', '2026-01-01T00:00:00'))
              WHERE id = $1`,
            [session, `question ${messages}`],
          );
          await reached(clients, labels, `S:active:${messages}`);
        } finally {
          Client.prototype.query = original;
        }
        counts.push(count);
      }
      // Unrelated background work can only add: the minimum is the change's.
      return Math.min(...counts);
    };

    const single = [await stream(urlA, owner, board)];
    await waitUntil(() => hub.clientCount === 1, { what: () => `${hub.clientCount} clients` });
    const withOne = await queriesPerChange(single);
    const many: SseClient[] = [...single];
    for (let i = 1; i < 20; i++) many.push(await stream(urlA, i % 2 ? reader : owner, board));
    await waitUntil(() => hub.clientCount === 20, { what: () => `${hub.clientCount} clients` });
    const withTwenty = await queriesPerChange(many);

    expect(withOne).toBeGreaterThan(0);
    expect(withTwenty).toBe(withOne);
    for (const client of many) client.close();
    await waitUntil(() => hub.clientCount === 0, { what: () => `${hub.clientCount} clients` });
  });

  it('ends when its board is deleted (with or without sessions), on every instance; reopening is 404', async () => {
    const empty = await newBoard();
    const withSession = await newBoard();
    const survivor = await newBoard();
    await start(withSession);
    const onEmptyA = await stream(urlA, owner, empty);
    const onEmptyB = await stream(urlB, owner, empty);
    const onSession = await stream(urlB, owner, withSession);
    const onSurvivor = await stream(urlA, owner, survivor);

    await a.http.delete(`/api/v1/boards/${empty}`).set(owner.headers).expect(200);
    await a.http.delete(`/api/v1/boards/${withSession}`).set(owner.headers).expect(200);
    await onEmptyA.waitForEnd();
    await onEmptyB.waitForEnd();
    await onSession.waitForEnd();
    // The board's sessions went with it: no event for them.
    expect(onSession.events).toEqual([]);
    // Other boards' streams go on.
    const session = await start(survivor);
    await reached([onSurvivor], { [session]: 'S' }, 'S:active:1');
    expect(onSurvivor.ended).toBe(false);
    expect((await SseClient.open(urlA, path(empty), owner.headers)).status).toBe(404);
  });
});
