import { randomUUID } from 'node:crypto';
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import { Approval } from '../../src/approvals/entities/approval.entity';
import { BoardMemory } from '../../src/board-memory/entities/board-memory.entity';
import { Board } from '../../src/boards/entities/board.entity';
import { BoardOnboardingSession } from '../../src/onboarding/entities/board-onboarding-session.entity';
import { OrganizationBoardAccess } from '../../src/organizations/entities/organization-board-access.entity';
import { OrganizationInviteBoardAccess } from '../../src/organizations/entities/organization-invite-board-access.entity';
import { OrganizationInvite } from '../../src/organizations/entities/organization-invite.entity';
import { OrganizationMember } from '../../src/organizations/entities/organization-member.entity';
import { Task } from '../../src/tasks/entities/task.entity';
import {
  buildAgent,
  buildBoard,
  buildBoardGroup,
  buildGateway,
  grantBoard,
  signIn,
  SignedInUser,
  signInMember,
} from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';
import { ISO_Z, REQUEST_ID } from '../support/expectations';

describe('boards (T16-T20)', () => {
  let t: TestApp;
  /** Owner of org A (their "Personal" org: role owner, both all-boards flags). */
  let owner: SignedInUser;
  let orgA: string;
  let gatewayA: string;

  beforeAll(async () => {
    t = await createTestApp();
    owner = await signIn(t.http, t.dataSource);
    orgA = owner.organizationId;
    gatewayA = (await buildGateway(t.dataSource, orgA)).id;
  });
  afterAll(async () => {
    await t.close();
  });

  /** A fresh organization owned by a fresh user, with a gateway. */
  async function freshOrg() {
    const user = await signIn(t.http, t.dataSource);
    const gateway = await buildGateway(t.dataSource, user.organizationId);
    return { user, orgId: user.organizationId, gatewayId: gateway.id };
  }

  describe('POST /boards', () => {
    it('creates a board with every field and answers the exact BoardRead', async () => {
      const group = await buildBoardGroup(t.dataSource, orgA);
      const res = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({
          name: 'Launch Plan',
          slug: 'launch-plan',
          gateway_id: gatewayA.toUpperCase(),
          board_group_id: group.id,
          board_type: 'goal',
          objective: 'Ship v1',
          success_metrics: { users: 100, nested: { ok: true } },
          target_date: '2026-03-01T10:30:00Z',
          goal_confirmed: true,
          goal_source: 'manual',
          description: '  Launch it  ',
          require_approval_for_done: false,
          require_review_before_done: true,
          comment_required_for_review: true,
          block_status_changes_with_pending_approval: true,
          only_lead_can_change_status: true,
          max_agents: 3,
          organization_id: randomUUID(),
          id: randomUUID(),
          unknown_field: 'ignored',
        })
        .expect(200);
      expect(res.body).toEqual({
        name: 'Launch Plan',
        slug: 'launch-plan',
        description: '  Launch it  ',
        gateway_id: gatewayA,
        board_group_id: group.id,
        board_type: 'goal',
        objective: 'Ship v1',
        success_metrics: { users: 100, nested: { ok: true } },
        target_date: '2026-03-01T10:30:00.000Z',
        goal_confirmed: true,
        goal_source: 'manual',
        require_approval_for_done: false,
        require_review_before_done: true,
        comment_required_for_review: true,
        block_status_changes_with_pending_approval: true,
        only_lead_can_change_status: true,
        max_agents: 3,
        id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
        organization_id: orgA,
        created_at: expect.stringMatching(ISO_Z),
        updated_at: expect.stringMatching(ISO_Z),
      });
      const row = await t.dataSource.getRepository(Board).findOneByOrFail({ id: res.body.id });
      expect(row).toMatchObject({
        organizationId: orgA,
        gatewayId: gatewayA,
        boardGroupId: group.id,
        successMetrics: { users: 100, nested: { ok: true } },
        goalConfirmed: true,
      });
      expect(row.targetDate?.toISOString()).toBe('2026-03-01T10:30:00.000Z');
      expect(Object.keys(res.body)).toEqual([
        'name',
        'slug',
        'description',
        'gateway_id',
        'board_group_id',
        'board_type',
        'objective',
        'success_metrics',
        'target_date',
        'goal_confirmed',
        'goal_source',
        'require_approval_for_done',
        'require_review_before_done',
        'comment_required_for_review',
        'block_status_changes_with_pending_approval',
        'only_lead_can_change_status',
        'max_agents',
        'id',
        'organization_id',
        'created_at',
        'updated_at',
      ]);
    });

    it('applies the defaults; name and slug are neither trimmed nor unique', async () => {
      const body = { name: '  ', slug: ' same slug ', gateway_id: gatewayA };
      const first = await t.http.post('/api/v1/boards').set(owner.headers).send(body).expect(200);
      const second = await t.http.post('/api/v1/boards').set(owner.headers).send(body).expect(200);
      expect(first.body).toMatchObject({
        name: '  ',
        slug: ' same slug ',
        board_group_id: null,
        board_type: 'goal',
        objective: null,
        success_metrics: null,
        target_date: null,
        goal_confirmed: false,
        goal_source: null,
        description: '',
        require_approval_for_done: true,
        require_review_before_done: false,
        comment_required_for_review: false,
        block_status_changes_with_pending_approval: false,
        only_lead_can_change_status: false,
        max_agents: 1,
      });
      expect(second.body.id).not.toBe(first.body.id);
      expect(second.body.slug).toBe(' same slug ');
    });

    it('reads a zone-less target_date as UTC and converts offsets', async () => {
      const naive = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({ name: 'n', slug: 'n', gateway_id: gatewayA, target_date: '2026-03-01T10:30:00' })
        .expect(200);
      expect(naive.body.target_date).toBe('2026-03-01T10:30:00.000Z');
      const offset = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({
          name: 'o',
          slug: 'o',
          gateway_id: gatewayA,
          target_date: '2026-03-01T10:30:00.250+02:00',
        })
        .expect(200);
      expect(offset.body.target_date).toBe('2026-03-01T08:30:00.250Z');
      const dateOnly = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({ name: 'd', slug: 'd', gateway_id: gatewayA, target_date: '2026-12-31' })
        .expect(200);
      expect(dateOnly.body.target_date).toBe('2026-12-31T00:00:00.000Z');
    });

    it('lists every field problem as a 422', async () => {
      const res = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({
          name: 42,
          gateway_id: 'not-a-uuid',
          board_group_id: 7,
          board_type: null,
          objective: ['x'],
          success_metrics: [1, 2],
          target_date: '2026-02-30T00:00:00',
          goal_confirmed: null,
          goal_source: false,
        })
        .expect(422);
      expect(res.body).toEqual({
        detail: [
          {
            type: 'string_type',
            loc: ['body', 'name'],
            msg: 'Input should be a valid string',
            input: 42,
          },
          { type: 'missing', loc: ['body', 'slug'], msg: 'Field required' },
          {
            type: 'uuid_parsing',
            loc: ['body', 'gateway_id'],
            msg: 'Input should be a valid UUID',
            input: 'not-a-uuid',
          },
          {
            type: 'uuid_parsing',
            loc: ['body', 'board_group_id'],
            msg: 'Input should be a valid UUID',
            input: 7,
          },
          {
            type: 'string_type',
            loc: ['body', 'board_type'],
            msg: 'Input should be a valid string',
            input: null,
          },
          {
            type: 'string_type',
            loc: ['body', 'objective'],
            msg: 'Input should be a valid string',
            input: ['x'],
          },
          {
            type: 'dict_type',
            loc: ['body', 'success_metrics'],
            msg: 'Input should be a valid dictionary',
            input: [1, 2],
          },
          {
            type: 'datetime_parsing',
            loc: ['body', 'target_date'],
            msg: 'Input should be a valid datetime',
            input: '2026-02-30T00:00:00',
          },
          {
            type: 'bool_type',
            loc: ['body', 'goal_confirmed'],
            msg: 'Input should be a valid boolean',
            input: null,
          },
          {
            type: 'string_type',
            loc: ['body', 'goal_source'],
            msg: 'Input should be a valid string',
            input: false,
          },
        ],
        request_id: REQUEST_ID,
      });
    });

    it.each([
      ['a missing body', undefined, 'missing'],
      ['a JSON array', [], 'model_attributes_type'],
    ])('rejects %s with a 422 at loc ["body"]', async (_label, body, type) => {
      const req = t.http.post('/api/v1/boards').set(owner.headers);
      const res = await (body === undefined ? req : req.send(body)).expect(422);
      expect(res.body.detail).toEqual([expect.objectContaining({ type, loc: ['body'] })]);
    });

    it.each([
      ['gateway_id missing', { name: 'b', slug: 'b' }, 'gateway_id is required'],
      ['gateway_id null', { name: 'b', slug: 'b', gateway_id: null }, 'gateway_id is required'],
      [
        'confirmed goal without success_metrics',
        { name: 'b', slug: 'b', gateway_id: 'GW', goal_confirmed: true, objective: 'o' },
        'Confirmed goal boards require objective and success_metrics',
      ],
      [
        'confirmed goal with empty success_metrics',
        {
          name: 'b',
          slug: 'b',
          gateway_id: 'GW',
          goal_confirmed: true,
          objective: 'o',
          success_metrics: {},
        },
        'Confirmed goal boards require objective and success_metrics',
      ],
      [
        'confirmed goal with blank objective',
        {
          name: 'b',
          slug: 'b',
          gateway_id: 'GW',
          goal_confirmed: true,
          objective: '',
          success_metrics: { a: 1 },
        },
        'Confirmed goal boards require objective and success_metrics',
      ],
    ])(
      'model rule: %s -> 422 "Value error, ..." at loc ["body"]',
      async (_label, template: Record<string, unknown>, text) => {
        const body = {
          ...template,
          ...(template.gateway_id === 'GW' ? { gateway_id: gatewayA } : {}),
        };
        const res = await t.http.post('/api/v1/boards').set(owner.headers).send(body).expect(422);
        expect(res.body).toEqual({
          detail: [
            { type: 'value_error', loc: ['body'], msg: `Value error, ${text}`, input: body },
          ],
          request_id: REQUEST_ID,
        });
      },
    );

    it('checks gateway_id before the goal rule, and field errors hide the model rule', async () => {
      const both = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({ name: 'b', slug: 'b', goal_confirmed: true })
        .expect(422);
      expect(both.body.detail).toEqual([
        expect.objectContaining({ loc: ['body'], msg: 'Value error, gateway_id is required' }),
      ]);
      const fieldOnly = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({ name: 1, slug: 'b' })
        .expect(422);
      expect(fieldOnly.body.detail).toEqual([
        expect.objectContaining({ type: 'string_type', loc: ['body', 'name'] }),
      ]);
    });

    it('a confirmed non-goal board needs no objective or metrics', async () => {
      const res = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({
          name: 'g',
          slug: 'g',
          gateway_id: gatewayA,
          board_type: 'general',
          goal_confirmed: true,
        })
        .expect(200);
      expect(res.body).toMatchObject({
        board_type: 'general',
        goal_confirmed: true,
        objective: null,
      });
    });

    it('rejects a gateway or board group that is missing or in another organization', async () => {
      const other = await freshOrg();
      const otherGroup = await buildBoardGroup(t.dataSource, other.orgId);
      const cases: [Record<string, unknown>, string][] = [
        [{ gateway_id: randomUUID() }, 'gateway_id is invalid'],
        [{ gateway_id: other.gatewayId }, 'gateway_id is invalid'],
        [{ gateway_id: gatewayA, board_group_id: randomUUID() }, 'board_group_id is invalid'],
        [{ gateway_id: gatewayA, board_group_id: otherGroup.id }, 'board_group_id is invalid'],
        // The gateway is checked first.
        [{ gateway_id: other.gatewayId, board_group_id: otherGroup.id }, 'gateway_id is invalid'],
      ];
      for (const [fields, detail] of cases) {
        const res = await t.http
          .post('/api/v1/boards')
          .set(owner.headers)
          .send({ name: 'x', slug: 'x', ...fields })
          .expect(422);
        expect(res.body).toEqual({ detail, request_id: REQUEST_ID });
      }
      const count = await t.dataSource.getRepository(Board).countBy({ name: 'x' });
      expect(count).toBe(0);
    });

    it('is for org admins: 401 anonymous, 403 member (before body validation), admin ok', async () => {
      const anonymous = await t.http.post('/api/v1/boards').send({}).expect(401);
      expect(anonymous.body).toEqual({ detail: 'Unauthorized', request_id: REQUEST_ID });
      const member = await signInMember(t.http, t.dataSource, orgA, {
        allBoardsRead: true,
        allBoardsWrite: true,
      });
      const forbidden = await t.http
        .post('/api/v1/boards')
        .set(member.headers)
        .send({})
        .expect(403);
      expect(forbidden.body).toEqual({ detail: 'Forbidden', request_id: REQUEST_ID });
      const admin = await signInMember(t.http, t.dataSource, orgA, { role: 'admin' });
      const created = await t.http
        .post('/api/v1/boards')
        .set(admin.headers)
        .send({ name: 'by admin', slug: 'a', gateway_id: gatewayA })
        .expect(200);
      expect(created.body.organization_id).toBe(orgA);
    });

    it('creates the board in the caller’s active organization', async () => {
      const other = await freshOrg();
      // The owner of org A becomes an admin of the other org and switches to it.
      const switched = await signInMember(t.http, t.dataSource, other.orgId, { role: 'admin' });
      const res = await t.http
        .post('/api/v1/boards')
        .set(switched.headers)
        .send({ name: 'in other', slug: 's', gateway_id: other.gatewayId })
        .expect(200);
      expect(res.body.organization_id).toBe(other.orgId);
    });
  });

  describe('GET /boards', () => {
    let org: Awaited<ReturnType<typeof freshOrg>>;
    let gateway2: string;
    let group: string;
    const ids: Record<string, string> = {};

    beforeAll(async () => {
      org = await freshOrg();
      gateway2 = (await buildGateway(t.dataSource, org.orgId)).id;
      group = (await buildBoardGroup(t.dataSource, org.orgId)).id;
      const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
      // Names differ only in case for b/B: created_at descending breaks the tie.
      ids.alpha = (
        await buildBoard(t.dataSource, org.orgId, org.gatewayId, {
          name: 'alpha',
          createdAt: at(1),
        })
      ).id;
      ids.bOld = (
        await buildBoard(t.dataSource, org.orgId, gateway2, {
          name: 'Beta',
          createdAt: at(2),
          boardGroupId: group,
        })
      ).id;
      ids.bNew = (
        await buildBoard(t.dataSource, org.orgId, org.gatewayId, { name: 'beta', createdAt: at(3) })
      ).id;
      ids.charlie = (
        await buildBoard(t.dataSource, org.orgId, gateway2, {
          name: 'Charlie',
          createdAt: at(0),
          boardGroupId: group,
        })
      ).id;
      // Another organization's board never shows.
      const stranger = await freshOrg();
      await buildBoard(t.dataSource, stranger.orgId, stranger.gatewayId, { name: 'aaa' });
    });

    const idsOf = (body: { items: { id: string }[] }) => body.items.map((b) => b.id);

    it('pages the active org’s boards by lower(name), then newest first', async () => {
      const res = await t.http.get('/api/v1/boards').set(org.user.headers).expect(200);
      expect(res.body).toEqual({
        items: expect.any(Array),
        total: 4,
        limit: 200,
        offset: 0,
      });
      expect(idsOf(res.body)).toEqual([ids.alpha, ids.bNew, ids.bOld, ids.charlie]);
      expect(res.body.items[0]).toEqual({
        name: 'alpha',
        slug: expect.any(String),
        description: '',
        gateway_id: org.gatewayId,
        board_group_id: null,
        board_type: 'general',
        objective: null,
        success_metrics: null,
        target_date: null,
        goal_confirmed: false,
        goal_source: null,
        require_approval_for_done: true,
        require_review_before_done: false,
        comment_required_for_review: false,
        block_status_changes_with_pending_approval: false,
        only_lead_can_change_status: false,
        max_agents: 1,
        id: ids.alpha,
        organization_id: org.orgId,
        created_at: '2026-01-01T00:00:01.000Z',
        updated_at: expect.stringMatching(ISO_Z),
      });
    });

    it('applies limit and offset; total counts every match', async () => {
      const res = await t.http
        .get('/api/v1/boards?limit=2&offset=1')
        .set(org.user.headers)
        .expect(200);
      expect(res.body).toMatchObject({ total: 4, limit: 2, offset: 1 });
      expect(idsOf(res.body)).toEqual([ids.bNew, ids.bOld]);
      const past = await t.http.get('/api/v1/boards?offset=10').set(org.user.headers).expect(200);
      expect(past.body).toEqual({ items: [], total: 4, limit: 200, offset: 10 });
    });

    it('filters by gateway_id and board_group_id', async () => {
      const byGateway = await t.http
        .get(`/api/v1/boards?gateway_id=${gateway2}`)
        .set(org.user.headers)
        .expect(200);
      expect(idsOf(byGateway.body)).toEqual([ids.bOld, ids.charlie]);
      expect(byGateway.body.total).toBe(2);
      const byGroup = await t.http
        .get(`/api/v1/boards?board_group_id=${group}&gateway_id=${org.gatewayId}`)
        .set(org.user.headers)
        .expect(200);
      expect(byGroup.body).toMatchObject({ items: [], total: 0 });
      const unknown = await t.http
        .get(`/api/v1/boards?gateway_id=${randomUUID()}`)
        .set(org.user.headers)
        .expect(200);
      expect(unknown.body.total).toBe(0);
    });

    it.each([
      ['limit=0', 'limit', 'greater_than_equal', '0'],
      ['limit=201', 'limit', 'less_than_equal', '201'],
      ['limit=abc', 'limit', 'int_type', 'abc'],
      ['offset=-1', 'offset', 'greater_than_equal', '-1'],
      ['gateway_id=nope', 'gateway_id', 'uuid_parsing', 'nope'],
      ['board_group_id=', 'board_group_id', 'uuid_parsing', ''],
    ])('rejects ?%s with a 422', async (qs, field, type, input) => {
      const res = await t.http.get(`/api/v1/boards?${qs}`).set(org.user.headers).expect(422);
      expect(res.body.detail).toEqual([
        expect.objectContaining({ type, loc: ['query', field], input }),
      ]);
    });

    it('accepts the limit bounds 1 and 200', async () => {
      const one = await t.http.get('/api/v1/boards?limit=1').set(org.user.headers).expect(200);
      expect(one.body).toMatchObject({ total: 4, limit: 1 });
      expect(idsOf(one.body)).toEqual([ids.alpha]);
      await t.http.get('/api/v1/boards?limit=200').set(org.user.headers).expect(200);
    });

    it('a member without all-boards flags sees only boards with a readable or writable row', async () => {
      const member = await signInMember(t.http, t.dataSource, org.orgId);
      await grantBoard(t.dataSource, member.memberId, ids.charlie, { canRead: true });
      await grantBoard(t.dataSource, member.memberId, ids.alpha, {
        canRead: false,
        canWrite: true,
      });
      await grantBoard(t.dataSource, member.memberId, ids.bNew, {
        canRead: false,
        canWrite: false,
      });
      const res = await t.http.get('/api/v1/boards').set(member.headers).expect(200);
      expect(idsOf(res.body)).toEqual([ids.alpha, ids.charlie]);
      expect(res.body.total).toBe(2);
      const filtered = await t.http
        .get(`/api/v1/boards?gateway_id=${gateway2}&limit=1`)
        .set(member.headers)
        .expect(200);
      expect(filtered.body).toMatchObject({ total: 1, limit: 1 });
      expect(idsOf(filtered.body)).toEqual([ids.charlie]);
    });

    it.each([
      ['all_boards_read', { allBoardsRead: true }],
      ['all_boards_write', { allBoardsWrite: true }],
    ])('a member with %s sees every board', async (_label, flags) => {
      const member = await signInMember(t.http, t.dataSource, org.orgId, flags);
      const res = await t.http.get('/api/v1/boards').set(member.headers).expect(200);
      expect(res.body.total).toBe(4);
    });

    it('an admin without board flags sees nothing (upstream rule: role is not access)', async () => {
      const admin = await signInMember(t.http, t.dataSource, org.orgId, { role: 'admin' });
      const res = await t.http.get('/api/v1/boards').set(admin.headers).expect(200);
      expect(res.body).toEqual({ items: [], total: 0, limit: 200, offset: 0 });
    });

    it('lists only the active organization, even for a member of several', async () => {
      const member = await signInMember(
        t.http,
        t.dataSource,
        org.orgId,
        { allBoardsRead: true },
        { activate: false },
      );
      const res = await t.http.get('/api/v1/boards').set(member.headers).expect(200);
      expect(res.body.total).toBe(0); // their Personal org is still active and has no boards
    });

    it('answers 401 without a token, before query validation', async () => {
      const res = await t.http.get('/api/v1/boards?limit=0').expect(401);
      expect(res.body).toEqual({ detail: 'Unauthorized', request_id: REQUEST_ID });
    });
  });

  describe('GET /boards/:boardId', () => {
    it('returns the board', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA, {
        objective: 'o',
        successMetrics: { k: 'v' },
        targetDate: new Date('2026-05-05T05:05:05.500Z'),
      });
      const res = await t.http.get(`/api/v1/boards/${board.id}`).set(owner.headers).expect(200);
      expect(res.body).toEqual({
        name: board.name,
        slug: board.slug,
        description: '',
        gateway_id: gatewayA,
        board_group_id: null,
        board_type: 'general',
        objective: 'o',
        success_metrics: { k: 'v' },
        target_date: '2026-05-05T05:05:05.500Z',
        goal_confirmed: false,
        goal_source: null,
        require_approval_for_done: true,
        require_review_before_done: false,
        comment_required_for_review: false,
        block_status_changes_with_pending_approval: false,
        only_lead_can_change_status: false,
        max_agents: 1,
        id: board.id,
        organization_id: orgA,
        created_at: board.createdAt.toISOString(),
        updated_at: board.updatedAt.toISOString(),
      });
      // The id is accepted in any case.
      await t.http.get(`/api/v1/boards/${board.id.toUpperCase()}`).set(owner.headers).expect(200);
    });

    it('answers 401, then 422 (bad id) / 404 (missing), then 403', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      await t.http.get(`/api/v1/boards/${randomUUID()}`).expect(401);
      await t.http.get('/api/v1/boards/nope').expect(401);
      const missing = await t.http
        .get(`/api/v1/boards/${randomUUID()}`)
        .set(owner.headers)
        .expect(404);
      expect(missing.body).toEqual({ detail: 'Not Found', request_id: REQUEST_ID });
      const bad = await t.http.get('/api/v1/boards/nope').set(owner.headers).expect(422);
      expect(bad.body.detail).toEqual([
        {
          type: 'uuid_parsing',
          loc: ['path', 'board_id'],
          msg: 'Input should be a valid UUID',
          input: 'nope',
        },
      ]);
      const outsider = await signIn(t.http, t.dataSource);
      const noOrg = await t.http
        .get(`/api/v1/boards/${board.id}`)
        .set(outsider.headers)
        .expect(403);
      expect(noOrg.body).toEqual({ detail: 'No org access', request_id: REQUEST_ID });
      const member = await signInMember(t.http, t.dataSource, orgA);
      const denied = await t.http.get(`/api/v1/boards/${board.id}`).set(member.headers).expect(403);
      expect(denied.body).toEqual({ detail: 'Board access denied', request_id: REQUEST_ID });
    });

    it('works for a board of a non-active organization the user belongs to', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      const member = await signInMember(t.http, t.dataSource, orgA, {}, { activate: false });
      await grantBoard(t.dataSource, member.memberId, board.id, { canRead: true });
      await t.http.get(`/api/v1/boards/${board.id}`).set(member.headers).expect(200);
    });
  });

  describe('PATCH /boards/:boardId', () => {
    it('applies only the keys sent, clears nullable fields with null, bumps updated_at', async () => {
      const group = await buildBoardGroup(t.dataSource, orgA);
      const gateway2 = await buildGateway(t.dataSource, orgA);
      const board = await buildBoard(t.dataSource, orgA, gatewayA, {
        boardGroupId: group.id,
        objective: 'keep me',
        goalSource: 'old',
        targetDate: new Date('2026-01-01T00:00:00Z'),
      });
      const res = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(owner.headers)
        .send({
          name: 'Renamed',
          gateway_id: gateway2.id,
          board_group_id: null,
          goal_source: null,
          target_date: null,
          success_metrics: { a: 1 },
          organization_id: randomUUID(),
        })
        .expect(200);
      expect(res.body).toEqual({
        name: 'Renamed',
        slug: board.slug,
        description: '',
        gateway_id: gateway2.id,
        board_group_id: null,
        board_type: 'general',
        objective: 'keep me',
        success_metrics: { a: 1 },
        target_date: null,
        goal_confirmed: false,
        goal_source: null,
        require_approval_for_done: true,
        require_review_before_done: false,
        comment_required_for_review: false,
        block_status_changes_with_pending_approval: false,
        only_lead_can_change_status: false,
        max_agents: 1,
        id: board.id,
        organization_id: orgA,
        created_at: board.createdAt.toISOString(),
        updated_at: expect.stringMatching(ISO_Z),
      });
      expect(new Date(res.body.updated_at).getTime()).toBeGreaterThan(board.updatedAt.getTime());
      const row = await t.dataSource.getRepository(Board).findOneByOrFail({ id: board.id });
      expect(row).toMatchObject({ name: 'Renamed', gatewayId: gateway2.id, boardGroupId: null });
      const again = await t.http.get(`/api/v1/boards/${board.id}`).set(owner.headers).expect(200);
      expect(again.body).toEqual(res.body);
    });

    it('an empty body changes nothing but updated_at', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      const res = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(owner.headers)
        .send({})
        .expect(200);
      const after = await t.dataSource.getRepository(Board).findOneByOrFail({ id: board.id });
      expect({ ...after, updatedAt: null }).toEqual({ ...board, updatedAt: null });
      expect(after.updatedAt.getTime()).toBeGreaterThan(board.updatedAt.getTime());
      expect(res.body.updated_at).toBe(after.updatedAt.toISOString());
    });

    it('rejects explicit null for NOT NULL fields with a 422 list', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      const res = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(owner.headers)
        .send({ name: null, slug: null, board_type: null, goal_confirmed: null })
        .expect(422);
      expect(res.body.detail).toEqual([
        {
          type: 'string_type',
          loc: ['body', 'name'],
          msg: 'Input should be a valid string',
          input: null,
        },
        {
          type: 'string_type',
          loc: ['body', 'slug'],
          msg: 'Input should be a valid string',
          input: null,
        },
        {
          type: 'string_type',
          loc: ['body', 'board_type'],
          msg: 'Input should be a valid string',
          input: null,
        },
        {
          type: 'bool_type',
          loc: ['body', 'goal_confirmed'],
          msg: 'Input should be a valid boolean',
          input: null,
        },
      ]);
    });

    it('rejects an explicit null gateway_id with the model rule', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      const res = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(owner.headers)
        .send({ gateway_id: null })
        .expect(422);
      expect(res.body).toEqual({
        detail: [
          {
            type: 'value_error',
            loc: ['body'],
            msg: 'Value error, gateway_id is required',
            input: { gateway_id: null },
          },
        ],
        request_id: REQUEST_ID,
      });
    });

    it('checks the rules in order: gateway, group, goal, legacy gateway', async () => {
      const other = await freshOrg();
      const otherGroup = await buildBoardGroup(t.dataSource, other.orgId);
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      const legacy = await buildBoard(t.dataSource, orgA, null);
      const cases: [string, Record<string, unknown>, string][] = [
        [board.id, { gateway_id: randomUUID() }, 'gateway_id is invalid'],
        [
          board.id,
          { gateway_id: other.gatewayId, board_group_id: randomUUID() },
          'gateway_id is invalid',
        ],
        [
          board.id,
          { board_group_id: otherGroup.id, board_type: 'goal' },
          'board_group_id is invalid',
        ],
        [board.id, { board_group_id: randomUUID() }, 'board_group_id is invalid'],
        [board.id, { board_type: 'goal' }, 'Goal boards require objective and success_metrics'],
        [
          board.id,
          { board_type: 'goal', objective: 'o', success_metrics: {} },
          'Goal boards require objective and success_metrics',
        ],
        [legacy.id, { board_type: 'goal' }, 'Goal boards require objective and success_metrics'],
        [legacy.id, { name: 'still legacy' }, 'gateway_id is required'],
      ];
      for (const [id, body, detail] of cases) {
        const res = await t.http
          .patch(`/api/v1/boards/${id}`)
          .set(owner.headers)
          .send(body)
          .expect(422);
        expect(res.body).toEqual({ detail, request_id: REQUEST_ID });
      }
      const unchanged = await t.dataSource.getRepository(Board).findOneByOrFail({ id: board.id });
      expect(unchanged).toMatchObject({
        gatewayId: gatewayA,
        boardType: 'general',
        boardGroupId: null,
      });
    });

    it('the goal rule uses the merged board and only fires when board_type "goal" is sent', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA, {
        objective: 'o',
        successMetrics: { m: 1 },
      });
      const ok = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(owner.headers)
        .send({ board_type: 'goal', goal_confirmed: true })
        .expect(200);
      expect(ok.body).toMatchObject({ board_type: 'goal', goal_confirmed: true });
      // Not re-checked when board_type is not in the body.
      await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(owner.headers)
        .send({ objective: null })
        .expect(200);
      // A legacy board fixed by the same request passes.
      const legacy = await buildBoard(t.dataSource, orgA, null);
      const fixed = await t.http
        .patch(`/api/v1/boards/${legacy.id}`)
        .set(owner.headers)
        .send({ gateway_id: gatewayA })
        .expect(200);
      expect(fixed.body.gateway_id).toBe(gatewayA);
    });

    it('needs write access (not admin): write row ok, read row 403, 403 before 422', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      const writer = await signInMember(t.http, t.dataSource, orgA);
      await grantBoard(t.dataSource, writer.memberId, board.id, { canRead: false, canWrite: true });
      await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(writer.headers)
        .send({ name: 'by writer' })
        .expect(200);
      const reader = await signInMember(t.http, t.dataSource, orgA, { allBoardsRead: true });
      const denied = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(reader.headers)
        .send({ name: null })
        .expect(403);
      expect(denied.body).toEqual({ detail: 'Board access denied', request_id: REQUEST_ID });
      const admin = await signInMember(t.http, t.dataSource, orgA, { role: 'admin' });
      await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(admin.headers)
        .send({ name: 'x' })
        .expect(403);
      await t.http.patch(`/api/v1/boards/${randomUUID()}`).set(owner.headers).send({}).expect(404);
      await t.http.patch(`/api/v1/boards/${board.id}`).send({ name: 1 }).expect(401);
    });

    it('a gateway must belong to the board’s organization, not the caller’s active one', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      // A writer on org A whose active org is their own Personal org.
      const writer = await signInMember(
        t.http,
        t.dataSource,
        orgA,
        { allBoardsWrite: true },
        { activate: false },
      );
      const personal = await t.dataSource
        .getRepository(OrganizationMember)
        .findOneByOrFail({ userId: writer.userId, role: 'owner' });
      expect(personal.organizationId).not.toBe(orgA);
      const ownGateway = await buildGateway(t.dataSource, personal.organizationId);
      const res = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(writer.headers)
        .send({ gateway_id: ownGateway.id })
        .expect(422);
      expect(res.body.detail).toBe('gateway_id is invalid');
      const gateway2 = await buildGateway(t.dataSource, orgA);
      await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(writer.headers)
        .send({ gateway_id: gateway2.id })
        .expect(200);
    });
  });

  describe('DELETE /boards/:boardId', () => {
    /** A board with one of every dependent row, plus the ids to check. */
    async function boardWithDependents(orgId: string, gatewayId: string) {
      const ds = t.dataSource;
      const board = await buildBoard(ds, orgId, gatewayId);
      const task = await ds.getRepository(Task).save({ boardId: board.id, title: 'task' });
      const taskEvent = await ds
        .getRepository(ActivityEvent)
        .save({ organizationId: orgId, eventType: 'task.created', taskId: task.id, boardId: null });
      const boardEvent = await ds
        .getRepository(ActivityEvent)
        .save({ organizationId: orgId, eventType: 'board.note', boardId: board.id });
      const approval = await ds.getRepository(Approval).save({
        boardId: board.id,
        taskId: task.id,
        actionType: 'deploy',
        confidence: 80,
      });
      const memory = await ds.getRepository(BoardMemory).save({ boardId: board.id, content: 'm' });
      const onboarding = await ds
        .getRepository(BoardOnboardingSession)
        .save({ boardId: board.id, sessionKey: 'agent:main:main' });
      const member = await signInMember(t.http, ds, orgId, {}, { activate: false });
      const access = await grantBoard(ds, member.memberId, board.id, { canRead: true });
      const invite = await ds.getRepository(OrganizationInvite).save({
        organizationId: orgId,
        invitedEmail: `${randomUUID()}@example.test`,
        token: randomUUID(),
      });
      const inviteAccess = await ds.getRepository(OrganizationInviteBoardAccess).save({
        organizationInviteId: invite.id,
        boardId: board.id,
      });
      return {
        board,
        rows: [
          [Task, task.id],
          [ActivityEvent, taskEvent.id],
          [ActivityEvent, boardEvent.id],
          [Approval, approval.id],
          [BoardMemory, memory.id],
          [BoardOnboardingSession, onboarding.id],
          [OrganizationBoardAccess, access.id],
          [OrganizationInviteBoardAccess, inviteAccess.id],
        ] as const,
        inviteId: invite.id,
        memberId: member.memberId,
      };
    }

    async function exists(entity: typeof Task | object, id: string): Promise<boolean> {
      return t.dataSource.getRepository(entity as typeof Task).existsBy({ id });
    }

    it('deletes the board and every dependent row in one go, and nothing else', async () => {
      const doomed = await boardWithDependents(orgA, gatewayA);
      const kept = await boardWithDependents(orgA, gatewayA);
      const res = await t.http
        .delete(`/api/v1/boards/${doomed.board.id}`)
        .set(owner.headers)
        .expect(200);
      expect(res.body).toEqual({ ok: true });
      expect(await exists(Board, doomed.board.id)).toBe(false);
      for (const [entity, id] of doomed.rows) {
        expect([entity.name, await exists(entity, id)]).toEqual([entity.name, false]);
      }
      for (const [entity, id] of kept.rows) {
        expect([entity.name, await exists(entity, id)]).toEqual([entity.name, true]);
      }
      expect(await exists(Board, kept.board.id)).toBe(true);
      // The invite and the member themselves stay; only their rows for the board went.
      expect(await exists(OrganizationInvite, doomed.inviteId)).toBe(true);
      await t.http.get(`/api/v1/boards/${doomed.board.id}`).set(owner.headers).expect(404);
      await t.http.delete(`/api/v1/boards/${doomed.board.id}`).set(owner.headers).expect(404);
    });

    it('refuses (409) while the board has agents, and deletes nothing', async () => {
      const blocked = await boardWithDependents(orgA, gatewayA);
      const { agent } = await buildAgent(t.dataSource, gatewayA, blocked.board.id);
      const res = await t.http
        .delete(`/api/v1/boards/${blocked.board.id}`)
        .set(owner.headers)
        .expect(409);
      expect(res.body).toEqual({
        detail: 'Board still has agents; delete them first',
        request_id: REQUEST_ID,
      });
      expect(await exists(Board, blocked.board.id)).toBe(true);
      for (const [entity, id] of blocked.rows) {
        expect([entity.name, await exists(entity, id)]).toEqual([entity.name, true]);
      }
      // A gateway main agent (no board) does not block.
      const free = await buildBoard(t.dataSource, orgA, gatewayA);
      await buildAgent(t.dataSource, gatewayA, null);
      await t.http.delete(`/api/v1/boards/${free.id}`).set(owner.headers).expect(200);
      // Once the agent is gone the board can be deleted.
      await t.dataSource.getRepository(Agent).delete({ id: agent.id });
      await t.http.delete(`/api/v1/boards/${blocked.board.id}`).set(owner.headers).expect(200);
      expect(await exists(Board, blocked.board.id)).toBe(false);
    });

    it('needs write access: 401, 404, 422 bad id, 403 for readers and outsiders', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      await t.http.delete(`/api/v1/boards/${board.id}`).expect(401);
      await t.http.delete(`/api/v1/boards/${randomUUID()}`).set(owner.headers).expect(404);
      await t.http.delete('/api/v1/boards/123').set(owner.headers).expect(422);
      const reader = await signInMember(t.http, t.dataSource, orgA);
      await grantBoard(t.dataSource, reader.memberId, board.id, { canRead: true });
      const denied = await t.http
        .delete(`/api/v1/boards/${board.id}`)
        .set(reader.headers)
        .expect(403);
      expect(denied.body.detail).toBe('Board access denied');
      const stranger = await signIn(t.http, t.dataSource);
      const noOrg = await t.http
        .delete(`/api/v1/boards/${board.id}`)
        .set(stranger.headers)
        .expect(403);
      expect(noOrg.body.detail).toBe('No org access');
      const writer = await signInMember(t.http, t.dataSource, orgA);
      await grantBoard(t.dataSource, writer.memberId, board.id, { canRead: false, canWrite: true });
      await t.http.delete(`/api/v1/boards/${board.id}`).set(writer.headers).expect(200);
    });
  });

  describe('board settings (issue 12): description, max_agents and the workflow flags', () => {
    const SETTINGS = {
      description: 'What this board is for',
      require_approval_for_done: false,
      require_review_before_done: true,
      comment_required_for_review: true,
      block_status_changes_with_pending_approval: true,
      only_lead_can_change_status: true,
      max_agents: 7,
    };

    it('are stored on create and read back by GET and the list', async () => {
      const res = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({ name: 'Settings', slug: 'settings', gateway_id: gatewayA, ...SETTINGS })
        .expect(200);
      expect(res.body).toMatchObject(SETTINGS);
      const row = await t.dataSource.getRepository(Board).findOneByOrFail({ id: res.body.id });
      expect(row).toMatchObject({
        description: SETTINGS.description,
        requireApprovalForDone: false,
        requireReviewBeforeDone: true,
        commentRequiredForReview: true,
        blockStatusChangesWithPendingApproval: true,
        onlyLeadCanChangeStatus: true,
        maxAgents: 7,
      });
      const read = await t.http.get(`/api/v1/boards/${res.body.id}`).set(owner.headers).expect(200);
      expect(read.body).toEqual(res.body);
      const list = await t.http.get('/api/v1/boards').set(owner.headers).expect(200);
      expect(list.body.items).toContainEqual(res.body);
    });

    it("defaults to upstream's values: empty description, max_agents 1, approval for done", async () => {
      const res = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({ name: 'Defaults', slug: 'defaults', gateway_id: gatewayA })
        .expect(200);
      expect(res.body).toMatchObject({
        description: '',
        require_approval_for_done: true,
        require_review_before_done: false,
        comment_required_for_review: false,
        block_status_changes_with_pending_approval: false,
        only_lead_can_change_status: false,
        max_agents: 1,
      });
    });

    it('PATCH changes only the settings sent', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      const res = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(owner.headers)
        .send({ max_agents: 4, only_lead_can_change_status: true, description: 'New' })
        .expect(200);
      expect(res.body).toMatchObject({
        description: 'New',
        max_agents: 4,
        only_lead_can_change_status: true,
        require_approval_for_done: true,
        require_review_before_done: false,
      });
      const again = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(owner.headers)
        .send({ require_approval_for_done: false })
        .expect(200);
      expect(again.body).toMatchObject({
        description: 'New',
        max_agents: 4,
        only_lead_can_change_status: true,
        require_approval_for_done: false,
      });
    });

    const badMaxAgents: [string, unknown, string, string][] = [
      ['0', 0, 'greater_than_equal', 'Input is too small'],
      ['-1', -1, 'greater_than_equal', 'Input is too small'],
      ['"x"', 'x', 'int_type', 'Input should be a valid integer'],
      ['1.5', 1.5, 'int_type', 'Input should be a valid integer'],
      ['"2"', '2', 'int_type', 'Input should be a valid integer'],
      ['2^31', 2 ** 31, 'less_than_equal', 'Input is too large'],
    ];

    it.each(badMaxAgents)(
      'max_agents %s is a 422 on create and update',
      async (_l, value, type, msg) => {
        const board = await buildBoard(t.dataSource, orgA, gatewayA);
        const create = await t.http
          .post('/api/v1/boards')
          .set(owner.headers)
          .send({ name: 'm', slug: 'm', gateway_id: gatewayA, max_agents: value })
          .expect(422);
        const update = await t.http
          .patch(`/api/v1/boards/${board.id}`)
          .set(owner.headers)
          .send({ max_agents: value })
          .expect(422);
        for (const res of [create, update]) {
          expect(res.body.detail).toEqual([
            { type, loc: ['body', 'max_agents'], msg, input: value },
          ]);
        }
        const row = await t.dataSource.getRepository(Board).findOneByOrFail({ id: board.id });
        expect(row.maxAgents).toBe(1);
      },
    );

    it('explicit null for a setting is a 422 on create and update (NOT NULL columns)', async () => {
      const board = await buildBoard(t.dataSource, orgA, gatewayA);
      const nulls = {
        description: null,
        require_approval_for_done: null,
        require_review_before_done: null,
        comment_required_for_review: null,
        block_status_changes_with_pending_approval: null,
        only_lead_can_change_status: null,
        max_agents: null,
      };
      const expected = [
        ['description', 'string_type', 'Input should be a valid string'],
        ['require_approval_for_done', 'bool_type', 'Input should be a valid boolean'],
        ['require_review_before_done', 'bool_type', 'Input should be a valid boolean'],
        ['comment_required_for_review', 'bool_type', 'Input should be a valid boolean'],
        [
          'block_status_changes_with_pending_approval',
          'bool_type',
          'Input should be a valid boolean',
        ],
        ['only_lead_can_change_status', 'bool_type', 'Input should be a valid boolean'],
        ['max_agents', 'int_type', 'Input should be a valid integer'],
      ].map(([field, type, msg]) => ({ type, loc: ['body', field], msg, input: null }));
      const update = await t.http
        .patch(`/api/v1/boards/${board.id}`)
        .set(owner.headers)
        .send(nulls)
        .expect(422);
      expect(update.body.detail).toEqual(expected);
      const create = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({ name: 'n', slug: 'n', gateway_id: gatewayA, ...nulls })
        .expect(422);
      expect(create.body.detail).toEqual(expected);
      const after = await t.dataSource.getRepository(Board).findOneByOrFail({ id: board.id });
      expect(after).toEqual(board);
    });

    it('a flag that is not a boolean and a description that is not a string are 422s', async () => {
      const res = await t.http
        .post('/api/v1/boards')
        .set(owner.headers)
        .send({
          name: 'f',
          slug: 'f',
          gateway_id: gatewayA,
          description: 5,
          require_review_before_done: 'yes',
        })
        .expect(422);
      expect(res.body.detail).toEqual([
        {
          type: 'string_type',
          loc: ['body', 'description'],
          msg: 'Input should be a valid string',
          input: 5,
        },
        {
          type: 'bool_type',
          loc: ['body', 'require_review_before_done'],
          msg: 'Input should be a valid boolean',
          input: 'yes',
        },
      ]);
    });
  });
});
