/**
 * The real gateway stops (scripts/openclaw-gateway.sh halt) while agents are being created (by
 * an org admin and by the board lead) and nudged: every request answers within a bound with
 * what happened, the database holds no half-created agent (each one exists with a token that
 * authenticates, or with a stable status and `last_provision_error` naming the failed step), and
 * once the gateway is back (`restart`) `PATCH ?force=true` provisions each failed agent, and the
 * pooled client has reconnected by itself on a new socket.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent } from '../../src/agents/entities/agent.entity';
import type { Board } from '../../src/boards/entities/board.entity';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import type { GatewayMethods } from '../../src/openclaw/gateway-methods';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { parseConnectionBlock } from '../../src/provisioning/connection-block';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import {
  buildBoard,
  buildGateway,
  buildWorker,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { eventually, eventuallyExpect, waitUntil } from '../support/eventually';
import { createTestApp, type TestApp } from '../support/test-app';
import { RESTART_TIMEOUT_MS } from './support/gateway-script';

const run = promisify(execFile);
const SCRIPT = join(__dirname, '..', '..', 'scripts', 'openclaw-gateway.sh');
const RUN_DIR = process.env.MC_IT_GATEWAY_RUN_DIR ?? '';
const API = '/api/v1';
/** agents.list settles through the gateway's config hot-reload (~1.5 s). */
const SETTLE = { timeoutMs: 30_000, intervalMs: 250 };
/** The app's gateway bounds here: a request deadline and the coordination retry budget. */
const REQUEST_TIMEOUT_MS = 10_000;
const COORDINATION_BUDGET_MS = 8_000;
/**
 * No request may stay unanswered longer than this: a create queues behind at most
 * PROVISION_CONCURRENCY runs whose steps each end within the request deadline, a nudge within
 * its retry budget plus one request deadline. Generous on purpose: it catches a hang, it is not
 * a performance bound.
 */
const ANSWER_BOUND_MS = 90_000;
const CREATES = 6;
const NUDGES = 4;

let t: TestApp;
let methods: GatewayMethods;
let service: OpenClawGatewayService;
let gateway: Gateway;
let board: Board;
let admin: SignedInUser;
let lead: { agent: Agent; token: string };
let worker: { agent: Agent; token: string };

beforeAll(async () => {
  t = await createTestApp({
    OPENCLAW_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    COORDINATION_RETRY_TIMEOUT_MS: String(COORDINATION_BUDGET_MS),
  });
  service = t.app.get(OpenClawGatewayService);
  const provisioning = t.app.get(ProvisioningService);
  const created = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Gateway Outage');
  admin = created.owner;
  gateway = await buildGateway(t.dataSource, created.orgId, {
    name: 'Outage Gateway',
    url: process.env.MC_IT_GATEWAY_URL ?? '',
    token: process.env.MC_IT_GATEWAY_TOKEN ?? null,
    workspaceRoot: join(RUN_DIR, 'workspaces'),
  });
  methods = service.methods(gateway);
  board = await buildBoard(t.dataSource, created.orgId, gateway.id, {
    name: 'Outage Board',
    maxAgents: 20,
  });
  const leadResult = await provisioning.ensureBoardLead(
    { organizationId: created.orgId, boardId: board.id },
    { agentName: 'Outage Lead' },
  );
  expect(leadResult.outcome).toMatchObject({ status: 'provisioned' });
  lead = { agent: leadResult.lead, token: leadResult.outcome!.token as string };
  const row = await buildWorker(t.dataSource, gateway.id, board.id, { name: 'Outage Worker' });
  const outcome = await provisioning.provisionAgent(
    { organizationId: created.orgId, agentId: row.agent.id },
    { action: 'provision', wake: false },
  );
  expect(outcome).toMatchObject({ status: 'provisioned' });
  worker = { agent: outcome.agent, token: outcome.token as string };
}, 120_000);

afterAll(async () => {
  await t?.close();
});

interface Answer {
  what: string;
  status: number;
  body: Record<string, unknown>;
  error?: string;
}

/** Sends and records the answer; a request unanswered within ANSWER_BOUND_MS is status 0. */
async function answerOf(what: string, request: () => Promise<{ status: number; body: unknown }>) {
  try {
    const res = await request();
    return { what, status: res.status, body: res.body as Record<string, unknown> };
  } catch (error) {
    return { what, status: 0, body: {}, error: String(error) } as Answer;
  }
}

const heartbeatWith = (token: string) =>
  t.http.post(`${API}/agent/heartbeat`).set('X-Agent-Token', token).send({});

async function tokenOnGateway(agentId: string): Promise<string | undefined> {
  const { file } = await methods.agentFilesGet(`mc-${agentId}`, 'AGENTS.md');
  return parseConnectionBlock(file.content ?? '').AUTH_TOKEN;
}

async function onGateway(agentId: string): Promise<boolean> {
  return (await methods.agentsList()).agents.some((entry) => entry.id === `mc-${agentId}`);
}

it('answers every create and nudge while the gateway stops, leaves no half-created agent, and recovers with PATCH ?force=true', async () => {
  const client = service.client(gateway);
  const before = await client.connect();
  const dialsBefore = client.dialCount;

  const create = (index: number) =>
    answerOf(`create ${index}`, () =>
      t.http
        .post(`${API}/agents`)
        // Half by the org admin, half by the board lead.
        .set(index % 2 === 0 ? admin.headers : { 'X-Agent-Token': lead.token })
        .send({ name: `Outage ${index} ${randomUUID().slice(0, 6)}`, board_id: board.id })
        .timeout({ deadline: ANSWER_BOUND_MS }),
    );
  const nudge = (index: number) =>
    answerOf(`nudge ${index}`, () =>
      t.http
        .post(`${API}/agent/boards/${board.id}/agents/${worker.agent.id}/nudge`)
        .set('X-Agent-Token', lead.token)
        .send({ message: `Outage nudge ${index}` })
        .timeout({ deadline: ANSWER_BOUND_MS }),
    );

  const creates = Array.from({ length: CREATES }, (_, index) => create(index));
  // The gateway stops once the first run has created its agent on it.
  await waitUntil(
    async () => {
      const rows = await t.dataSource.getRepository(Agent).findBy({ boardId: board.id });
      const listed = new Set((await methods.agentsList()).agents.map((entry) => entry.id));
      return rows.some(
        (row) =>
          row.id !== lead.agent.id && row.id !== worker.agent.id && listed.has(`mc-${row.id}`),
      );
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  const halted = run('bash', [SCRIPT, 'halt', RUN_DIR], { timeout: 120_000 });
  const nudges: Promise<Answer>[] = [nudge(0)];
  let answers: Answer[] = [];
  try {
    // Nudges sent during the stop and after it.
    for (let index = 1; index < NUDGES; index++) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      nudges.push(nudge(index));
    }
    await halted;
    nudges.push(nudge(NUDGES));
    answers = await Promise.all([...creates, ...nudges]);
  } finally {
    await halted.catch(() => undefined);
    // Bounded by the script: stop grace, leases a killed gateway left, a start and one retry.
    await run('bash', [SCRIPT, 'restart', RUN_DIR], { timeout: RESTART_TIMEOUT_MS });
  }

  // Every request answered (none hung), each with what happened.
  expect(answers.filter((answer) => answer.status === 0)).toEqual([]);
  const createAnswers = answers.slice(0, CREATES);
  const nudgeAnswers = answers.slice(CREATES);
  // A create answers 200 with the agent; a failed provision says which step failed.
  for (const answer of createAnswers) {
    expect(answer).toMatchObject({ status: 200, body: { id: expect.any(String) as unknown } });
    const error = answer.body.last_provision_error as string | null;
    if (error !== null) expect(error).toMatch(/^[a-z.]+: .+/);
  }
  // A nudge is delivered, or fails with 502 in the envelope naming the gateway failure.
  for (const answer of nudgeAnswers) {
    if (answer.status === 200) expect(answer.body).toEqual({ ok: true });
    else {
      expect(answer).toMatchObject({
        status: 502,
        body: { detail: expect.any(String) as unknown, request_id: expect.any(String) as unknown },
      });
    }
  }
  expect(nudgeAnswers.filter((answer) => answer.status === 502).length).toBeGreaterThan(0);

  // No half-created rows: the board holds the lead, the worker and exactly the agents answered.
  const createdIds = createAnswers.map((answer) => answer.body.id as string);
  const rows = await t.dataSource.getRepository(Agent).findBy({ boardId: board.id });
  expect(rows.map((row) => row.id).sort()).toEqual(
    [lead.agent.id, worker.agent.id, ...createdIds].sort(),
  );
  const failed: string[] = [];
  for (const id of createdIds) {
    const row = rows.find((agent) => agent.id === id)!;
    expect(row.status).not.toBe('updating');
    if (row.lastProvisionError === null) {
      // Provisioned: on the gateway, with a token in its AGENTS.md that authenticates.
      expect(await onGateway(id)).toBe(true);
      await heartbeatWith((await tokenOnGateway(id)) ?? '').expect(200);
    } else {
      failed.push(id);
    }
  }
  expect(failed.length).toBeGreaterThan(0);

  // The pooled client reconnected by itself: a new socket, no app restart.
  await waitUntil(() => client.server?.connId !== before.connId || client.state !== 'open', {
    timeoutMs: 30_000,
  });
  await eventuallyExpect(async () => {
    await expect(methods.health()).resolves.toMatchObject({ ok: true });
  }, SETTLE);
  expect(service.client(gateway)).toBe(client);
  expect(client.server?.connId).not.toBe(before.connId);
  expect(client.dialCount).toBeGreaterThan(dialsBefore);
  await t.http
    .post(`${API}/agent/boards/${board.id}/agents/${worker.agent.id}/nudge`)
    .set('X-Agent-Token', lead.token)
    .send({ message: 'After the outage' })
    .expect(200, { ok: true });

  // PATCH ?force=true completes each failed provisioning.
  for (const id of failed) {
    const res = await t.http
      .patch(`${API}/agents/${id}?force=true`)
      .set(admin.headers)
      .send({})
      .expect(200);
    expect(res.body).toMatchObject({ id, last_provision_error: null });
    await eventuallyExpect(async () => {
      expect(await onGateway(id)).toBe(true);
    }, SETTLE);
    const token = await eventually(() => tokenOnGateway(id), SETTLE);
    await heartbeatWith(token).expect(200);
  }
}, 400_000);
