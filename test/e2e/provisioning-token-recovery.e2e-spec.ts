/**
 * Second review of the provisioning fixes: unconfirmed tokens must not pile up into a dead end
 * (finding 1), and a run-lock session that cannot get the agent's row must fail the run in
 * bounded time without leaving the row locked (finding 2). In-process gateway, real database.
 */
import { Client } from 'pg';
import { Agent } from '../../src/agents/entities/agent.entity';
import { agentTokenDigest, MAX_PENDING_AGENT_TOKENS } from '../../src/auth/agent-token';
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { AgentRunLock, agentRunLockKey } from '../../src/provisioning/agent-run-lock';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { addPendingAgentToken, buildAgent, pendingAgentTokenDigests } from '../support/builders';
import { waitUntil } from '../support/eventually';
import { FakeGateway } from '../support/fake-gateway';
import { boardOnOpenClawFake, serveOpenClawState } from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

const HEARTBEAT = '/api/v1/agent/heartbeat';
/** Small, so a blocked lock statement gives up quickly (PROVISION_LOCK_STATEMENT_TIMEOUT_MS). */
const LOCK_STATEMENT_TIMEOUT_MS = 500;

describe('provisioning: unconfirmed tokens and the run-lock session recover', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let state: ReturnType<typeof serveOpenClawState>;
  let provisioning: ProvisioningService;
  let organizationId: string;
  let gatewayId: string;
  let boardId: string;

  beforeAll(async () => {
    t = await createTestApp({
      PROVISION_LOCK_STATEMENT_TIMEOUT_MS: String(LOCK_STATEMENT_TIMEOUT_MS),
    });
    ({ fake, state, organizationId, gatewayId, boardId } = await boardOnOpenClawFake(t.dataSource));
    provisioning = t.app.get(ProvisioningService);
  });
  afterAll(async () => {
    state.gate.open();
    await t.close();
    await fake.stop();
  });
  afterEach(() => {
    state.gate.open();
    state.failures.clear();
    state.loseAnswer.clear();
  });

  const heartbeat = (token: string) => t.http.post(HEARTBEAT).set('X-Agent-Token', token).send({});
  const writtenToken = (agentId: string) =>
    /^AUTH_TOKEN=(.+)$/m.exec(state.files.get(`mc-${agentId}`)?.get('AGENTS.md') ?? '')?.[1] ?? '';

  it('finding 1: a first carrier write the gateway refuses withdraws its token, so refusals never fill the cap', async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    const ref = { organizationId, agentId: agent.id };
    const first = await provisioning.provisionAgent(ref, { action: 'provision' });
    expect(first.status).toBe('provisioned');
    state.failures.set('agents.files.set', (p) => p.name === 'AGENTS.md');
    for (let run = 0; run <= MAX_PENDING_AGENT_TOKENS; run++) {
      const outcome = await provisioning.provisionAgent(ref, { action: 'update' });
      expect(outcome.error).toBe('writing AGENTS.md: agents.files.set injected failure');
      expect(await pendingAgentTokenDigests(t.dataSource, agent.id)).toEqual([]);
    }
    await heartbeat(first.token as string).expect(200);
    state.failures.clear();
    const recovered = await provisioning.provisionAgent(ref, { action: 'update' });
    expect(recovered).toMatchObject({ status: 'provisioned', error: null });
    expect(writtenToken(agent.id)).toBe(recovered.token);
    await heartbeat(recovered.token as string).expect(200);
  });

  it('finding 1: at the cap, when the workspace holds the token in force, the unconfirmed ones are retired and the run goes on', async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    const ref = { organizationId, agentId: agent.id };
    const first = await provisioning.provisionAgent(ref, { action: 'provision' });
    expect(first.status).toBe('provisioned');
    const stale: string[] = [];
    for (let n = 0; n < MAX_PENDING_AGENT_TOKENS; n++) {
      stale.push(await addPendingAgentToken(t.dataSource, agent.id));
    }
    const outcome = await provisioning.provisionAgent(ref, { action: 'update' });
    expect(outcome).toMatchObject({ status: 'provisioned', error: null });
    expect(writtenToken(agent.id)).toBe(outcome.token);
    await heartbeat(outcome.token as string).expect(200);
    for (const token of stale) await heartbeat(token).expect(401);
    expect(await pendingAgentTokenDigests(t.dataSource, agent.id)).toEqual([]);
  });

  it('finding 1: at the cap, when the workspace holds no known token (stock AGENTS.md), the run goes on', async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    for (let n = 0; n < MAX_PENDING_AGENT_TOKENS; n++) {
      await addPendingAgentToken(t.dataSource, agent.id);
    }
    const outcome = await provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'provision' },
    );
    expect(outcome).toMatchObject({ status: 'provisioned', error: null });
    await heartbeat(outcome.token as string).expect(200);
  });

  it("finding 6: at the cap, re-registering the run's own raw token needs no room (no read-back)", async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    for (let n = 0; n < MAX_PENDING_AGENT_TOKENS - 1; n++) {
      await addPendingAgentToken(t.dataSource, agent.id);
    }
    const raw = await addPendingAgentToken(t.dataSource, agent.id);
    // A read-back (agents.files.get) would be held here: none must be needed.
    state.gate.close('agents.files.get');
    const heldBefore = state.gate.held;
    let settled = false;
    const run = provisioning.provisionAgent(
      { organizationId, agentId: agent.id },
      { action: 'update', token: { raw } },
    );
    void run.finally(() => (settled = true)).catch(() => undefined);
    await waitUntil(() => settled || state.gate.held > heldBefore);
    expect(state.gate.held).toBe(heldBefore);
    state.gate.open();
    const outcome = await run;
    expect(outcome).toMatchObject({ status: 'provisioned', error: null, token: raw });
    expect(writtenToken(agent.id)).toBe(raw);
    await heartbeat(raw).expect(200);
  });

  it('finding 6: at the cap the read-back covers every carrier: a pending token TOOLS.md holds is confirmed, not retired', async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    const ref = { organizationId, agentId: agent.id };
    const first = await provisioning.provisionAgent(ref, { action: 'provision' });
    expect(first.status).toBe('provisioned');
    const inTools = await addPendingAgentToken(t.dataSource, agent.id);
    for (let n = 1; n < MAX_PENDING_AGENT_TOKENS; n++) {
      await addPendingAgentToken(t.dataSource, agent.id);
    }
    // An older gateway's TOOLS.md holds a pending token; AGENTS.md holds the one in force.
    state.files
      .get(`mc-${agent.id}`)
      ?.set('TOOLS.md', ['```env mission-control', `AUTH_TOKEN=${inTools}`, '```'].join('\n'));
    state.failures.set('agents.files.set', (p) => p.name === 'AGENTS.md');
    const outcome = await provisioning.provisionAgent(ref, { action: 'update' });
    expect(outcome.error).toBe('writing AGENTS.md: agents.files.set injected failure');
    await heartbeat(inTools).expect(200);
  });

  it('finding 2: a run whose lock session cannot get the agent row fails in bounded time, leaves the row unlocked, and the next run succeeds', async () => {
    const { agent, token: oldToken } = await buildAgent(t.dataSource, gatewayId, boardId);
    const ref = { organizationId, agentId: agent.id };
    const blocker = new Client({ connectionString: t.databaseUrl });
    await blocker.connect();
    try {
      // Hold AGENTS.md's write until the run has registered its token, then lock the row.
      state.gate.close('agents.files.set');
      const heldBefore = state.gate.held;
      const run = provisioning.provisionAgent(ref, { action: 'update' });
      let settled = false;
      void run.finally(() => (settled = true)).catch(() => undefined);
      await waitUntil(() => state.gate.held > heldBefore);
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM agents WHERE id = $1 FOR UPDATE', [agent.id]);
      state.gate.open();
      // Long enough for the run to reach "confirming the token" and its statements to time out.
      await new Promise((resolve) => setTimeout(resolve, LOCK_STATEMENT_TIMEOUT_MS * 4));
      await blocker.query('COMMIT');
      await waitUntil(() => settled, { timeoutMs: 15_000 });
      const outcome = await run;
      expect(outcome.status).toBe('failed');
      expect(outcome.error).toMatch(/^confirming the token: /);
      // Nobody holds the row: an update with a short lock timeout goes through.
      await blocker.query('BEGIN');
      await blocker.query(`SET LOCAL lock_timeout = '2s'`);
      await blocker.query('SELECT 1 FROM agents WHERE id = $1 FOR UPDATE', [agent.id]);
      await blocker.query('ROLLBACK');
      // The token the workspace may hold (the run's, written) and the old one still work.
      await heartbeat(writtenToken(agent.id)).expect(200);
      expect(
        (await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id })).status,
      ).not.toBe('updating');
    } finally {
      state.gate.open();
      await blocker.end();
    }
    const next = await provisioning.provisionAgent(ref, { action: 'update' });
    expect(next).toMatchObject({ status: 'provisioned', error: null });
    expect(agentTokenDigest(next.token as string)).not.toBe(agentTokenDigest(oldToken));
    await heartbeat(next.token as string).expect(200);
  }, 30_000);

  it('finding 2: a lock session that stops answering mid-transaction is ended at once: the run fails, nothing waits on it', async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    const ref = { organizationId, agentId: agent.id };
    const lockHolder = async () =>
      (
        await t.dataSource.query<{ pid: number }[]>(
          `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND objid = (hashtextextended($1, 0) & x'ffffffff'::bigint)`,
          [agentRunLockKey(agent.id)],
        )
      )[0]?.pid;
    state.gate.close('agents.files.set');
    const heldBefore = state.gate.held;
    const run = provisioning.provisionAgent(ref, { action: 'update' });
    let settled = false;
    void run.finally(() => (settled = true)).catch(() => undefined);
    await waitUntil(() => state.gate.held > heldBefore);
    const pid = await lockHolder();
    expect(pid).toEqual(expect.any(Number));
    // The lock's server process stops answering (a half-open connection, as far as the run sees).
    process.kill(pid, 'SIGSTOP');
    try {
      state.gate.open();
      await waitUntil(() => settled, { timeoutMs: 15_000 });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const outcome = await run;
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(
      /^confirming the token: the provision run lost its run lock \(its session was ended: /,
    );
    // The connection was given up: once the server process runs again it ends, and the lock too.
    await waitUntil(async () => (await lockHolder()) === undefined, { timeoutMs: 15_000 });
    await heartbeat(writtenToken(agent.id)).expect(200);
    const next = await provisioning.provisionAgent(ref, { action: 'update' });
    expect(next).toMatchObject({ status: 'provisioned', error: null });
  }, 30_000);

  it('finding 5: a run that lost its lock leaves the row to the run now holding it, recording only an activity', async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId, { status: 'online' });
    const lock = t.app.get(AgentRunLock);
    const lostBefore = lock.lost;
    const key = agentRunLockKey(agent.id);
    const other = new Client({ connectionString: t.databaseUrl });
    await other.connect();
    try {
      state.gate.close('agents.files.list');
      const heldBefore = state.gate.held;
      const run = provisioning.provisionAgent(
        { organizationId, agentId: agent.id },
        { action: 'update' },
      );
      await waitUntil(() => state.gate.held > heldBefore);
      await t.dataSource.query(
        `SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
           AND objid = (hashtextextended($1, 0) & x'ffffffff'::bigint)`,
        [key],
      );
      await waitUntil(() => lock.lost > lostBefore);
      // Another instance's run takes the lock and owns the row now.
      await other.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
      await other.query(
        `UPDATE agents SET status = 'updating', last_provision_error = NULL WHERE id = $1`,
        [agent.id],
      );
      state.gate.open();
      const outcome = await run;
      expect(outcome.status).toBe('failed');
      expect(outcome.error).toMatch(/lost its run lock/);
      const stored = await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id });
      expect({ status: stored.status, error: stored.lastProvisionError }).toEqual({
        status: 'updating',
        error: null,
      });
      const events = await t.dataSource
        .getRepository(ActivityEvent)
        .findBy({ agentId: agent.id, eventType: 'agent.update.failed' });
      expect(events.map((event) => event.message)).toEqual([
        expect.stringMatching(/lost its run lock/),
      ]);
    } finally {
      state.gate.open();
      await other.end();
    }
  });
});
