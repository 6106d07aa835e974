/**
 * Second review, finding 4: runs that fail before they start (a gateway that cannot be
 * provisioned, a refused raw token, a lock wait that gives up) leave a record, and the sweeper
 * tells a run that never started from one that did not finish, giving the former time to wait
 * for its slot (twice the run deadline).
 */
import { Client } from 'pg';
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import { ConflictError, InvalidRequestError } from '../../src/common/errors/app-error';
import { GatewayNotConfiguredError } from '../../src/common/errors/gateway-errors';
import { agentRunLockKey } from '../../src/provisioning/agent-run-lock';
import { ProvisionRunSweeper } from '../../src/provisioning/provision-run-sweeper';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { MAX_PENDING_AGENT_TOKENS } from '../../src/auth/agent-token';
import {
  addPendingAgentToken,
  buildAgent,
  buildBoard,
  buildGateway,
  buildOrganization,
  pendingAgentTokenDigests,
} from '../support/builders';
import { waitUntil } from '../support/eventually';
import { gatewayFieldsFor, startOpenClawFake } from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

/** The smallest run deadline the config accepts: also the lock-wait budget. */
const DEADLINE_MS = 1_000;

describe('provision runs that never started', () => {
  let t: TestApp;
  let provisioning: ProvisioningService;
  let organizationId: string;

  beforeAll(async () => {
    t = await createTestApp({ PROVISION_RUN_TIMEOUT_MS: String(DEADLINE_MS) });
    provisioning = t.app.get(ProvisioningService);
    organizationId = (await buildOrganization(t.dataSource)).id;
  });
  afterAll(() => t.close());

  const reload = (id: string) => t.dataSource.getRepository(Agent).findOneByOrFail({ id });
  const failures = (agentId: string) =>
    t.dataSource
      .getRepository(ActivityEvent)
      .findBy({ agentId, eventType: 'agent.update.failed' })
      .then((events) => events.map((event) => event.message));

  async function agentOn(gateway: { workspaceRoot?: string }) {
    const gatewayId = (
      await buildGateway(t.dataSource, organizationId, {
        url: 'ws://127.0.0.1:9',
        token: 'unused',
        disableDevicePairing: true,
        ...gateway,
      })
    ).id;
    const boardId = (await buildBoard(t.dataSource, organizationId, gatewayId)).id;
    return (await buildAgent(t.dataSource, gatewayId, boardId, { status: 'online' })).agent;
  }

  it('a gateway without a workspace root: the failure is recorded on the row and as an activity', async () => {
    const agent = await agentOn({ workspaceRoot: '  ' });
    const run = provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'update' },
    );
    await expect(run).rejects.toBeInstanceOf(GatewayNotConfiguredError);
    expect(await reload(agent.id)).toMatchObject({
      status: 'online',
      lastProvisionError: 'Gateway workspace_root is required',
    });
    expect(await failures(agent.id)).toEqual([
      'Update message failed: Gateway workspace_root is required',
    ]);
  });

  it('a refused raw token: the failure is recorded', async () => {
    const agent = await agentOn({ workspaceRoot: '/srv/openclaw' });
    const run = provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'update', token: { raw: 'planted-token-from-agents-md-0000000000' } },
    );
    await expect(run).rejects.toBeInstanceOf(InvalidRequestError);
    expect((await reload(agent.id)).lastProvisionError).toMatch(/not this agent's token/);
    expect(await failures(agent.id)).toEqual([expect.stringMatching(/not this agent's token/)]);
  });

  it('a lock wait that gives up while another instance runs: an activity, the row left to that run', async () => {
    const agent = await agentOn({ workspaceRoot: '/srv/openclaw' });
    const otherInstance = new Client({ connectionString: t.databaseUrl });
    await otherInstance.connect();
    try {
      await otherInstance.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [
        agentRunLockKey(agent.id),
      ]);
      const run = provisioning.provisionAgent(
        { organizationId, agentId: agent.id },
        { action: 'update' },
      );
      await expect(run).rejects.toBeInstanceOf(ConflictError);
    } finally {
      await otherInstance.end();
    }
    expect(await reload(agent.id)).toMatchObject({ status: 'online', lastProvisionError: null });
    expect(await failures(agent.id)).toEqual([
      expect.stringMatching(/is being provisioned by another instance/),
    ]);
  });

  it('review 2 finding 1: a run that passes its deadline between registering its token and sending the write withdraws the token', async () => {
    const { fake, state } = await startOpenClawFake();
    try {
      const gatewayId = (await buildGateway(t.dataSource, organizationId, gatewayFieldsFor(fake)))
        .id;
      const boardId = (await buildBoard(t.dataSource, organizationId, gatewayId)).id;
      const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
      // At the cap the run reads AGENTS.md back before registering: hold that read past the
      // run's deadline, so the deadline passes between registering and writing.
      for (let n = 0; n < MAX_PENDING_AGENT_TOKENS; n++) {
        await addPendingAgentToken(t.dataSource, agent.id);
      }
      state.gate.close('agents.files.get');
      const heldBefore = state.gate.held;
      const run = provisioning.provisionAgent(
        { organizationId, agentId: agent.id },
        { action: 'provision' },
      );
      await waitUntil(() => state.gate.held > heldBefore);
      await new Promise((resolve) => setTimeout(resolve, DEADLINE_MS + 200));
      state.gate.open();
      const outcome = await run;
      expect(outcome.error).toMatch(/^writing AGENTS\.md: provision run exceeded its deadline/);
      expect(state.files.get(`mc-${agent.id}`)?.get('AGENTS.md')).toBe('stock');
      expect(await pendingAgentTokenDigests(t.dataSource, agent.id)).toEqual([]);
    } finally {
      state.gate.open();
      await fake.stop();
    }
  });

  it('the sweeper gives a never-started run twice the deadline and its own explanation', async () => {
    const gatewayId = (
      await buildGateway(t.dataSource, organizationId, { workspaceRoot: '/srv/openclaw' })
    ).id;
    const boardId = (await buildBoard(t.dataSource, organizationId, gatewayId)).id;
    const neverStarted = async (ageMs: number) =>
      (
        await buildAgent(t.dataSource, gatewayId, boardId, {
          agentTokenHash: null,
          createdAt: new Date(Date.now() - ageMs),
        })
      ).agent;
    const waiting = await neverStarted(1.5 * DEADLINE_MS);
    const orphan = await neverStarted(3 * DEADLINE_MS);
    await t.app.get(ProvisionRunSweeper).sweep();
    expect((await reload(waiting.id)).lastProvisionError).toBeNull();
    expect((await reload(orphan.id)).lastProvisionError).toMatch(
      /^the agent's first provision run never started/,
    );
  });
});
