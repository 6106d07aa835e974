import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import { HeartbeatBatcher } from '../../src/agents/heartbeat-batcher';
import { agentTokenDigest, generateAgentToken } from '../../src/auth/agent-token';
import {
  addPendingAgentToken,
  buildAgent,
  buildBoardOnGateway,
  pendingAgentTokenDigests,
} from '../support/builders';
import { waitUntil } from '../support/eventually';
import { ISO_Z, REQUEST_ID } from '../support/expectations';
import { createTestApp, TestApp } from '../support/test-app';
import { Client } from 'pg';
import { ServiceBusyError } from '../../src/common/errors/app-error';

const HEARTBEAT = '/api/v1/agent/heartbeat';

describe('POST /agent/heartbeat (C3) and pending provision tokens', () => {
  let t: TestApp;
  let gatewayId: string;
  let boardId: string;

  beforeAll(async () => {
    t = await createTestApp();
    const { gateway, board } = await buildBoardOnGateway(t.dataSource);
    gatewayId = gateway.id;
    boardId = board.id;
  });
  afterAll(async () => {
    await t.close();
  });

  const reload = (id: string) => t.dataSource.getRepository(Agent).findOneByOrFail({ id });

  it('marks a provisioning agent online and seen, records the activity, returns AgentRead', async () => {
    const { agent, token } = await buildAgent(t.dataSource, gatewayId, boardId, {
      lastProvisionError: 'agents.list: connect ECONNREFUSED',
    });
    const res = await t.http.post(HEARTBEAT).set('X-Agent-Token', token).send({}).expect(200);
    expect(res.body).toEqual({
      board_id: boardId,
      name: agent.name,
      status: 'online',
      heartbeat_config: null,
      identity_profile: null,
      identity_template: null,
      soul_template: null,
      id: agent.id,
      gateway_id: gatewayId,
      is_board_lead: false,
      is_gateway_main: false,
      openclaw_session_id: null,
      last_seen_at: expect.stringMatching(ISO_Z) as unknown,
      last_provision_error: 'agents.list: connect ECONNREFUSED',
      created_at: expect.stringMatching(ISO_Z) as unknown,
      updated_at: expect.stringMatching(ISO_Z) as unknown,
    });
    const events = await t.dataSource.getRepository(ActivityEvent).findBy({ agentId: agent.id });
    expect(events.map((event) => [event.eventType, event.message])).toEqual([
      ['agent.heartbeat', `Heartbeat received from ${agent.name}.`],
    ]);
  });

  it('stores a given status, takes a Bearer token and needs no body', async () => {
    const { agent, token } = await buildAgent(t.dataSource, gatewayId, boardId);
    await t.http
      .post(HEARTBEAT)
      .set('Authorization', `Bearer ${token}`)
      .send({ status: 'busy', name: 'ignored' })
      .expect(200);
    expect((await reload(agent.id)).status).toBe('busy');
    const bare = await t.http.post(HEARTBEAT).set('X-Agent-Token', token).expect(200);
    expect(bare.body.status).toBe('busy');
  });

  it('rejects a missing or unknown token (401) and a bad body (422)', async () => {
    const { token } = await buildAgent(t.dataSource, gatewayId, boardId);
    const missing = await t.http.post(HEARTBEAT).send({}).expect(401);
    expect(missing.body).toEqual({ detail: 'Unauthorized', request_id: REQUEST_ID });
    await t.http.post(HEARTBEAT).set('X-Agent-Token', generateAgentToken()).send({}).expect(401);
    const bad = await t.http
      .post(HEARTBEAT)
      .set('X-Agent-Token', token)
      .send({ status: 'x'.repeat(65) })
      .expect(422);
    expect(JSON.stringify(bad.body.detail)).toContain('status');
  });

  it('accepts a pending provision token and promotes it, after which the old one stops working', async () => {
    const { agent, token: oldToken } = await buildAgent(t.dataSource, gatewayId, boardId);
    const pending = await addPendingAgentToken(t.dataSource, agent.id);
    // Both work while the provision's outcome is unknown.
    await t.http.post(HEARTBEAT).set('X-Agent-Token', oldToken).send({}).expect(200);
    await t.http.post(HEARTBEAT).set('X-Agent-Token', pending).send({}).expect(200);
    const stored = await reload(agent.id);
    expect(stored.agentTokenHash).toBe(agentTokenDigest(pending));
    expect(await pendingAgentTokenDigests(t.dataSource, agent.id)).toEqual([]);
    await t.http.post(HEARTBEAT).set('X-Agent-Token', oldToken).send({}).expect(401);
    await t.http.post(HEARTBEAT).set('X-Agent-Token', pending).send({}).expect(200);
  });

  it('authenticates concurrent requests with valid, pending and unknown tokens each by its own token', async () => {
    const valid = await Promise.all(
      Array.from({ length: 8 }, () => buildAgent(t.dataSource, gatewayId, boardId)),
    );
    const { agent: promoted } = await buildAgent(t.dataSource, gatewayId, boardId);
    const pending = await addPendingAgentToken(t.dataSource, promoted.id);
    const calls = [
      ...valid.map(({ agent, token }) => ({ token, expected: agent.id })),
      { token: pending, expected: promoted.id },
      { token: pending, expected: promoted.id },
      ...Array.from({ length: 4 }, () => ({ token: generateAgentToken(), expected: null })),
    ];
    const responses = await Promise.all(
      calls.map(({ token }) => t.http.post(HEARTBEAT).set('X-Agent-Token', token).send({})),
    );
    expect(responses.map((res) => (res.status === 200 ? res.body.id : res.status))).toEqual(
      calls.map(({ expected }) => expected ?? 401),
    );
    expect((await reload(promoted.id)).agentTokenHash).toBe(agentTokenDigest(pending));
  });

  describe('group commit', () => {
    const LONG_AGO = new Date('2026-01-01T00:00:00Z');

    const activityCounts = async (ids: string[]) => {
      const rows: { agent_id: string; n: string }[] = await t.dataSource.query(
        `SELECT agent_id, count(*) AS n FROM activity_events
          WHERE event_type = 'agent.heartbeat' AND agent_id = ANY($1) GROUP BY agent_id`,
        [ids],
      );
      return new Map(rows.map((row) => [row.agent_id, Number(row.n)]));
    };

    it('writes concurrent heartbeats of many agents, each with its own rules, one activity each', async () => {
      const agents = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          buildAgent(t.dataSource, gatewayId, boardId, {
            status: i % 3 === 0 ? 'provisioning' : i % 3 === 1 ? 'updating' : 'online',
            lastSeenAt: LONG_AGO,
          }),
        ),
      );
      const responses = await Promise.all(
        agents.map(({ token }, i) =>
          t.http
            .post(HEARTBEAT)
            .set('X-Agent-Token', token)
            .send(i % 2 === 0 ? {} : { status: ' BUSY ' }),
        ),
      );
      const counts = await activityCounts(agents.map(({ agent }) => agent.id));
      for (const [i, { agent }] of agents.entries()) {
        const stored = await reload(agent.id);
        const expected = agent.status === 'updating' ? 'updating' : i % 2 === 1 ? 'busy' : 'online';
        expect([responses[i].status, stored.status]).toEqual([200, expected]);
        expect(responses[i].body.id).toBe(agent.id);
        expect(responses[i].body.last_seen_at).toBe(stored.lastSeenAt!.toISOString());
        expect(stored.lastSeenAt!.getTime()).toBeGreaterThan(LONG_AGO.getTime());
        expect(counts.get(agent.id)).toBe(1);
      }
      const events = await t.dataSource
        .getRepository(ActivityEvent)
        .findBy({ agentId: agents[0].agent.id });
      expect(events.map((e) => [e.organizationId, e.boardId, e.message])).toEqual([
        [
          agents[0].agent.organizationId,
          boardId,
          `Heartbeat received from ${agents[0].agent.name}.`,
        ],
      ]);
    });

    it('answers every heartbeat of one agent sent at once with its own write, one activity each', async () => {
      const { agent, token } = await buildAgent(t.dataSource, gatewayId, boardId);
      const statuses = ['busy', 'online', 'busy', 'online', 'busy'];
      const responses = await Promise.all(
        statuses.map((status) =>
          t.http.post(HEARTBEAT).set('X-Agent-Token', token).send({ status }),
        ),
      );
      expect(responses.map((res) => res.status)).toEqual(statuses.map(() => 200));
      expect(responses.map((res) => res.body.status)).toEqual(statuses);
      expect((await activityCounts([agent.id])).get(agent.id)).toBe(statuses.length);
    });

    it('records presence once: no separate presence write before the heartbeat (one change row)', async () => {
      const { agent, token } = await buildAgent(t.dataSource, gatewayId, boardId, {
        status: 'online',
        lastSeenAt: LONG_AGO,
      });
      const changes = async () =>
        Number(
          (
            await t.dataSource.query(
              `SELECT count(*) AS n FROM change_log WHERE kind = 'agent' AND entity_id = $1`,
              [agent.id],
            )
          )[0].n,
        );
      const before = await changes();
      await t.http.post(HEARTBEAT).set('X-Agent-Token', token).send({}).expect(200);
      expect((await changes()) - before).toBe(1);
    });

    it('fails a batch whose connection is killed cleanly: error envelopes, nothing half-written', async () => {
      const agents = await Promise.all(
        Array.from({ length: 12 }, () =>
          buildAgent(t.dataSource, gatewayId, boardId, { status: 'online', lastSeenAt: LONG_AGO }),
        ),
      );
      const ids = agents.map(({ agent }) => agent.id);
      // Hold the first agent's row so the batch writing it waits, then kill that batch's backend.
      const holder = t.dataSource.createQueryRunner();
      await holder.connect();
      await holder.startTransaction();
      let answers: { status: number; body: unknown }[];
      try {
        await holder.query(`SELECT id FROM agents WHERE id = $1 FOR UPDATE`, [ids[0]]);
        const pending = Promise.all(
          agents.map(({ token }) =>
            t.http.post(HEARTBEAT).set('X-Agent-Token', token).send({ status: 'busy' }),
          ),
        );
        let blocked: { pid: number }[] = [];
        await waitUntil(async () => {
          blocked = await t.dataSource.query(
            `SELECT pid FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO activity_events%'`,
          );
          return blocked.length > 0;
        });
        await t.dataSource.query(`SELECT pg_terminate_backend($1)`, [blocked[0].pid]);
        answers = await pending;
      } finally {
        await holder.rollbackTransaction();
        await holder.release();
      }
      const counts = await activityCounts(ids);
      const failed = answers.filter((res) => res.status !== 200);
      expect(answers[0].status).not.toBe(200);
      for (const res of failed) {
        expect(res.status).toBeGreaterThanOrEqual(500);
        expect(res.body).toEqual({ detail: expect.any(String), request_id: REQUEST_ID });
      }
      for (const [i, id] of ids.entries()) {
        const stored = await reload(id);
        if (answers[i].status === 200) {
          expect([stored.status, counts.get(id)]).toEqual(['busy', 1]);
        } else {
          expect([stored.status, stored.lastSeenAt, counts.get(id)]).toEqual([
            'online',
            LONG_AGO,
            undefined,
          ]);
        }
      }
      // The pool replaced the killed connection: the same agents heartbeat again.
      await t.http.post(HEARTBEAT).set('X-Agent-Token', agents[0].token).send({}).expect(200);
    });

    it('writes every queued heartbeat before the pool closes on shutdown', async () => {
      const instance = await createTestApp({}, { sharedDatabaseUrl: t.databaseUrl });
      const ids: { id: string }[] = await t.dataSource.query(
        `INSERT INTO agents (organization_id, gateway_id, board_id, name, status, last_seen_at)
         SELECT organization_id, $1, $2, 'shutdown ' || n, 'online', $3
           FROM gateways, generate_series(1, 600) AS n WHERE gateways.id = $1 RETURNING id`,
        [gatewayId, boardId, LONG_AGO],
      );
      const batcher = instance.app.get(HeartbeatBatcher);
      // More than two batches' worth: some are still queued when the app starts closing.
      const written = Promise.allSettled(ids.map(({ id }) => batcher.record(id, null)));
      await instance.close();
      const outcomes = await written;
      expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
      const counts = await activityCounts(ids.map(({ id }) => id));
      expect([...counts.values()].filter((n) => n === 1)).toHaveLength(ids.length);
    });

    it('a heartbeat finding the queue full past the room wait is told to retry, nothing written', async () => {
      // Small bounds on the real batcher and database: batches of one, one waiting, 300 ms.
      const batcher = new HeartbeatBatcher(t.dataSource, {
        maxBatch: 1,
        maxWaiting: 1,
        roomWaitMs: 300,
      });
      const agents = await Promise.all(
        Array.from({ length: 4 }, () =>
          buildAgent(t.dataSource, gatewayId, boardId, { status: 'online', lastSeenAt: LONG_AGO }),
        ),
      );
      const ids = agents.map(({ agent }) => agent.id);
      // Another session holds the rows: both batches in flight wait on it.
      const holder = new Client({ connectionString: t.databaseUrl });
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM agents WHERE id = ANY($1) FOR UPDATE', [ids]);
      const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
      let outcomes: PromiseSettledResult<Agent>[];
      let refused: unknown;
      let waitedMs: number;
      try {
        const inFlight = [batcher.record(ids[0], null)];
        await nextTurn();
        inFlight.push(batcher.record(ids[1], null));
        await nextTurn();
        // The queue's one place.
        inFlight.push(batcher.record(ids[2], null));
        const started = Date.now();
        refused = await batcher.record(ids[3], null).then(
          () => null,
          (error: unknown) => error,
        );
        waitedMs = Date.now() - started;
        await holder.query('ROLLBACK');
        outcomes = await Promise.allSettled(inFlight);
      } finally {
        await holder.end();
      }
      expect(refused).toBeInstanceOf(ServiceBusyError);
      expect(waitedMs).toBeGreaterThanOrEqual(290);
      expect(outcomes.map((outcome) => outcome.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'fulfilled',
      ]);
      const counts = await activityCounts(ids);
      expect(ids.map((id) => counts.get(id) ?? 0)).toEqual([1, 1, 1, 0]);
      expect((await reload(ids[3])).lastSeenAt).toEqual(LONG_AGO);
      // Room again: the refused agent's next heartbeat is written.
      await batcher.record(ids[3], null);
      expect((await activityCounts([ids[3]])).get(ids[3])).toBe(1);
    });
  });
});
