/**
 * The gateways module against a real OpenClaw gateway, over HTTP: creating a gateway provisions
 * its main agent there (agent, files, session); list/get change nothing; template sync over
 * several boards and agents (a paused board skipped, a tampered token reported and then fixed
 * with rotate_tokens, overwrite replacing an agent-edited USER.md), plain and streamed; delete
 * refused while a board uses the gateway, then allowed, and the main agent gone from the gateway.
 */
import { join } from 'node:path';
import { IsNull } from 'typeorm';
import { deleteAgentRows } from '../../src/agents/agent-removal';
import { Agent } from '../../src/agents/entities/agent.entity';
import { agentTokenDigest, generateAgentToken } from '../../src/auth/agent-token';
import { BoardMemory } from '../../src/board-memory/entities/board-memory.entity';
import type {
  GatewayTemplatesSyncEvent,
  GatewayTemplatesSyncResult,
} from '../../src/gateways/dto/gateway-sync.dto';
import { Gateway } from '../../src/gateways/entities/gateway.entity';
import type { GatewayMethods } from '../../src/openclaw/gateway-methods';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { parseConnectionBlock } from '../../src/provisioning/connection-block';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import {
  buildAgent,
  buildBoard,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { eventuallyExpect } from '../support/eventually';
import { createTestApp, type TestApp } from '../support/test-app';

const RUN_DIR = process.env.MC_IT_GATEWAY_RUN_DIR ?? '';
const API = '/api/v1';
/** agents.list settles through the gateway's config hot-reload (~1.5 s). */
const SETTLE = { timeoutMs: 30_000, intervalMs: 250 };

interface GatewayBody {
  id: string;
  token: string | null;
  updated_at: string;
  main_agent: { id: string; status: string; last_provision_error: string | null } | null;
}

let t: TestApp;
let owner: SignedInUser;
let orgId: string;
let provisioning: ProvisioningService;
let methods: GatewayMethods;
let gatewayId: string;
let mainGatewayAgent: string;

beforeAll(async () => {
  t = await createTestApp();
  provisioning = t.app.get(ProvisioningService);
  ({ owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Real gateway'));
});
afterAll(async () => {
  await t?.close();
});

const fileOf = async (agentId: string, name: string) =>
  (await methods.agentFilesGet(agentId, name)).file.content ?? '';
const listed = async (agentId: string) =>
  (await methods.agentsList()).agents.some((entry) => entry.id === agentId);
const heartbeatWith = (token: string) =>
  t.http.post(`${API}/agent/heartbeat`).set('X-Agent-Token', token).send({});
const mainAgentRow = () =>
  t.dataSource.getRepository(Agent).findOneByOrFail({ gatewayId, boardId: IsNull() });

it('create: the main agent exists on the gateway with its files and its session; the token is sealed', async () => {
  const res = await t.http
    .post(`${API}/gateways`)
    .set(owner.headers)
    .send({
      name: 'Real Gateway',
      url: process.env.MC_IT_GATEWAY_URL,
      token: process.env.MC_IT_GATEWAY_TOKEN,
      workspace_root: join(RUN_DIR, 'workspaces-gateways'),
    })
    .expect(200);
  const body = res.body as GatewayBody;
  gatewayId = body.id;
  mainGatewayAgent = `mc-gateway-${gatewayId}`;
  expect(body.token).toBe(process.env.MC_IT_GATEWAY_TOKEN);
  expect(body.main_agent).toMatchObject({ last_provision_error: null });

  const [{ token: column }] = await t.dataSource.query<{ token: string }[]>(
    'SELECT token FROM gateways WHERE id = $1',
    [gatewayId],
  );
  expect(column).toMatch(/^v1:/);
  expect(column).not.toContain(process.env.MC_IT_GATEWAY_TOKEN);

  const gateway = await t.dataSource.getRepository(Gateway).findOneByOrFail({ id: gatewayId });
  methods = t.app.get(OpenClawGatewayService).methods(gateway);
  await eventuallyExpect(async () => expect(await listed(mainGatewayAgent)).toBe(true), SETTLE);
  const block = parseConnectionBlock(await fileOf(mainGatewayAgent, 'AGENTS.md'));
  const main = await mainAgentRow();
  expect(agentTokenDigest(block.AUTH_TOKEN)).toBe(main.agentTokenHash);
  await heartbeatWith(block.AUTH_TOKEN).expect(200);
  const sessions = await methods.sessionsList({ agentId: mainGatewayAgent });
  expect(sessions.sessions.map((s) => s.key)).toContain(`agent:${mainGatewayAgent}:main`);
}, 120_000);

it('list and get change neither the main agent (token digest, updated_at) nor the gateway config', async () => {
  const before = await mainAgentRow();
  const hash = (await methods.configGet()).hash;
  const list = await t.http.get(`${API}/gateways`).set(owner.headers).expect(200);
  expect((list.body as { items: GatewayBody[] }).items.map((g) => g.id)).toContain(gatewayId);
  await t.http.get(`${API}/gateways/${gatewayId}`).set(owner.headers).expect(200);
  const after = await mainAgentRow();
  expect(after.agentTokenHash).toBe(before.agentTokenHash);
  expect(after.updatedAt.toISOString()).toBe(before.updatedAt.toISOString());
  expect((await methods.configGet()).hash).toBe(hash);
});

describe('template sync over several boards', () => {
  let lead: Agent;
  let worker: Agent;
  let pausedAgent: Agent;
  const boardIds: string[] = [];
  const gatewayIdOf = (agent: Agent) =>
    agent.isBoardLead ? `lead-${agent.boardId}` : `mc-${agent.id}`;

  beforeAll(async () => {
    const active = await buildBoard(t.dataSource, orgId, gatewayId, { name: 'Active board' });
    const paused = await buildBoard(t.dataSource, orgId, gatewayId, { name: 'Paused board' });
    boardIds.push(active.id, paused.id);
    const provisioned = async (boardId: string, fields: Partial<Agent>) => {
      const { agent } = await buildAgent(t.dataSource, gatewayId, boardId, fields);
      const outcome = await provisioning.provisionAgent(
        { organizationId: orgId, agentId: agent.id },
        { action: 'provision', raise: true },
      );
      return outcome.agent;
    };
    lead = await provisioned(active.id, { name: 'Sync Lead', isBoardLead: true });
    worker = await provisioned(active.id, { name: 'Sync Worker' });
    pausedAgent = await provisioned(paused.id, { name: 'Paused Worker' });
    await t.dataSource
      .getRepository(BoardMemory)
      .save({ boardId: paused.id, content: '/pause', isChat: true });
  }, 240_000);

  it('plain: paused board skipped, tampered token reported, agent-edited USER.md kept', async () => {
    const workerFile = await fileOf(gatewayIdOf(worker), 'AGENTS.md');
    const held = parseConnectionBlock(workerFile).AUTH_TOKEN;
    await methods.agentFilesSet({
      agentId: gatewayIdOf(worker),
      name: 'AGENTS.md',
      content: workerFile.replace(held, generateAgentToken()),
    });
    await methods.agentFilesSet({
      agentId: gatewayIdOf(lead),
      name: 'USER.md',
      content: '# USER\n\nEdited by the lead itself.\n',
    });
    const pausedSoul = await fileOf(gatewayIdOf(pausedAgent), 'SOUL.md');

    const res = await t.http
      .post(`${API}/gateways/${gatewayId}/templates/sync`)
      .set(owner.headers)
      .expect(200);
    const result = res.body as GatewayTemplatesSyncResult;
    expect(result).toMatchObject({
      gateway_id: gatewayId,
      agents_updated: 1,
      agents_skipped: 2,
      main_updated: true,
      agents_not_reached: 0,
    });
    expect(result.errors).toEqual([
      expect.objectContaining({
        agent_id: worker.id,
        message: expect.stringContaining('rotate_tokens=true'),
      }),
    ]);
    expect(await fileOf(gatewayIdOf(lead), 'USER.md')).toContain('Edited by the lead itself.');
    expect(await fileOf(gatewayIdOf(pausedAgent), 'SOUL.md')).toBe(pausedSoul);
    // The lead kept its token (re-rendered, not re-keyed): it still authenticates.
    const leadToken = parseConnectionBlock(await fileOf(gatewayIdOf(lead), 'AGENTS.md')).AUTH_TOKEN;
    await heartbeatWith(leadToken).expect(200);
  }, 180_000);

  it('streamed with rotate_tokens and overwrite: the token fixed, USER.md replaced', async () => {
    const res = await t.http
      .post(`${API}/gateways/${gatewayId}/templates/sync?rotate_tokens=true&overwrite=true`)
      .set(owner.headers)
      .set('Accept', 'text/event-stream')
      .buffer(true)
      .parse((response, done) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => done(null, text));
      })
      .expect(200)
      .expect('Content-Type', /text\/event-stream/);
    const events = (res.body as string)
      .split('\n\n')
      .filter((block) => block.includes('data: '))
      .map((block) => ({
        event: /^event: (.*)$/m.exec(block)?.[1],
        data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as unknown,
      }));
    const perAgent = events
      .filter((e) => e.event === 'agent')
      .map((e) => e.data as GatewayTemplatesSyncEvent);
    expect(perAgent.map((e) => e.agent_id).sort()).toEqual(
      [lead.id, worker.id, pausedAgent.id, (await mainAgentRow()).id].sort(),
    );
    expect(perAgent.find((e) => e.agent_id === worker.id)).toMatchObject({ ok: true, error: null });
    expect(perAgent.find((e) => e.agent_id === pausedAgent.id)).toMatchObject({ ok: false });
    expect(events.at(-1)).toMatchObject({
      event: 'result',
      data: { agents_updated: 2, agents_skipped: 1, main_updated: true, errors: [] },
    });

    const workerToken = parseConnectionBlock(
      await fileOf(gatewayIdOf(worker), 'AGENTS.md'),
    ).AUTH_TOKEN;
    await heartbeatWith(workerToken).expect(200);
    expect(await fileOf(gatewayIdOf(lead), 'USER.md')).not.toContain('Edited by the lead itself.');
  }, 180_000);

  it('delete is refused while boards use the gateway, then allowed: the main agent is gone from it', async () => {
    const refused = await t.http
      .delete(`${API}/gateways/${gatewayId}`)
      .set(owner.headers)
      .expect(409);
    expect((refused.body as { detail: string }).detail).toContain('still used by 2 boards');
    expect(await listed(mainGatewayAgent)).toBe(true);

    // Empty the boards (the agents module's job; done here with the engine's own parts).
    const gateway = await t.dataSource.getRepository(Gateway).findOneByOrFail({ id: gatewayId });
    for (const agent of [lead, worker, pausedAgent]) {
      await provisioning.cleanupAgent(agent, gateway);
    }
    await t.dataSource.transaction((manager) =>
      deleteAgentRows(manager, orgId, [lead.id, worker.id, pausedAgent.id]),
    );
    for (const boardId of boardIds) {
      await t.http.delete(`${API}/boards/${boardId}`).set(owner.headers).expect(200);
    }

    const res = await t.http.delete(`${API}/gateways/${gatewayId}`).set(owner.headers).expect(200);
    expect(res.body).toEqual({ ok: true, main_agent_removed: true, warning: null });
    await eventuallyExpect(async () => expect(await listed(mainGatewayAgent)).toBe(false), SETTLE);
    expect(await t.dataSource.getRepository(Agent).existsBy({ gatewayId })).toBe(false);
    await t.http.get(`${API}/gateways/${gatewayId}`).set(owner.headers).expect(404);
  }, 180_000);
});
