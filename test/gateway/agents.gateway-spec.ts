/**
 * The agents API against a real OpenClaw gateway, end to end over HTTP: a user creates an agent
 * (it exists on the gateway with its files and its wake-up message in its session history), its
 * token read back from the gateway file authenticates `/agent/heartbeat` and the agent turns
 * online; a lead creates a worker; `PATCH ?force=true` re-provisions; delete removes it from the
 * gateway, un-links its tasks (in progress back to the inbox) and approvals, and its token stops
 * working.
 */
import { join } from 'node:path';
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import { Approval } from '../../src/approvals/entities/approval.entity';
import type { Board } from '../../src/boards/entities/board.entity';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import type { GatewayMethods } from '../../src/openclaw/gateway-methods';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { parseConnectionBlock } from '../../src/provisioning/connection-block';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { Task } from '../../src/tasks/entities/task.entity';
import { buildBoard, buildGateway, signIn, type SignedInUser } from '../support/builders';
import { eventuallyExpect } from '../support/eventually';
import { createTestApp, type TestApp } from '../support/test-app';

const RUN_DIR = process.env.MC_IT_GATEWAY_RUN_DIR ?? '';
const API = '/api/v1';
/** agents.list, renames and deletes settle through the gateway's config hot-reload (~1.5 s). */
const SETTLE = { timeoutMs: 30_000, intervalMs: 250 };

let t: TestApp;
let methods: GatewayMethods;
let owner: SignedInUser;
let gateway: Gateway;
let board: Board;

beforeAll(async () => {
  t = await createTestApp();
  owner = await signIn(t.http, t.dataSource);
  gateway = await buildGateway(t.dataSource, owner.organizationId, {
    name: 'Agents API Gateway',
    url: process.env.MC_IT_GATEWAY_URL ?? '',
    token: process.env.MC_IT_GATEWAY_TOKEN ?? null,
    workspaceRoot: join(RUN_DIR, 'workspaces'),
  });
  methods = t.app.get(OpenClawGatewayService).methods(gateway);
  board = await buildBoard(t.dataSource, owner.organizationId, gateway.id, {
    name: 'Agents API Board',
  });
});

afterAll(async () => {
  await t?.close();
});

const listed = async (gatewayAgentId: string) =>
  (await methods.agentsList()).agents.find((entry) => entry.id === gatewayAgentId);
const fileOf = async (gatewayAgentId: string, name: string) =>
  (await methods.agentFilesGet(gatewayAgentId, name)).file;
/** The token the agent's AGENTS.md on the gateway carries. */
const workspaceToken = async (gatewayAgentId: string) =>
  parseConnectionBlock((await fileOf(gatewayAgentId, 'AGENTS.md')).content ?? '').AUTH_TOKEN;
const heartbeatWith = (token: string) =>
  t.http.post(`${API}/agent/heartbeat`).set('X-Agent-Token', token).send({});
const historyOf = async (gatewayAgentId: string) =>
  JSON.stringify(
    (await methods.chatHistory({ sessionKey: `agent:${gatewayAgentId}:main` })).messages,
  );

describe('agent lifecycle over the API', () => {
  let agentId: string;
  let gatewayAgentId: string;
  let token: string;

  it('a user creates an agent: on the gateway with its files and its wake-up message', async () => {
    const res = await t.http
      .post(`${API}/agents`)
      .set(owner.headers)
      .send({
        name: 'Archivist',
        board_id: board.id,
        identity_profile: { role: ' Archivist ', skills: ['search', ' ', 'summaries'] },
        soul_template: 'You keep the records of {{ board_name }}.',
      })
      .expect(200);
    agentId = res.body.id as string;
    gatewayAgentId = `mc-${agentId}`;
    expect(res.body).toMatchObject({
      name: 'Archivist',
      board_id: board.id,
      gateway_id: gateway.id,
      status: 'provisioning',
      identity_profile: { role: 'Archivist', skills: 'search, summaries' },
      last_provision_error: null,
      openclaw_session_id: `agent:${gatewayAgentId}:main`,
    });

    await eventuallyExpect(async () => {
      expect(await listed(gatewayAgentId)).toMatchObject({
        name: 'Archivist',
        workspace: join(RUN_DIR, 'workspaces', `workspace-${gatewayAgentId}`),
      });
    }, SETTLE);
    const block = parseConnectionBlock((await fileOf(gatewayAgentId, 'AGENTS.md')).content ?? '');
    expect(block).toMatchObject({ AGENT_ID: agentId, BOARD_ID: board.id });
    expect((await fileOf(gatewayAgentId, 'SOUL.md')).content).toContain(
      'You keep the records of Agents API Board.',
    );
    expect((await fileOf(gatewayAgentId, 'IDENTITY.md')).content).toContain('Archivist');
    await eventuallyExpect(async () => {
      expect(await historyOf(gatewayAgentId)).toContain('Your workspace has been provisioned.');
    }, SETTLE);
    token = block.AUTH_TOKEN;
  }, 120_000);

  it('its token, read back from the gateway file, authenticates /agent/heartbeat and it turns online', async () => {
    const res = await heartbeatWith(token).expect(200);
    expect(res.body).toMatchObject({ id: agentId, status: 'online' });
    const read = await t.http.get(`${API}/agents/${agentId}`).set(owner.headers).expect(200);
    expect(read.body).toMatchObject({ status: 'online', last_seen_at: expect.any(String) });
  });

  it('PATCH ?force=true re-provisions: new files, BOOTSTRAP.md again, a new working token, wake-up', async () => {
    const res = await t.http
      .patch(`${API}/agents/${agentId}?force=true`)
      .set(owner.headers)
      .send({ soul_template: 'You keep careful records.' })
      .expect(200);
    expect(res.body).toMatchObject({ id: agentId, last_provision_error: null });
    expect((await fileOf(gatewayAgentId, 'SOUL.md')).content).toContain(
      'You keep careful records.',
    );
    expect((await fileOf(gatewayAgentId, 'BOOTSTRAP.md')).missing).not.toBe(true);
    const rotated = await workspaceToken(gatewayAgentId);
    expect(rotated).not.toBe(token);
    await heartbeatWith(rotated).expect(200);
    await heartbeatWith(token).expect(401);
    token = rotated;
    await eventuallyExpect(async () => {
      expect(await historyOf(gatewayAgentId)).toContain('Your workspace has been updated.');
    }, SETTLE);
  }, 120_000);

  it('delete removes it from the gateway, un-links tasks and approvals, and its token stops working', async () => {
    const tasks = t.dataSource.getRepository(Task);
    const working = await tasks.save({
      boardId: board.id,
      title: 'Index the archive',
      status: 'in_progress',
      inProgressAt: new Date(),
      assignedAgentId: agentId,
    });
    const approval = await t.dataSource.getRepository(Approval).save({
      boardId: board.id,
      agentId,
      actionType: 'publish',
      confidence: 80,
      status: 'pending',
    });
    await t.http.delete(`${API}/agents/${agentId}`).set(owner.headers).expect(200, { ok: true });

    await eventuallyExpect(async () => {
      expect(await listed(gatewayAgentId)).toBeUndefined();
    }, SETTLE);
    expect(await t.dataSource.getRepository(Agent).findOneBy({ id: agentId })).toBeNull();
    expect(await tasks.findOneByOrFail({ id: working.id })).toMatchObject({
      status: 'inbox',
      assignedAgentId: null,
      inProgressAt: null,
    });
    expect(
      await t.dataSource.getRepository(Approval).findOneByOrFail({ id: approval.id }),
    ).toMatchObject({ agentId: null });
    await heartbeatWith(token).expect(401);
    expect(
      await t.dataSource
        .getRepository(ActivityEvent)
        .findOneBy({ eventType: 'agent.delete.direct', message: 'Deleted agent Archivist.' }),
    ).toMatchObject({ organizationId: owner.organizationId, boardId: board.id, agentId: null });
  }, 120_000);
});

describe('a lead creates a worker', () => {
  it('with its own token, on its own board, provisioned on the gateway', async () => {
    const { lead } = await t.app
      .get(ProvisioningService)
      .ensureBoardLead({ organizationId: owner.organizationId, boardId: board.id });
    const leadToken = await workspaceToken(`lead-${board.id}`);
    await heartbeatWith(leadToken).expect(200);
    const res = await t.http
      .post(`${API}/agent/agents`)
      .set('Authorization', `Bearer ${leadToken}`)
      .send({ name: 'Scout' })
      .expect(200);
    expect(res.body).toMatchObject({ name: 'Scout', board_id: board.id, is_board_lead: false });
    const workerGatewayId = `mc-${res.body.id}`;
    await eventuallyExpect(async () => {
      expect(await listed(workerGatewayId)).toMatchObject({ name: 'Scout' });
    }, SETTLE);
    await heartbeatWith(await workspaceToken(workerGatewayId)).expect(200);
    const team = await t.http
      .get(`${API}/agent/agents`)
      .set('X-Agent-Token', leadToken)
      .expect(200);
    expect((team.body.items as { id: string }[]).map((a) => a.id).sort()).toEqual(
      [lead.id, res.body.id as string].sort(),
    );
    // The lead removes it again.
    await t.http
      .delete(`${API}/agent/boards/${board.id}/agents/${res.body.id}`)
      .set('X-Agent-Token', leadToken)
      .expect(200);
    await eventuallyExpect(async () => {
      expect(await listed(workerGatewayId)).toBeUndefined();
    }, SETTLE);
  }, 180_000);
});
