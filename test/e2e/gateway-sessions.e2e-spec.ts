/**
 * Gateway session inspection (contract §1.1 E1–E6) over HTTP on a real PostgreSQL, against the
 * in-process fake gateway for what a real one cannot be made to do on demand (dead, refusing,
 * failing one call). Rules proven here: status never fails on a gateway error, the URL form is
 * admin-only and subject to the dial policy, GETs never write to the gateway (no
 * `sessions.patch`), sending needs admin + the board in the active organization + write access,
 * and every route answers 401/403/404/422 as the access rules say. The happy paths against a
 * real gateway are in test/gateway/sessions.gateway-spec.ts.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { Board } from '../../src/boards/entities/board.entity';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import { sealGatewayToken } from '../../src/common/secrets/gateway-token';
import { mainSessionKey } from '../../src/provisioning/agent-identity';
import { uniqueSessionLabel } from '../../src/openclaw/session-label';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  buildMember,
  buildOrganization,
  grantBoard,
  signIn,
  SignedInUser,
  signInMember,
} from '../support/builders';
import {
  MAX_CONCURRENT_PROBES,
  OpenClawGatewayService,
} from '../../src/openclaw/openclaw-gateway.service';
import { waitUntil } from '../support/eventually';
import { FakeGateway, FakeRpcError } from '../support/fake-gateway';
import {
  FAKE_GATEWAY_TOKEN,
  gatewayFieldsFor,
  serveOpenClawState,
  startOpenClawFake,
} from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

const API = '/api/v1/gateways';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const HISTORY = [
  {
    role: 'user',
    content: [{ type: 'text', text: 'hello' }],
    timestamp: 1764000000000,
    idempotencyKey: 'k:user',
    __openclaw: { seq: 1 },
  },
  {
    role: 'assistant',
    content: [
      { type: 'thinking', thinking: '…' },
      { type: 'text', text: 'hi there' },
    ],
    timestamp: 1764000001000,
    stopReason: 'stop',
  },
];

describe('gateway sessions (in-process gateway)', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let state: ReturnType<typeof serveOpenClawState>;
  let owner: SignedInUser;
  let gateway: Gateway;
  let board: Board;
  let mainKey: string;
  let mainAgentName: string;
  const otherSession = { key: 'agent:mc-worker:main', label: 'Worker', updatedAt: 1764000000000 };

  /** sessions.list answers an error the client does not retry. */
  const failSessionsList = () => {
    fake.methods['sessions.list'] = () => {
      throw new FakeRpcError({ code: 'INVALID_REQUEST', message: 'store exploded' });
    };
  };
  const listed = () => [{ key: mainKey, label: 'Main', kind: 'direct' }, otherSession];
  const methodsCalled = () => fake.requests.map((r) => r.method);

  beforeAll(async () => {
    t = await createTestApp({ OPENCLAW_CONNECT_TIMEOUT_MS: '3000' });
    ({ fake, state } = await startOpenClawFake());
    owner = await signIn(t.http, t.dataSource);
    gateway = await buildGateway(t.dataSource, owner.organizationId, gatewayFieldsFor(fake));
    board = await buildBoard(t.dataSource, owner.organizationId, gateway.id);
    const { agent } = await buildAgent(t.dataSource, gateway.id, null, { name: 'Main Agent' });
    mainAgentName = agent.name;
    mainKey = mainSessionKey(gateway.id);
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    state.failures.clear();
    fake.methods['sessions.list'] = () => ({ count: 2, sessions: listed(), hasMore: false });
    fake.methods['chat.history'] = (p) => ({ sessionKey: p.sessionKey, messages: HISTORY });
    fake.methods['chat.send'] = (p) => ({ runId: p.idempotencyKey, status: 'started' });
  });

  describe('E1 GET /gateways/status', () => {
    it("a board's gateway: connected, its sessions and main session, and nothing written", async () => {
      const res = await t.http
        .get(`${API}/status`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(200);
      expect(res.body).toEqual({
        connected: true,
        gateway_url: `${fake.url}/`,
        sessions_count: 2,
        sessions: listed(),
        main_session: listed()[0],
        main_session_error: null,
        error: null,
      });
      expect(methodsCalled()).toEqual(['sessions.list']);
    });

    it('a main session the gateway does not have is reported, not created', async () => {
      fake.methods['sessions.list'] = () => ({ sessions: [otherSession] });
      const res = await t.http
        .get(`${API}/status`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(200);
      expect(res.body).toMatchObject({ connected: true, sessions_count: 1, main_session: null });
      expect(res.body.main_session_error).toContain(mainKey);
      expect(methodsCalled()).not.toContain('sessions.patch');
    });

    it('a gateway that fails sessions.list: 200 connected false with a short error', async () => {
      failSessionsList();
      const res = await t.http
        .get(`${API}/status`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(200);
      expect(res.body).toEqual({
        connected: false,
        gateway_url: `${fake.url}/`,
        sessions_count: null,
        sessions: null,
        main_session: null,
        main_session_error: null,
        error: 'store exploded',
      });
    });

    it('a dead gateway: 200 connected false naming the cause', async () => {
      const deadGateway = await buildGateway(t.dataSource, owner.organizationId, {
        url: `ws://127.0.0.1:${await closedPort()}`,
        token: 'x',
        disableDevicePairing: true,
      });
      const deadBoard = await buildBoard(t.dataSource, owner.organizationId, deadGateway.id);
      const res = await t.http
        .get(`${API}/status`)
        .query({ board_id: deadBoard.id })
        .set(owner.headers)
        .expect(200);
      expect(res.body).toMatchObject({ connected: false, sessions: null, sessions_count: null });
      expect(res.body.error).toMatch(/ECONNREFUSED/);
      expect(res.body.error.length).toBeLessThanOrEqual(300);
    });

    it('the URL form (testing a gateway before saving it) works for an org admin', async () => {
      const res = await t.http
        .get(`${API}/status`)
        .query({
          gateway_url: fake.url,
          gateway_token: FAKE_GATEWAY_TOKEN,
          gateway_disable_device_pairing: 'true',
          gateway_allow_insecure_tls: 'false',
          board_id: 'null',
        })
        .set(owner.headers)
        .expect(200);
      expect(res.body).toMatchObject({
        connected: true,
        sessions_count: 2,
        main_session: null,
        main_session_error: null,
      });
    });

    it('the URL form sends the given token as is: a sealed value is never decrypted with the server key', async () => {
      // Someone holding a sealed token (read from the database) must not get the server to open
      // it and send the plaintext to a URL of their choice.
      const sealed = sealGatewayToken(FAKE_GATEWAY_TOKEN)!;
      const connectsBefore = fake.connects.length;
      const res = await t.http
        .get(`${API}/status`)
        .query({
          gateway_url: fake.url,
          gateway_token: sealed,
          gateway_disable_device_pairing: 'true',
        })
        .set(owner.headers)
        .expect(200);
      expect(res.body.connected).toBe(false);
      const connects = fake.connects.slice(connectsBefore);
      expect(connects.length).toBeGreaterThan(0);
      for (const connect of connects) {
        expect((connect.params.auth as { token?: string } | undefined)?.token).toBe(sealed);
      }
    });

    it('the URL form keeps no connection: many tests of distinct URLs leave no socket or pooled client', async () => {
      const gateways = t.app.get(OpenClawGatewayService);
      const pooledBefore = gateways.openClients;
      const socketsBefore = fake.sockets.size;
      for (let i = 0; i < 12; i++) {
        const res = await t.http
          .get(`${API}/status`)
          .query({ gateway_url: `${fake.url}/?probe=${i}`, gateway_token: FAKE_GATEWAY_TOKEN })
          .set(owner.headers)
          .expect(200);
        expect(res.body.connected).toBe(true);
      }
      expect(gateways.openClients).toBe(pooledBefore);
      await waitUntil(() => fake.sockets.size === socketsBefore, {
        what: () => `${fake.sockets.size} sockets open, ${socketsBefore} before`,
      });
    });

    it('the URL form runs a bounded number of connection tests at once; the rest are told to retry', async () => {
      // A gateway slow to greet keeps each test's connection open while the others arrive.
      const slow = await FakeGateway.start({ token: FAKE_GATEWAY_TOKEN, challengeDelayMs: 1500 });
      try {
        const responses = await Promise.all(
          Array.from({ length: MAX_CONCURRENT_PROBES + 1 }, (_, i) =>
            t.http
              .get(`${API}/status`)
              .query({ gateway_url: `${slow.url}/?probe=${i}`, gateway_token: FAKE_GATEWAY_TOKEN })
              .set(owner.headers)
              .expect(200),
          ),
        );
        const refused = responses.filter((res) => res.body.connected === false);
        expect(refused).toHaveLength(1);
        expect(refused[0].body.error).toMatch(/connection tests are already running; try again/);
        expect(slow.upgrades).toBe(MAX_CONCURRENT_PROBES);
      } finally {
        await slow.stop();
      }
    });

    it('the URL form with a wrong token: connected false, the auth failure named', async () => {
      const res = await t.http
        .get(`${API}/status`)
        .query({
          gateway_url: fake.url,
          gateway_token: 'wrong',
          gateway_disable_device_pairing: 'true',
        })
        .set(owner.headers)
        .expect(200);
      expect(res.body.connected).toBe(false);
      expect(res.body.error).toMatch(/token/i);
      expect(res.body.error).not.toContain('wrong');
    });

    it('the URL form is subject to the dial policy (cloud metadata is never dialled)', async () => {
      const res = await t.http
        .get(`${API}/status`)
        .query({ gateway_url: 'ws://169.254.169.254:18789', gateway_token: 't' })
        .set(owner.headers)
        .expect(200);
      expect(res.body.connected).toBe(false);
      expect(res.body.error).toMatch(/refused|not allowed/i);
    });

    it('GATEWAY_ALLOWED_NETWORKS narrows the URL form too', async () => {
      const upgrades = fake.upgrades;
      const narrow = await createTestApp(
        { GATEWAY_ALLOWED_NETWORKS: '10.0.0.0/8' },
        { sharedDatabaseUrl: t.databaseUrl },
      );
      try {
        const res = await narrow.http
          .get(`${API}/status`)
          .query({ gateway_url: fake.url, gateway_token: FAKE_GATEWAY_TOKEN })
          .set(owner.headers)
          .expect(200);
        expect(res.body.connected).toBe(false);
        expect(res.body.error).toMatch(/GATEWAY_ALLOWED_NETWORKS|not allowed|refused/i);
      } finally {
        await narrow.close();
      }
      expect(fake.upgrades).toBe(upgrades);
    });

    it('a URL that is not ws:// or wss:// is a 422', async () => {
      const res = await t.http
        .get(`${API}/status`)
        .query({ gateway_url: 'http://127.0.0.1:1' })
        .set(owner.headers)
        .expect(422);
      expect(res.body.detail[0]).toMatchObject({ loc: ['query', 'gateway_url'] });
    });

    it('neither board nor URL: 422 with the contract text ("null" counts as absent)', async () => {
      const res = await t.http
        .get(`${API}/status`)
        .query({ board_id: 'null', gateway_url: '' })
        .set(owner.headers)
        .expect(422);
      expect(res.body.detail).toBe('board_id or gateway_url is required');
    });

    it('a board without a usable gateway URL: 422 "Gateway url is required"', async () => {
      const blank = await buildGateway(t.dataSource, owner.organizationId, { url: '' });
      const blankBoard = await buildBoard(t.dataSource, owner.organizationId, blank.id);
      const res = await t.http
        .get(`${API}/status`)
        .query({ board_id: blankBoard.id })
        .set(owner.headers)
        .expect(422);
      expect(res.body.detail).toBe('Gateway url is required');
    });
  });

  describe('E2–E4 reads', () => {
    it('E2 lists the sessions and the main session without writing', async () => {
      const res = await t.http
        .get(`${API}/sessions`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(200);
      expect(res.body).toEqual({ sessions: listed(), main_session: listed()[0] });
      expect(methodsCalled()).toEqual(['sessions.list']);
    });

    it('E2 on a failing gateway is a 502 naming the call', async () => {
      failSessionsList();
      const res = await t.http
        .get(`${API}/sessions`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(502);
      expect(res.body.detail).toBe('Gateway sessions list failed: store exploded');
    });

    it('E2 finds a main session past the first page among its agent’s sessions', async () => {
      fake.methods['sessions.list'] = (p) =>
        p.agentId
          ? { sessions: [listed()[0]], hasMore: false }
          : { sessions: [otherSession], hasMore: true };
      const res = await t.http
        .get(`${API}/sessions`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(200);
      expect(res.body.main_session).toEqual(listed()[0]);
      expect(fake.requests.map((r) => r.params)).toEqual([
        {},
        { agentId: `mc-gateway-${gateway.id}` },
      ]);
    });

    it('E3 returns one session by its key (with ":" in the path)', async () => {
      const res = await t.http
        .get(`${API}/sessions/${encodeURIComponent(otherSession.key)}`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(200);
      expect(res.body).toEqual({ session: otherSession });
      expect(methodsCalled()).not.toContain('sessions.patch');
    });

    it('E3 of a key the gateway does not list: 404 "Session not found", main session not created', async () => {
      fake.methods['sessions.list'] = () => ({ sessions: [otherSession] });
      for (const key of ['agent:nobody:main', mainKey]) {
        const res = await t.http
          .get(`${API}/sessions/${encodeURIComponent(key)}`)
          .query({ board_id: board.id })
          .set(owner.headers)
          .expect(404);
        expect(res.body.detail).toBe('Session not found');
      }
      expect(methodsCalled()).not.toContain('sessions.patch');
    });

    it('E4 returns the gateway’s messages unchanged', async () => {
      const res = await t.http
        .get(`${API}/sessions/${encodeURIComponent(mainKey)}/history`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(200);
      expect(res.body).toEqual({ history: HISTORY });
      expect(fake.requests).toEqual([{ method: 'chat.history', params: { sessionKey: mainKey } }]);
    });

    it('E4 without a board: 422 with the contract text', async () => {
      const res = await t.http
        .get(`${API}/sessions/${encodeURIComponent(mainKey)}/history`)
        .set(owner.headers)
        .expect(422);
      expect(res.body.detail).toBe('board_id or gateway_url is required');
    });

    it('session keys are bounded and must be printable (422)', async () => {
      const long = `agent:${'x'.repeat(600)}:main`;
      const res = await t.http
        .get(`${API}/sessions/${encodeURIComponent(long)}/history`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(422);
      expect(res.body.detail[0]).toMatchObject({
        type: 'string_too_long',
        loc: ['path', 'session_id'],
      });
      await t.http
        .get(`${API}/sessions/${encodeURIComponent('agent:a\tb:main')}`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(422);
      expect(fake.requests).toEqual([]);
    });
  });

  describe('E5 POST /gateways/sessions/{id}/message', () => {
    it('sends to a session (deliver false) without touching its label', async () => {
      await t.http
        .post(`${API}/sessions/${encodeURIComponent(otherSession.key)}/message`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .send({ content: '  hello worker  ' })
        .expect(200, { ok: true });
      expect(fake.requests).toEqual([
        {
          method: 'chat.send',
          params: {
            sessionKey: otherSession.key,
            message: 'hello worker',
            deliver: false,
            idempotencyKey: expect.any(String),
          },
        },
      ]);
    });

    it('ensures the main session (its engine label) before sending to it: an explicit write', async () => {
      await t.http
        .post(`${API}/sessions/${encodeURIComponent(mainKey)}/message`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .send({ content: 'hello main' })
        .expect(200);
      expect(fake.requests.map((r) => [r.method, r.params])).toEqual([
        ['sessions.patch', { key: mainKey, label: uniqueSessionLabel(mainAgentName, mainKey) }],
        ['chat.send', expect.objectContaining({ sessionKey: mainKey, message: 'hello main' })],
      ]);
    });

    it('a refused send is a 502 naming the operation', async () => {
      fake.methods['chat.send'] = () => {
        throw new FakeRpcError({ code: 'INVALID_REQUEST', message: 'Agent "x" no longer exists' });
      };
      const res = await t.http
        .post(`${API}/sessions/${encodeURIComponent(otherSession.key)}/message`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .send({ content: 'hi' })
        .expect(502);
      expect(res.body.detail).toMatch(/^Gateway session message failed: .*no longer exists/);
    });

    it('an empty or missing content is a 422 and nothing is sent', async () => {
      for (const body of [{}, { content: '   ' }]) {
        await t.http
          .post(`${API}/sessions/${encodeURIComponent(otherSession.key)}/message`)
          .query({ board_id: board.id })
          .set(owner.headers)
          .send(body)
          .expect(422);
      }
      expect(fake.requests).toEqual([]);
    });

    it('an admin needs write access to the board (upstream later fix + board write)', async () => {
      const reader = await signInMember(t.http, t.dataSource, owner.organizationId, {
        role: 'admin',
        allBoardsRead: true,
      });
      const writer = await signInMember(t.http, t.dataSource, owner.organizationId, {
        role: 'admin',
      });
      await grantBoard(t.dataSource, writer.memberId, board.id, { canRead: true, canWrite: true });
      const send = (user: SignedInUser) =>
        t.http
          .post(`${API}/sessions/${encodeURIComponent(otherSession.key)}/message`)
          .query({ board_id: board.id })
          .set(user.headers)
          .send({ content: 'hi' });
      expect((await send(reader)).body.detail).toBe('Board access denied');
      await send(writer).expect(200);
      expect(methodsCalled()).toEqual(['chat.send']);
    });

    it('a member with board write access but no admin role: 403', async () => {
      const member = await signInMember(t.http, t.dataSource, owner.organizationId, {
        allBoardsWrite: true,
      });
      await t.http
        .post(`${API}/sessions/${encodeURIComponent(otherSession.key)}/message`)
        .query({ board_id: board.id })
        .set(member.headers)
        .send({ content: 'hi' })
        .expect(403);
      expect(fake.requests).toEqual([]);
    });

    it('a board of another organization (even one the caller belongs to) is a 404', async () => {
      // The caller owns the other organization too, but it is not the active one.
      const other = await buildOrganization(t.dataSource);
      await buildMember(t.dataSource, other.id, owner.userId, {
        role: 'owner',
        allBoardsRead: true,
        allBoardsWrite: true,
      });
      const otherGateway = await buildGateway(t.dataSource, other.id, gatewayFieldsFor(fake));
      const otherBoard = await buildBoard(t.dataSource, other.id, otherGateway.id);
      const res = await t.http
        .post(`${API}/sessions/${encodeURIComponent(otherSession.key)}/message`)
        .query({ board_id: otherBoard.id })
        .set(owner.headers)
        .send({ content: 'hi' })
        .expect(404);
      expect(res.body.detail).toBe('Board not found');
      expect(fake.requests).toEqual([]);
    });
  });

  describe('E6 GET /gateways/commands', () => {
    it('without a board: the protocol and the methods/events this client uses', async () => {
      const res = await t.http.get(`${API}/commands`).set(owner.headers).expect(200);
      expect(res.body).toMatchObject({ protocol_version: 4, source: 'client' });
      expect(res.body.methods).toEqual(expect.arrayContaining(['chat.send', 'sessions.list']));
      expect(res.body.events).toEqual(expect.arrayContaining(['chat', 'tick']));
      expect(fake.requests).toEqual([]);
    });

    it('with a board: what its gateway advertised in hello-ok', async () => {
      const res = await t.http
        .get(`${API}/commands`)
        .query({ board_id: board.id })
        .set(owner.headers)
        .expect(200);
      expect(res.body).toEqual({
        protocol_version: 4,
        methods: Object.keys(fake.methods),
        events: ['tick', 'chat'],
        source: 'gateway',
      });
    });

    it('with a dead gateway: 502', async () => {
      const deadGateway = await buildGateway(t.dataSource, owner.organizationId, {
        url: `ws://127.0.0.1:${await closedPort()}`,
        disableDevicePairing: true,
      });
      const deadBoard = await buildBoard(t.dataSource, owner.organizationId, deadGateway.id);
      const res = await t.http
        .get(`${API}/commands`)
        .query({ board_id: deadBoard.id })
        .set(owner.headers)
        .expect(502);
      expect(res.body.detail).toMatch(/^Gateway connect failed: .*ECONNREFUSED/);
    });
  });

  it('the static paths win over the gateways module /gateways/:gatewayId (UUID) route, which still works', async () => {
    await t.http.get(`${API}/commands`).set(owner.headers).expect(200);
    const status = await t.http
      .get(`${API}/status`)
      .query({ board_id: board.id })
      .set(owner.headers)
      .expect(200);
    expect(status.body.connected).toBe(true);
    await t.http
      .get(`${API}/sessions`)
      .query({ board_id: board.id })
      .set(owner.headers)
      .expect(200);
    const got = await t.http.get(`${API}/${gateway.id}`).set(owner.headers).expect(200);
    expect(got.body.id).toBe(gateway.id);
    const missing = await t.http.get(`${API}/${randomUUID()}`).set(owner.headers).expect(404);
    expect(missing.body.detail).toBe('Gateway not found');
  });

  describe('access on every route', () => {
    type Call = { method: 'get' | 'post'; path: string; body?: object };
    const key = () => encodeURIComponent(otherSession.key);
    const ROUTES: Record<string, (boardId: string) => Call> = {
      status: (b) => ({ method: 'get', path: `${API}/status?board_id=${b}` }),
      sessions: (b) => ({ method: 'get', path: `${API}/sessions?board_id=${b}` }),
      session: (b) => ({ method: 'get', path: `${API}/sessions/${key()}?board_id=${b}` }),
      history: (b) => ({ method: 'get', path: `${API}/sessions/${key()}/history?board_id=${b}` }),
      message: (b) => ({
        method: 'post',
        path: `${API}/sessions/${key()}/message?board_id=${b}`,
        body: { content: 'hi' },
      }),
      commands: (b) => ({ method: 'get', path: `${API}/commands?board_id=${b}` }),
    };
    const send = (call: Call, headers?: Record<string, string>) => {
      let req = t.http[call.method](call.path);
      if (headers) req = req.set(headers);
      return call.body ? req.send(call.body) : req;
    };

    it.each(Object.keys(ROUTES))('%s: anonymous 401', async (route) => {
      await send(ROUTES[route](board.id)).expect(401);
    });

    it.each(Object.keys(ROUTES))('%s: a plain member (even with all boards) 403', async (route) => {
      const member = await signInMember(t.http, t.dataSource, owner.organizationId, {
        allBoardsRead: true,
        allBoardsWrite: true,
      });
      await send(ROUTES[route](board.id), member.headers).expect(403);
      expect(fake.requests).toEqual([]);
    });

    it.each(Object.keys(ROUTES))('%s: a board of another organization 404', async (route) => {
      const other = await buildOrganization(t.dataSource);
      const otherBoard = await buildBoard(
        t.dataSource,
        other.id,
        (await buildGateway(t.dataSource, other.id, gatewayFieldsFor(fake))).id,
      );
      const res = await send(ROUTES[route](otherBoard.id), owner.headers).expect(404);
      expect(res.body.detail).toBe('Board not found');
      expect(fake.requests).toEqual([]);
    });

    it.each(Object.keys(ROUTES))('%s: an unknown board 404', async (route) => {
      await send(ROUTES[route](randomUUID()), owner.headers).expect(404);
    });

    it.each(Object.keys(ROUTES))('%s: a bad board UUID 422', async (route) => {
      const res = await send(ROUTES[route]('not-a-uuid'), owner.headers).expect(422);
      expect(res.body.detail[0]).toMatchObject({
        type: 'uuid_parsing',
        loc: ['query', 'board_id'],
      });
    });

    it('the URL form of status is admin-only: a member gets 403 and nothing is dialled', async () => {
      const member = await signInMember(t.http, t.dataSource, owner.organizationId);
      const upgrades = fake.upgrades;
      await t.http
        .get(`${API}/status`)
        .query({ gateway_url: fake.url, gateway_token: FAKE_GATEWAY_TOKEN })
        .set(member.headers)
        .expect(403);
      expect(fake.upgrades).toBe(upgrades);
    });
  });
});
