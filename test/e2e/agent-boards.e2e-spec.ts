import { randomUUID } from 'node:crypto';
import { Agent } from '../../src/agents/entities/agent.entity';
import { Board } from '../../src/boards/entities/board.entity';
import { buildAgent, buildBoard, buildGateway, signIn } from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';
import { ISO_Z, REQUEST_ID } from '../support/expectations';

const agentHeader = (token: string) => ({ 'X-Agent-Token': token });
const agentBearer = (token: string) => ({ Authorization: `Bearer ${token}` });

describe('agent board routes (GET /agent/boards, GET /agent/boards/:boardId)', () => {
  let t: TestApp;
  let orgId: string;
  let gateway1: string;
  let gateway2: string;
  /** On gateway 1: "alpha" and "Bravo"; on gateway 2: "charlie"; no gateway: "legacy". */
  let alpha: Board;
  let bravo: Board;
  let charlie: Board;
  let legacy: Board;
  /** A board of another organization, on its own gateway. */
  let foreign: Board;
  let foreignGateway: string;
  let boardAgentToken: string;
  let mainAgentToken: string;

  beforeAll(async () => {
    t = await createTestApp();
    const owner = await signIn(t.http, t.dataSource);
    orgId = owner.organizationId;
    gateway1 = (await buildGateway(t.dataSource, orgId)).id;
    gateway2 = (await buildGateway(t.dataSource, orgId)).id;
    bravo = await buildBoard(t.dataSource, orgId, gateway1, { name: 'Bravo' });
    alpha = await buildBoard(t.dataSource, orgId, gateway1, {
      name: 'alpha',
      objective: 'o',
      successMetrics: { done: 1 },
    });
    charlie = await buildBoard(t.dataSource, orgId, gateway2, { name: 'charlie' });
    legacy = await buildBoard(t.dataSource, orgId, null, { name: 'legacy' });
    const stranger = await signIn(t.http, t.dataSource);
    foreignGateway = (await buildGateway(t.dataSource, stranger.organizationId)).id;
    foreign = await buildBoard(t.dataSource, stranger.organizationId, foreignGateway);
    boardAgentToken = (await buildAgent(t.dataSource, gateway1, alpha.id)).token;
    mainAgentToken = (await buildAgent(t.dataSource, gateway1, null)).token;
  });
  afterAll(async () => {
    await t.close();
  });

  const readOf = (board: Board) => ({
    name: board.name,
    slug: board.slug,
    description: board.description,
    gateway_id: board.gatewayId,
    board_group_id: board.boardGroupId,
    board_type: board.boardType,
    objective: board.objective,
    success_metrics: board.successMetrics,
    target_date: null,
    goal_confirmed: board.goalConfirmed,
    goal_source: board.goalSource,
    require_approval_for_done: board.requireApprovalForDone,
    require_review_before_done: board.requireReviewBeforeDone,
    comment_required_for_review: board.commentRequiredForReview,
    block_status_changes_with_pending_approval: board.blockStatusChangesWithPendingApproval,
    only_lead_can_change_status: board.onlyLeadCanChangeStatus,
    max_agents: board.maxAgents,
    id: board.id,
    organization_id: board.organizationId,
    created_at: board.createdAt.toISOString(),
    updated_at: board.updatedAt.toISOString(),
  });

  describe('GET /agent/boards', () => {
    it.each([
      ['X-Agent-Token', agentHeader],
      ['Authorization: Bearer', agentBearer],
    ])('a board agent (via %s) sees only its own board', async (_label, headers) => {
      const res = await t.http
        .get('/api/v1/agent/boards')
        .set(headers(boardAgentToken))
        .expect(200);
      expect(res.body).toEqual({ items: [readOf(alpha)], total: 1, limit: 200, offset: 0 });
      expect(res.body.items[0].created_at).toMatch(ISO_Z);
    });

    it('a gateway main agent sees the boards of its gateway, by lower(name)', async () => {
      const res = await t.http
        .get('/api/v1/agent/boards')
        .set(agentHeader(mainAgentToken))
        .expect(200);
      expect(res.body).toEqual({
        items: [readOf(alpha), readOf(bravo)],
        total: 2,
        limit: 200,
        offset: 0,
      });
      const paged = await t.http
        .get('/api/v1/agent/boards?limit=1&offset=1')
        .set(agentBearer(mainAgentToken))
        .expect(200);
      expect(paged.body).toEqual({ items: [readOf(bravo)], total: 2, limit: 1, offset: 1 });
    });

    it('a main agent of another gateway sees that gateway’s boards only', async () => {
      const { token } = await buildAgent(t.dataSource, gateway2, null);
      const res = await t.http.get('/api/v1/agent/boards').set(agentHeader(token)).expect(200);
      expect(res.body.items.map((b: { id: string }) => b.id)).toEqual([charlie.id]);
      const other = await buildAgent(t.dataSource, foreignGateway, null);
      const foreignRes = await t.http
        .get('/api/v1/agent/boards')
        .set(agentHeader(other.token))
        .expect(200);
      expect(foreignRes.body.items.map((b: { id: string }) => b.id)).toEqual([foreign.id]);
    });

    it.each(['limit=0', 'limit=201', 'offset=-1'])('rejects ?%s with a 422', async (qs) => {
      const res = await t.http
        .get(`/api/v1/agent/boards?${qs}`)
        .set(agentHeader(boardAgentToken))
        .expect(422);
      expect(res.body.detail).toEqual([
        expect.objectContaining({ loc: ['query', qs.split('=')[0]] }),
      ]);
    });

    it('answers 401 for a missing, unknown or user token, before query validation', async () => {
      const none = await t.http.get('/api/v1/agent/boards?limit=0').expect(401);
      expect(none.body).toEqual({ detail: 'Unauthorized', request_id: REQUEST_ID });
      await t.http.get('/api/v1/agent/boards').set(agentHeader('not-a-token')).expect(401);
      await t.http.get('/api/v1/agent/boards').set(agentBearer('not-a-token')).expect(401);
      const user = await signIn(t.http, t.dataSource);
      await t.http.get('/api/v1/agent/boards').set(user.headers).expect(401);
    });

    it('an agent token is not a user token on user routes', async () => {
      await t.http.get('/api/v1/boards').set(agentHeader(boardAgentToken)).expect(401);
      await t.http.get(`/api/v1/boards/${alpha.id}`).set(agentBearer(boardAgentToken)).expect(401);
    });
  });

  describe('GET /agent/boards/:boardId', () => {
    it('a board agent reads its own board', async () => {
      const res = await t.http
        .get(`/api/v1/agent/boards/${alpha.id}`)
        .set(agentHeader(boardAgentToken))
        .expect(200);
      expect(res.body).toEqual(readOf(alpha));
      await t.http
        .get(`/api/v1/agent/boards/${alpha.id}`)
        .set(agentBearer(boardAgentToken))
        .expect(200);
    });

    it.each([
      ['another board on its gateway', () => bravo],
      ['a board of another gateway', () => charlie],
      ['a board of another organization', () => foreign],
    ])('a board agent gets 403 for %s', async (_label, board) => {
      const res = await t.http
        .get(`/api/v1/agent/boards/${board().id}`)
        .set(agentHeader(boardAgentToken))
        .expect(403);
      expect(res.body).toEqual({ detail: 'Forbidden', request_id: REQUEST_ID });
    });

    it('a main agent reads the boards of its gateway and nothing else', async () => {
      for (const board of [alpha, bravo]) {
        const res = await t.http
          .get(`/api/v1/agent/boards/${board.id}`)
          .set(agentHeader(mainAgentToken))
          .expect(200);
        expect(res.body).toEqual(readOf(board));
      }
      for (const board of [charlie, legacy, foreign]) {
        await t.http
          .get(`/api/v1/agent/boards/${board.id}`)
          .set(agentHeader(mainAgentToken))
          .expect(403);
      }
    });

    it('looks the board up before the token: 404 beats 401, then 401, then 403', async () => {
      const missing = await t.http.get(`/api/v1/agent/boards/${randomUUID()}`).expect(404);
      expect(missing.body).toEqual({ detail: 'Not Found', request_id: REQUEST_ID });
      await t.http
        .get(`/api/v1/agent/boards/${randomUUID()}`)
        .set(agentHeader('not-a-token'))
        .expect(404);
      const noToken = await t.http.get(`/api/v1/agent/boards/${alpha.id}`).expect(401);
      expect(noToken.body).toEqual({ detail: 'Unauthorized', request_id: REQUEST_ID });
      await t.http
        .get(`/api/v1/agent/boards/${alpha.id}`)
        .set(agentHeader('not-a-token'))
        .expect(401);
      const bad = await t.http.get('/api/v1/agent/boards/not-a-uuid').expect(422);
      expect(bad.body.detail).toEqual([
        {
          type: 'uuid_parsing',
          loc: ['path', 'board_id'],
          msg: 'Input should be a valid UUID',
          input: 'not-a-uuid',
        },
      ]);
    });
  });

  describe('presence touch', () => {
    const agents = () => t.dataSource.getRepository(Agent);

    async function touch(token: string, route = '/api/v1/agent/boards') {
      await t.http.get(route).set(agentHeader(token)).expect(200);
    }

    it('sets last_seen_at and status online on the first authenticated request', async () => {
      const { agent, token } = await buildAgent(t.dataSource, gateway1, alpha.id);
      expect(agent.lastSeenAt).toBeNull();
      const before = Date.now();
      await touch(token);
      const after = await agents().findOneByOrFail({ id: agent.id });
      expect(after.status).toBe('online');
      expect(after.lastSeenAt).not.toBeNull();
      expect(after.lastSeenAt!.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(after.updatedAt.getTime()).toBe(after.lastSeenAt!.getTime());
    });

    it.each(['updating', 'deleting'])('keeps status %s but records the visit', async (status) => {
      const { agent, token } = await buildAgent(t.dataSource, gateway1, alpha.id, { status });
      await touch(token, `/api/v1/agent/boards/${alpha.id}`);
      const after = await agents().findOneByOrFail({ id: agent.id });
      expect(after.status).toBe(status);
      expect(after.lastSeenAt).not.toBeNull();
    });

    it('does not touch again within 30 s, and does after', async () => {
      const { agent, token } = await buildAgent(t.dataSource, gateway1, alpha.id);
      const recent = new Date(Date.now() - 10_000);
      await agents().update({ id: agent.id }, { lastSeenAt: recent, status: 'offline' });
      await touch(token);
      const unchanged = await agents().findOneByOrFail({ id: agent.id });
      expect(unchanged.status).toBe('offline');
      expect(unchanged.lastSeenAt!.getTime()).toBe(recent.getTime());

      const stale = new Date(Date.now() - 31_000);
      await agents().update({ id: agent.id }, { lastSeenAt: stale });
      await touch(token);
      const touched = await agents().findOneByOrFail({ id: agent.id });
      expect(touched.status).toBe('online');
      expect(touched.lastSeenAt!.getTime()).toBeGreaterThan(stale.getTime() + 30_000);
    });

    it('touches even when the board guard then refuses (403)', async () => {
      const { agent, token } = await buildAgent(t.dataSource, gateway1, alpha.id);
      await t.http.get(`/api/v1/agent/boards/${bravo.id}`).set(agentHeader(token)).expect(403);
      const after = await agents().findOneByOrFail({ id: agent.id });
      expect(after.status).toBe('online');
      expect(after.lastSeenAt).not.toBeNull();
    });

    it('does not touch when the board is missing (404 before authentication)', async () => {
      const { agent, token } = await buildAgent(t.dataSource, gateway1, alpha.id);
      await t.http.get(`/api/v1/agent/boards/${randomUUID()}`).set(agentHeader(token)).expect(404);
      const after = await agents().findOneByOrFail({ id: agent.id });
      expect(after.status).toBe('provisioning');
      expect(after.lastSeenAt).toBeNull();
    });
  });
});
