/**
 * Board onboarding (issue 13, contract §1.5, C10, §6) over HTTP against a real OpenClaw gateway
 * and the real PostgreSQL: the start prompt lands in the gateway main agent's session (the main
 * agent, missing at first, is provisioned by the start); the agent, with the token its AGENTS.md
 * on the gateway carries, asks a question; the user's answer lands in the same session; the
 * agent completes; the user confirms: the board goal is confirmed, the user profile updated and
 * a lead with the drafted identity exists on the gateway. A start while a session is active
 * re-sends the pending user message (the prompt, then an answer) once per start.
 *
 * The gateway is read only where the issue says to: the session's chat.history, the main
 * agent's AGENTS.md, agents.list and the lead's IDENTITY.md / SOUL.md.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Board } from '../../src/boards/entities/board.entity';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import type { ChatMessage, GatewayMethods } from '../../src/openclaw/gateway-methods';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { leadAgentId, mainAgentId, mainSessionKey } from '../../src/provisioning/agent-identity';
import { parseConnectionBlock } from '../../src/provisioning/connection-block';
import { buildBoard, buildGateway, signIn, type SignedInUser } from '../support/builders';
import { eventually } from '../support/eventually';
import { createTestApp, type TestApp } from '../support/test-app';

const API = '/api/v1';
const BASE_URL = 'http://mc.onboarding.test:8000';
const GATEWAY_URL = process.env.MC_IT_GATEWAY_URL ?? '';
const GATEWAY_TOKEN = process.env.MC_IT_GATEWAY_TOKEN ?? '';
const RUN_DIR = process.env.MC_IT_GATEWAY_RUN_DIR ?? '';
/**
 * A message sent with chat.send is in chat.history 1.5-2 s later and the offline model's turn
 * ends it a little after; turns of one session run one after another, so a message queued
 * behind others waits for their turns too. Generous for a loaded machine, and bounded.
 */
const SETTLE = { timeoutMs: 60_000, intervalMs: 250 };
/** Provisioning a main agent or a lead on the real gateway: several RPCs and config reloads. */
const PROVISION_TIMEOUT_MS = 180_000;

interface OnboardingBody {
  id: string;
  board_id: string;
  session_key: string;
  status: string;
  messages: { role: string; content: string; timestamp: string }[] | null;
  draft_goal: Record<string, unknown> | null;
  resent?: boolean;
}

const run = randomUUID().slice(0, 8);

let t: TestApp;
let methods: GatewayMethods;
let user: SignedInUser;
let gateway: Gateway;

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

/**
 * The user messages of a session whose text is exactly `text`, once at least `atLeast` of them
 * are there and the turn of the last one has ended (the offline model's reply or the gateway's
 * failed-run entry follows it): nothing more of these sends can arrive after that.
 */
async function userMessagesOnceSettled(sessionKey: string, text: string, atLeast = 1) {
  let seen: ChatMessage[] = [];
  return eventually(
    async () => {
      const { messages } = await methods.chatHistory({ sessionKey, limit: 200 });
      seen = messages;
      const indexes = messages
        .map((m, index) => (m.role === 'user' && shows(textOf(m.content), text) ? index : -1))
        .filter((index) => index >= 0);
      if (indexes.length < atLeast) return undefined;
      const last = indexes[indexes.length - 1];
      return messages.slice(last + 1).some((m) => m.role !== 'user') ? indexes : undefined;
    },
    {
      ...SETTLE,
      what: () => `fewer than ${atLeast} settled copies in ${sessionKey}; ${closest(seen, text)}`,
    },
  );
}

/**
 * Whether a message as chat.history shows it is `text`. The gateway masks secret-looking
 * words in what it displays (openclaw's redactSensitiveText: e.g. `AUTH_TOKEN in` of the prompt
 * comes back as `*** in`), so each `***` of the displayed text stands for some text; everything
 * else must be identical and in order (outer whitespace aside).
 */
function shows(displayedText: string, sentText: string): boolean {
  // The gateway also trims what it stores.
  const [displayed, text] = [displayedText.trim(), sentText.trim()];
  if (!displayed.includes('***')) return displayed === text;
  const escaped = displayed.split('***').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('[\\s\\S]*?')}$`).test(text);
}

/** Where the user message most like `text` differs from it, for a failure message. */
function closest(messages: ChatMessage[], text: string): string {
  const users = messages.filter((m) => m.role === 'user').map((m) => textOf(m.content));
  const common = (a: string) => {
    let i = 0;
    while (i < a.length && i < text.length && a[i] === text[i]) i++;
    return i;
  };
  const best = users.sort((a, b) => common(b) - common(a))[0];
  if (best === undefined) return `${messages.length} messages, no user message`;
  const at = common(best);
  return (
    `${users.length} user messages; the closest (${best.length} chars, expected ` +
    `${text.length}) differs at ${at}: ${JSON.stringify(best.slice(Math.max(0, at - 40), at + 80))}` +
    ` vs ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 80))}`
  );
}

const path = (boardId: string, tail = '') => `${API}/boards/${boardId}/onboarding${tail}`;
const agentPath = (boardId: string) => `${API}/agent/boards/${boardId}/onboarding`;
const start = (boardId: string) => t.http.post(path(boardId, '/start')).set(user.headers).send({});

beforeAll(async () => {
  if (!GATEWAY_URL) throw new Error('run through `npm run test:gateway` (starts the gateway)');
  t = await createTestApp({ BASE_URL });
  user = await signIn(t.http, t.dataSource);
  gateway = await buildGateway(t.dataSource, user.organizationId, {
    name: `Onboarding Gateway ${run}`,
    url: GATEWAY_URL,
    token: GATEWAY_TOKEN,
    workspaceRoot: join(RUN_DIR, 'workspaces'),
  });
  methods = t.app.get(OpenClawGatewayService).methods(gateway);
}, 60_000);

afterAll(async () => {
  await t?.close();
});

describe('board onboarding on a real gateway', () => {
  let board: Board;
  let sessionKey: string;
  let agentToken: string;

  it(
    'start provisions the missing gateway main agent and puts the prompt in its main session',
    async () => {
      board = await buildBoard(t.dataSource, user.organizationId, gateway.id, {
        name: `Launch ${run}`,
      });
      const started = (await start(board.id).expect(200)).body as OnboardingBody;
      expect(started).toMatchObject({ board_id: board.id, status: 'active', resent: false });
      sessionKey = started.session_key;
      expect(sessionKey).toBe(mainSessionKey(gateway.id));
      const prompt = started.messages![0];
      expect(prompt.role).toBe('user');
      expect(prompt.content).toContain(
        `POST ${BASE_URL}/api/v1/agent/boards/${board.id}/onboarding`,
      );

      expect(await userMessagesOnceSettled(sessionKey, prompt.content)).toHaveLength(1);

      // The main agent now exists on the gateway, and its AGENTS.md carries its connection block.
      const listed = await methods.agentsList();
      expect(listed.agents.map((agent) => agent.id)).toContain(mainAgentId(gateway.id));
      const agentsMd = await methods.agentFilesGet(mainAgentId(gateway.id), 'AGENTS.md');
      const block = parseConnectionBlock(agentsMd.file.content ?? '');
      expect(block.BASE_URL).toBe(BASE_URL);
      expect(block.AUTH_TOKEN).toEqual(expect.any(String));
      agentToken = block.AUTH_TOKEN;
    },
    PROVISION_TIMEOUT_MS,
  );

  it('the agent asks with the token from its AGENTS.md; the answer reaches the session', async () => {
    const asked = await t.http
      .post(agentPath(board.id))
      .set({ 'X-Agent-Token': agentToken })
      .send({
        question: 'Who is the launch for?',
        options: [
          { id: '1', label: 'Developers' },
          { id: '2', label: 'Other' },
        ],
      })
      .expect(200);
    expect((asked.body as OnboardingBody).messages!.at(-1)).toMatchObject({
      role: 'assistant',
      content:
        '{"question":"Who is the launch for?","options":[{"id":"1","label":"Developers"},{"id":"2","label":"Other"}]}',
    });

    const answer = `Other: indie hackers ${run}`;
    const answered = await t.http
      .post(path(board.id, '/answer'))
      .set(user.headers)
      .send({ answer: 'Other', other_text: `indie hackers ${run}` })
      .expect(200);
    expect((answered.body as OnboardingBody).messages!.at(-1)).toMatchObject({
      role: 'user',
      content: answer,
    });
    expect(await userMessagesOnceSettled(sessionKey, answer)).toHaveLength(1);
  }, 90_000);

  it('the agent completes; the draft is the session', async () => {
    const completed = await t.http
      .post(agentPath(board.id))
      .set({ 'X-Agent-Token': agentToken })
      .send({
        status: 'complete',
        board_type: 'goal',
        objective: 'Launch the beta to indie hackers',
        success_metrics: { signups: 500 },
        target_date: '2027-03-01',
        user_profile: { preferred_name: `Sam-${run}`, pronouns: 'they/them', timezone: 'UTC' },
        lead_agent: {
          name: `Ava ${run}`,
          identity_profile: {
            role: 'Launch Lead',
            communication_style: 'direct',
            personality: 'calm and curious',
            purpose: 'ship the beta on time',
          },
          autonomy_level: 'autonomous',
          verbosity: 'concise',
          output_format: 'bullets',
          update_cadence: 'daily',
          custom_instructions: `Always cite the signup metric ${run}.`,
        },
      })
      .expect(200);
    const body = completed.body as OnboardingBody;
    expect(body.status).toBe('completed');
    expect(body.draft_goal).toMatchObject({
      board_type: 'goal',
      objective: 'Launch the beta to indie hackers',
      success_metrics: { signups: 500 },
      lead_agent: { name: `Ava ${run}`, autonomy_level: 'autonomous' },
    });
    const got = await t.http.get(path(board.id)).set(user.headers).expect(200);
    expect((got.body as OnboardingBody).draft_goal).toEqual(body.draft_goal);
  });

  it(
    'the user confirms: goal confirmed, profile updated, the lead on the gateway with the drafted identity',
    async () => {
      const confirmed = await t.http
        .post(path(board.id, '/confirm'))
        .set(user.headers)
        .send({
          board_type: 'goal',
          objective: 'Launch the beta to indie hackers',
          success_metrics: { signups: 500 },
          target_date: '2027-03-01',
        })
        .expect(200);
      expect(confirmed.body).toMatchObject({
        id: board.id,
        goal_confirmed: true,
        goal_source: 'lead_agent_onboarding',
        lead_created: true,
        lead_error: null,
      });

      const boardRead = await t.http.get(`${API}/boards/${board.id}`).set(user.headers).expect(200);
      expect(boardRead.body).toMatchObject({
        board_type: 'goal',
        objective: 'Launch the beta to indie hackers',
        success_metrics: { signups: 500 },
        goal_confirmed: true,
      });
      const me = await t.http.get(`${API}/users/me`).set(user.headers).expect(200);
      expect(me.body).toMatchObject({
        preferred_name: `Sam-${run}`,
        pronouns: 'they/them',
        timezone: 'UTC',
      });

      const leadId = leadAgentId(board.id);
      const listed = await methods.agentsList();
      expect(listed.agents.find((agent) => agent.id === leadId)).toMatchObject({
        name: `Ava ${run}`,
      });
      const identity = (await methods.agentFilesGet(leadId, 'IDENTITY.md')).file.content ?? '';
      for (const line of [
        `- Name: Ava ${run}`,
        '- Role: Launch Lead',
        '- Communication style: direct',
        '- Autonomy level: autonomous',
        '- Verbosity: concise',
        '- Output format: bullets',
        '- Update cadence: daily',
        '- Purpose: ship the beta on time',
        '- Personality: calm and curious',
        `Always cite the signup metric ${run}.`,
      ]) {
        expect(identity).toContain(line);
      }
      const soul = (await methods.agentFilesGet(leadId, 'SOUL.md')).file.content ?? '';
      expect(soul).toContain('- Communicate in a direct way.');
      expect(soul).toContain('- Personality: calm and curious');
      expect(soul).toContain('- Purpose: ship the beta on time');
      // The profile copied from the draft names the human in the lead's SOUL.md.
      expect(soul).toContain(`Sam-${run} decides those`);

      // A confirmed session takes no more agent posts.
      await t.http
        .post(agentPath(board.id))
        .set({ 'X-Agent-Token': agentToken })
        .send({ question: 'More?', options: [{ id: '1', label: 'Yes' }] })
        .expect(409);
    },
    PROVISION_TIMEOUT_MS,
  );

  it('a start during an active session re-sends the pending user message (the prompt, then an answer) once per start, and nothing when the agent spoke last', async () => {
    const other = await buildBoard(t.dataSource, user.organizationId, gateway.id, {
      name: `Resend ${run}`,
    });
    const first = (await start(other.id).expect(200)).body as OnboardingBody;
    const prompt = first.messages![0].content;
    expect(await userMessagesOnceSettled(first.session_key, prompt)).toHaveLength(1);

    const second = (await start(other.id).expect(200)).body as OnboardingBody;
    expect(second).toMatchObject({ id: first.id, resent: true, messages: first.messages });
    expect(await userMessagesOnceSettled(first.session_key, prompt, 2)).toHaveLength(2);

    const third = (await start(other.id).expect(200)).body as OnboardingBody;
    expect(third).toMatchObject({ id: first.id, resent: true });
    expect(await userMessagesOnceSettled(first.session_key, prompt, 3)).toHaveLength(3);

    // The agent asked: it is the user's turn, so a start has nothing pending to re-send.
    await t.http
      .post(agentPath(other.id))
      .set({ 'X-Agent-Token': agentToken })
      .send({ question: `Deadline for ${run}?`, options: [{ id: '1', label: 'This month' }] })
      .expect(200);
    const afterQuestion = (await start(other.id).expect(200)).body as OnboardingBody;
    expect(afterQuestion).toMatchObject({ id: first.id, resent: false });

    // The user answered and the agent has not replied yet: the answer is the pending message,
    // re-sent once by the next start.
    const answer = `This month ${run}`;
    await t.http.post(path(other.id, '/answer')).set(user.headers).send({ answer }).expect(200);
    expect(await userMessagesOnceSettled(first.session_key, answer)).toHaveLength(1);
    const afterAnswer = (await start(other.id).expect(200)).body as OnboardingBody;
    expect(afterAnswer).toMatchObject({ id: first.id, resent: true });
    expect(afterAnswer.messages!.at(-1)).toMatchObject({ role: 'user', content: answer });
    expect(await userMessagesOnceSettled(first.session_key, answer, 2)).toHaveLength(2);
  }, 360_000);
});
