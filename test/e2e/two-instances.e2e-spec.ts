/**
 * Two full app instances (A and B: each its own pool, change-log listener and gateway clients)
 * on one database, talking to in-process fake gateways: a change made through A reaches B's
 * streams; a template sync held on A blocks nothing on B; provisioning one agent from both at
 * once runs one after the other.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { Agent } from '../../src/agents/entities/agent.entity';
import { agentTokenDigest } from '../../src/auth/agent-token';
import { parseConnectionBlock } from '../../src/provisioning/connection-block';
import { AgentRunLock } from '../../src/provisioning/agent-run-lock';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import {
  buildAgent,
  buildBoard,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { waitUntil } from '../support/eventually';
import type { FakeGateway } from '../support/fake-gateway';
import { FAKE_GATEWAY_TOKEN, Gate, startOpenClawFake } from '../support/fake-openclaw-state';
import { listen, SseClient } from '../support/sse-client';
import { createTestApp, type TestApp } from '../support/test-app';

jest.setTimeout(40_000);

/** Sweeps run only when a test calls them. */
const QUIET = { PRESENCE_SWEEP_INTERVAL_MS: '600000', PROVISION_RUN_TIMEOUT_MS: '3600000' };

type State = Awaited<ReturnType<typeof startOpenClawFake>>['state'];

/** A promise and whether it has settled yet. */
function tracked<T>(promise: Promise<T>) {
  const entry = { promise, settled: false };
  promise.then(
    () => (entry.settled = true),
    () => (entry.settled = true),
  );
  return entry;
}

describe('two app instances on one database', () => {
  let a: TestApp;
  let b: TestApp;
  let urlB: string;
  let sql: Client;
  let owner: SignedInUser;
  let orgId: string;
  const fakes: FakeGateway[] = [];
  const gates: Gate[] = [];
  const open: SseClient[] = [];

  beforeAll(async () => {
    a = await createTestApp(QUIET);
    b = await createTestApp(QUIET, { sharedDatabaseUrl: a.databaseUrl });
    await listen(a.app);
    urlB = await listen(b.app);
    sql = new Client({ connectionString: a.databaseUrl });
    await sql.connect();
    ({ owner, orgId } = await signInOwnerOfNewOrganization(a.http, a.dataSource, 'TwoInst'));
  });

  afterEach(() => {
    for (const client of open.splice(0)) client.close();
    // A test that failed mid-way must not leave runs held (they keep provisioning slots).
    for (const gate of gates) gate.open();
  });

  afterAll(async () => {
    await sql.end();
    await b.close();
    await a.close();
    for (const fake of fakes) await fake.stop();
  });

  /**
   * A gateway created through A (its main agent provisioned) with one board of `size`
   * provisioned agents, on a fake of its own whose calls `gate` can hold.
   */
  async function fleet(size: number) {
    const gate = new Gate();
    gates.push(gate);
    const { fake, state } = await startOpenClawFake({ gate });
    fakes.push(fake);
    const res = await a.http
      .post('/api/v1/gateways')
      .set(owner.headers)
      .send({
        name: `Fleet ${randomUUID().slice(0, 6)}`,
        url: fake.url,
        token: FAKE_GATEWAY_TOKEN,
        workspace_root: '/srv/openclaw',
        disable_device_pairing: true,
      })
      .expect(200);
    const gatewayId = (res.body as { id: string }).id;
    const board = await buildBoard(a.dataSource, orgId, gatewayId);
    const agents: { agent: Agent; token: string }[] = [];
    for (let i = 0; i < size; i += 1) {
      const { agent } = await buildAgent(a.dataSource, gatewayId, board.id);
      const outcome = await a.app
        .get(ProvisioningService)
        .provisionAgent(
          { organizationId: orgId, agentId: agent.id },
          { action: 'provision', raise: true },
        );
      agents.push({ agent: outcome.agent, token: outcome.token ?? '' });
    }
    return { fake, state, gate, gatewayId, board, agents };
  }

  /** A live stream on B, opened once every committed change is final (see agent-stream tests). */
  async function streamOnB(path: string) {
    await waitUntil(async () => {
      const { rows } = await sql.query<{ pending: number }>(
        `SELECT count(*)::int AS pending FROM change_log
          WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())`,
      );
      return rows[0].pending === 0;
    });
    const client = await SseClient.open(urlB, path, owner.headers);
    expect(client.status).toBe(200);
    open.push(client);
    return client;
  }

  const workspaceToken = (state: State, agentId: string) =>
    parseConnectionBlock(state.files.get(`mc-${agentId}`)?.get('AGENTS.md') ?? '').AUTH_TOKEN;

  it("a change made through instance A reaches B's agent stream and B's board memory stream", async () => {
    const { board, agents } = await fleet(1);
    const [{ agent, token }] = agents;
    const agentStream = await streamOnB('/api/v1/agents/stream');
    const memoryStream = await streamOnB(`/api/v1/boards/${board.id}/memory/stream`);

    await a.http.post('/api/v1/agent/heartbeat').set('X-Agent-Token', token).send({}).expect(200);
    await a.http
      .patch(`/api/v1/agents/${agent.id}`)
      .set(owner.headers)
      .send({ name: 'Renamed through A' })
      .expect(200);
    await a.http
      .post(`/api/v1/boards/${board.id}/memory`)
      .set(owner.headers)
      .send({ content: 'written through A' })
      .expect(200);

    type AgentData = { agent: { id: string; name: string; last_seen_at: string | null } };
    await waitUntil(
      () =>
        agentStream.events.some((event) => {
          const data = event.data as AgentData;
          return (
            event.event === 'agent' &&
            data.agent.id === agent.id &&
            data.agent.name === 'Renamed through A' &&
            data.agent.last_seen_at !== null
          );
        }),
      { timeoutMs: 10_000, what: () => JSON.stringify(agentStream.events) },
    );
    await memoryStream.waitForEvents(1);
    expect(memoryStream.events.map((event) => event.event)).toEqual(['memory']);
    expect(memoryStream.events[0].data).toMatchObject({
      memory: { board_id: board.id, content: 'written through A' },
    });
    expect(agentStream.events.every((event) => event.id !== undefined)).toBe(true);
  });

  it('a template sync held on A blocks nothing on B: reads, heartbeats, PATCHes and syncs elsewhere', async () => {
    const held = await fleet(2);
    const other = await fleet(1);
    held.gate.close('agents.files.set');
    const syncOnA = tracked(
      a.http.post(`/api/v1/gateways/${held.gatewayId}/templates/sync`).set(owner.headers).then(),
    );
    await waitUntil(() => held.gate.held > 0, { what: () => 'the sync reaching the gate' });

    // Meanwhile, B: a read, a heartbeat of an agent the held sync is rewriting, a PATCH that
    // provisions an agent on the other gateway, and that gateway's own template sync.
    const list = await b.http.get('/api/v1/agents').set(owner.headers).expect(200);
    expect((list.body as { total: number }).total).toBeGreaterThanOrEqual(3);
    const beat = await b.http
      .post('/api/v1/agent/heartbeat')
      .set('X-Agent-Token', held.agents[0].token)
      .send({})
      .expect(200);
    // Recorded (the agent shows `updating` while the sync rewrites it: that status is frozen).
    expect(beat.body).toMatchObject({ id: held.agents[0].agent.id, status: 'updating' });
    expect((beat.body as { last_seen_at: string | null }).last_seen_at).not.toBeNull();
    const patched = await b.http
      .patch(`/api/v1/agents/${other.agents[0].agent.id}`)
      .set(owner.headers)
      .send({ name: 'Patched on B' })
      .expect(200);
    expect(patched.body).toMatchObject({ name: 'Patched on B', last_provision_error: null });
    const otherSync = await b.http
      .post(`/api/v1/gateways/${other.gatewayId}/templates/sync`)
      .set(owner.headers)
      .expect(200);
    expect(otherSync.body).toMatchObject({ errors: [], agents_updated: 1, main_updated: true });

    // All of that finished while A's sync was still held at the gate.
    expect(syncOnA.settled).toBe(false);
    expect(held.gate.held).toBeGreaterThan(0);
    held.gate.open();
    const synced = await syncOnA.promise;
    expect(synced.status).toBe(200);
    expect(synced.body).toMatchObject({ errors: [], agents_updated: 2, main_updated: true });
  });

  it('PATCHing one agent on A and B at once runs the two provisions one after the other', async () => {
    const { fake, state, gate, agents } = await fleet(1);
    const [{ agent }] = agents;
    const before = fake.requests.length;
    // A's run is held at its last step (the wake-up message), holding the agent's run lock.
    gate.close('chat.send');
    const onA = tracked(
      a.http.patch(`/api/v1/agents/${agent.id}`).set(owner.headers).send({ name: 'From A' }).then(),
    );
    await waitUntil(() => gate.held > 0, { what: () => "A's run reaching the gate" });
    const lockB = b.app.get(AgentRunLock);
    const contendedBefore = lockB.contended;
    const onB = tracked(
      b.http.patch(`/api/v1/agents/${agent.id}`).set(owner.headers).send({ name: 'From B' }).then(),
    );
    // B's run waits for the lock A's run holds; its gateway calls have not started.
    await waitUntil(() => lockB.contended > contendedBefore, { what: () => 'B contending' });
    expect(onB.settled).toBe(false);
    const methodsWhileHeld = fake.requests.slice(before).map((request) => request.method);
    expect(methodsWhileHeld.filter((m) => m === 'agents.files.list')).toHaveLength(1);
    gate.open();
    const [answerA, answerB] = await Promise.all([onA.promise, onB.promise]);
    expect([answerA.status, answerB.status]).toEqual([200, 200]);

    // Two runs, one after the other: the first ends with its wake-up (chat.send); every call of
    // the second comes after it, and each run made the same calls.
    const methods = fake.requests.slice(before).map((request) => request.method);
    const firstWake = methods.indexOf('chat.send');
    const first = methods.slice(0, firstWake + 1);
    const second = methods.slice(firstWake + 1);
    const writes = (calls: string[]) =>
      calls.filter((m) => m === 'agents.files.set' || m === 'config.patch').length;
    expect(first.filter((m) => m === 'agents.files.list')).toHaveLength(1);
    expect(second.filter((m) => m === 'agents.files.list')).toHaveLength(1);
    expect(writes(first)).toBeGreaterThan(0);
    expect(writes(second)).toBe(writes(first));
    expect(second[second.length - 1]).toBe('chat.send');

    // Consistent: the last run's name and token are in force; the token written to the
    // workspace authenticates on both instances; nothing failed, nothing left updating.
    const stored = await a.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id });
    expect(stored.name).toBe('From B');
    expect(stored.lastProvisionError).toBeNull();
    const token = workspaceToken(state, agent.id);
    expect(agentTokenDigest(token)).toBe(stored.agentTokenHash);
    for (const instance of [a, b]) {
      await instance.http
        .post('/api/v1/agent/heartbeat')
        .set('X-Agent-Token', token)
        .send({})
        .expect(200);
    }
    const read = await b.http.get(`/api/v1/agents/${agent.id}`).set(owner.headers).expect(200);
    expect(read.body).toMatchObject({
      name: 'From B',
      status: 'online',
      last_provision_error: null,
    });
  });
});
