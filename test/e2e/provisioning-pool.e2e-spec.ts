/**
 * Issue 9 item 4: provisioning must not starve the database pool. Many runs against a gateway
 * that holds every wake-up (as slow as the test wants) must leave `/readyz` and authenticated
 * requests answering; runs on one agent queue in process, runs on many agents are bounded.
 */
import { Agent } from '../../src/agents/entities/agent.entity';
import { agentTokenDigest } from '../../src/auth/agent-token';
import { Client } from 'pg';
import { ConflictError } from '../../src/common/errors/app-error';
import {
  AgentRunLock,
  agentRunLockKey,
  MAX_QUEUED_RUNS_PER_AGENT,
} from '../../src/provisioning/agent-run-lock';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { bearer, newIdentity, userToken } from '../support/auth';
import { buildAgent, buildBoard, buildGateway } from '../support/builders';
import { waitUntil } from '../support/eventually';
import { FakeGateway } from '../support/fake-gateway';
import {
  boardOnOpenClawFake,
  gatewayFieldsFor,
  serveOpenClawState,
  startOpenClawFake,
} from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

const RUNS = 12;
/** Far above what one query needs, far below "until the runs finish" (they never do unheld). */
const ANSWER_WITHIN_MS = 5_000;

describe('provisioning and the database pool (slow gateway)', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let state: ReturnType<typeof serveOpenClawState>;
  let provisioning: ProvisioningService;
  let organizationId: string;
  let gatewayId: string;
  let boardId: string;
  let agentToken: string;
  let userBearer: string;

  beforeAll(async () => {
    // The test app's pool is 5 connections: fewer than the runs.
    t = await createTestApp();
    ({ fake, state, organizationId, gatewayId, boardId } = await boardOnOpenClawFake(t.dataSource));
    provisioning = t.app.get(ProvisioningService);
    agentToken = (await buildAgent(t.dataSource, gatewayId, boardId)).token;
    userBearer = await userToken(newIdentity('pool'));
  });
  afterAll(async () => {
    state.gate.open();
    await t.close();
    await fake.stop();
  });

  /** Starts the runs with every wake-up held, checks the app answers meanwhile, then lets go. */
  async function whileRunsAreHeld(agentIds: string[], expectedHeld: number) {
    state.gate.close('chat.send');
    const heldBefore = state.gate.held;
    let finished = 0;
    const runs = agentIds.map((agentId) =>
      provisioning
        .provisionAgent({ organizationId, agentId }, { action: 'update' })
        .finally(() => (finished += 1)),
    );
    try {
      await waitUntil(() => state.gate.held - heldBefore >= expectedHeld, { timeoutMs: 20_000 });
      // No run can finish while its wake-up is held: these answer before any run is done.
      await t.http.get('/readyz').timeout(ANSWER_WITHIN_MS).expect(200, { ok: true });
      await t.http
        .get('/api/v1/agent/boards')
        .set('X-Agent-Token', agentToken)
        .timeout(ANSWER_WITHIN_MS)
        .expect(200);
      await t.http
        .get('/api/v1/users/me')
        .set(bearer(userBearer))
        .timeout(ANSWER_WITHIN_MS)
        .expect(200);
      expect(finished).toBe(0);
    } finally {
      state.gate.open();
    }
    const outcomes = await Promise.all(runs);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(agentIds.map(() => 'provisioned'));
  }

  it(`${RUNS} concurrent runs on one agent`, async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    await whileRunsAreHeld(
      Array.from({ length: RUNS }, () => agent.id),
      1,
    );
    expect((await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id })).status).toBe(
      'online',
    );
  }, 60_000);

  it(`${RUNS} concurrent runs on ${RUNS} agents (one gateway each)`, async () => {
    // One gateway each: parallel config patches on one gateway are another matter (item 7).
    const gateways = await Promise.all(
      Array.from({ length: RUNS }, () => startOpenClawFake({ gate: state.gate })),
    );
    try {
      const agentIds: string[] = [];
      for (const { fake: gateway } of gateways) {
        const row = await buildGateway(t.dataSource, organizationId, gatewayFieldsFor(gateway));
        const board = await buildBoard(t.dataSource, organizationId, row.id);
        agentIds.push((await buildAgent(t.dataSource, row.id, board.id)).agent.id);
      }
      // Runs execute a bounded number at a time: at most half the app pool (5 in tests).
      const concurrency = t.app.get(AgentRunLock).concurrency;
      expect(concurrency).toBe(2);
      await whileRunsAreHeld(agentIds, concurrency);
    } finally {
      state.gate.open();
      await Promise.all(gateways.map(({ fake: gateway }) => gateway.stop()));
    }
  }, 60_000);

  it('bounds the queue of one agent: a run past MAX_QUEUED_RUNS_PER_AGENT is refused at once', async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    state.gate.close('chat.send');
    const heldBefore = state.gate.held;
    const ref = { organizationId, agentId: agent.id };
    const queued = Array.from({ length: MAX_QUEUED_RUNS_PER_AGENT }, () =>
      provisioning.provisionAgent(ref, { action: 'update', wake: true }),
    );
    try {
      await waitUntil(() => state.gate.held > heldBefore);
      await expect(provisioning.provisionAgent(ref, { action: 'update' })).rejects.toThrow(
        new ConflictError(
          `Agent ${agent.id} already has ${MAX_QUEUED_RUNS_PER_AGENT} provision runs queued; try again later`,
        ),
      );
    } finally {
      state.gate.open();
    }
    expect((await Promise.all(queued)).every((outcome) => outcome.status === 'provisioned')).toBe(
      true,
    );
  }, 60_000);

  it("waits for another instance's run on the agent only so long, holding no connection, then says why", async () => {
    const impatient = await createTestApp(
      { PROVISION_RUN_TIMEOUT_MS: '1000' },
      { sharedDatabaseUrl: t.databaseUrl },
    );
    const otherInstance = new Client({ connectionString: t.databaseUrl });
    await otherInstance.connect();
    try {
      const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
      await otherInstance.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [
        agentRunLockKey(agent.id),
      ]);
      const lock = impatient.app.get(AgentRunLock);
      const contendedBefore = lock.contended;
      const run = impatient.app
        .get(ProvisioningService)
        .provisionAgent({ organizationId, agentId: agent.id }, { action: 'update' });
      const settled = run.then(
        () => 'resolved',
        (error: unknown) => error,
      );
      await waitUntil(() => lock.contended > contendedBefore);
      // While it waits, the app answers (the wait pins no pooled connection).
      await impatient.http.get('/readyz').timeout(ANSWER_WITHIN_MS).expect(200);
      const error = await settled;
      expect(error).toBeInstanceOf(ConflictError);
      expect((error as ConflictError).message).toMatch(
        new RegExp(`^Agent ${agent.id} is being provisioned by another instance; gave up`),
      );
      // Nothing was touched.
      expect(await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id })).toEqual(
        agent,
      );
    } finally {
      await otherInstance.end();
      await impatient.close();
    }
  }, 30_000);

  it('review 4: one wait budget from enqueue: a run queued behind a run that does not end gives up with a clear error', async () => {
    const impatient = await createTestApp(
      { PROVISION_RUN_TIMEOUT_MS: '1000' },
      { sharedDatabaseUrl: t.databaseUrl },
    );
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    const ref = { organizationId, agentId: agent.id };
    const service = impatient.app.get(ProvisioningService);
    state.gate.close('agents.list');
    const heldBefore = state.gate.held;
    const first = service.provisionAgent(ref, { action: 'update' });
    try {
      await waitUntil(() => state.gate.held > heldBefore);
      let queuedResult: unknown = undefined;
      void service.provisionAgent(ref, { action: 'update' }).then(
        (outcome) => (queuedResult = outcome),
        (error: unknown) => (queuedResult = error),
      );
      // The first run is still held by the gateway, far past the 1 s budget: the queued run
      // must not wait for it.
      await waitUntil(() => queuedResult !== undefined, { timeoutMs: 10_000 });
      expect(state.gate.held).toBe(heldBefore + 1);
      expect(queuedResult).toBeInstanceOf(ConflictError);
      expect((queuedResult as ConflictError).message).toMatch(
        new RegExp(`^Agent ${agent.id} has earlier provision runs still under way; gave up`),
      );
    } finally {
      state.gate.open();
      await first;
      await impatient.close();
    }
  }, 30_000);

  /** An online agent whose update run has started and will be held at `method`. */
  const onlineAgentRunHeldAt = async (method: string) => {
    const { agent, token: oldToken } = await buildAgent(t.dataSource, gatewayId, boardId, {
      status: 'online',
    });
    const lock = t.app.get(AgentRunLock);
    const lostBefore = lock.lost;
    state.gate.close(method);
    const heldBefore = state.gate.held;
    const run = provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'update' },
    );
    return { agent, oldToken, lock, lostBefore, heldBefore, run };
  };
  /** Terminates the database connection holding the agent's run lock (as a lost one would be). */
  const terminateRunLock = (agentId: string) =>
    t.dataSource.query<{ terminated: boolean }[]>(
      `SELECT pg_terminate_backend(pid) AS terminated FROM pg_locks
       WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
         AND objid = (hashtextextended($1, 0) & x'ffffffff'::bigint)`,
      [agentRunLockKey(agentId)],
    );

  it('review 2: losing the lock connection mid-run aborts the run: no crash, stable status, no workspace token retired', async () => {
    const { agent, oldToken, lock, lostBefore, heldBefore, run } =
      await onlineAgentRunHeldAt('agents.files.list');
    try {
      await waitUntil(() => state.gate.held > heldBefore);
      expect(await terminateRunLock(agent.id)).toEqual([{ terminated: true }]);
      // The dropped connection's error arrives while the run waits on the gateway.
      await waitUntil(() => lock.lost > lostBefore);
      await t.http.get('/readyz').timeout(ANSWER_WITHIN_MS).expect(200);
    } finally {
      state.gate.open();
    }
    const outcome = await run;
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(/lost its run lock/);
    const stored = await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id });
    expect(stored.status).toBe('online');
    expect(stored.lastProvisionError).toMatch(/lost its run lock/);
    // Nothing was written after the lock was lost, so the old token is still the one in force.
    expect(state.files.get(`mc-${agent.id}`)?.get('AGENTS.md') ?? '').not.toMatch(/AUTH_TOKEN=/);
    await t.http
      .post('/api/v1/agent/heartbeat')
      .set('X-Agent-Token', oldToken)
      .send({})
      .expect(200);
    await t.http.get('/readyz').timeout(ANSWER_WITHIN_MS).expect(200);
  });
  it('review 2: a lock lost while AGENTS.md is being written: the run promotes nothing, and the written token works', async () => {
    const { agent, oldToken, lock, lostBefore, heldBefore, run } =
      await onlineAgentRunHeldAt('agents.files.set');
    try {
      await waitUntil(() => state.gate.held > heldBefore);
      await terminateRunLock(agent.id);
      await waitUntil(() => lock.lost > lostBefore);
    } finally {
      state.gate.open();
    }
    const outcome = await run;
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(/^confirming the token: the provision run lost its run lock/);
    const written = /^AUTH_TOKEN=(.+)$/m.exec(
      state.files.get(`mc-${agent.id}`)?.get('AGENTS.md') ?? '',
    )?.[1];
    expect(written).toBeDefined();
    const stored = await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id });
    // Not promoted by a run without its lock: the previous token is still the one in force...
    expect(stored.agentTokenHash).toBe(agentTokenDigest(oldToken));
    // ... and the token the workspace now holds authenticates (unconfirmed, then proven).
    await t.http
      .post('/api/v1/agent/heartbeat')
      .set('X-Agent-Token', written as string)
      .send({})
      .expect(200);
  });
});
