/**
 * The gateway sessions routes (contract §1.1) over HTTP against a real OpenClaw gateway: a
 * gateway main agent is provisioned by the engine, then status, sessions, one session, commands
 * and history are read through the API; a message posted to the main session shows up in its
 * history (with the offline model's reply); the URL form tests a gateway before it is saved.
 * Finally the organization is deleted and its main agent is gone from the gateway.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Board } from '../../src/boards/entities/board.entity';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import type { ChatMessage, GatewayMethods } from '../../src/openclaw/gateway-methods';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { CLIENT_METHODS } from '../../src/openclaw/protocol';
import { mainAgentId, mainSessionKey } from '../../src/provisioning/agent-identity';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { buildBoard, buildGateway, signIn, type SignedInUser } from '../support/builders';
import { eventually, eventuallyExpect } from '../support/eventually';
import { createTestApp, type TestApp } from '../support/test-app';

const API = '/api/v1/gateways';
const GATEWAY_URL = process.env.MC_IT_GATEWAY_URL ?? '';
const GATEWAY_TOKEN = process.env.MC_IT_GATEWAY_TOKEN ?? '';
const RUN_DIR = process.env.MC_IT_GATEWAY_RUN_DIR ?? '';
const MODEL_REPLY = process.env.MC_IT_FAKE_MODEL_REPLY ?? '';
/** A sent message appears in chat.history after 1.5–2 s; the model reply a little later. */
const SETTLE = { timeoutMs: 30_000, intervalMs: 250 };

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((block) =>
      typeof block === 'object' && block !== null && 'text' in block
        ? String((block as { text: unknown }).text)
        : '',
    )
    .join('');
}

let t: TestApp;
let owner: SignedInUser;
let gateway: Gateway;
let board: Board;
let methods: GatewayMethods;
let mainKey: string;

beforeAll(async () => {
  t = await createTestApp();
  owner = await signIn(t.http, t.dataSource);
  gateway = await buildGateway(t.dataSource, owner.organizationId, {
    name: 'Sessions Gateway',
    url: GATEWAY_URL,
    token: GATEWAY_TOKEN,
    workspaceRoot: join(RUN_DIR, 'workspaces'),
  });
  board = await buildBoard(t.dataSource, owner.organizationId, gateway.id);
  methods = t.app.get(OpenClawGatewayService).methods(gateway);
  const outcome = await t.app
    .get(ProvisioningService)
    .ensureMainAgent(gateway, { action: 'provision', notify: false });
  expect(outcome).toMatchObject({ status: 'provisioned' });
  mainKey = mainSessionKey(gateway.id);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

describe('gateway sessions on a real gateway', () => {
  it("status: connected, with the gateway's sessions and the main session", async () => {
    const res = await t.http
      .get(`${API}/status`)
      .query({ board_id: board.id })
      .set(owner.headers)
      .expect(200);
    expect(res.body).toMatchObject({ connected: true, error: null, main_session_error: null });
    expect(res.body.sessions_count).toBe(res.body.sessions.length);
    expect(res.body.sessions.map((s: { key: string }) => s.key)).toContain(mainKey);
    expect(res.body.main_session).toMatchObject({ key: mainKey, agentId: mainAgentId(gateway.id) });
  });

  it('status, URL form: a gateway tested before it is saved; a wrong token is reported', async () => {
    const ok = await t.http
      .get(`${API}/status`)
      .query({ gateway_url: GATEWAY_URL, gateway_token: GATEWAY_TOKEN })
      .set(owner.headers)
      .expect(200);
    expect(ok.body).toMatchObject({ connected: true, main_session: null, error: null });
    expect(ok.body.sessions.map((s: { key: string }) => s.key)).toContain(mainKey);

    const wrong = await t.http
      .get(`${API}/status`)
      .query({ gateway_url: GATEWAY_URL, gateway_token: `wrong-${randomUUID()}` })
      .set(owner.headers)
      .expect(200);
    expect(wrong.body).toMatchObject({ connected: false, sessions: null });
    expect(wrong.body.error).toMatch(/token/i);
  });

  it('sessions and one session by key', async () => {
    const list = await t.http
      .get(`${API}/sessions`)
      .query({ board_id: board.id })
      .set(owner.headers)
      .expect(200);
    expect(list.body.main_session).toMatchObject({ key: mainKey });
    const one = await t.http
      .get(`${API}/sessions/${encodeURIComponent(mainKey)}`)
      .query({ board_id: board.id })
      .set(owner.headers)
      .expect(200);
    const listed = list.body.sessions.find((s: { key: string }) => s.key === mainKey);
    // The same session (each answer carries its own `snapshotAt`).
    expect(one.body.session).toMatchObject({
      key: mainKey,
      sessionId: listed.sessionId,
      agentId: listed.agentId,
      label: listed.label,
    });
    const missing = await t.http
      .get(`${API}/sessions/${encodeURIComponent(`agent:mc-nobody-${randomUUID()}:main`)}`)
      .query({ board_id: board.id })
      .set(owner.headers)
      .expect(404);
    expect(missing.body.detail).toBe('Session not found');
  });

  it("commands: what the board's gateway advertises, else what the client uses", async () => {
    const fromGateway = await t.http
      .get(`${API}/commands`)
      .query({ board_id: board.id })
      .set(owner.headers)
      .expect(200);
    expect(fromGateway.body).toMatchObject({ protocol_version: 4, source: 'gateway' });
    expect(fromGateway.body.methods).toEqual(expect.arrayContaining([...CLIENT_METHODS]));
    expect(fromGateway.body.methods.length).toBeGreaterThan(CLIENT_METHODS.length);
    expect(fromGateway.body.events).toEqual(expect.arrayContaining(['chat', 'agent', 'tick']));
    const fromClient = await t.http.get(`${API}/commands`).set(owner.headers).expect(200);
    expect(fromClient.body).toMatchObject({ source: 'client', methods: [...CLIENT_METHODS] });
  });

  it('a message posted to the main session appears in its history, as the gateway keeps it', async () => {
    const text = `hello from the sessions suite ${randomUUID()}`;
    await t.http
      .post(`${API}/sessions/${encodeURIComponent(mainKey)}/message`)
      .query({ board_id: board.id })
      .set(owner.headers)
      .send({ content: text })
      .expect(200, { ok: true });

    const history = async (): Promise<ChatMessage[]> =>
      (
        await t.http
          .get(`${API}/sessions/${encodeURIComponent(mainKey)}/history`)
          .query({ board_id: board.id })
          .set(owner.headers)
          .expect(200)
      ).body.history as ChatMessage[];
    const sent = await eventually(
      async () => (await history()).find((m) => m.role === 'user' && textOf(m.content) === text),
      SETTLE,
    );
    expect(sent.timestamp).toEqual(expect.any(Number));
    // The offline model answers; then the history is what the gateway itself returns.
    await eventuallyExpect(async () => {
      const messages = await history();
      const reply = messages.find((m) => m.role === 'assistant');
      expect(textOf(reply?.content)).toContain(MODEL_REPLY);
      expect(messages).toEqual((await methods.chatHistory({ sessionKey: mainKey })).messages);
    }, SETTLE);
  }, 60_000);

  it('deleting the organization removes its main agent from the gateway', async () => {
    const res = await t.http.delete('/api/v1/organizations/me').set(owner.headers).expect(200);
    expect(res.body).toEqual({ ok: true, agents_removed: 1, agent_cleanup_failures: [] });
    await eventuallyExpect(async () => {
      const listed = await methods.agentsList();
      expect(listed.agents.map((agent) => agent.id)).not.toContain(mainAgentId(gateway.id));
    }, SETTLE);
  }, 60_000);
});
