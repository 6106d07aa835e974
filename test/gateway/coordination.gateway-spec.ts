/**
 * Coordination (contract C4–C9) over HTTP against a real OpenClaw gateway: a gateway main agent,
 * a board lead and a worker are provisioned by the engine; a nudge, an ask-user and a lead
 * message then appear in their sessions' chat.history with the contract's text; a SOUL written
 * through the API is on the gateway and reads back; a nudge whose chat.send answer is lost (a
 * proxy cuts the connection right after the request) appears once; a broadcast over three
 * boards, one of which cannot be reached, reports that board's error and delivers to the others.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Agent } from '../../src/agents/entities/agent.entity';
import type { Board } from '../../src/boards/entities/board.entity';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import type { GatewayMethods } from '../../src/openclaw/gateway-methods';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { leadSessionKey, sessionKeyFor } from '../../src/provisioning/agent-identity';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import {
  buildBoard,
  buildGateway,
  buildLead,
  buildOrganization,
  buildWorker,
} from '../support/builders';
import { eventually } from '../support/eventually';
import { createTestApp, type TestApp } from '../support/test-app';
import { TcpProxy } from './support/tcp-proxy';

const API = '/api/v1';
const BASE_URL = 'http://mc.coordination.test:8000';
const GATEWAY_URL = process.env.MC_IT_GATEWAY_URL ?? '';
const GATEWAY_TOKEN = process.env.MC_IT_GATEWAY_TOKEN ?? '';
const RUN_DIR = process.env.MC_IT_GATEWAY_RUN_DIR ?? '';
/** A sent message appears in chat.history after 1.5–2 s; the model reply a little later. */
const SETTLE = { timeoutMs: 30_000, intervalMs: 250 };
/** The coordination budget here: a board that cannot be reached fails within it. */
const BUDGET_MS = 8_000;

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
let provisioning: ProvisioningService;
let methods: GatewayMethods;
let organizationId: string;
let gateway: Gateway;
let board: Board;
let main: { agent: Agent; token: string };
let lead: { agent: Agent; token: string };
let worker: { agent: Agent; token: string };
const run = randomUUID().slice(0, 8);

/** Provisions a row on the real gateway; returns the row and the token its files carry. */
async function provisioned(agentId: string) {
  const outcome = await provisioning.provisionAgent(
    { organizationId, agentId },
    { action: 'provision', wake: false },
  );
  expect(outcome).toMatchObject({ status: 'provisioned' });
  return { agent: outcome.agent, token: outcome.token as string };
}

beforeAll(async () => {
  t = await createTestApp({
    BASE_URL,
    COORDINATION_RETRY_TIMEOUT_MS: String(BUDGET_MS),
  });
  provisioning = t.app.get(ProvisioningService);
  organizationId = (await buildOrganization(t.dataSource)).id;
  gateway = await buildGateway(t.dataSource, organizationId, {
    name: 'Coordination Gateway',
    url: GATEWAY_URL,
    token: GATEWAY_TOKEN,
    workspaceRoot: join(RUN_DIR, 'workspaces'),
  });
  methods = t.app.get(OpenClawGatewayService).methods(gateway);
  board = await buildBoard(t.dataSource, organizationId, gateway.id, {
    name: 'Coordination Board',
  });

  const mainOutcome = await provisioning.ensureMainAgent(gateway, {
    action: 'provision',
    notify: false,
  });
  expect(mainOutcome).toMatchObject({ status: 'provisioned' });
  main = { agent: mainOutcome.agent, token: mainOutcome.token as string };
  const leadResult = await provisioning.ensureBoardLead(
    { organizationId, boardId: board.id },
    { agentName: 'Coordination Lead' },
  );
  expect(leadResult.outcome).toMatchObject({ status: 'provisioned' });
  lead = { agent: leadResult.lead, token: leadResult.outcome!.token as string };
  const row = await buildWorker(t.dataSource, gateway.id, board.id, { name: 'Coord Worker' });
  worker = await provisioned(row.agent.id);
}, 180_000);

afterAll(async () => {
  await t?.close();
});

const as = (token: string) => ({ 'X-Agent-Token': token });

/** The user messages of a session whose text is exactly `text`, once the gateway settled. */
async function userMessagesOnceSettled(sessionKey: string, text: string) {
  return eventually(async () => {
    const history = await methods.chatHistory({ sessionKey, limit: 100 });
    const matching = history.messages.filter(
      (m) => m.role === 'user' && textOf(m.content) === text,
    );
    // The reply (the offline model's, or the failed-run marker) ends the turn: nothing more
    // of this send can arrive after it.
    const index = history.messages.findIndex(
      (m) => m.role === 'user' && textOf(m.content) === text,
    );
    const settled = index >= 0 && history.messages.slice(index + 1).some((m) => m.role !== 'user');
    return settled ? matching : undefined;
  }, SETTLE);
}

describe('coordination on a real gateway', () => {
  it("a nudge appears in the worker's session with the message", async () => {
    const message = `Nudge ${run}: please report your status.`;
    await t.http
      .post(`${API}/agent/boards/${board.id}/agents/${worker.agent.id}/nudge`)
      .set(as(lead.token))
      .send({ message })
      .expect(200, { ok: true });
    expect(await userMessagesOnceSettled(worker.agent.openclawSessionId!, message)).toHaveLength(1);
  });

  it("an ask-user appears in the gateway agent's main session with the contract's text", async () => {
    const content = `Ask ${run}: which launch date works for you?`;
    const res = await t.http
      .post(`${API}/agent/boards/${board.id}/gateway/main/ask-user`)
      .set(as(lead.token))
      .send({ content, correlation_id: `ask-${run}` })
      .expect(200);
    expect(res.body).toEqual({
      ok: true,
      board_id: board.id,
      main_agent_id: main.agent.id,
      main_agent_name: main.agent.name,
    });
    const expected = [
      'LEAD REQUEST: ASK USER',
      'Board: Coordination Board',
      `Board ID: ${board.id}`,
      'From lead: Coordination Lead',
      `Correlation ID: ask-${run}`,
      '',
      content,
      '',
      'Please reach the user via your configured OpenClaw channel(s) (Slack/SMS/etc).',
      'If you cannot reach them there, post the question in Mission Control board chat as a fallback.',
      '',
      'When you receive the answer, reply in Mission Control by writing a NON-chat memory item on this board:',
      `POST ${BASE_URL}/api/v1/agent/boards/${board.id}/memory`,
      'Body: {"content":"<answer>","tags":["gateway_main", "user_reply"],"source":"user_via_gateway_main"}',
      'Do NOT reply in OpenClaw chat.',
    ].join('\n');
    expect(await userMessagesOnceSettled(main.agent.openclawSessionId!, expected)).toHaveLength(1);
  });

  it("a lead message appears in the lead's session; the lead keeps its name", async () => {
    const content = `Question ${run}: what blocks the launch?`;
    const res = await t.http
      .post(`${API}/agent/gateway/boards/${board.id}/lead/message`)
      .set(as(main.token))
      .send({ content })
      .expect(200);
    expect(res.body).toEqual({
      ok: true,
      board_id: board.id,
      lead_agent_id: lead.agent.id,
      lead_agent_name: 'Coordination Lead',
      lead_created: false,
    });
    const expected = [
      'GATEWAY MAIN QUESTION',
      'Board: Coordination Board',
      `Board ID: ${board.id}`,
      `From agent: ${main.agent.name}`,
      '',
      content,
      '',
      'Reply to the gateway agent by writing a NON-chat memory item on this board:',
      `POST ${BASE_URL}/api/v1/agent/boards/${board.id}/memory`,
      'Body: {"content":"...","tags":["gateway_main", "lead_reply"],"source":"lead_to_gateway_main"}',
      'Do NOT reply in OpenClaw chat.',
    ].join('\n');
    expect(await userMessagesOnceSettled(leadSessionKey(board.id), expected)).toHaveLength(1);
  });

  it('a SOUL written through the API is SOUL.md on the gateway and reads back', async () => {
    const soul = `# SOUL ${run}\n\nCalm, precise, kind.`;
    const path = `${API}/agent/boards/${board.id}/agents/${worker.agent.id}/soul`;
    await t.http
      .put(path)
      .set(as(lead.token))
      .send({ content: soul, reason: 'integration' })
      .expect(200, { ok: true });
    const onGateway = await methods.agentFilesGet(`mc-${worker.agent.id}`, 'SOUL.md');
    expect(onGateway.file.content).toBe(soul);
    const stored = await t.dataSource.getRepository(Agent).findOneByOrFail({ id: worker.agent.id });
    expect(stored.soulTemplate).toBe(soul);
    const byLead = await t.http.get(path).set(as(lead.token)).expect(200);
    expect(byLead.body).toBe(soul);
    const byItself = await t.http.get(path).set(as(worker.token)).expect(200);
    expect(byItself.body).toBe(soul);
  });

  it('a nudge whose chat.send answer is lost is delivered once', async () => {
    const [host, port] = new URL(GATEWAY_URL).host.split(':');
    const proxy = await TcpProxy.start(host, Number(port));
    try {
      // The same gateway behind the proxy, as another gateway row with a board of its own; the
      // target is a fresh session of the provisioned worker's gateway agent.
      const viaProxy = await buildGateway(t.dataSource, organizationId, {
        url: proxy.url,
        token: GATEWAY_TOKEN,
        workspaceRoot: join(RUN_DIR, 'workspaces'),
      });
      const proxyBoard = await buildBoard(t.dataSource, organizationId, viaProxy.id);
      const proxyLead = await buildLead(t.dataSource, viaProxy.id, proxyBoard.id);
      const sessionKey = `agent:mc-${worker.agent.id}:lost-${run}`;
      const target = await buildWorker(t.dataSource, viaProxy.id, proxyBoard.id, {
        openclawSessionId: sessionKey,
      });
      const message = `Lost answer ${run}: still there?`;
      proxy.cutAfter('chat.send');
      await t.http
        .post(`${API}/agent/boards/${proxyBoard.id}/agents/${target.agent.id}/nudge`)
        .set(as(proxyLead.token))
        .send({ message })
        .expect(200, { ok: true });
      expect(proxy.cuts).toBe(1);
      expect(await userMessagesOnceSettled(sessionKey, message)).toHaveLength(1);
    } finally {
      await proxy.stop();
    }
  });

  it("a broadcast over three boards, one unreachable, reports that board's error and delivers to the others", async () => {
    // Board "Ghost": its lead's session key names a gateway agent the gateway does not have.
    // The gateway accepts sessions.patch for it but refuses every chat.send (verified here: the
    // error comes back as that board's result). Board "Fresh" has no lead yet: the broadcast
    // creates and provisions it. Board "Coordination Board" has its provisioned lead.
    const ghostBoard = await buildBoard(t.dataSource, organizationId, gateway.id, {
      name: 'Ghost',
    });
    const ghostAgentId = `mc-ghost-${run}`;
    const ghostLead = await buildLead(t.dataSource, gateway.id, ghostBoard.id, {
      name: 'Ghost Lead',
      openclawSessionId: sessionKeyFor(ghostAgentId),
    });
    const freshBoard = await buildBoard(t.dataSource, organizationId, gateway.id, {
      name: 'Fresh',
    });
    const content = `Broadcast ${run}: weekly status, please.`;
    const res = await t.http
      .post(`${API}/agent/gateway/leads/broadcast`)
      .set(as(main.token))
      .send({ kind: 'handoff', content, board_ids: [board.id, ghostBoard.id, freshBoard.id] })
      .expect(200);
    expect(res.body).toMatchObject({ ok: true, sent: 2, failed: 1 });
    const results = res.body.results as {
      board_id: string;
      lead_agent_id: string | null;
      ok: boolean;
      error: string | null;
    }[];
    // Newest board first.
    expect(results.map((r) => r.board_id)).toEqual([freshBoard.id, ghostBoard.id, board.id]);
    expect(results[1]).toMatchObject({ ok: false, lead_agent_id: null });
    // openclaw@2026.9.6 refuses it outright (not transient): no retry, the text as it said it.
    expect(results[1].error).toBe(
      `Gateway lead broadcast dispatch failed: Agent "${ghostAgentId}" no longer exists in configuration`,
    );
    expect(results[0]).toMatchObject({ ok: true, error: null });
    expect(results[2]).toMatchObject({ ok: true, error: null, lead_agent_id: lead.agent.id });
    const freshLead = await t.dataSource
      .getRepository(Agent)
      .findOneByOrFail({ boardId: freshBoard.id, isBoardLead: true });
    expect(results[0].lead_agent_id).toBe(freshLead.id);

    const text = (target: Board) =>
      [
        'GATEWAY MAIN HANDOFF',
        `Board: ${target.name}`,
        `Board ID: ${target.id}`,
        `From agent: ${main.agent.name}`,
        '',
        content,
        '',
        'Reply to the gateway agent by writing a NON-chat memory item on this board:',
        `POST ${BASE_URL}/api/v1/agent/boards/${target.id}/memory`,
        'Body: {"content":"...","tags":["gateway_main", "lead_reply"],"source":"lead_to_gateway_main"}',
        'Do NOT reply in OpenClaw chat.',
      ].join('\n');
    expect(await userMessagesOnceSettled(leadSessionKey(board.id), text(board))).toHaveLength(1);
    expect(
      await userMessagesOnceSettled(leadSessionKey(freshBoard.id), text(freshBoard)),
    ).toHaveLength(1);
    const ghostHistory = await methods.chatHistory({
      sessionKey: ghostLead.agent.openclawSessionId!,
      limit: 50,
    });
    expect(ghostHistory.messages.filter((m) => m.role === 'user')).toHaveLength(0);
  }, 120_000);
});
