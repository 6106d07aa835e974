/**
 * The provisioning engine against a real OpenClaw gateway: board agents, a lead and a gateway
 * main agent are provisioned, then everything is read back from the gateway (agent, name,
 * workspace, files, heartbeat config, session) and the token in AGENTS.md is used against the
 * API. The last test takes the gateway down and brings it back.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import { agentTokenDigest } from '../../src/auth/agent-token';
import type { Board } from '../../src/boards/entities/board.entity';
import { GatewayOperationError } from '../../src/common/errors/gateway-errors';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import type { GatewayMethods } from '../../src/openclaw/gateway-methods';
import { configObject } from '../../src/openclaw/gateway-methods';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { isRecord } from '../../src/openclaw/protocol';
import { parseConnectionBlock } from '../../src/provisioning/connection-block';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { User } from '../../src/users/entities/user.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  buildOrganization,
  pendingAgentTokenDigests,
} from '../support/builders';
import { eventuallyExpect } from '../support/eventually';
import { createTestApp, type TestApp } from '../support/test-app';
import { RESTART_TIMEOUT_MS } from './support/gateway-script';

const run = promisify(execFile);
const SCRIPT = join(__dirname, '..', '..', 'scripts', 'openclaw-gateway.sh');
const RUN_DIR = process.env.MC_IT_GATEWAY_RUN_DIR ?? '';
const API = '/api/v1';
/** agents.list and renames settle through the gateway's config hot-reload (~1.5 s). */
const SETTLE = { timeoutMs: 30_000, intervalMs: 250 };

let t: TestApp;
let provisioning: ProvisioningService;
let methods: GatewayMethods;
let organizationId: string;
let gateway: Gateway;
let board: Board;
let user: User;

beforeAll(async () => {
  t = await createTestApp();
  provisioning = t.app.get(ProvisioningService);
  const organization = await buildOrganization(t.dataSource);
  organizationId = organization.id;
  gateway = await buildGateway(t.dataSource, organizationId, {
    name: 'Integration Gateway',
    url: process.env.MC_IT_GATEWAY_URL ?? '',
    token: process.env.MC_IT_GATEWAY_TOKEN ?? null,
    workspaceRoot: join(RUN_DIR, 'workspaces'),
  });
  methods = t.app.get(OpenClawGatewayService).methods(gateway);
  board = await buildBoard(t.dataSource, organizationId, gateway.id, {
    name: 'Launch Board',
    boardType: 'goal',
    objective: 'Ship the provisioning engine',
    successMetrics: { green_ci: true },
    goalConfirmed: false,
  });
  user = await t.dataSource.getRepository(User).save({
    clerkUserId: `it-${randomUUID()}`,
    email: 'ada@example.test',
    name: 'Ada Lovelace',
    preferredName: 'Ada L.',
    pronouns: 'she/her',
    timezone: 'Europe/London',
    notes: 'Prefers short status updates.',
    context: 'Runs the launch.',
  });
});

afterAll(async () => {
  await t?.close();
});

const reload = (id: string) => t.dataSource.getRepository(Agent).findOneByOrFail({ id });

async function fileOf(agentId: string, name: string): Promise<string> {
  const { file } = await methods.agentFilesGet(agentId, name);
  return file.content ?? '';
}

async function gatewayEntry(agentId: string) {
  return (await methods.agentsList()).agents.find((entry) => entry.id === agentId);
}

async function heartbeatInConfig(agentId: string) {
  const config = configObject(await methods.configGet());
  const agents = isRecord(config.agents) ? config.agents : {};
  const entries = isRecord(agents.entries) ? agents.entries : {};
  const entry = entries[agentId];
  return isRecord(entry) ? entry.heartbeat : undefined;
}

async function configHash(): Promise<string | undefined> {
  return (await methods.configGet()).hash;
}

const heartbeatWith = (token: string) =>
  t.http.post(`${API}/agent/heartbeat`).set('X-Agent-Token', token).send({});

async function activities(agentId: string): Promise<string[]> {
  const rows = await t.dataSource
    .getRepository(ActivityEvent)
    .find({ where: { agentId }, order: { createdAt: 'ASC' } });
  return rows.map((row) => row.eventType);
}

describe('board agent', () => {
  let agent: Agent;
  let oldToken: string;
  let gatewayAgentId: string;

  beforeAll(async () => {
    const built = await buildAgent(t.dataSource, gateway.id, board.id, {
      name: 'Researcher Ünïcode ✓',
      heartbeatConfig: { every: '15m', includeReasoning: true },
      identityProfile: { role: 'Researcher', emoji: ':mag:', purpose: 'Find prior art' },
    });
    agent = built.agent;
    oldToken = built.token;
    gatewayAgentId = `mc-${agent.id}`;
  });

  it('provisions: gateway agent, heartbeat config, files carrying a working token, session, wake-up', async () => {
    const outcome = await provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'provision', user, resetSession: true },
    );
    expect(outcome).toMatchObject({ status: 'provisioned', error: null, createdOnGateway: true });
    expect(outcome.identity).toMatchObject({
      gatewayAgentId,
      sessionKey: `agent:${gatewayAgentId}:main`,
      workspacePath: join(RUN_DIR, 'workspaces', `workspace-${gatewayAgentId}`),
    });
    expect(outcome.filesWritten).toEqual(
      expect.arrayContaining([
        'AGENTS.md',
        'SOUL.md',
        'IDENTITY.md',
        'USER.md',
        'MEMORY.md',
        'BOOTSTRAP.md',
      ]),
    );

    // The agent exists on the gateway with its display name and workspace.
    await eventuallyExpect(async () => {
      expect(await gatewayEntry(gatewayAgentId)).toMatchObject({
        name: 'Researcher Ünïcode ✓',
        workspace: outcome.identity?.workspacePath,
      });
    }, SETTLE);

    // Heartbeat: the agent's config over the default, minus what v4 rejects.
    expect(await heartbeatInConfig(gatewayAgentId)).toEqual({ every: '15m', target: 'last' });

    // AGENTS.md carries the connection block; its token is the one the database now knows.
    const agentsMd = await fileOf(gatewayAgentId, 'AGENTS.md');
    const block = parseConnectionBlock(agentsMd);
    expect(block).toMatchObject({
      AGENT_ID: agent.id,
      BOARD_ID: board.id,
      GATEWAY_AGENT_ID: gatewayAgentId,
      SESSION_KEY: `agent:${gatewayAgentId}:main`,
    });
    const stored = await reload(agent.id);
    expect(agentTokenDigest(block.AUTH_TOKEN)).toBe(stored.agentTokenHash);
    expect(stored).toMatchObject({
      status: 'online',
      lastProvisionError: null,
      provisionAction: null,
      openclawSessionId: `agent:${gatewayAgentId}:main`,
    });
    expect(block.AUTH_TOKEN).toBe(outcome.token);
    expect(await pendingAgentTokenDigests(t.dataSource, agent.id)).toEqual([]);

    // The other files hold what they should.
    expect(await fileOf(gatewayAgentId, 'IDENTITY.md')).toContain('Researcher');
    expect(await fileOf(gatewayAgentId, 'USER.md')).toContain('Ada Lovelace');
    expect(await fileOf(gatewayAgentId, 'AGENTS.md')).toContain('Launch Board');
    expect(agentsMd).toContain('/api/v1/agent/heartbeat');
    expect(agentsMd).toContain('## First run');

    // The token works against the API; the pre-provision one no longer does.
    const heartbeat = await heartbeatWith(block.AUTH_TOKEN).expect(200);
    expect(heartbeat.body).toMatchObject({
      id: agent.id,
      status: 'online',
      last_provision_error: null,
    });
    await heartbeatWith(oldToken).expect(401);

    // Session with a unique label, and the wake-up message in its history.
    const sessions = await methods.sessionsList({ agentId: gatewayAgentId });
    expect(sessions.sessions.find((s) => s.key === `agent:${gatewayAgentId}:main`)?.label).toBe(
      `Researcher Ünïcode ✓ (agent:${gatewayAgentId}:main)`,
    );
    await eventuallyExpect(async () => {
      const history = await methods.chatHistory({ sessionKey: `agent:${gatewayAgentId}:main` });
      expect(JSON.stringify(history.messages)).toContain('Your workspace has been provisioned.');
    }, SETTLE);
    expect(await activities(agent.id)).toEqual(
      expect.arrayContaining(['agent.provision.direct', 'agent.wakeup.sent']),
    );
  }, 120_000);

  it('re-provisions on update without overwriting agent-edited USER.md and MEMORY.md', async () => {
    // Today's gateway deletes BOOTSTRAP.md when the first run starts with IDENTITY.md and
    // USER.md filled in; an update then leaves it gone (contract §5.6 step 8).
    await eventuallyExpect(async () => {
      const listing = await methods.agentFilesList(gatewayAgentId);
      const bootstrap = listing.files.find((file) => file.name === 'BOOTSTRAP.md');
      expect(bootstrap === undefined || bootstrap.missing === true).toBe(true);
    }, SETTLE);
    await methods.agentFilesSet({
      agentId: gatewayAgentId,
      name: 'USER.md',
      content: '# USER\n\nEdited by the agent.\n',
    });
    await methods.agentFilesSet({
      agentId: gatewayAgentId,
      name: 'MEMORY.md',
      content: '# MEMORY\n\nRemember the launch.\n',
    });
    const hashBefore = await configHash();

    const outcome = await provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'update', user, resetSession: true },
    );
    expect(outcome).toMatchObject({
      status: 'provisioned',
      createdOnGateway: false,
      configPatched: false,
    });
    expect(outcome.filesSkipped).toEqual(
      expect.arrayContaining([
        { name: 'USER.md', reason: 'agent-edited' },
        { name: 'MEMORY.md', reason: 'agent-edited' },
        { name: 'BOOTSTRAP.md', reason: 'bootstrap-done' },
      ]),
    );
    // Nothing changed in the heartbeat: no config.patch, so the gateway config is untouched.
    expect(await configHash()).toBe(hashBefore);
    expect(await fileOf(gatewayAgentId, 'USER.md')).toContain('Edited by the agent.');
    expect(await fileOf(gatewayAgentId, 'MEMORY.md')).toContain('Remember the launch.');

    // The update issued a new token; AGENTS.md has it and it is the stored one.
    const token = parseConnectionBlock(await fileOf(gatewayAgentId, 'AGENTS.md')).AUTH_TOKEN;
    expect(token).toBe(outcome.token);
    expect(agentTokenDigest(token)).toBe((await reload(agent.id)).agentTokenHash);
    await heartbeatWith(token).expect(200);
    expect(await activities(agent.id)).toContain('agent.update.direct');

    // The workspace token reads back as the current one (what template sync relies on).
    await expect(
      provisioning.readWorkspaceToken({ organizationId, agentId: agent.id }),
    ).resolves.toEqual({ token, matches: 'current' });
  }, 120_000);

  it('patches the heartbeat and renames on the gateway when they change', async () => {
    await t.dataSource
      .getRepository(Agent)
      .update(
        { id: agent.id },
        { name: 'Researcher Two', heartbeatConfig: { every: '45m', target: 'none' } },
      );
    const outcome = await provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'update', wake: false },
    );
    expect(outcome).toMatchObject({ status: 'provisioned', configPatched: true, woke: false });
    expect(await heartbeatInConfig(gatewayAgentId)).toEqual({ every: '45m', target: 'none' });
    await eventuallyExpect(async () => {
      expect((await gatewayEntry(gatewayAgentId))?.name).toBe('Researcher Two');
    }, SETTLE);
  }, 120_000);

  it('cleans up: the agent and its files leave the gateway, and a second cleanup is harmless', async () => {
    const stored = await reload(agent.id);
    await provisioning.cleanupAgent(stored, gateway);
    await eventuallyExpect(async () => {
      expect(await gatewayEntry(gatewayAgentId)).toBeUndefined();
    }, SETTLE);
    await expect(provisioning.cleanupAgent(stored, gateway)).resolves.toBeUndefined();
  }, 120_000);
});

describe('board lead', () => {
  it('creates and provisions the lead once; an existing lead is renamed only when asked', async () => {
    const first = await provisioning.ensureBoardLead(
      { organizationId, boardId: board.id },
      { user, identityProfile: { personality: 'calm', role: '  ' } },
    );
    expect(first.created).toBe(true);
    expect(first.outcome).toMatchObject({ status: 'provisioned' });
    expect(first.lead).toMatchObject({
      name: 'Lead Agent',
      isBoardLead: true,
      openclawSessionId: `agent:lead-${board.id}:main`,
      identityProfile: {
        role: 'Board Lead',
        communication_style: 'direct, concise, practical',
        emoji: ':gear:',
        personality: 'calm',
      },
    });
    const leadId = `lead-${board.id}`;
    await eventuallyExpect(async () => {
      expect(await gatewayEntry(leadId)).toMatchObject({ name: 'Lead Agent' });
    }, SETTLE);
    const agentsMd = await fileOf(leadId, 'AGENTS.md');
    expect(agentTokenDigest(parseConnectionBlock(agentsMd).AUTH_TOKEN)).toBe(
      (await reload(first.lead.id)).agentTokenHash,
    );

    // Renamed during onboarding, then ensured again without a name: keeps its name.
    await t.dataSource.getRepository(Agent).update({ id: first.lead.id }, { name: 'Captain' });
    const again = await provisioning.ensureBoardLead({ organizationId, boardId: board.id });
    expect(again).toMatchObject({
      created: false,
      outcome: null,
      lead: { id: first.lead.id, name: 'Captain' },
    });
    const named = await provisioning.ensureBoardLead(
      { organizationId, boardId: board.id },
      { agentName: 'Navigator' },
    );
    expect(named.lead).toMatchObject({ id: first.lead.id, name: 'Navigator' });
    await provisioning.cleanupAgent(await reload(first.lead.id), gateway);
  }, 120_000);
});

describe('gateway main agent', () => {
  it('upserts the record without provisioning, then provisions it under mc-gateway-<id>', async () => {
    const upserted = await provisioning.upsertMainAgentRecord(gateway);
    expect(upserted).toMatchObject({ changed: true });
    expect(upserted.agent).toMatchObject({
      name: 'Integration Gateway Gateway Agent',
      boardId: null,
      agentTokenHash: null,
      openclawSessionId: `agent:mc-gateway-${gateway.id}:main`,
    });
    // Idempotent and read-only: a second upsert changes nothing and rotates nothing.
    expect(await provisioning.upsertMainAgentRecord(gateway)).toMatchObject({ changed: false });
    await expect(provisioning.mainAgentOnGateway(gateway)).resolves.toBe(false);

    const outcome = await provisioning.ensureMainAgent(gateway, { action: 'provision', user });
    expect(outcome).toMatchObject({ status: 'provisioned', woke: true });
    const mainId = `mc-gateway-${gateway.id}`;
    await eventuallyExpect(async () => {
      expect(await gatewayEntry(mainId)).toMatchObject({
        name: 'Integration Gateway Gateway Agent',
      });
      await expect(provisioning.mainAgentOnGateway(gateway)).resolves.toBe(true);
    }, SETTLE);
    const block = parseConnectionBlock(await fileOf(mainId, 'AGENTS.md'));
    expect(block.BOARD_ID).toBeUndefined();
    expect(agentTokenDigest(block.AUTH_TOKEN)).toBe(
      (await reload(upserted.agent.id)).agentTokenHash,
    );
    expect(await heartbeatInConfig(mainId)).toEqual({ every: '10m', target: 'last' });
    await heartbeatWith(block.AUTH_TOKEN).expect(200);
    await provisioning.cleanupAgent(await reload(upserted.agent.id), gateway);
  }, 120_000);
});

describe('gateway outage', () => {
  it('records a failed update, keeps the old token working, and succeeds once the gateway is back', async () => {
    const { agent } = await buildAgent(t.dataSource, gateway.id, board.id, {
      name: 'Outage Agent',
    });
    const first = await provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'provision', wake: false },
    );
    expect(first.status).toBe('provisioned');
    const token = first.token as string;
    await heartbeatWith(token).expect(200);
    const before = await reload(agent.id);

    await run('bash', [SCRIPT, 'halt', RUN_DIR], { timeout: 60_000 });
    try {
      const failed = provisioning.provisionAgent(
        { organizationId, agentId: agent.id },
        { action: 'update', raise: true },
      );
      await expect(failed).rejects.toBeInstanceOf(GatewayOperationError);
      await expect(failed).rejects.toThrow(/^Gateway update failed: agents\.list: /);

      const after = await reload(agent.id);
      expect(after.status).toBe('online');
      expect(after.lastProvisionError).toMatch(/^agents\.list: .*(ECONNREFUSED|refused)/);
      expect(after.agentTokenHash).toBe(before.agentTokenHash);
      expect(after.provisionAction).toBe('update');
      expect(await activities(agent.id)).toContain('agent.update.failed');
      const heartbeat = await heartbeatWith(token).expect(200);
      expect(heartbeat.body.last_provision_error).toBe(after.lastProvisionError);
    } finally {
      // Bounded by the script: stop grace, leases a killed gateway left, a start and one retry.
      await run('bash', [SCRIPT, 'restart', RUN_DIR], { timeout: RESTART_TIMEOUT_MS });
    }

    const retried = await provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'update', wake: false },
    );
    expect(retried).toMatchObject({ status: 'provisioned', error: null });
    const after = await reload(agent.id);
    expect(after).toMatchObject({
      lastProvisionError: null,
      provisionAction: null,
      status: 'online',
    });
    await heartbeatWith(retried.token as string).expect(200);
    await heartbeatWith(token).expect(401);
    await provisioning.cleanupAgent(after, gateway);
    // RESTART_TIMEOUT_MS, the halt and the provisioning calls around them.
  }, 570_000);
});
