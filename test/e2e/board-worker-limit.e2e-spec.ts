/**
 * A board's `max_agents` caps the workers its lead creates (POST /agent/agents), as upstream:
 * the lead itself does not count, users are not limited, workers users created do count, and
 * concurrent lead creates cannot overshoot (the board row is locked while counting and
 * inserting). On real PostgreSQL and the in-process OpenClaw fake.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { workerLimitReached } from '../../src/agents/agents.service';
import { Agent } from '../../src/agents/entities/agent.entity';
import { Board } from '../../src/boards/entities/board.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  buildOrganization,
  signInMember,
  SignedInUser,
} from '../support/builders';
import { type FakeGateway } from '../support/fake-gateway';
import { gatewayFieldsFor, startOpenClawFake } from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/eventually';
import { REQUEST_ID } from '../support/expectations';

const API = '/api/v1';

describe('board max_agents: the workers a lead may create', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let orgId: string;
  let gatewayId: string;
  let admin: SignedInUser;

  beforeAll(async () => {
    // Room in the pool for five creates waiting on the board row at once (the race test).
    t = await createTestApp({ DATABASE_POOL_SIZE: '10' });
    ({ fake } = await startOpenClawFake());
    orgId = (await buildOrganization(t.dataSource)).id;
    gatewayId = (await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake))).id;
    admin = await signInMember(t.http, t.dataSource, orgId, {
      role: 'admin',
      allBoardsWrite: true,
    });
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });

  const uniqueName = (prefix = 'Worker') => `${prefix} ${randomUUID().slice(0, 8)}`;

  /** A board with the given cap and its lead (a row with a working token). */
  async function boardWithLead(maxAgents: number) {
    const board = await buildBoard(t.dataSource, orgId, gatewayId, { maxAgents });
    const { agent: lead, token } = await buildAgent(t.dataSource, gatewayId, board.id, {
      isBoardLead: true,
      name: uniqueName('Lead'),
    });
    return { board, lead, token };
  }
  const leadCreates = (token: string, name = uniqueName()) =>
    t.http.post(`${API}/agent/agents`).set('X-Agent-Token', token).send({ name });
  const userCreates = (boardId: string, name = uniqueName()) =>
    t.http.post(`${API}/agents`).set(admin.headers).send({ name, board_id: boardId });
  const workersOn = (boardId: string) =>
    t.dataSource.getRepository(Agent).countBy({ boardId, isBoardLead: false });

  it('the lead creates up to max_agents workers (itself not counted), then 409 with the upstream text', async () => {
    const { board, token } = await boardWithLead(2);
    await leadCreates(token).expect(200);
    await leadCreates(token).expect(200);
    const refused = await leadCreates(token).expect(409);
    expect(refused.body).toEqual({
      detail:
        'Board worker-agent limit reached: max_agents=2 (excluding the lead); ' +
        'cannot create more than 2 agents.',
      request_id: REQUEST_ID,
    });
    expect(await workersOn(board.id)).toBe(2);
  });

  it('names one agent in the singular at max_agents=1 (the default)', async () => {
    expect(workerLimitReached(1)).toBe(
      'Board worker-agent limit reached: max_agents=1 (excluding the lead); ' +
        'cannot create more than 1 agent.',
    );
    const board = await buildBoard(t.dataSource, orgId, gatewayId);
    expect(board.maxAgents).toBe(1);
    const { token } = await buildAgent(t.dataSource, gatewayId, board.id, {
      isBoardLead: true,
      name: uniqueName('Lead'),
    });
    await leadCreates(token).expect(200);
    const refused = await leadCreates(token).expect(409);
    expect(refused.body.detail).toBe(workerLimitReached(1));
  });

  it('users are not limited, and the workers they create count against the lead', async () => {
    const { board, token } = await boardWithLead(1);
    await userCreates(board.id).expect(200);
    await userCreates(board.id).expect(200);
    expect(await workersOn(board.id)).toBe(2);
    const refused = await leadCreates(token).expect(409);
    expect(refused.body.detail).toBe(workerLimitReached(1));
    expect(await workersOn(board.id)).toBe(2);
  });

  it('raising max_agents (PATCH) lets the lead create again; workers of other boards do not count', async () => {
    const { board, token } = await boardWithLead(1);
    const other = await buildBoard(t.dataSource, orgId, gatewayId, { maxAgents: 5 });
    await buildAgent(t.dataSource, gatewayId, other.id, { name: uniqueName() });
    await buildAgent(t.dataSource, gatewayId, other.id, { name: uniqueName() });
    await leadCreates(token).expect(200);
    await leadCreates(token).expect(409);
    await t.http
      .patch(`${API}/boards/${board.id}`)
      .set(admin.headers)
      .send({ max_agents: 2 })
      .expect(200);
    await leadCreates(token).expect(200);
    expect(await workersOn(board.id)).toBe(2);
  });

  it("checks the limit before the board's gateway, as upstream (409, not the gateway's 422)", async () => {
    const unusable = await buildGateway(t.dataSource, orgId, {
      ...gatewayFieldsFor(fake),
      workspaceRoot: '',
    });
    const board = await buildBoard(t.dataSource, orgId, unusable.id, { maxAgents: 1 });
    await buildAgent(t.dataSource, unusable.id, board.id, { name: uniqueName() });
    const { token } = await buildAgent(t.dataSource, unusable.id, board.id, {
      isBoardLead: true,
      name: uniqueName('Lead'),
    });
    const refused = await leadCreates(token).expect(409);
    expect(refused.body.detail).toBe(workerLimitReached(1));
    // Below the limit, the gateway checks still answer.
    await t.dataSource.getRepository(Board).update({ id: board.id }, { maxAgents: 2 });
    const invalid = await leadCreates(token).expect(422);
    expect(invalid.body.detail).toBe('Gateway workspace_root is required');
    expect(await workersOn(board.id)).toBe(1);
  });

  it('five concurrent lead creates at max_agents=2: exactly two created, three 409', async () => {
    const { board, token } = await boardWithLead(2);
    // Left alone, the five requests reach the database one after the other (each verifies the
    // token first), so nothing would race. Holding the board row makes them meet: each one
    // either waits for the board lock before counting (the fix) or counts and then waits in its
    // insert's foreign-key check (no lock: all five count zero workers). Once all five wait,
    // the row is released.
    // (The holder is a connection of its own: the app's pool is left to the five requests.)
    const holder = new Client({ connectionString: t.databaseUrl });
    await holder.connect();
    let answers: Awaited<ReturnType<typeof leadCreates>>[];
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM boards WHERE id = $1 FOR UPDATE', [board.id]);
      const racing = Promise.all(
        Array.from({ length: 5 }, (_, i) => leadCreates(token, `Racer ${i} ${randomUUID()}`)),
      );
      // Polled from the app's pool: inside the holder's transaction pg_stat_activity would stay
      // the snapshot of its first read.
      let waiting: { query: string }[] = [];
      await waitUntil(
        async () => {
          waiting = await t.dataSource.query(
            `SELECT left(query, 60) AS query FROM pg_stat_activity
             WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0
               AND query NOT LIKE '%change_log%'`,
          );
          return waiting.length === 5;
        },
        {
          timeoutMs: 10_000,
          what: () => `five creates waiting on the board row: ${JSON.stringify(waiting)}`,
        },
      );
      await holder.query('COMMIT');
      answers = await racing;
    } finally {
      await holder.end();
    }
    const statuses = answers.map((res) => res.status).sort();
    expect(statuses).toEqual([200, 200, 409, 409, 409]);
    for (const res of answers.filter((r) => r.status === 409)) {
      expect(res.body.detail).toBe(workerLimitReached(2));
    }
    expect(await workersOn(board.id)).toBe(2);
  }, 20_000);
});
