/**
 * Coordination (contract C4–C9) over HTTP against the in-process gateway
 * (test/support/fake-openclaw-state.ts), for what a real gateway cannot be made to do on demand:
 * transient failures, lost answers, refusals and a gateway that never recovers within the
 * (test-shortened) retry budget. The happy paths also run against a real gateway in
 * test/gateway/coordination.gateway-spec.ts.
 */
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import type { Board } from '../../src/boards/entities/board.entity';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import { uniqueSessionLabel } from '../../src/openclaw/session-label';
import { leadSessionKey } from '../../src/provisioning/agent-identity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  buildLead,
  buildMainAgent,
  buildOrganization,
  buildWorker,
  signIn,
  type SignedInUser,
} from '../support/builders';
import { FakeGateway } from '../support/fake-gateway';
import {
  gatewayFieldsFor,
  serveOpenClawState,
  startOpenClawFake,
} from '../support/fake-openclaw-state';
import { waitUntil } from '../support/eventually';
import { createTestApp, TestApp } from '../support/test-app';

const API = '/api/v1';
const BASE_URL = 'https://mc.example.test';
/** The test-shortened coordination budget (COORDINATION_RETRY_TIMEOUT_MS). */
const BUDGET_MS = 2_000;
const ONLY_GATEWAY_AGENT = 'Only the dedicated gateway agent may call this endpoint.';

type FakeState = ReturnType<typeof serveOpenClawState>;

describe('coordination (in-process gateway)', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let state: FakeState;
  let organizationId: string;
  let gateway: Gateway;
  let boardX: Board;
  let boardY: Board;
  let lead: { agent: Agent; token: string };
  let worker: { agent: Agent; token: string };
  let otherWorker: { agent: Agent; token: string };
  let workerOfY: { agent: Agent; token: string };
  let main: { agent: Agent; token: string };
  let otherOrgMain: { agent: Agent; token: string };
  let user: SignedInUser;

  beforeAll(async () => {
    t = await createTestApp({
      // A trailing slash, stripped: messages name `${BASE_URL}/api/v1/...`.
      BASE_URL: `${BASE_URL}/`,
      COORDINATION_RETRY_TIMEOUT_MS: String(BUDGET_MS),
    });
    ({ fake, state } = await startOpenClawFake());
    const ds = t.dataSource;
    organizationId = (await buildOrganization(ds)).id;
    gateway = await buildGateway(ds, organizationId, {
      name: 'Fake Gateway',
      ...gatewayFieldsFor(fake),
    });
    boardX = await buildBoard(ds, organizationId, gateway.id, { name: 'Board X' });
    boardY = await buildBoard(ds, organizationId, gateway.id, { name: 'Board Y' });
    lead = await buildLead(ds, gateway.id, boardX.id, { name: 'Lead X' });
    worker = await buildWorker(ds, gateway.id, boardX.id, { name: 'Worker One' });
    otherWorker = await buildWorker(ds, gateway.id, boardX.id, { name: 'Worker Two' });
    workerOfY = await buildWorker(ds, gateway.id, boardY.id, { name: 'Worker Y' });
    main = await buildMainAgent(ds, gateway.id, { name: 'Fake Gateway Gateway Agent' });

    const otherOrg = (await buildOrganization(ds)).id;
    const otherGateway = await buildGateway(ds, otherOrg, gatewayFieldsFor(fake));
    otherOrgMain = await buildMainAgent(ds, otherGateway.id);
    user = await signIn(t.http, ds);
  });
  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });
  afterEach(() => {
    state.gate.open();
    state.failures.clear();
    state.rejections.clear();
    state.dropAnswers.clear();
    state.loseAnswer.clear();
  });

  const as = (token: string) => ({ 'X-Agent-Token': token });
  const nudgePath = (boardId: string, agentId: string) =>
    `${API}/agent/boards/${boardId}/agents/${agentId}/nudge`;
  const soulPath = (boardId: string, agentId: string) =>
    `${API}/agent/boards/${boardId}/agents/${agentId}/soul`;
  const askUserPath = (boardId: string) => `${API}/agent/boards/${boardId}/gateway/main/ask-user`;
  const leadMessagePath = (boardId: string) =>
    `${API}/agent/gateway/boards/${boardId}/lead/message`;
  const BROADCAST = `${API}/agent/gateway/leads/broadcast`;

  /** The chat.send requests the fake received for a session, in order. */
  const sends = (sessionKey: string) =>
    fake.requests.filter((r) => r.method === 'chat.send' && r.params.sessionKey === sessionKey);
  const patches = (sessionKey: string) =>
    fake.requests.filter((r) => r.method === 'sessions.patch' && r.params.key === sessionKey);
  const activities = (eventType: string) =>
    t.dataSource
      .getRepository(ActivityEvent)
      .find({ where: { eventType }, order: { createdAt: 'ASC' } });
  /** Calls of `method` for which `matches` holds fail transiently (UNAVAILABLE), `times` times. */
  const failFirst = (
    method: string,
    times: number,
    matches: (p: Record<string, unknown>) => boolean,
  ) => {
    let left = times;
    state.failures.set(method, (params) => {
      if (!matches(params) || left <= 0) return false;
      left -= 1;
      return true;
    });
  };
  const reload = (id: string) => t.dataSource.getRepository(Agent).findOneByOrFail({ id });

  describe('nudge (C4)', () => {
    it('sends the stripped message to the target session (deliver true) and records the activity', async () => {
      const key = worker.agent.openclawSessionId!;
      const res = await t.http
        .post(nudgePath(boardX.id, worker.agent.id))
        .set(as(lead.token))
        .send({ message: '  Please pick up the next task.  ' })
        .expect(200);
      expect(res.body).toEqual({ ok: true });
      expect(state.chats.get(key)).toEqual([
        {
          message: 'Please pick up the next task.',
          deliver: true,
          idempotencyKey: expect.any(String),
        },
      ]);
      expect(patches(key).at(-1)?.params).toEqual({
        key,
        label: uniqueSessionLabel('Worker One', key),
      });
      const [event] = await activities('agent.nudge.sent');
      expect(event).toMatchObject({
        organizationId,
        boardId: boardX.id,
        agentId: lead.agent.id,
        message: 'Nudge sent to Worker One.',
      });
    });

    it('transient failures re-run ensure session + send, with one idempotency key: delivered once', async () => {
      const target = await buildWorker(t.dataSource, gateway.id, boardX.id, { name: 'Flaky' });
      const key = target.agent.openclawSessionId!;
      failFirst('sessions.patch', 1, (p) => p.key === key);
      failFirst('chat.send', 2, (p) => p.sessionKey === key);
      await t.http
        .post(nudgePath(boardX.id, target.agent.id))
        .set(as(lead.token))
        .send({ message: 'ping' })
        .expect(200);
      expect(patches(key).length).toBeGreaterThanOrEqual(2);
      const attempts = sends(key);
      expect(attempts.length).toBe(3);
      expect(new Set(attempts.map((r) => r.params.idempotencyKey)).size).toBe(1);
      expect(state.chats.get(key)).toHaveLength(1);
    });

    it('a send whose answer was lost is resent with the same key and delivered once', async () => {
      const target = await buildWorker(t.dataSource, gateway.id, boardX.id, { name: 'Lossy' });
      const key = target.agent.openclawSessionId!;
      state.dropAnswers.set('chat.send', 1);
      await t.http
        .post(nudgePath(boardX.id, target.agent.id))
        .set(as(lead.token))
        .send({ message: 'are you there?' })
        .expect(200);
      const attempts = sends(key);
      expect(attempts.length).toBeGreaterThanOrEqual(2);
      expect(new Set(attempts.map((r) => r.params.idempotencyKey)).size).toBe(1);
      expect(state.chats.get(key)).toEqual([
        {
          message: 'are you there?',
          deliver: true,
          idempotencyKey: attempts[0].params.idempotencyKey,
        },
      ]);
    });

    it('a gateway that stays unreachable past the budget: 502 with the timeout text and a failed activity', async () => {
      const target = await buildWorker(t.dataSource, gateway.id, boardX.id, { name: 'Down' });
      const key = target.agent.openclawSessionId!;
      state.failures.set('chat.send', (p) => p.sessionKey === key);
      const res = await t.http
        .post(nudgePath(boardX.id, target.agent.id))
        .set(as(lead.token))
        .send({ message: 'hello?' })
        .expect(502);
      const timeout =
        'Gateway unreachable after 2 seconds (gateway coordination timeout). ' +
        'Last error: chat.send injected failure';
      expect(res.body.detail).toBe(`Gateway nudge failed: ${timeout}`);
      expect(sends(key).length).toBeGreaterThan(1);
      expect(state.chats.get(key) ?? []).toHaveLength(0);
      const failed = (await activities('agent.nudge.failed')).filter((e) =>
        e.message?.startsWith('Nudge failed for Down:'),
      );
      expect(failed).toEqual([
        expect.objectContaining({
          organizationId,
          boardId: boardX.id,
          agentId: lead.agent.id,
          message: `Nudge failed for Down: ${timeout}`,
        }),
      ]);
    });

    it('a non-transient refusal is a 502 at once: one attempt reached the gateway', async () => {
      const target = await buildWorker(t.dataSource, gateway.id, boardX.id, { name: 'Refused' });
      const key = target.agent.openclawSessionId!;
      state.rejections.set('chat.send', (p) =>
        p.sessionKey === key
          ? { code: 'INVALID_REQUEST', message: 'Agent "ghost" no longer exists in configuration' }
          : null,
      );
      const res = await t.http
        .post(nudgePath(boardX.id, target.agent.id))
        .set(as(lead.token))
        .send({ message: 'hello?' })
        .expect(502);
      expect(res.body.detail).toBe(
        'Gateway nudge failed: Agent "ghost" no longer exists in configuration',
      );
      expect(sends(key)).toHaveLength(1);
      const failed = await activities('agent.nudge.failed');
      expect(failed.map((e) => e.message)).toContain(
        'Nudge failed for Refused: Agent "ghost" no longer exists in configuration',
      );
    });

    it('the target must be an agent of the path board: unknown, other board, gateway main agent → 404', async () => {
      for (const targetId of [
        '00000000-0000-4000-8000-000000000000',
        workerOfY.agent.id,
        main.agent.id,
      ]) {
        const res = await t.http
          .post(nudgePath(boardX.id, targetId))
          .set(as(lead.token))
          .send({ message: 'x' })
          .expect(404);
        expect(res.body.detail).toBe('Not Found');
      }
      expect(sends(main.agent.openclawSessionId!)).toHaveLength(0);
    });

    it('a target without a session key → 422; a blank message → 422', async () => {
      const keyless = await buildWorker(t.dataSource, gateway.id, boardX.id, {
        name: 'Keyless',
        openclawSessionId: null,
      });
      const res = await t.http
        .post(nudgePath(boardX.id, keyless.agent.id))
        .set(as(lead.token))
        .send({ message: 'x' })
        .expect(422);
      expect(res.body.detail).toBe('Target agent has no session key');
      const blank = await t.http
        .post(nudgePath(boardX.id, worker.agent.id))
        .set(as(lead.token))
        .send({ message: '   ' })
        .expect(422);
      expect(blank.body.detail[0]).toMatchObject({ loc: ['body', 'message'] });
    });
  });

  describe('SOUL (C5/C6)', () => {
    const gatewayAgentOf = (agent: Agent) => `mc-${agent.id}`;
    const setSoulOnGateway = (agent: Agent, content: string) => {
      const files = state.files.get(gatewayAgentOf(agent)) ?? new Map<string, string>();
      files.set('SOUL.md', content);
      state.files.set(gatewayAgentOf(agent), files);
    };

    it('a lead reads any agent of its board, an agent its own (a JSON string); a worker not another', async () => {
      setSoulOnGateway(worker.agent, '# SOUL of worker one\n');
      const byLead = await t.http
        .get(soulPath(boardX.id, worker.agent.id))
        .set(as(lead.token))
        .expect(200)
        .expect('Content-Type', /application\/json/);
      expect(byLead.body).toBe('# SOUL of worker one\n');
      const own = await t.http
        .get(soulPath(boardX.id, worker.agent.id))
        .set(as(worker.token))
        .expect(200);
      expect(own.body).toBe('# SOUL of worker one\n');
      const other = await t.http
        .get(soulPath(boardX.id, worker.agent.id))
        .set(as(otherWorker.token))
        .expect(403);
      expect(other.body.detail).toBe('Forbidden');
    });

    it('reads every payload shape the contract lists; anything else is 502 "Invalid gateway response"', async () => {
      const original = fake.methods['agents.files.get'];
      const shapes: [unknown, number, unknown][] = [
        ['# bare string', 200, '# bare string'],
        [{ content: '# content key' }, 200, '# content key'],
        [{ agentId: 'x', file: { name: 'SOUL.md', content: '# nested' } }, 200, '# nested'],
        [
          { agentId: 'x', file: { name: 'SOUL.md', missing: true } },
          502,
          'Invalid gateway response',
        ],
        [{ content: 42 }, 502, 'Invalid gateway response'],
      ];
      try {
        for (const [payload, status, expected] of shapes) {
          fake.methods['agents.files.get'] = () => payload;
          const res = await t.http
            .get(soulPath(boardX.id, worker.agent.id))
            .set(as(lead.token))
            .expect(status);
          expect(status === 200 ? res.body : res.body.detail).toEqual(expected);
        }
      } finally {
        fake.methods['agents.files.get'] = original;
      }
    });

    it('a failed read is 502 "Gateway SOUL read failed: …"', async () => {
      state.rejections.set('agents.files.get', () => ({
        code: 'INVALID_REQUEST',
        message: 'unknown agent id',
      }));
      const res = await t.http
        .get(soulPath(boardX.id, worker.agent.id))
        .set(as(lead.token))
        .expect(502);
      expect(res.body.detail).toBe('Gateway SOUL read failed: unknown agent id');
    });

    it('a write goes to the gateway, then the database (soul_template, updated_at) and the activity', async () => {
      setSoulOnGateway(otherWorker.agent, '# Stock soul');
      const before = await reload(otherWorker.agent.id);
      const res = await t.http
        .put(soulPath(boardX.id, otherWorker.agent.id))
        .set(as(lead.token))
        .send({
          content: '  # New soul\nBe brief.  ',
          reason: ' sharper focus ',
          source_url: ' https://souls.example/brief ',
        })
        .expect(200);
      expect(res.body).toEqual({ ok: true });
      expect(state.files.get(gatewayAgentOf(otherWorker.agent))?.get('SOUL.md')).toBe(
        '# New soul\nBe brief.',
      );
      const after = await reload(otherWorker.agent.id);
      expect(after.soulTemplate).toBe('# New soul\nBe brief.');
      expect(after.updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime());
      const [event] = await activities('agent.soul.updated');
      expect(event).toMatchObject({
        organizationId,
        boardId: boardX.id,
        agentId: lead.agent.id,
        message:
          'SOUL.md updated for Worker Two. Reason: sharper focus Source: https://souls.example/brief',
      });
      const readBack = await t.http
        .get(soulPath(boardX.id, otherWorker.agent.id))
        .set(as(lead.token))
        .expect(200);
      expect(readBack.body).toBe('# New soul\nBe brief.');
    });

    it('a write the gateway refuses leaves the database unchanged (contract §10 item 8 fixed)', async () => {
      const target = await buildWorker(t.dataSource, gateway.id, boardX.id, {
        name: 'Soulful',
        soulTemplate: '# Old soul',
      });
      const before = await reload(target.agent.id);
      state.rejections.set('agents.files.set', () => ({
        code: 'INVALID_REQUEST',
        message: 'unsupported file "SOUL.md"',
      }));
      const res = await t.http
        .put(soulPath(boardX.id, target.agent.id))
        .set(as(lead.token))
        .send({ content: '# Replaced soul' })
        .expect(502);
      expect(res.body.detail).toBe('Gateway SOUL update failed: unsupported file "SOUL.md"');
      const after = await reload(target.agent.id);
      expect(after.soulTemplate).toBe('# Old soul');
      expect(after.updatedAt.getTime()).toBe(before.updatedAt.getTime());
      const events = await activities('agent.soul.updated');
      expect(events.map((e) => e.message)).not.toContain('SOUL.md updated for Soulful.');
    });

    it('two concurrent writes of one SOUL leave the gateway and the database holding the same one', async () => {
      const target = await buildWorker(t.dataSource, gateway.id, boardX.id, { name: 'Contested' });
      setSoulOnGateway(target.agent, '# Stock soul');
      const original = fake.methods['agents.files.set'];
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let firstApplied = false;
      // The first write is applied on the gateway, then its answer is slow to come back.
      fake.methods['agents.files.set'] = async (params, socket) => {
        const answer = await original(params, socket);
        if (params.content === '# First') {
          firstApplied = true;
          await released;
        }
        return answer;
      };
      try {
        const put = (content: string) =>
          t.http.put(soulPath(boardX.id, target.agent.id)).set(as(lead.token)).send({ content });
        const first = put('# First').then((res) => res);
        await waitUntil(() => firstApplied);
        let secondDone = false;
        const second = put('# Second').then((res) => {
          secondDone = true;
          return res;
        });
        // Unserialised, the second write overtakes the first one's answer; serialised, it waits.
        await waitUntil(() => secondDone, { timeoutMs: 500 }).catch(() => undefined);
        release();
        expect((await first).status).toBe(200);
        expect((await second).status).toBe(200);
        const onGateway = state.files.get(gatewayAgentOf(target.agent))?.get('SOUL.md');
        expect(onGateway).toBe('# Second');
        expect((await reload(target.agent.id)).soulTemplate).toBe(onGateway);
      } finally {
        release();
        fake.methods['agents.files.set'] = original;
      }
    });

    it('blank content → 422 "content is required"; only a lead writes', async () => {
      const blank = await t.http
        .put(soulPath(boardX.id, worker.agent.id))
        .set(as(lead.token))
        .send({ content: '  \n ' })
        .expect(422);
      expect(blank.body.detail).toBe('content is required');
      for (const token of [worker.token, main.token]) {
        await t.http
          .put(soulPath(boardX.id, worker.agent.id))
          .set(as(token))
          .send({ content: '# x' })
          .expect(403);
      }
    });
  });

  describe('ask-user (C7)', () => {
    it("sends the contract's text to the board gateway's main session and names its main agent", async () => {
      const key = main.agent.openclawSessionId!;
      const res = await t.http
        .post(askUserPath(boardX.id))
        .set(as(lead.token))
        .send({
          content: '  Which region should we launch in?  ',
          correlation_id: ' corr-7 ',
          preferred_channel: ' slack ',
          reply_tags: ['launch', 'user_reply'],
        })
        .expect(200);
      expect(res.body).toEqual({
        ok: true,
        board_id: boardX.id,
        main_agent_id: main.agent.id,
        main_agent_name: 'Fake Gateway Gateway Agent',
      });
      const [sent] = state.chats.get(key) ?? [];
      expect(sent.deliver).toBe(true);
      expect(sent.message.split('\n')).toEqual([
        'LEAD REQUEST: ASK USER',
        'Board: Board X',
        `Board ID: ${boardX.id}`,
        'From lead: Lead X',
        'Correlation ID: corr-7',
        'Preferred channel: slack',
        '',
        'Which region should we launch in?',
        '',
        'Please reach the user via your configured OpenClaw channel(s) (Slack/SMS/etc).',
        'If you cannot reach them there, post the question in Mission Control board chat as a fallback.',
        '',
        'When you receive the answer, reply in Mission Control by writing a NON-chat memory item on this board:',
        `POST ${BASE_URL}/api/v1/agent/boards/${boardX.id}/memory`,
        'Body: {"content":"<answer>","tags":["launch", "user_reply"],"source":"user_via_gateway_main"}',
        'Do NOT reply in OpenClaw chat.',
      ]);
      expect(patches(key).at(-1)?.params.label).toBe(
        uniqueSessionLabel('Fake Gateway Gateway Agent', key),
      );
      const [event] = await activities('gateway.lead.ask_user.sent');
      expect(event).toMatchObject({
        organizationId,
        boardId: boardX.id,
        agentId: lead.agent.id,
        message: 'Lead requested user info via gateway agent for board: Board X.',
      });
    });

    it('defaults: no optional lines, default tags and source', async () => {
      const key = main.agent.openclawSessionId!;
      await t.http
        .post(askUserPath(boardX.id))
        .set(as(lead.token))
        .send({ content: 'Budget?', correlation_id: '  ', reply_tags: [], reply_source: '' })
        .expect(200);
      const lines = state.chats.get(key)!.at(-1)!.message.split('\n');
      expect(lines.slice(0, 6)).toEqual([
        'LEAD REQUEST: ASK USER',
        'Board: Board X',
        `Board ID: ${boardX.id}`,
        'From lead: Lead X',
        '',
        'Budget?',
      ]);
      expect(lines.at(-2)).toBe(
        'Body: {"content":"<answer>","tags":["gateway_main", "user_reply"],"source":"user_via_gateway_main"}',
      );
    });

    it('a failed dispatch: activity gateway.lead.ask_user.failed, then 502', async () => {
      state.rejections.set('sessions.patch', () => ({
        code: 'INVALID_REQUEST',
        message: 'label already in use: x',
      }));
      const res = await t.http
        .post(askUserPath(boardX.id))
        .set(as(lead.token))
        .send({ content: 'Q?' })
        .expect(502);
      expect(res.body.detail).toBe('Gateway ask-user dispatch failed: label already in use: x');
      const [event] = await activities('gateway.lead.ask_user.failed');
      expect(event).toMatchObject({
        organizationId,
        boardId: boardX.id,
        agentId: lead.agent.id,
        message: 'Lead user question failed for Board X: label already in use: x',
      });
    });
  });

  describe('gateway agent → lead (C8)', () => {
    it("messages the board's lead (deliver false) without renaming it, line by line", async () => {
      const key = lead.agent.openclawSessionId!;
      const res = await t.http
        .post(leadMessagePath(boardX.id))
        .set(as(main.token))
        .send({ kind: 'handoff', content: ' Take over the launch. ', correlation_id: 'h-1' })
        .expect(200);
      expect(res.body).toEqual({
        ok: true,
        board_id: boardX.id,
        lead_agent_id: lead.agent.id,
        lead_agent_name: 'Lead X',
        lead_created: false,
      });
      expect((await reload(lead.agent.id)).name).toBe('Lead X');
      const [sent] = state.chats.get(key) ?? [];
      expect(sent.deliver).toBe(false);
      expect(sent.message.split('\n')).toEqual([
        'GATEWAY MAIN HANDOFF',
        'Board: Board X',
        `Board ID: ${boardX.id}`,
        'From agent: Fake Gateway Gateway Agent',
        'Correlation ID: h-1',
        '',
        'Take over the launch.',
        '',
        'Reply to the gateway agent by writing a NON-chat memory item on this board:',
        `POST ${BASE_URL}/api/v1/agent/boards/${boardX.id}/memory`,
        'Body: {"content":"...","tags":["gateway_main", "lead_reply"],"source":"lead_to_gateway_main"}',
        'Do NOT reply in OpenClaw chat.',
      ]);
      const [event] = await activities('gateway.main.lead_message.sent');
      expect(event).toMatchObject({
        organizationId,
        boardId: boardX.id,
        agentId: main.agent.id,
        message: 'Sent handoff to lead for board: Board X.',
      });
    });

    it('creates and provisions the lead of a board that has none (lead_created), then messages it', async () => {
      const board = await buildBoard(t.dataSource, organizationId, gateway.id, {
        name: 'Leaderless',
      });
      const res = await t.http
        .post(leadMessagePath(board.id))
        .set(as(main.token))
        .send({ content: 'Welcome aboard.' })
        .expect(200);
      expect(res.body).toMatchObject({
        ok: true,
        board_id: board.id,
        lead_agent_name: 'Lead Agent',
        lead_created: true,
      });
      const created = await reload(res.body.lead_agent_id as string);
      expect(created).toMatchObject({
        boardId: board.id,
        isBoardLead: true,
        organizationId,
        openclawSessionId: leadSessionKey(board.id),
      });
      expect(state.agents.has(`lead-${board.id}`)).toBe(true);
      const messages = state.chats.get(leadSessionKey(board.id))!.map((m) => m.message);
      expect(messages.at(-1)?.split('\n')[0]).toBe('GATEWAY MAIN QUESTION');
    });

    it('two concurrent messages to a board without a lead: one creates it, both reach it once it is on the gateway', async () => {
      const board = await buildBoard(t.dataSource, organizationId, gateway.id, { name: 'Racy' });
      const leadKey = leadSessionKey(board.id);
      // As the real gateway does: a send to an agent it does not have is refused.
      state.rejections.set('chat.send', (p) =>
        p.sessionKey === leadKey && !state.agents.has(`lead-${board.id}`)
          ? {
              code: 'INVALID_REQUEST',
              message: `Agent "lead-${board.id}" no longer exists in configuration`,
            }
          : null,
      );
      const send = (content: string) =>
        t.http.post(leadMessagePath(board.id)).set(as(main.token)).send({ content });
      const [first, second] = await Promise.all([send('One'), send('Two')]);
      expect([first.status, second.status]).toEqual([200, 200]);
      expect([first.body.lead_created, second.body.lead_created].sort()).toEqual([false, true]);
      expect(second.body.lead_agent_id).toBe(first.body.lead_agent_id);
      const delivered = (state.chats.get(leadKey) ?? [])
        .map((m) => m.message.split('\n'))
        .filter((lines) => lines[0] === 'GATEWAY MAIN QUESTION')
        .map((lines) => lines[5]);
      expect(delivered.sort()).toEqual(['One', 'Two']);
    });

    it('a failed dispatch: activity gateway.main.lead_message.failed, then 502', async () => {
      state.rejections.set('chat.send', (p) =>
        p.sessionKey === lead.agent.openclawSessionId
          ? { code: 'INVALID_REQUEST', message: 'session is busy' }
          : null,
      );
      const res = await t.http
        .post(leadMessagePath(boardX.id))
        .set(as(main.token))
        .send({ content: 'x' })
        .expect(502);
      expect(res.body.detail).toBe('Gateway lead message dispatch failed: session is busy');
      const [event] = await activities('gateway.main.lead_message.failed');
      expect(event).toMatchObject({
        organizationId,
        boardId: boardX.id,
        agentId: main.agent.id,
        message: 'Lead message failed for Board X: session is busy',
      });
    });

    it("missing board → 404 'Board not found'; another gateway's board → 403; a bad id → 422", async () => {
      const missing = await t.http
        .post(leadMessagePath('00000000-0000-4000-8000-000000000000'))
        .set(as(main.token))
        .send({ content: 'x' })
        .expect(404);
      expect(missing.body.detail).toBe('Board not found');
      const foreign = await t.http
        .post(leadMessagePath(boardX.id))
        .set(as(otherOrgMain.token))
        .send({ content: 'x' })
        .expect(403);
      expect(foreign.body.detail).toBe('Forbidden');
      await t.http
        .post(leadMessagePath('not-a-uuid'))
        .set(as(main.token))
        .send({ content: 'x' })
        .expect(422);
    });

    it("a gateway without a url → 422 'Gateway url is required'", async () => {
      const bare = await buildGateway(t.dataSource, organizationId, { url: '' });
      const bareMain = await buildMainAgent(t.dataSource, bare.id);
      const res = await t.http
        .post(BROADCAST)
        .set(as(bareMain.token))
        .send({ content: 'x' })
        .expect(422);
      expect(res.body.detail).toBe('Gateway url is required');
    });
  });

  describe('broadcast (C9)', () => {
    it('dispatches concurrently: a board that keeps failing does not hold back the others; results in board order', async () => {
      // A gateway of its own, so the broadcast covers exactly these boards.
      const own = await startOpenClawFake();
      try {
        const gw = await buildGateway(t.dataSource, organizationId, gatewayFieldsFor(own.fake));
        const gwMain = await buildMainAgent(t.dataSource, gw.id, { name: 'Broadcaster' });
        const boards: Board[] = [];
        const leads: Agent[] = [];
        for (const name of ['First', 'Second', 'Third']) {
          const board = await buildBoard(t.dataSource, organizationId, gw.id, { name });
          boards.push(board);
          leads.push(
            (await buildLead(t.dataSource, gw.id, board.id, { name: `${name} Lead` })).agent,
          );
        }
        // Newest first: Third, Second, First. "Second" never answers within the budget.
        const failingKey = leads[1].openclawSessionId!;
        own.state.failures.set('chat.send', (p) => p.sessionKey === failingKey);
        const res = await t.http
          .post(BROADCAST)
          .set(as(gwMain.token))
          .send({
            content: 'Status, please.',
            // Board X belongs to another gateway: dropped silently.
            board_ids: [...boards.map((b) => b.id), boardX.id],
          })
          .expect(200);
        const timeout =
          'Gateway unreachable after 2 seconds (gateway coordination timeout). ' +
          'Last error: chat.send injected failure';
        expect(res.body).toEqual({
          ok: true,
          sent: 2,
          failed: 1,
          results: [
            {
              board_id: boards[2].id,
              lead_agent_id: leads[2].id,
              lead_agent_name: 'Third Lead',
              ok: true,
              error: null,
            },
            {
              board_id: boards[1].id,
              lead_agent_id: null,
              lead_agent_name: null,
              ok: false,
              error: `Gateway lead broadcast dispatch failed: ${timeout}`,
            },
            {
              board_id: boards[0].id,
              lead_agent_id: leads[0].id,
              lead_agent_name: 'First Lead',
              ok: true,
              error: null,
            },
          ],
        });
        // The others were delivered while the failing board was still being retried.
        const arrived = (key: string) =>
          own.fake.requests
            .filter((r) => r.method === 'chat.send' && r.params.sessionKey === key)
            .map((r) => own.fake.arrivedAt.get(r)!);
        const lastFailingAttempt = Math.max(...arrived(failingKey));
        for (const delivered of [leads[0], leads[2]]) {
          const key = delivered.openclawSessionId!;
          expect(own.state.chats.get(key)).toHaveLength(1);
          expect(own.state.chats.get(key)![0].deliver).toBe(false);
          expect(Math.max(...arrived(key))).toBeLessThan(lastFailingAttempt);
        }
        expect(arrived(failingKey).length).toBeGreaterThan(1);
        expect(
          state.chats.get(lead.agent.openclawSessionId!)?.map((m) => m.message) ?? [],
        ).not.toContain(expect.stringContaining('Status, please.'));
        const events = await t.dataSource.getRepository(ActivityEvent).find({
          where: { eventType: 'gateway.main.lead_broadcast.sent', agentId: gwMain.agent.id },
        });
        expect(events).toEqual([
          expect.objectContaining({
            organizationId,
            message: 'Broadcast question to 2 board leads (failed: 1).',
          }),
        ]);
      } finally {
        await own.fake.stop();
      }
    });
  });

  describe('broadcast budget (C9)', () => {
    it('boards queued behind the concurrency bound get no budget of their own: a gateway that stays down is retried for one budget per broadcast, not per round', async () => {
      const own = await startOpenClawFake();
      try {
        const gw = await buildGateway(t.dataSource, organizationId, gatewayFieldsFor(own.fake));
        const gwMain = await buildMainAgent(t.dataSource, gw.id);
        const leadKeys: string[] = [];
        for (let index = 0; index < 6; index += 1) {
          const board = await buildBoard(t.dataSource, organizationId, gw.id);
          leadKeys.unshift(
            (await buildLead(t.dataSource, gw.id, board.id)).agent.openclawSessionId!,
          );
        }
        // Every send fails transiently: the gateway is down for the whole broadcast.
        own.state.failures.set('chat.send', () => true);
        const res = await t.http
          .post(BROADCAST)
          .set(as(gwMain.token))
          .send({ content: 'anyone?' })
          .expect(200);
        const timeout =
          'Gateway lead broadcast dispatch failed: Gateway unreachable after 2 seconds ' +
          '(gateway coordination timeout). Last error: chat.send injected failure';
        expect(res.body).toMatchObject({ sent: 0, failed: 6 });
        expect(res.body.results.map((r: { error: string }) => r.error)).toEqual(
          Array(6).fill(timeout),
        );
        const attempts = (key: string) =>
          own.fake.requests.filter((r) => r.method === 'chat.send' && r.params.sessionKey === key)
            .length;
        // Newest first: the first four boards were retried within the budget; the two queued
        // behind them started once it was spent, so each is tried once and not retried for a
        // whole budget of its own (which would make the broadcast last a budget per round).
        for (const key of leadKeys.slice(0, 4)) expect(attempts(key)).toBeGreaterThan(1);
        for (const key of leadKeys.slice(4)) expect(attempts(key)).toBe(1);
      } finally {
        await own.fake.stop();
      }
    });
  });

  describe('broadcast bound (C9)', () => {
    it('dispatches to at most COORDINATION_BROADCAST_CONCURRENCY (4) boards at once', async () => {
      const own = await startOpenClawFake();
      try {
        const gw = await buildGateway(t.dataSource, organizationId, gatewayFieldsFor(own.fake));
        const gwMain = await buildMainAgent(t.dataSource, gw.id);
        const leadKeys: string[] = [];
        for (let index = 0; index < 6; index += 1) {
          const board = await buildBoard(t.dataSource, organizationId, gw.id);
          leadKeys.push((await buildLead(t.dataSource, gw.id, board.id)).agent.openclawSessionId!);
        }
        own.state.gate.close('chat.send');
        const pending = t.http.post(BROADCAST).set(as(gwMain.token)).send({ content: 'bounded' });
        const response = pending.then((res) => res);
        await waitUntil(() => own.state.gate.held === 4);
        // Each dispatch patches its session before its (held) send: with four sends held, no
        // fifth board has started.
        const patched = own.fake.requests.filter(
          (r) => r.method === 'sessions.patch' && leadKeys.includes(String(r.params.key)),
        );
        expect(patched).toHaveLength(4);
        own.state.gate.open();
        const res = await response;
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ sent: 6, failed: 0 });
        for (const key of leadKeys) expect(own.state.chats.get(key)).toHaveLength(1);
      } finally {
        own.state.gate.open();
        await own.fake.stop();
      }
    });
  });

  describe('access', () => {
    it('non-leads are 403 on nudge, SOUL write and ask-user', async () => {
      for (const token of [worker.token, main.token]) {
        await t.http
          .post(nudgePath(boardX.id, worker.agent.id))
          .set(as(token))
          .send({ message: 'x' })
          .expect(403);
        await t.http
          .put(soulPath(boardX.id, worker.agent.id))
          .set(as(token))
          .send({ content: 'x' })
          .expect(403);
        await t.http.post(askUserPath(boardX.id)).set(as(token)).send({ content: 'x' }).expect(403);
      }
    });

    it('an agent of another board is 403 (board guard) on every board route', async () => {
      const leadOfY = await buildLead(t.dataSource, gateway.id, boardY.id);
      for (const token of [workerOfY.token, leadOfY.token]) {
        await t.http
          .post(nudgePath(boardX.id, worker.agent.id))
          .set(as(token))
          .send({ message: 'x' })
          .expect(403);
        await t.http.get(soulPath(boardX.id, worker.agent.id)).set(as(token)).expect(403);
        await t.http
          .put(soulPath(boardX.id, worker.agent.id))
          .set(as(token))
          .send({ content: 'x' })
          .expect(403);
        await t.http.post(askUserPath(boardX.id)).set(as(token)).send({ content: 'x' }).expect(403);
      }
      // Another organization's gateway agent: its gateway does not serve board X.
      await t.http
        .post(askUserPath(boardX.id))
        .set(as(otherOrgMain.token))
        .send({ content: 'x' })
        .expect(403);
    });

    it('only the gateway agent may use the gateway routes (403 with the text)', async () => {
      // A gateway's agent without a board whose session key is not the gateway's main key.
      const elsewhere = await buildGateway(t.dataSource, organizationId, gatewayFieldsFor(fake));
      const impostor = await buildAgent(t.dataSource, elsewhere.id, null, {
        name: 'Not the main',
        openclawSessionId: 'agent:somebody-else:main',
      });
      for (const token of [lead.token, worker.token, impostor.token]) {
        const message = await t.http
          .post(leadMessagePath(boardX.id))
          .set(as(token))
          .send({ content: 'x' })
          .expect(403);
        expect(message.body.detail).toBe(ONLY_GATEWAY_AGENT);
        const broadcast = await t.http
          .post(BROADCAST)
          .set(as(token))
          .send({ content: 'x' })
          .expect(403);
        expect(broadcast.body.detail).toBe(ONLY_GATEWAY_AGENT);
      }
    });

    it('a missing board is 404 on the board routes', async () => {
      const missing = '00000000-0000-4000-8000-000000000000';
      await t.http
        .post(nudgePath(missing, worker.agent.id))
        .set(as(lead.token))
        .send({ message: 'x' })
        .expect(404);
      await t.http.get(soulPath(missing, worker.agent.id)).set(as(lead.token)).expect(404);
      await t.http
        .put(soulPath(missing, worker.agent.id))
        .set(as(lead.token))
        .send({ content: 'x' })
        .expect(404);
      await t.http
        .post(askUserPath(missing))
        .set(as(lead.token))
        .send({ content: 'x' })
        .expect(404);
    });

    it('users (bearer) are 401 on every coordination route', async () => {
      const calls = [
        t.http.post(nudgePath(boardX.id, worker.agent.id)).send({ message: 'x' }),
        t.http.get(soulPath(boardX.id, worker.agent.id)),
        t.http.put(soulPath(boardX.id, worker.agent.id)).send({ content: 'x' }),
        t.http.post(askUserPath(boardX.id)).send({ content: 'x' }),
        t.http.post(leadMessagePath(boardX.id)).send({ content: 'x' }),
        t.http.post(BROADCAST).send({ content: 'x' }),
      ];
      for (const call of calls) {
        const res = await call.set(user.headers).expect(401);
        expect(res.body.detail).toBe('Unauthorized');
      }
    });
  });
});
