import { randomUUID } from 'node:crypto';
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  grantBoard,
  signInMember,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { ISO_Z } from '../support/expectations';
import { createTestApp, TestApp } from '../support/test-app';

const ACTIVITY = '/api/v1/activity';

interface ActivityPage {
  items: {
    id: string;
    event_type: string;
    message: string | null;
    agent_id: string | null;
    task_id: string | null;
    board_id: string | null;
    route_name: string | null;
    route_params: Record<string, string> | null;
    created_at: string;
  }[];
  total: number;
  limit: number;
  offset: number;
}

describe('GET /activity: the organization activity feed', () => {
  let t: TestApp;
  let owner: SignedInUser;
  let orgId: string;
  let boardA: string;
  let boardB: string;
  let agentA: string;
  let mainAgent: string;
  /** Event ids by name, oldest first. */
  const ids: Record<string, string> = {};

  const record = async (
    name: string,
    fields: Partial<ActivityEvent> & { organizationId: string },
    secondsAgo: number,
  ) => {
    const event = await t.dataSource.getRepository(ActivityEvent).save({
      eventType: 'agent.heartbeat',
      message: name,
      agentId: null,
      taskId: null,
      boardId: null,
      createdAt: new Date(Date.now() - secondsAgo * 1000),
      ...fields,
    });
    ids[name] = event.id;
  };

  const list = async (user: SignedInUser, query = '') =>
    (await t.http.get(`${ACTIVITY}${query}`).set(user.headers).expect(200)).body as ActivityPage;
  const names = (page: ActivityPage) => page.items.map((item) => item.message);

  beforeAll(async () => {
    t = await createTestApp();
    ({ owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Activity'));
    const gateway = await buildGateway(t.dataSource, orgId);
    boardA = (await buildBoard(t.dataSource, orgId, gateway.id)).id;
    boardB = (await buildBoard(t.dataSource, orgId, gateway.id)).id;
    agentA = (await buildAgent(t.dataSource, gateway.id, boardA)).agent.id;
    mainAgent = (await buildAgent(t.dataSource, gateway.id, null)).agent.id;
    await record('a-old', { organizationId: orgId, boardId: boardA, agentId: agentA }, 50);
    await record(
      'b-event',
      { organizationId: orgId, boardId: boardB, eventType: 'task.created' },
      40,
    );
    await record('main', { organizationId: orgId, agentId: mainAgent }, 30);
    await record(
      'org-only',
      { organizationId: orgId, eventType: 'gateway.main.lead_broadcast.sent' },
      20,
    );
    await record(
      'a-new',
      { organizationId: orgId, boardId: boardA, eventType: 'task.created' },
      10,
    );
    const other = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Elsewhere');
    const otherGateway = await buildGateway(t.dataSource, other.orgId);
    const otherBoard = await buildBoard(t.dataSource, other.orgId, otherGateway.id);
    await record('foreign', { organizationId: other.orgId, boardId: otherBoard.id }, 5);
  });
  afterAll(async () => {
    await t.close();
  });

  it('lists an owner everything of the organization, newest first, in the contract shape', async () => {
    const page = await list(owner);
    expect(names(page)).toEqual(['a-new', 'org-only', 'main', 'b-event', 'a-old']);
    expect(page).toMatchObject({ total: 5, limit: 200, offset: 0 });
    expect(page.items[0]).toEqual({
      id: ids['a-new'],
      event_type: 'task.created',
      message: 'a-new',
      agent_id: null,
      task_id: null,
      board_id: boardA,
      route_name: 'board',
      route_params: { boardId: boardA },
      created_at: expect.stringMatching(ISO_Z) as unknown,
    });
    const main = page.items.find((item) => item.message === 'main');
    expect(main).toMatchObject({ route_name: 'agent', route_params: { agentId: mainAgent } });
    const orgOnly = page.items.find((item) => item.message === 'org-only');
    expect(orgOnly).toMatchObject({ board_id: null, route_name: null, route_params: null });
  });

  it('paginates', async () => {
    const page = await list(owner, '?limit=2&offset=1');
    expect(names(page)).toEqual(['org-only', 'main']);
    expect(page).toMatchObject({ total: 5, limit: 2, offset: 1 });
  });

  it('filters by board_id, agent_id and event_type; null or empty filters are absent', async () => {
    expect(names(await list(owner, `?board_id=${boardA}`))).toEqual(['a-new', 'a-old']);
    expect(names(await list(owner, `?agent_id=${agentA}`))).toEqual(['a-old']);
    expect(names(await list(owner, '?event_type=task.created'))).toEqual(['a-new', 'b-event']);
    expect(
      names(await list(owner, `?board_id=${boardA}&event_type=task.created&agent_id=null`)),
    ).toEqual(['a-new']);
    expect((await list(owner, '?board_id=null&agent_id=&event_type=null')).total).toBe(5);
    expect((await list(owner, `?board_id=${randomUUID()}`)).total).toBe(0);
    await t.http.get(`${ACTIVITY}?board_id=nope`).set(owner.headers).expect(422);
    await t.http.get(`${ACTIVITY}?limit=0`).set(owner.headers).expect(422);
  });

  it('a member sees only the boards they may read, never events without a board', async () => {
    const member = await signInMember(t.http, t.dataSource, orgId);
    expect((await list(member)).total).toBe(0);
    await grantBoard(t.dataSource, member.memberId, boardA);
    expect(names(await list(member))).toEqual(['a-new', 'a-old']);
    expect((await list(member, `?board_id=${boardB}`)).total).toBe(0);

    const reader = await signInMember(t.http, t.dataSource, orgId, { allBoardsRead: true });
    expect(names(await list(reader))).toEqual(['a-new', 'b-event', 'a-old']);

    const admin = await signInMember(t.http, t.dataSource, orgId, { role: 'admin' });
    expect((await list(admin)).total).toBe(5);
  });

  it('needs an authenticated organization member', async () => {
    await t.http.get(ACTIVITY).expect(401);
  });
});
