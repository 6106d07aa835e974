/**
 * Board onboarding (contract §1.5, C10, §6, issue 13) over HTTP against the in-process gateway
 * (test/support/fake-openclaw-state.ts): the flow, its validation, the failures a real gateway
 * cannot be made to produce on demand (dispatch and provisioning failures), concurrency and
 * access. The flow on a real gateway is test/gateway/onboarding.gateway-spec.ts.
 */
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import { Board } from '../../src/boards/entities/board.entity';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import { BoardOnboardingSession } from '../../src/onboarding/entities/board-onboarding-session.entity';
import { uniqueSessionLabel } from '../../src/openclaw/session-label';
import { leadAgentId, mainAgentId, mainSessionKey } from '../../src/provisioning/agent-identity';
import { User } from '../../src/users/entities/user.entity';
import { IsNull } from 'typeorm';
import {
  buildBoard,
  buildGateway,
  buildLead,
  buildMainAgent,
  buildMember,
  buildOrganization,
  buildWorker,
  grantBoard,
  signIn,
  type SignedInUser,
} from '../support/builders';
import { FakeGateway } from '../support/fake-gateway';
import {
  gatewayFieldsFor,
  serveOpenClawState,
  startOpenClawFake,
} from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

const API = '/api/v1';
const BASE_URL = 'https://mc.example.test';
/** The test-shortened coordination budget (COORDINATION_RETRY_TIMEOUT_MS). */
const BUDGET_MS = 1_500;
const GOAL_RULE = 'Value error, Confirmed goal boards require objective and success_metrics';

type FakeState = ReturnType<typeof serveOpenClawState>;

interface OnboardingBody {
  id: string;
  board_id: string;
  session_key: string;
  status: string;
  messages: { role: string; content: string; timestamp: string }[] | null;
  draft_goal: Record<string, unknown> | null;
  created_at: string;
  updated_at: string;
  resent?: boolean;
}

const COMPLETION = {
  status: 'complete',
  board_type: 'goal',
  objective: '  Launch the beta  ',
  success_metrics: { signups: 500 },
  target_date: '2027-03-01',
  user_profile: { preferred_name: '  Sam ', pronouns: 'they/them', timezone: ' ', notes: null },
  lead_agent: {
    name: ' Ava ',
    identity_profile: { role: ' Launch Lead ', ' emoji ': ':rocket:', blank: '  ' },
    autonomy_level: 'autonomous',
    verbosity: ' detailed ',
    output_format: 'bullets',
    update_cadence: 'daily',
    custom_instructions: 'Always cite the metric.',
  },
};

describe('board onboarding (in-process gateway)', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let state: FakeState;
  let user: SignedInUser;
  let orgId: string;
  let gateway: Gateway;
  let main: { agent: Agent; token: string };

  beforeAll(async () => {
    t = await createTestApp({
      BASE_URL: `${BASE_URL}/`,
      COORDINATION_RETRY_TIMEOUT_MS: String(BUDGET_MS),
    });
    ({ fake, state } = await startOpenClawFake());
    user = await signIn(t.http, t.dataSource);
    orgId = user.organizationId;
    gateway = await buildGateway(t.dataSource, orgId, { name: 'Fake', ...gatewayFieldsFor(fake) });
    main = await buildMainAgent(t.dataSource, gateway.id, { name: 'Fake Gateway Agent' });
  });
  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });
  afterEach(() => {
    state.gate.open();
    state.failures.clear();
    state.rejections.clear();
  });

  const path = (boardId: string, tail = '') => `${API}/boards/${boardId}/onboarding${tail}`;
  const agentPath = (boardId: string) => `${API}/agent/boards/${boardId}/onboarding`;
  const as = (token: string) => ({ 'X-Agent-Token': token });
  const newBoard = (fields: Partial<Board> = {}) =>
    buildBoard(t.dataSource, orgId, gateway.id, fields);
  const sessionsOf = (boardId: string) =>
    t.dataSource.getRepository(BoardOnboardingSession).find({ where: { boardId } });
  const activities = (boardId: string) =>
    t.dataSource
      .getRepository(ActivityEvent)
      .find({ where: { boardId }, order: { createdAt: 'ASC' } })
      .then((rows) => rows.map((row) => row.eventType));
  const sent = (key: string) => (state.chats.get(key) ?? []).map((c) => c.message);
  const start = (boardId: string) =>
    t.http.post(path(boardId, '/start')).set(user.headers).send({});

  describe('the flow', () => {
    it('start → question → answer → completion → confirm: goal, profile and lead with the drafted identity', async () => {
      const board = await newBoard({ name: 'Launch Board' });
      const key = main.agent.openclawSessionId!;
      const before = sent(key).length;

      const started = await start(board.id).expect(200);
      const s = started.body as OnboardingBody;
      expect(s).toMatchObject({
        board_id: board.id,
        session_key: key,
        status: 'active',
        draft_goal: null,
        resent: false,
      });
      const prompt = s.messages![0];
      expect(prompt.role).toBe('user');
      expect(prompt.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const endpoint = `POST ${BASE_URL}/api/v1/agent/boards/${board.id}/onboarding`;
      expect(prompt.content).toContain(endpoint);
      expect(prompt.content).toContain('X-Agent-Token');
      expect(prompt.content).toContain('env mission-control');
      expect(prompt.content).toContain('Anything else we should know?');
      expect(prompt.content).toContain("Yes (I'll type it)");
      expect(prompt.content).toContain('Do NOT respond in OpenClaw chat');
      expect(prompt.content).toContain('Board name: Launch Board');
      // Dispatched to the gateway main session, deliver false, labelled with the main agent.
      expect(state.chats.get(key)!.slice(before)).toEqual([
        { message: prompt.content, deliver: false, idempotencyKey: expect.any(String) },
      ]);
      const patch = fake.requests.filter(
        (r) => r.method === 'sessions.patch' && r.params.key === key,
      );
      expect(patch.at(-1)?.params.label).toBe(uniqueSessionLabel('Fake Gateway Agent', key));

      const asked = await t.http
        .post(agentPath(board.id))
        .set(as(main.token))
        .send({ question: ' Who is it for? ', options: [{ id: '1', label: ' Devs ' }] })
        .expect(200);
      expect((asked.body as OnboardingBody).messages!.at(-1)).toMatchObject({
        role: 'assistant',
        content: '{"question":"Who is it for?","options":[{"id":"1","label":"Devs"}]}',
      });

      const answered = await t.http
        .post(path(board.id, '/answer'))
        .set(user.headers)
        .send({ answer: ' Other ', other_text: 'indie hackers' })
        .expect(200);
      expect((answered.body as OnboardingBody).messages!.at(-1)).toMatchObject({
        role: 'user',
        content: 'Other: indie hackers',
      });
      expect(sent(key).at(-1)).toBe('Other: indie hackers');

      const completed = await t.http
        .post(`${path(board.id, '/agent')}`)
        .set(as(main.token))
        .send(COMPLETION)
        .expect(200);
      const c = completed.body as OnboardingBody;
      expect(c.status).toBe('completed');
      expect(c.draft_goal).toEqual({
        status: 'complete',
        board_type: 'goal',
        objective: '  Launch the beta  ',
        success_metrics: { signups: 500 },
        target_date: '2027-03-01T00:00:00.000Z',
        user_profile: {
          preferred_name: 'Sam',
          pronouns: 'they/them',
          timezone: null,
          notes: null,
          context: null,
        },
        lead_agent: {
          name: 'Ava',
          identity_profile: { role: 'Launch Lead', emoji: ':rocket:' },
          autonomy_level: 'autonomous',
          verbosity: 'detailed',
          output_format: 'bullets',
          update_cadence: 'daily',
          custom_instructions: 'Always cite the metric.',
        },
      });
      // Stored compact, nulls omitted.
      expect(JSON.parse(c.messages!.at(-1)!.content)).toEqual({
        status: 'complete',
        board_type: 'goal',
        objective: '  Launch the beta  ',
        success_metrics: { signups: 500 },
        target_date: '2027-03-01T00:00:00.000Z',
        user_profile: { preferred_name: 'Sam', pronouns: 'they/them' },
        lead_agent: {
          name: 'Ava',
          identity_profile: { role: 'Launch Lead', emoji: ':rocket:' },
          autonomy_level: 'autonomous',
          verbosity: 'detailed',
          output_format: 'bullets',
          update_cadence: 'daily',
          custom_instructions: 'Always cite the metric.',
        },
      });

      const got = await t.http.get(path(board.id)).set(user.headers).expect(200);
      expect((got.body as OnboardingBody).draft_goal).toEqual(c.draft_goal);

      const boardBefore = await t.dataSource.getRepository(Board).findOneByOrFail({ id: board.id });
      const confirmed = await t.http
        .post(path(board.id, '/confirm'))
        .set(user.headers)
        .send({
          board_type: 'goal',
          objective: 'Launch the beta',
          success_metrics: { signups: 500 },
          target_date: '2027-03-01',
        })
        .expect(200);
      expect(confirmed.body).toMatchObject({
        id: board.id,
        board_type: 'goal',
        objective: 'Launch the beta',
        success_metrics: { signups: 500 },
        target_date: '2027-03-01T00:00:00.000Z',
        goal_confirmed: true,
        goal_source: 'lead_agent_onboarding',
        lead_created: true,
        lead_error: null,
      });
      const body = confirmed.body as { updated_at: string; lead_agent_id: string };
      expect(Date.parse(body.updated_at)).toBeGreaterThan(boardBefore.updatedAt.getTime());

      const me = await t.dataSource.getRepository(User).findOneByOrFail({ id: user.userId });
      expect(me).toMatchObject({ preferredName: 'Sam', pronouns: 'they/them' });

      const lead = await t.dataSource
        .getRepository(Agent)
        .findOneByOrFail({ id: body.lead_agent_id });
      expect(lead).toMatchObject({ name: 'Ava', isBoardLead: true, boardId: board.id });
      expect(lead.identityProfile).toMatchObject({
        role: 'Launch Lead',
        emoji: ':rocket:',
        autonomy_level: 'autonomous',
        verbosity: 'detailed',
        output_format: 'bullets',
        update_cadence: 'daily',
        custom_instructions: 'Always cite the metric.',
      });
      const files = state.files.get(leadAgentId(board.id))!;
      const identity = files.get('IDENTITY.md')!;
      expect(identity).toContain('Role: Launch Lead');
      expect(identity).toContain('Autonomy level: autonomous');
      expect(identity).toContain('Verbosity: detailed');
      expect(identity).toContain('Output format: bullets');
      expect(identity).toContain('Update cadence: daily');
      expect(identity).toContain('Always cite the metric.');
      expect(files.get('SOUL.md')).toBeDefined();

      const session = (await sessionsOf(board.id))[0];
      expect(session.status).toBe('confirmed');
      expect(await activities(board.id)).toEqual(
        expect.arrayContaining([
          'onboarding.started',
          'onboarding.question',
          'onboarding.answered',
          'onboarding.completed',
          'onboarding.confirmed',
          'onboarding.lead.created',
        ]),
      );

      // A confirmed session takes no more agent posts.
      await t.http
        .post(agentPath(board.id))
        .set(as(main.token))
        .send({ question: 'More?', options: [{ id: '1', label: 'Yes' }] })
        .expect(409);
    });
  });

  /** A board whose onboarding the agent completed (no lead yet). */
  const completedBoard = async (fields: Partial<Board> = {}) => {
    const board = await newBoard(fields);
    await start(board.id).expect(200);
    await t.http.post(agentPath(board.id)).set(as(main.token)).send(COMPLETION).expect(200);
    return board;
  };

  describe('start', () => {
    it('a second start while active re-sends the pending user message once, same session, updated_at bumped', async () => {
      const board = await newBoard();
      const key = main.agent.openclawSessionId!;
      const first = (await start(board.id).expect(200)).body as OnboardingBody;
      const count = sent(key).length;
      const second = (await start(board.id).expect(200)).body as OnboardingBody;
      expect(second).toMatchObject({ id: first.id, resent: true, messages: first.messages });
      expect(Date.parse(second.updated_at)).toBeGreaterThan(Date.parse(first.updated_at));
      expect(sent(key).slice(count)).toEqual([first.messages![0].content]);
      expect(await sessionsOf(board.id)).toHaveLength(1);
      expect(await activities(board.id)).toEqual(['onboarding.started', 'onboarding.resent']);

      // Once the agent asked, it is the user's turn: a start sends nothing.
      await t.http
        .post(agentPath(board.id))
        .set(as(main.token))
        .send({ question: 'Goal?', options: [{ id: '1', label: 'Ship' }] })
        .expect(200);
      const third = (await start(board.id).expect(200)).body as OnboardingBody;
      expect(third).toMatchObject({ id: first.id, resent: false });
      expect(sent(key).length).toBe(count + 1);
    });

    it('concurrent starts: one session, one dispatch, both answer with it', async () => {
      const board = await newBoard();
      const key = main.agent.openclawSessionId!;
      const count = sent(key).length;
      state.gate.close('chat.send');
      const first = start(board.id).then((res) => res);
      await waitFor(() => state.gate.held >= 1);
      const second = start(board.id).then((res) => res);
      // The second waits for the first (the gate holds the first's send).
      await new Promise((resolve) => setTimeout(resolve, 300));
      state.gate.open();
      const [a, b] = await Promise.all([first, second]);
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
      expect((a.body as OnboardingBody).id).toBe((b.body as OnboardingBody).id);
      expect(await sessionsOf(board.id)).toHaveLength(1);
      expect(sent(key).length).toBe(count + 1);
    });

    it('requires a JSON body ({} is enough)', async () => {
      const board = await newBoard();
      const res = await t.http.post(path(board.id, '/start')).set(user.headers).expect(422);
      expect(res.body.detail).toEqual([{ type: 'missing', loc: ['body'], msg: 'Field required' }]);
    });

    it('a dispatch failure is 502 with the contract text, and nothing is stored', async () => {
      const board = await newBoard();
      state.rejections.set('chat.send', () => ({ code: 'INVALID_REQUEST', message: 'no way' }));
      const res = await start(board.id).expect(502);
      expect(res.body.detail).toBe('Gateway onboarding start dispatch failed: no way');
      expect(await sessionsOf(board.id)).toHaveLength(0);
      expect(await activities(board.id)).toEqual(['onboarding.start.failed']);
    });

    it('a gateway that stays unreachable: 502 after the retry budget, nothing stored', async () => {
      const board = await newBoard();
      state.failures.set('chat.send', () => true);
      const res = await start(board.id).expect(502);
      expect(res.body.detail).toMatch(
        /^Gateway onboarding start dispatch failed: Gateway unreachable after/,
      );
      expect(await sessionsOf(board.id)).toHaveLength(0);
    });

    it('the gateway main agent missing: provisioned first, then the prompt goes to its session', async () => {
      const other = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake));
      const board = await buildBoard(t.dataSource, orgId, other.id);
      const res = await start(board.id).expect(200);
      const mainRow = await t.dataSource
        .getRepository(Agent)
        .findOneByOrFail({ gatewayId: other.id, boardId: IsNull() });
      expect(mainRow.agentTokenHash).not.toBeNull();
      expect(mainRow.lastProvisionError).toBeNull();
      expect(state.agents.has(mainAgentId(other.id))).toBe(true);
      expect((res.body as OnboardingBody).session_key).toBe(mainSessionKey(other.id));
      expect(sent(mainSessionKey(other.id)).at(-1)).toBe(
        (res.body as OnboardingBody).messages![0].content,
      );
    });

    it('provisioning the missing main agent fails: 502, no session stored', async () => {
      const other = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake));
      const board = await buildBoard(t.dataSource, orgId, other.id);
      state.rejections.set('agents.create', () => ({
        code: 'INVALID_REQUEST',
        message: 'disk full',
      }));
      const res = await start(board.id).expect(502);
      expect(res.body.detail).toMatch(/^Gateway onboarding start dispatch failed: .*disk full/);
      expect(await sessionsOf(board.id)).toHaveLength(0);
      expect(sent(mainSessionKey(other.id))).toEqual([]);
      expect(await activities(board.id)).toContain('onboarding.start.failed');
    });

    it('a board without a gateway, or whose gateway has no URL: 422 with the §5.2 texts', async () => {
      const detached = await buildBoard(t.dataSource, orgId, null);
      expect((await start(detached.id).expect(422)).body.detail).toBe(
        'Board is not attached to a gateway',
      );
      const blank = await buildGateway(t.dataSource, orgId, {
        ...gatewayFieldsFor(fake),
        url: ' ',
      });
      const board = await buildBoard(t.dataSource, orgId, blank.id);
      expect((await start(board.id).expect(422)).body.detail).toBe(
        'Gateway is not configured for this board',
      );
    });
  });

  describe('answer', () => {
    it('404 without a session', async () => {
      const board = await newBoard();
      await t.http
        .post(path(board.id, '/answer'))
        .set(user.headers)
        .send({ answer: 'x' })
        .expect(404);
      await t.http.get(path(board.id)).set(user.headers).expect(404);
    });

    it('a blank answer is 422', async () => {
      const board = await newBoard();
      await start(board.id).expect(200);
      const res = await t.http
        .post(path(board.id, '/answer'))
        .set(user.headers)
        .send({ answer: '   ' })
        .expect(422);
      expect(res.body.detail[0]).toMatchObject({ loc: ['body', 'answer'] });
    });

    it('a dispatch failure is 502 with the contract text, and the answer is not stored', async () => {
      const board = await newBoard();
      const before = (await start(board.id).expect(200)).body as OnboardingBody;
      state.rejections.set('chat.send', () => ({ code: 'INVALID_REQUEST', message: 'refused' }));
      const res = await t.http
        .post(path(board.id, '/answer'))
        .set(user.headers)
        .send({ answer: 'Yes' })
        .expect(502);
      expect(res.body.detail).toBe('Gateway onboarding answer dispatch failed: refused');
      const [session] = await sessionsOf(board.id);
      expect(session.messages).toHaveLength(1);
      expect(session.updatedAt.toISOString()).toBe(before.updated_at);
      expect(await activities(board.id)).toContain('onboarding.answer.failed');
    });

    it('concurrent answers are all kept', async () => {
      const board = await newBoard();
      await start(board.id).expect(200);
      const answers = ['a1', 'a2', 'a3', 'a4', 'a5'];
      await Promise.all(
        answers.map((answer) =>
          t.http.post(path(board.id, '/answer')).set(user.headers).send({ answer }).expect(200),
        ),
      );
      const [session] = await sessionsOf(board.id);
      expect(
        session
          .messages!.slice(1)
          .map((m) => m.content)
          .sort(),
      ).toEqual(answers);
    });

    it('a full conversation is 409 and sends nothing', async () => {
      const board = await newBoard();
      const s = (await start(board.id).expect(200)).body as OnboardingBody;
      const filler = Array.from({ length: 199 }, (_, i) => ({
        role: 'user',
        content: `m${i}`,
        timestamp: new Date().toISOString(),
      }));
      await t.dataSource.query(
        `UPDATE board_onboarding_sessions SET messages = messages || $2::jsonb WHERE id = $1`,
        [s.id, JSON.stringify(filler)],
      );
      const count = sent(main.agent.openclawSessionId!).length;
      const res = await t.http
        .post(path(board.id, '/answer'))
        .set(user.headers)
        .send({ answer: 'one more' })
        .expect(409);
      expect(res.body.detail).toMatch(/at most 200 messages, 1000000 bytes/);
      expect(sent(main.agent.openclawSessionId!).length).toBe(count);
      await t.http
        .post(agentPath(board.id))
        .set(as(main.token))
        .send({ question: 'q?', options: [{ id: '1', label: 'l' }] })
        .expect(409);
    });
  });

  it('a conversation past its size bound is 409 too, for users and the agent', async () => {
    const board = await newBoard();
    const s = (await start(board.id).expect(200)).body as OnboardingBody;
    // About 1 MB of messages: 101 in all, far below the count bound.
    const big = Array.from({ length: 100 }, () => ({
      role: 'user',
      content: 'x'.repeat(9_950),
      timestamp: new Date().toISOString(),
    }));
    await t.dataSource.query(
      `UPDATE board_onboarding_sessions SET messages = messages || $2::jsonb WHERE id = $1`,
      [s.id, JSON.stringify(big)],
    );
    await t.http
      .post(path(board.id, '/answer'))
      .set(user.headers)
      .send({ answer: 'Other', other_text: 'y'.repeat(9_000) })
      .expect(409);
    await t.http
      .post(agentPath(board.id))
      .set(as(main.token))
      .send({ ...COMPLETION, lead_agent: { custom_instructions: 'z'.repeat(15_000) } })
      .expect(409);
    const [session] = await sessionsOf(board.id);
    expect(session.messages).toHaveLength(101);
  });

  it('an answer the size bound refuses is not sent either (the pre-check measures as the store does)', async () => {
    const board = await newBoard();
    const s = (await start(board.id).expect(200)).body as OnboardingBody;
    const big = Array.from({ length: 100 }, () => ({
      role: 'user',
      content: 'x'.repeat(9_800),
      timestamp: new Date().toISOString(),
    }));
    await t.dataSource.query(
      `UPDATE board_onboarding_sessions SET messages = messages || $2::jsonb WHERE id = $1`,
      [s.id, JSON.stringify(big)],
    );
    // Pad the last message so the conversation, measured compactly, leaves room for the answer
    // while its stored (jsonb text) size does not.
    const entry = JSON.stringify([
      { role: 'user', content: 'Yes', timestamp: new Date().toISOString() },
    ]);
    const [stored] = await sessionsOf(board.id);
    const compact = Buffer.byteLength(JSON.stringify(stored.messages));
    const pad = 1_000_000 - Buffer.byteLength(entry) + 1 - 50 - compact;
    expect(pad).toBeGreaterThan(0);
    await t.dataSource.query(
      `UPDATE board_onboarding_sessions
          SET messages = jsonb_set(messages, '{100,content}', to_jsonb((messages->100->>'content') || repeat('x', $2)))
        WHERE id = $1`,
      [s.id, pad],
    );
    const [{ over }] = await t.dataSource.query<{ over: boolean }[]>(
      `SELECT octet_length(messages::text) + $2 > 1000000 AS over FROM board_onboarding_sessions WHERE id = $1`,
      [s.id, Buffer.byteLength(entry)],
    );
    expect(over).toBe(true);
    const key = main.agent.openclawSessionId!;
    const count = sent(key).length;
    await t.http
      .post(path(board.id, '/answer'))
      .set(user.headers)
      .send({ answer: 'Yes' })
      .expect(409);
    expect(sent(key).length).toBe(count);
    expect((await sessionsOf(board.id))[0].messages).toHaveLength(101);
  });

  describe('agent updates: validation', () => {
    let board: Board;
    beforeAll(async () => {
      board = await newBoard();
      await start(board.id).expect(200);
    });
    const post = (body: unknown) =>
      t.http
        .post(agentPath(board.id))
        .set(as(main.token))
        .send(body as object);

    it('a goal completion without objective or success metrics: 422 with the contract message', async () => {
      for (const body of [
        { status: 'complete', board_type: 'goal', success_metrics: { a: 1 } },
        { status: 'complete', board_type: 'goal', objective: 'x', success_metrics: {} },
        { status: 'complete', board_type: 'goal', objective: '', success_metrics: { a: 1 } },
      ]) {
        const res = await post(body).expect(422);
        expect(res.body.detail).toContainEqual(
          expect.objectContaining({
            type: 'value_error',
            loc: ['body', 'BoardOnboardingAgentComplete'],
            msg: GOAL_RULE,
          }),
        );
      }
      // A general board needs neither.
      await post({ status: 'complete', board_type: 'general' }).expect(200);
    });

    it('a bad enum: 422 naming the field and the allowed values', async () => {
      const res = await post({
        status: 'complete',
        board_type: 'general',
        lead_agent: { autonomy_level: 'reckless' },
      }).expect(422);
      expect(res.body.detail).toContainEqual(
        expect.objectContaining({
          loc: ['body', 'BoardOnboardingAgentComplete', 'lead_agent', 'autonomy_level'],
          msg: "Input should be 'ask_first', 'balanced' or 'autonomous'",
          input: 'reckless',
        }),
      );
    });

    it('a question without options, or with a blank label: 422', async () => {
      const empty = await post({ question: 'Why?', options: [] }).expect(422);
      expect(empty.body.detail).toContainEqual(
        expect.objectContaining({
          type: 'too_short',
          loc: ['body', 'BoardOnboardingAgentQuestion', 'options'],
        }),
      );
      const blank = await post({ question: 'Why?', options: [{ id: '1', label: ' ' }] }).expect(
        422,
      );
      expect(blank.body.detail).toContainEqual(
        expect.objectContaining({
          loc: ['body', 'BoardOnboardingAgentQuestion', 'options', 0, 'label'],
        }),
      );
    });

    it('an option that is not an object: one issue at its index, as pydantic reports it', async () => {
      const questionIssues = (detail: { loc: unknown[] }[]) =>
        detail.filter((issue) => issue.loc[1] === 'BoardOnboardingAgentQuestion');
      for (const option of [1, null, [], 'x']) {
        const res = await post({ question: 'Why?', options: [option] }).expect(422);
        expect(questionIssues(res.body.detail)).toEqual([
          {
            type: 'model_type',
            loc: ['body', 'BoardOnboardingAgentQuestion', 'options', 0],
            msg: 'Input should be a valid dictionary or instance of BoardOnboardingQuestionOption',
            input: option,
          },
        ]);
      }
    });

    it('neither branch: 422 with the issues of both', async () => {
      const res = await post({}).expect(422);
      const locs = (res.body.detail as { loc: unknown[] }[]).map((d) => d.loc);
      expect(locs).toEqual(
        expect.arrayContaining([
          ['body', 'BoardOnboardingAgentQuestion', 'question'],
          ['body', 'BoardOnboardingAgentQuestion', 'options'],
          ['body', 'BoardOnboardingAgentComplete', 'board_type'],
          ['body', 'BoardOnboardingAgentComplete', 'status'],
        ]),
      );
      await post([]).expect(422);
    });

    it('a bad target_date is 422; YYYY-MM-DD and a full date-time are accepted', async () => {
      await post({ status: 'complete', board_type: 'general', target_date: 'soon' }).expect(422);
      const full = await post({
        status: 'complete',
        board_type: 'general',
        target_date: '2027-01-02T03:04:05+02:00',
      }).expect(200);
      expect((full.body as OnboardingBody).draft_goal!.target_date).toBe(
        '2027-01-02T01:04:05.000Z',
      );
    });

    it('too many options is 422 (bounded)', async () => {
      const options = Array.from({ length: 21 }, (_, i) => ({ id: `${i}`, label: `o${i}` }));
      await post({ question: 'Pick', options }).expect(422);
    });
  });

  describe('confirm', () => {
    it('422 (goal rule) and 404 without a session', async () => {
      const board = await newBoard();
      const bad = await t.http
        .post(path(board.id, '/confirm'))
        .set(user.headers)
        .send({ board_type: 'goal' })
        .expect(422);
      expect(bad.body.detail).toEqual([
        expect.objectContaining({ type: 'value_error', loc: ['body'], msg: GOAL_RULE }),
      ]);
      await t.http
        .post(path(board.id, '/confirm'))
        .set(user.headers)
        .send({ board_type: 'general' })
        .expect(404);
    });

    it('gateway configuration missing: 422 and nothing is committed', async () => {
      const other = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake));
      await buildMainAgent(t.dataSource, other.id);
      const board = await buildBoard(t.dataSource, orgId, other.id, { objective: 'old' });
      await start(board.id).expect(200);
      await t.dataSource.getRepository(BoardOnboardingSession).update(
        { boardId: board.id },
        {
          status: 'completed',
          draftGoal: { status: 'complete', board_type: 'general', user_profile: { notes: 'N' } },
        },
      );
      await t.dataSource.query(`UPDATE gateways SET url = '' WHERE id = $1`, [other.id]);
      const meBefore = await t.dataSource.getRepository(User).findOneByOrFail({ id: user.userId });
      const res = await t.http
        .post(path(board.id, '/confirm'))
        .set(user.headers)
        .send({ board_type: 'general', objective: 'new' })
        .expect(422);
      expect(res.body.detail).toBe('Gateway is not configured for this board');
      const after = await t.dataSource.getRepository(Board).findOneByOrFail({ id: board.id });
      expect(after).toMatchObject({ objective: 'old', goalConfirmed: false });
      expect((await sessionsOf(board.id))[0].status).toBe('completed');
      const meAfter = await t.dataSource.getRepository(User).findOneByOrFail({ id: user.userId });
      expect(meAfter.notes).toBe(meBefore.notes);
      expect(await activities(board.id)).not.toContain('onboarding.confirmed');
    });

    it('an existing lead is updated with the drafted name and identity and re-provisioned, not duplicated', async () => {
      const board = await completedBoard();
      const existing = await buildLead(t.dataSource, gateway.id, board.id, { name: 'Old Lead' });
      const res = await t.http
        .post(path(board.id, '/confirm'))
        .set(user.headers)
        .send({ board_type: 'general' })
        .expect(200);
      expect(res.body).toMatchObject({
        lead_agent_id: existing.agent.id,
        lead_created: false,
        lead_error: null,
      });
      const leads = await t.dataSource
        .getRepository(Agent)
        .find({ where: { boardId: board.id, isBoardLead: true } });
      expect(leads).toHaveLength(1);
      expect(leads[0]).toMatchObject({ name: 'Ava', lastProvisionError: null });
      expect(leads[0].identityProfile).toMatchObject({
        role: 'Launch Lead',
        autonomy_level: 'autonomous',
      });
      const identity = state.files.get(leadAgentId(board.id))!.get('IDENTITY.md')!;
      expect(identity).toContain('Autonomy level: autonomous');
      expect(identity).toContain('Ava');
      expect(await activities(board.id)).toContain('onboarding.lead.updated');
    });

    it('a draft without a lead: an existing lead keeps its identity and is not re-provisioned', async () => {
      const board = await newBoard();
      await start(board.id).expect(200);
      const { lead_agent: _none, ...withoutLead } = COMPLETION;
      await t.http.post(agentPath(board.id)).set(as(main.token)).send(withoutLead).expect(200);
      const profile = { role: 'Ops Chief', communication_style: 'terse', emoji: ':x:' };
      const existing = await buildLead(t.dataSource, gateway.id, board.id, {
        name: 'Kept Lead',
        identityProfile: profile,
      });
      const res = await t.http
        .post(path(board.id, '/confirm'))
        .set(user.headers)
        .send({ board_type: 'general' })
        .expect(200);
      expect(res.body).toMatchObject({ lead_agent_id: existing.agent.id, lead_error: null });
      const lead = await t.dataSource
        .getRepository(Agent)
        .findOneByOrFail({ id: existing.agent.id });
      expect(lead.name).toBe('Kept Lead');
      expect(lead.identityProfile).toEqual(profile);
      expect(lead.agentTokenHash).toBe(existing.agent.agentTokenHash);
      expect(state.files.get(leadAgentId(board.id))).toBeUndefined();
    });

    it('a lead provisioning failure: the goal is confirmed, the failure reported and recorded', async () => {
      const board = await completedBoard();
      state.rejections.set('agents.files.set', () => ({
        code: 'INVALID_REQUEST',
        message: 'read-only workspace',
      }));
      const res = await t.http
        .post(path(board.id, '/confirm'))
        .set(user.headers)
        .send({ board_type: 'general' })
        .expect(200);
      expect(res.body).toMatchObject({ goal_confirmed: true, lead_created: true });
      expect(res.body.lead_error).toMatch(/read-only workspace/);
      const lead = await t.dataSource
        .getRepository(Agent)
        .findOneByOrFail({ boardId: board.id, isBoardLead: true });
      expect(lead.lastProvisionError).toMatch(/read-only workspace/);
      expect(await activities(board.id)).toContain('onboarding.lead.failed');
    });
  });

  describe('access', () => {
    let board: Board;
    beforeAll(async () => {
      board = await newBoard();
      await start(board.id).expect(200);
    });
    const question = { question: 'Q?', options: [{ id: '1', label: 'A' }] };

    it('users cannot use the agent routes (401)', async () => {
      await t.http.post(path(board.id, '/agent')).set(user.headers).send(question).expect(401);
      await t.http.post(agentPath(board.id)).set(user.headers).send(question).expect(401);
      await t.http.post(agentPath(board.id)).send(question).expect(401);
    });

    it('a worker or the lead of the board: 403; an agent of another board: 403', async () => {
      const worker = await buildWorker(t.dataSource, gateway.id, board.id);
      const lead = await buildLead(t.dataSource, gateway.id, board.id);
      const otherBoard = await newBoard();
      const otherWorker = await buildWorker(t.dataSource, gateway.id, otherBoard.id);
      for (const token of [worker.token, lead.token, otherWorker.token]) {
        await t.http.post(agentPath(board.id)).set(as(token)).send(question).expect(403);
        await t.http.post(path(board.id, '/agent')).set(as(token)).send(question).expect(403);
      }
    });

    it('the main agent of another gateway (same or other organization): 403', async () => {
      const other = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake));
      const otherMain = await buildMainAgent(t.dataSource, other.id);
      const otherOrg = (await buildOrganization(t.dataSource)).id;
      const foreign = await buildGateway(t.dataSource, otherOrg, gatewayFieldsFor(fake));
      const foreignMain = await buildMainAgent(t.dataSource, foreign.id);
      for (const token of [otherMain.token, foreignMain.token]) {
        await t.http.post(agentPath(board.id)).set(as(token)).send(question).expect(403);
      }
      const [session] = await sessionsOf(board.id);
      expect(session.messages).toHaveLength(1);
    });

    it('an unknown board: 404 before authentication', async () => {
      const unknown = '00000000-0000-4000-8000-000000000000';
      await t.http.post(agentPath(unknown)).send(question).expect(404);
      await t.http.post(path(unknown, '/agent')).send(question).expect(404);
    });

    it('users of another organization or without write access are refused by the board guard', async () => {
      const stranger = await signIn(t.http, t.dataSource);
      await t.http.get(path(board.id)).set(stranger.headers).expect(403);
      await t.http.post(path(board.id, '/start')).set(stranger.headers).send({}).expect(403);

      const reader = await signIn(t.http, t.dataSource);
      const member = await buildMember(t.dataSource, orgId, reader.userId);
      await grantBoard(t.dataSource, member.id, board.id, { canRead: true, canWrite: false });
      await t.dataSource.query(`UPDATE users SET active_organization_id = $2 WHERE id = $1`, [
        reader.userId,
        orgId,
      ]);
      await t.http.get(path(board.id)).set(reader.headers).expect(200);
      for (const [tail, body] of [
        ['/start', {}],
        ['/answer', { answer: 'x' }],
        ['/confirm', { board_type: 'general' }],
      ] as const) {
        await t.http.post(path(board.id, tail)).set(reader.headers).send(body).expect(403);
      }
    });
  });
});

describe('board onboarding on a small database pool', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let state: FakeState;
  let user: SignedInUser;

  beforeAll(async () => {
    // Two connections: a start that held one across the main agent's provisioning (which needs
    // connections of its own) could wait forever once another start holds the other.
    t = await createTestApp({
      BASE_URL: `${BASE_URL}/`,
      COORDINATION_RETRY_TIMEOUT_MS: String(BUDGET_MS),
      DATABASE_POOL_SIZE: '2',
    });
    ({ fake, state } = await startOpenClawFake());
    user = await signIn(t.http, t.dataSource);
  });
  afterAll(async () => {
    state?.gate.open();
    await t?.close();
    await fake?.stop();
  });

  it('concurrent starts of boards whose main agents are missing all complete (no pool deadlock)', async () => {
    const boards: Board[] = [];
    for (let i = 0; i < 3; i += 1) {
      const gw = await buildGateway(t.dataSource, user.organizationId, gatewayFieldsFor(fake));
      boards.push(await buildBoard(t.dataSource, user.organizationId, gw.id));
    }
    const start = (board: Board) =>
      t.http
        .post(`${API}/boards/${board.id}/onboarding/start`)
        .set(user.headers)
        .send({})
        .then((res) => res.status);
    // The first start's main agent provisioning waits at the gateway ...
    state.gate.close('agents.create');
    const first = start(boards[0]);
    await waitFor(() => state.gate.held >= 1);
    // ... while two more starts come in and take what the pool has.
    const others = boards.slice(1).map(start);
    await new Promise((resolve) => setTimeout(resolve, 300));
    state.gate.open();
    const bound = new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 20_000));
    const statuses = await Promise.race([Promise.all([first, ...others]), bound]);
    expect(statuses).toEqual([200, 200, 200]);
    const sessions = await t.dataSource.getRepository(BoardOnboardingSession).find();
    expect(sessions.map((s) => s.boardId).sort()).toEqual(boards.map((b) => b.id).sort());
  }, 40_000);
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
