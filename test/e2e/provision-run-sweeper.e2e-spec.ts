/**
 * Issue 9 item 9: an agent must never stay `updating` because the instance running its
 * provision stopped mid-run. Every instance sweeps, at start-up and periodically, runs older
 * than the run deadline back to a stable status (with `last_provision_error` saying why), but
 * never a run another instance is still executing (its per-agent lock is held).
 */
import { Client } from 'pg';
import { Agent } from '../../src/agents/entities/agent.entity';
import { ProvisionRunSweeper } from '../../src/provisioning/provision-run-sweeper';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { buildAgent, buildBoardOnGateway, pendingAgentTokenDigests } from '../support/builders';
import { eventually, waitUntil } from '../support/eventually';
import { boardOnOpenClawFake } from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

const HOUR_MS = 3_600_000;

describe('stuck provision runs are swept', () => {
  let owner: TestApp;
  let gatewayId: string;
  let boardId: string;

  beforeAll(async () => {
    owner = await createTestApp();
    const { gateway, board } = await buildBoardOnGateway(owner.dataSource);
    gatewayId = gateway.id;
    boardId = board.id;
  });
  afterAll(() => owner.close());

  const reload = (id: string) => owner.dataSource.getRepository(Agent).findOneByOrFail({ id });

  /** A row as a process crash mid-run leaves it. */
  async function crashedRun(ageMs: number, fields: Partial<Agent> = {}) {
    const { agent } = await buildAgent(owner.dataSource, gatewayId, boardId, {
      status: 'updating',
      provisionAction: 'update',
      provisionRequestedAt: new Date(Date.now() - ageMs),
      lastSeenAt: new Date(Date.now() - 2 * HOUR_MS),
      ...fields,
    });
    return agent;
  }

  it('at start-up: runs past the deadline end stable with an explanation; live or recent runs stay', async () => {
    const stuck = await crashedRun(HOUR_MS);
    const neverSeen = await crashedRun(HOUR_MS, { lastSeenAt: null });
    const unfinishedFirst = await crashedRun(HOUR_MS, {
      status: 'provisioning',
      provisionAction: 'provision',
      lastSeenAt: null,
    });
    const recent = await crashedRun(1_000);
    // A lead inserted by an instance that died before its first run started.
    const orphanLead = (
      await buildAgent(owner.dataSource, gatewayId, boardId, {
        isBoardLead: true,
        agentTokenHash: null,
        createdAt: new Date(Date.now() - HOUR_MS),
      })
    ).agent;
    const live = await crashedRun(HOUR_MS);
    // Another instance is still executing `live`'s run: it holds the agent's run lock.
    const otherInstance = new Client({ connectionString: owner.databaseUrl });
    await otherInstance.connect();
    await otherInstance.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [
      `mission-control:agent-provision:${live.id}`,
    ]);
    try {
      const restarted = await createTestApp({}, { sharedDatabaseUrl: owner.databaseUrl });
      await restarted.close();
    } finally {
      await otherInstance.end();
    }

    expect(await reload(stuck.id)).toMatchObject({
      status: 'online',
      lastProvisionError: expect.stringMatching(/^provision run did not finish within 300 s/),
    });
    expect(await reload(neverSeen.id)).toMatchObject({
      status: 'provisioning',
      lastProvisionError: expect.stringMatching(/did not finish/),
    });
    expect(await reload(unfinishedFirst.id)).toMatchObject({
      status: 'provisioning',
      lastProvisionError: expect.stringMatching(/did not finish/),
    });
    expect(await reload(orphanLead.id)).toMatchObject({
      status: 'provisioning',
      lastProvisionError: expect.stringMatching(/first provision run never started/),
    });
    expect(await reload(recent.id)).toMatchObject({ status: 'updating', lastProvisionError: null });
    expect(await reload(live.id)).toMatchObject({ status: 'updating', lastProvisionError: null });
  });

  it('periodically, on a running instance', async () => {
    const running = await createTestApp(
      { PROVISION_RUN_TIMEOUT_MS: '1000' },
      { sharedDatabaseUrl: owner.databaseUrl },
    );
    const sweeper = running.app.get(ProvisionRunSweeper);
    try {
      const stuck = await crashedRun(0);
      const swept = await eventually(
        async () => {
          const row = await reload(stuck.id);
          return row.status === 'updating' ? undefined : row;
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      expect(swept).toMatchObject({
        status: 'online',
        lastProvisionError: expect.stringMatching(/^provision run did not finish within 1 s/),
      });
      // The periodic timer never keeps the process alive...
      expect(sweeper.timer?.hasRef()).toBe(false);
    } finally {
      await running.close();
    }
    // ... and stops with the app.
    expect(sweeper.timer).toBeNull();
  }, 30_000);

  /**
   * Runs an update of a new agent (with `fields`) in an instance whose run deadline is 1 s,
   * against a fake gateway that holds `heldMethod` until that deadline has passed.
   */
  const updatePastItsDeadline = async (heldMethod: string, fields: Partial<Agent> = {}) => {
    const { fake, state, organizationId, gatewayId, boardId } = await boardOnOpenClawFake(
      owner.dataSource,
    );
    const running = await createTestApp(
      { PROVISION_RUN_TIMEOUT_MS: '1000' },
      { sharedDatabaseUrl: owner.databaseUrl },
    );
    try {
      const { agent, token } = await buildAgent(owner.dataSource, gatewayId, boardId, fields);
      state.gate.close(heldMethod);
      const started = Date.now();
      const run = running.app
        .get(ProvisioningService)
        .provisionAgent({ organizationId, agentId: agent.id }, { action: 'update' });
      await waitUntil(() => state.gate.held > 0);
      // The gateway answers only once the run's deadline has passed.
      await waitUntil(() => Date.now() - started > 1_100, { timeoutMs: 5_000 });
      state.gate.open();
      const outcome = await run;
      return { agent, token, outcome, methods: fake.requests.map((request) => request.method) };
    } finally {
      state.gate.open();
      await running.close();
      await fake.stop();
    }
  };

  it('a run past its deadline starts no further step and ends stable', async () => {
    const { agent, token, outcome, methods } = await updatePastItsDeadline('agents.list', {
      status: 'online',
      lastSeenAt: new Date(),
    });
    expect(outcome).toMatchObject({
      status: 'failed',
      error: 'agents.create: provision run exceeded its deadline of 1 s',
    });
    expect(await reload(agent.id)).toMatchObject({ status: 'online' });
    expect(methods).not.toContain('agents.create');
    await owner.http
      .post('/api/v1/agent/heartbeat')
      .set('X-Agent-Token', token)
      .send({})
      .expect(200);
  });
  it('review 6: a run clears the previous error when it starts, so its crash is swept like any other', async () => {
    const fixture = await boardOnOpenClawFake(owner.dataSource);
    const { fake, state, organizationId } = fixture;
    try {
      const { agent } = await buildAgent(owner.dataSource, fixture.gatewayId, fixture.boardId, {
        status: 'online',
        lastProvisionError: 'agents.list: an earlier failure',
      });
      state.gate.close('agents.list');
      const run = owner.app
        .get(ProvisioningService)
        .provisionAgent({ organizationId, agentId: agent.id }, { action: 'provision' });
      await waitUntil(() => state.gate.held > 0);
      // While the run is under way its row shows no stale error: a crash now is sweepable.
      expect(await reload(agent.id)).toMatchObject({
        provisionAction: 'provision',
        lastProvisionError: null,
      });
      state.gate.open();
      await run;
    } finally {
      state.gate.open();
      await fake.stop();
    }
  });

  it('review 6: any agent whose creator died before its first run started is swept, not only leads', async () => {
    /** Created an hour ago, never provisioned: no run started before its creator died. */
    const orphanOn = async (board: string | null) =>
      (
        await buildAgent(owner.dataSource, gatewayId, board, {
          status: 'provisioning',
          agentTokenHash: null,
          createdAt: new Date(Date.now() - HOUR_MS),
        })
      ).agent;
    const orphan = await orphanOn(boardId);
    const orphanMain = await orphanOn(null);
    const swept = await owner.app.get(ProvisionRunSweeper).sweep();
    expect(swept).toEqual(expect.arrayContaining([orphan.id, orphanMain.id]));
    for (const id of [orphan.id, orphanMain.id]) {
      expect(await reload(id)).toMatchObject({
        status: 'provisioning',
        lastProvisionError: expect.stringMatching(/first provision run never started/),
      });
    }
  });
  it('review 3: a run past its deadline registers no token (the deadline is checked before registering)', async () => {
    const { agent, outcome } = await updatePastItsDeadline('agents.files.list');
    expect(outcome).toMatchObject({ status: 'failed' });
    expect(outcome.error).toMatch(/exceeded its deadline of 1 s$/);
    expect(await pendingAgentTokenDigests(owner.dataSource, agent.id)).toEqual([]);
  });
});
