/**
 * GET /boards/{board_id}/snapshot: the board page in one response, on real PostgreSQL. Shape and
 * values (tasks with their assignee and approval counts, approvals with their task, agents with
 * their computed status, the latest chat messages oldest first, the pending count), upstream's
 * orders, the bounds, access (board read), and a fixed number of queries per request whatever
 * the number of agents and tasks.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { Approval } from '../../src/approvals/entities/approval.entity';
import { BoardMemory } from '../../src/board-memory/entities/board-memory.entity';
import {
  SNAPSHOT_MAX_AGENTS,
  SNAPSHOT_MAX_APPROVALS,
  SNAPSHOT_MAX_CHAT_MESSAGES,
  SNAPSHOT_MAX_TASKS,
} from '../../src/boards/board-snapshot.service';
import { Task } from '../../src/tasks/entities/task.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  buildMainAgent,
  grantBoard,
  signIn,
  SignedInUser,
  signInMember,
} from '../support/builders';
import { ISO_Z, REQUEST_ID } from '../support/expectations';
import { createTestApp, TestApp } from '../support/test-app';

const API = '/api/v1';

describe('GET /boards/{board_id}/snapshot', () => {
  let t: TestApp;
  let owner: SignedInUser;
  let orgId: string;
  let gatewayId: string;

  beforeAll(async () => {
    t = await createTestApp();
    owner = await signIn(t.http, t.dataSource);
    orgId = owner.organizationId;
    gatewayId = (await buildGateway(t.dataSource, orgId)).id;
  });
  afterAll(async () => {
    await t.close();
  });

  const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));
  const snapshotOf = (boardId: string, as: SignedInUser = owner) =>
    t.http.get(`${API}/boards/${boardId}/snapshot`).set(as.headers);

  async function task(boardId: string, fields: Partial<Task> = {}): Promise<Task> {
    return t.dataSource.getRepository(Task).save({
      boardId,
      title: `Task ${randomUUID().slice(0, 8)}`,
      ...fields,
    });
  }
  async function approval(boardId: string, fields: Partial<Approval> = {}): Promise<Approval> {
    return t.dataSource.getRepository(Approval).save({
      boardId,
      actionType: 'move_to_done',
      confidence: 80,
      ...fields,
    });
  }
  async function memory(boardId: string, fields: Partial<BoardMemory> = {}): Promise<BoardMemory> {
    return t.dataSource.getRepository(BoardMemory).save({
      boardId,
      content: 'hello',
      tags: ['chat'],
      isChat: true,
      source: 'User',
      ...fields,
    });
  }
  /** Sets created_at (the entity's create column cannot be given on insert). */
  async function createdAt(table: string, id: string, when: Date): Promise<void> {
    await t.dataSource.query(`UPDATE ${table} SET created_at = $2 WHERE id = $1`, [id, when]);
  }

  it('answers the board, its tasks, agents, approvals, chat and pending count', async () => {
    const board = await buildBoard(t.dataSource, orgId, gatewayId, {
      description: 'The page',
      maxAgents: 3,
    });
    const { agent: lead } = await buildAgent(t.dataSource, gatewayId, board.id, {
      name: 'Lead',
      isBoardLead: true,
      status: 'online',
      lastSeenAt: new Date(),
    });
    const { agent: worker } = await buildAgent(t.dataSource, gatewayId, board.id, {
      name: 'Worker',
    });
    await createdAt('agents', lead.id, at(1));
    await createdAt('agents', worker.id, at(2));
    // Another board's agent and task never show.
    const other = await buildBoard(t.dataSource, orgId, gatewayId);
    await buildAgent(t.dataSource, gatewayId, other.id);
    const foreignTask = await task(other.id, { title: 'elsewhere' });
    await approval(other.id, { taskId: foreignTask.id });

    const assigned = await task(board.id, {
      title: 'Assigned',
      description: 'Do it',
      status: 'in_progress',
      priority: 'high',
      assignedAgentId: worker.id,
      dueAt: new Date('2026-02-01T00:00:00Z'),
      inProgressAt: new Date('2026-01-02T00:00:00Z'),
      createdByUserId: owner.userId,
    });
    const plain = await task(board.id, { title: 'Plain' });
    await createdAt('tasks', assigned.id, at(10));
    await createdAt('tasks', plain.id, at(11));

    const pendingOnTask = await approval(board.id, {
      taskId: assigned.id,
      agentId: lead.id,
      payload: { reason: 'done' },
      rubricScores: { quality: 4 },
    });
    const approvedOnTask = await approval(board.id, {
      taskId: assigned.id,
      status: 'approved',
      resolvedAt: new Date('2026-01-03T00:00:00Z'),
    });
    const boardLevel = await approval(board.id, { actionType: 'hire', confidence: 55 });
    await createdAt('approvals', pendingOnTask.id, at(20));
    await createdAt('approvals', approvedOnTask.id, at(21));
    await createdAt('approvals', boardLevel.id, at(22));

    const first = await memory(board.id, { content: 'first', source: 'Owner' });
    const second = await memory(board.id, { content: 'second', tags: ['chat', 'x'] });
    await memory(board.id, { content: 'a note', tags: ['note'], isChat: false });
    await memory(board.id, { content: '   ' }); // blank: never shown
    await createdAt('board_memory', first.id, at(30));
    await createdAt('board_memory', second.id, at(31));

    const res = await snapshotOf(board.id).expect(200);
    expect(Object.keys(res.body)).toEqual([
      'board',
      'tasks',
      'agents',
      'approvals',
      'chat_messages',
      'pending_approvals_count',
    ]);
    const boardRead = await t.http.get(`${API}/boards/${board.id}`).set(owner.headers).expect(200);
    expect(res.body.board).toEqual(boardRead.body);
    expect(res.body.board).toMatchObject({ description: 'The page', max_agents: 3 });

    const emptyLinks = {
      depends_on_task_ids: [],
      tag_ids: [],
      blocked_by_task_ids: [],
      is_blocked: false,
      tags: [],
      custom_field_values: {},
    };
    expect(res.body.tasks).toEqual([
      {
        title: 'Plain',
        description: null,
        status: 'inbox',
        priority: 'medium',
        due_at: null,
        assigned_agent_id: null,
        id: plain.id,
        board_id: board.id,
        created_by_user_id: null,
        in_progress_at: null,
        created_at: at(11).toISOString(),
        updated_at: expect.stringMatching(ISO_Z),
        ...emptyLinks,
        assignee: null,
        approvals_count: 0,
        approvals_pending_count: 0,
      },
      {
        title: 'Assigned',
        description: 'Do it',
        status: 'in_progress',
        priority: 'high',
        due_at: '2026-02-01T00:00:00.000Z',
        assigned_agent_id: worker.id,
        id: assigned.id,
        board_id: board.id,
        created_by_user_id: owner.userId,
        in_progress_at: '2026-01-02T00:00:00.000Z',
        created_at: at(10).toISOString(),
        updated_at: expect.stringMatching(ISO_Z),
        ...emptyLinks,
        assignee: 'Worker',
        approvals_count: 2,
        approvals_pending_count: 1,
      },
    ]);

    expect(res.body.agents.map((a: { id: string }) => a.id)).toEqual([worker.id, lead.id]);
    expect(res.body.agents[1]).toMatchObject({
      id: lead.id,
      name: 'Lead',
      status: 'online',
      is_board_lead: true,
      is_gateway_main: false,
      board_id: board.id,
      gateway_id: gatewayId,
    });
    // Never seen: computed as provisioning.
    expect(res.body.agents[0]).toMatchObject({ name: 'Worker', status: 'provisioning' });
    expect(Object.keys(res.body.agents[0] as object).join(',')).not.toMatch(/hash|token/);

    expect(res.body.approvals).toEqual([
      {
        action_type: 'hire',
        task_id: null,
        task_ids: [],
        payload: null,
        confidence: 55,
        rubric_scores: null,
        status: 'pending',
        id: boardLevel.id,
        board_id: board.id,
        task_titles: [],
        agent_id: null,
        created_at: at(22).toISOString(),
        resolved_at: null,
      },
      {
        action_type: 'move_to_done',
        task_id: assigned.id,
        task_ids: [assigned.id],
        payload: null,
        confidence: 80,
        rubric_scores: null,
        status: 'approved',
        id: approvedOnTask.id,
        board_id: board.id,
        task_titles: ['Assigned'],
        agent_id: null,
        created_at: at(21).toISOString(),
        resolved_at: '2026-01-03T00:00:00.000Z',
      },
      {
        action_type: 'move_to_done',
        task_id: assigned.id,
        task_ids: [assigned.id],
        payload: { reason: 'done' },
        confidence: 80,
        rubric_scores: { quality: 4 },
        status: 'pending',
        id: pendingOnTask.id,
        board_id: board.id,
        task_titles: ['Assigned'],
        agent_id: lead.id,
        created_at: at(20).toISOString(),
        resolved_at: null,
      },
    ]);

    expect(res.body.chat_messages).toEqual([
      {
        id: first.id,
        board_id: board.id,
        content: 'first',
        tags: ['chat'],
        source: 'Owner',
        is_chat: true,
        created_at: at(30).toISOString(),
      },
      {
        id: second.id,
        board_id: board.id,
        content: 'second',
        tags: ['chat', 'x'],
        source: 'User',
        is_chat: true,
        created_at: at(31).toISOString(),
      },
    ]);
    expect(res.body.pending_approvals_count).toBe(2);
  });

  it('an empty board has empty lists and a zero count', async () => {
    const board = await buildBoard(t.dataSource, orgId, gatewayId);
    const res = await snapshotOf(board.id).expect(200);
    expect(res.body).toMatchObject({
      tasks: [],
      agents: [],
      approvals: [],
      chat_messages: [],
      pending_approvals_count: 0,
    });
  });

  it('bounds every list to its newest rows (chat sent oldest first); the pending count is not bounded', async () => {
    const board = await buildBoard(t.dataSource, orgId, gatewayId);
    const extra = 5;
    const base = Date.UTC(2026, 0, 1);
    await t.dataSource.query(
      `INSERT INTO board_memory (board_id, content, tags, is_chat, source, created_at)
       SELECT $1, 'message ' || n, '["chat"]'::jsonb, true, 'User', $2::timestamptz + n * interval '1 second'
       FROM generate_series(1, $3::int) AS n`,
      [board.id, new Date(base), SNAPSHOT_MAX_CHAT_MESSAGES + extra],
    );
    await t.dataSource.query(
      `INSERT INTO approvals (board_id, action_type, confidence, status, created_at)
       SELECT $1, 'a' || n, 50, 'pending', $2::timestamptz + n * interval '1 second'
       FROM generate_series(1, $3::int) AS n`,
      [board.id, new Date(base), SNAPSHOT_MAX_APPROVALS + extra],
    );
    await t.dataSource.query(
      `INSERT INTO tasks (board_id, title, created_at)
       SELECT $1, 't' || n, $2::timestamptz + n * interval '1 second'
       FROM generate_series(1, $3::int) AS n`,
      [board.id, new Date(base), SNAPSHOT_MAX_TASKS + extra],
    );
    await t.dataSource.query(
      `INSERT INTO agents (organization_id, gateway_id, board_id, name, created_at)
       SELECT $4, $5, $1, 'bulk ' || n, $2::timestamptz + n * interval '1 second'
       FROM generate_series(1, $3::int) AS n`,
      [board.id, new Date(base), SNAPSHOT_MAX_AGENTS + extra, orgId, gatewayId],
    );
    const res = await snapshotOf(board.id).expect(200);
    const titles = (res.body.tasks as { title: string }[]).map((task) => task.title);
    expect(titles).toHaveLength(SNAPSHOT_MAX_TASKS);
    expect(titles[0]).toBe(`t${SNAPSHOT_MAX_TASKS + extra}`);
    const names = (res.body.agents as { name: string }[]).map((agent) => agent.name);
    expect(names).toHaveLength(SNAPSHOT_MAX_AGENTS);
    expect(names[0]).toBe(`bulk ${SNAPSHOT_MAX_AGENTS + extra}`);
    const contents = (res.body.chat_messages as { content: string }[]).map((m) => m.content);
    expect(contents).toHaveLength(SNAPSHOT_MAX_CHAT_MESSAGES);
    expect(contents[0]).toBe(`message ${extra + 1}`);
    expect(contents.at(-1)).toBe(`message ${SNAPSHOT_MAX_CHAT_MESSAGES + extra}`);
    const actions = (res.body.approvals as { action_type: string }[]).map((a) => a.action_type);
    expect(actions).toHaveLength(SNAPSHOT_MAX_APPROVALS);
    expect(actions[0]).toBe(`a${SNAPSHOT_MAX_APPROVALS + extra}`);
    expect(res.body.pending_approvals_count).toBe(SNAPSHOT_MAX_APPROVALS + extra);
  });

  it('needs board read: 401 anonymous, 422 bad id, 404 missing, 403 without the board, as GET /boards/{id}', async () => {
    const board = await buildBoard(t.dataSource, orgId, gatewayId);
    await t.http.get(`${API}/boards/${board.id}/snapshot`).expect(401);
    const bad = await t.http.get(`${API}/boards/nope/snapshot`).set(owner.headers).expect(422);
    expect(bad.body.detail[0]).toMatchObject({ type: 'uuid_parsing', loc: ['path', 'board_id'] });
    const missing = await snapshotOf(randomUUID()).expect(404);
    expect(missing.body).toEqual({ detail: 'Not Found', request_id: REQUEST_ID });

    const member = await signInMember(t.http, t.dataSource, orgId);
    const denied = await snapshotOf(board.id, member).expect(403);
    expect(denied.body).toEqual({ detail: 'Board access denied', request_id: REQUEST_ID });
    await grantBoard(t.dataSource, member.memberId, board.id, { canRead: true });
    await snapshotOf(board.id, member).expect(200);

    // Another organization's owner: answered as the board's own route answers it.
    const outsider = await signIn(t.http, t.dataSource);
    const boardRoute = await t.http.get(`${API}/boards/${board.id}`).set(outsider.headers);
    const snapshotRoute = await snapshotOf(board.id, outsider);
    expect(snapshotRoute.status).toBe(boardRoute.status);
    expect(snapshotRoute.body.detail).toBe(boardRoute.body.detail);
    expect(snapshotRoute.status).toBeGreaterThanOrEqual(403);
  });

  it("agents read it under the agent board guard (upstream's actor read): their own board, or a board of their gateway", async () => {
    const board = await buildBoard(t.dataSource, orgId, gatewayId);
    const byAgent = (token: string, boardId = board.id) =>
      t.http.get(`${API}/boards/${boardId}/snapshot`).set('X-Agent-Token', token);
    const { agent: worker, token: workerToken } = await buildAgent(
      t.dataSource,
      gatewayId,
      board.id,
    );
    const mine = await byAgent(workerToken).expect(200);
    expect(mine.body.board.id).toBe(board.id);
    expect(mine.body.agents.map((a: { id: string }) => a.id)).toEqual([worker.id]);
    const { token: mainToken } = await buildMainAgent(t.dataSource, gatewayId);
    await byAgent(mainToken).expect(200);

    // Another board's agent, another gateway's main agent, another organization's agent: 403.
    const otherBoard = await buildBoard(t.dataSource, orgId, gatewayId);
    const { token: elsewhere } = await buildAgent(t.dataSource, gatewayId, otherBoard.id);
    const otherGateway = (await buildGateway(t.dataSource, orgId)).id;
    const { token: otherMain } = await buildMainAgent(t.dataSource, otherGateway);
    const outsider = await signIn(t.http, t.dataSource);
    const outsiderGateway = (await buildGateway(t.dataSource, outsider.organizationId)).id;
    const outsiderBoard = await buildBoard(t.dataSource, outsider.organizationId, outsiderGateway);
    const { token: foreign } = await buildAgent(t.dataSource, outsiderGateway, outsiderBoard.id);
    for (const token of [elsewhere, otherMain, foreign]) {
      const denied = await byAgent(token).expect(403);
      expect(denied.body).toEqual({ detail: 'Forbidden', request_id: REQUEST_ID });
    }
    // The board first (404), then the token (401 for an unknown one).
    await byAgent(workerToken, randomUUID()).expect(404);
    await byAgent('not-a-token').expect(401);
  });

  it('runs the same number of queries for 2 and for 40 agents and tasks', async () => {
    /** A board with `n` agents and `n` tasks, each task assigned, with an approval and a chat message. */
    const boardOf = async (n: number) => {
      const board = await buildBoard(t.dataSource, orgId, gatewayId);
      for (let i = 0; i < n; i++) {
        const { agent } = await buildAgent(t.dataSource, gatewayId, board.id, {
          name: `Agent ${i} ${randomUUID().slice(0, 6)}`,
        });
        const assigned = await task(board.id, { assignedAgentId: agent.id });
        await approval(board.id, { taskId: assigned.id, agentId: agent.id });
        await memory(board.id, { content: `m${i}` });
      }
      return board.id;
    };
    /** Queries sent by every pg client of this process during one snapshot request. */
    const queriesFor = async (boardId: string, n: number): Promise<number> => {
      const counts: number[] = [];
      for (let round = 0; round < 3; round++) {
        // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound below
        const original = Client.prototype.query;
        let count = 0;
        const counting = function (this: Client, ...args: unknown[]) {
          count++;
          return (original as (...a: unknown[]) => unknown).apply(this, args);
        };
        Client.prototype.query = counting as typeof original;
        try {
          const res = await snapshotOf(boardId).expect(200);
          expect(res.body.agents).toHaveLength(n);
          expect(res.body.tasks).toHaveLength(n);
          expect(res.body.approvals).toHaveLength(n);
        } finally {
          Client.prototype.query = original;
        }
        counts.push(count);
      }
      // Unrelated background work (a sweeper tick) can only add: the minimum is the request's.
      return Math.min(...counts);
    };
    const small = await queriesFor(await boardOf(2), 2);
    const large = await queriesFor(await boardOf(40), 40);
    expect(small).toBeGreaterThan(0);
    expect(large).toBe(small);
  });
});
