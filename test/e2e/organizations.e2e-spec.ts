import { OrganizationBoardAccess } from '../../src/organizations/entities/organization-board-access.entity';
import { OrganizationMember } from '../../src/organizations/entities/organization-member.entity';
import { Organization } from '../../src/organizations/entities/organization.entity';
import { User } from '../../src/users/entities/user.entity';
import { bearer, newIdentity, userToken } from '../support/auth';
import {
  buildBoard,
  buildGateway,
  buildMember,
  buildOrganization,
  grantBoard,
  signIn,
  SignedInUser,
  signInMember,
} from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';
import { API, ISO_Z, MISSING_ID, UUID_PATTERN } from '../support/expectations';

describe('organizations: T1-T4, T6-T8', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const uniqueName = (label: string) => `${label} ${Math.random().toString(36).slice(2, 10)}`;

  /** A signed-in user who creates (and so owns and is active in) a new organization. */
  async function ownerOfNewOrg(label = 'Org') {
    const owner = await signIn(t.http, t.dataSource);
    const res = await t.http
      .post(`${API}/organizations`)
      .set(owner.headers)
      .send({ name: uniqueName(label) })
      .expect(200);
    const member = await t.dataSource
      .getRepository(OrganizationMember)
      .findOneByOrFail({ organizationId: res.body.id, userId: owner.userId });
    return {
      owner: { ...owner, memberId: member.id },
      org: res.body as { id: string; name: string },
    };
  }

  /** A new user who is a member of `organizationId` with `fields`, active there. */
  const joinOrg = (
    organizationId: string,
    fields: Parameters<typeof buildMember>[3] = {},
    identity = newIdentity(),
  ): Promise<SignedInUser> =>
    signInMember(t.http, t.dataSource, organizationId, fields, { identity });

  describe('authentication', () => {
    const routes: ['get' | 'post' | 'patch' | 'put' | 'delete', string][] = [
      ['post', '/organizations'],
      ['get', '/organizations/me'],
      ['get', '/organizations/me/list'],
      ['patch', '/organizations/me/active'],
      ['get', '/organizations/me/member'],
      ['get', '/organizations/me/members'],
      ['get', `/organizations/me/members/${MISSING_ID}`],
      ['patch', `/organizations/me/members/${MISSING_ID}`],
      ['put', `/organizations/me/members/${MISSING_ID}/access`],
      ['delete', `/organizations/me/members/${MISSING_ID}`],
      ['get', '/organizations/me/invites'],
      ['post', '/organizations/me/invites'],
      ['delete', `/organizations/me/invites/${MISSING_ID}`],
      ['post', '/organizations/invites/accept'],
      // 401 comes before path validation.
      ['get', '/organizations/me/members/not-a-uuid'],
      ['delete', '/organizations/me/invites/not-a-uuid'],
    ];

    it.each(routes)('%s %s without a token is 401 "Unauthorized"', async (method, path) => {
      const res = await t.http[method](`${API}${path}`).send({}).expect(401);
      expect(res.body).toEqual({ detail: 'Unauthorized', request_id: expect.any(String) });
    });

    it('rejects a forged token with 401', async () => {
      const forged = await userToken(
        newIdentity(),
        'a-different-secret-that-is-long-enough-to-sign',
      );
      await t.http.get(`${API}/organizations/me`).set(bearer(forged)).expect(401);
    });
  });

  describe('T1 POST /organizations', () => {
    it('creates the org with a trimmed name, an owner membership, and makes it active', async () => {
      const user = await signIn(t.http, t.dataSource);
      const name = uniqueName('Acme');
      const res = await t.http
        .post(`${API}/organizations`)
        .set(user.headers)
        .send({ name: `  ${name}\t`, id: MISSING_ID, created_at: '2000-01-01T00:00:00Z' })
        .expect(200);
      expect(res.body).toEqual({
        id: expect.stringMatching(UUID_PATTERN),
        name,
        created_at: expect.stringMatching(ISO_Z),
        updated_at: expect.stringMatching(ISO_Z),
      });
      expect(res.body.id).not.toBe(MISSING_ID);
      expect(res.body.created_at.startsWith('2000')).toBe(false);

      const member = await t.dataSource
        .getRepository(OrganizationMember)
        .findOneByOrFail({ organizationId: res.body.id, userId: user.userId });
      expect(member).toMatchObject({ role: 'owner', allBoardsRead: true, allBoardsWrite: true });
      expect(member.createdAt.toISOString()).toBe(res.body.created_at);
      const dbUser = await t.dataSource.getRepository(User).findOneByOrFail({ id: user.userId });
      expect(dbUser.activeOrganizationId).toBe(res.body.id);

      const me = await t.http.get(`${API}/organizations/me`).set(user.headers).expect(200);
      expect(me.body).toEqual(res.body);
    });

    it('rejects a name that is blank after trimming with 422 "Unprocessable Entity"', async () => {
      const user = await signIn(t.http, t.dataSource);
      const res = await t.http
        .post(`${API}/organizations`)
        .set(user.headers)
        .send({ name: '   ' })
        .expect(422);
      expect(res.body).toEqual({ detail: 'Unprocessable Entity', request_id: expect.any(String) });
    });

    it('validates the body: missing name and wrong type are 422 lists', async () => {
      const user = await signIn(t.http, t.dataSource);
      const missing = await t.http
        .post(`${API}/organizations`)
        .set(user.headers)
        .send({})
        .expect(422);
      expect(missing.body.detail).toEqual([
        expect.objectContaining({ type: 'missing', loc: ['body', 'name'], msg: 'Field required' }),
      ]);
      const wrong = await t.http
        .post(`${API}/organizations`)
        .set(user.headers)
        .send({ name: 42 })
        .expect(422);
      expect(wrong.body.detail).toEqual([
        expect.objectContaining({ type: 'string_type', loc: ['body', 'name'], input: 42 }),
      ]);
      const notObject = await t.http
        .post(`${API}/organizations`)
        .set(user.headers)
        .send([{ name: 'x' }])
        .expect(422);
      expect(notObject.body.detail).toEqual([
        expect.objectContaining({ type: 'model_attributes_type', loc: ['body'] }),
      ]);
    });

    it('answers 409 "Conflict" for a name used by any org, ignoring case and tenant', async () => {
      const { org } = await ownerOfNewOrg('Taken');
      const other = await signIn(t.http, t.dataSource);
      const res = await t.http
        .post(`${API}/organizations`)
        .set(other.headers)
        .send({ name: ` ${org.name.toUpperCase()} ` })
        .expect(409);
      expect(res.body).toEqual({ detail: 'Conflict', request_id: expect.any(String) });
      // "Personal" orgs exist without a uniqueness check, but still block the name here.
      await t.http
        .post(`${API}/organizations`)
        .set(other.headers)
        .send({ name: 'personal' })
        .expect(409);
      const personalCount = await t.dataSource
        .getRepository(Organization)
        .countBy({ name: 'Personal' });
      expect(personalCount).toBeGreaterThan(1);
      // Nothing was created, and the active org did not move.
      const dbUser = await t.dataSource.getRepository(User).findOneByOrFail({ id: other.userId });
      expect(dbUser.activeOrganizationId).toBe(other.organizationId);
    });

    it('creates only one of two concurrent orgs with the same name', async () => {
      const a = await signIn(t.http, t.dataSource);
      const b = await signIn(t.http, t.dataSource);
      const name = uniqueName('Race');
      const results = await Promise.all([
        t.http.post(`${API}/organizations`).set(a.headers).send({ name }),
        t.http.post(`${API}/organizations`).set(b.headers).send({ name: name.toLowerCase() }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
      const count = await t.dataSource
        .getRepository(Organization)
        .createQueryBuilder('o')
        .where('lower(o.name) = lower(:name)', { name })
        .getCount();
      expect(count).toBe(1);
    });
  });

  describe('T2 GET /organizations/me/list', () => {
    it('lists every org of the caller by lower(name), with role and is_active', async () => {
      const user = await signIn(t.http, t.dataSource);
      const suffix = Math.random().toString(36).slice(2, 8);
      const created: Record<string, string> = {};
      for (const name of [`beta ${suffix}`, `Alpha ${suffix}`, `charlie ${suffix}`]) {
        const res = await t.http
          .post(`${API}/organizations`)
          .set(user.headers)
          .send({ name })
          .expect(200);
        created[name] = res.body.id;
      }
      const foreign = await buildOrganization(t.dataSource, `Delta ${suffix}`);
      await buildMember(t.dataSource, foreign.id, user.userId, { role: 'viewer' });
      await buildOrganization(t.dataSource, `Aardvark ${suffix}`); // not a member

      const res = await t.http.get(`${API}/organizations/me/list`).set(user.headers).expect(200);
      expect(res.body).toEqual([
        {
          id: created[`Alpha ${suffix}`],
          name: `Alpha ${suffix}`,
          role: 'owner',
          is_active: false,
        },
        { id: created[`beta ${suffix}`], name: `beta ${suffix}`, role: 'owner', is_active: false },
        {
          id: created[`charlie ${suffix}`],
          name: `charlie ${suffix}`,
          role: 'owner',
          is_active: true,
        },
        { id: foreign.id, name: `Delta ${suffix}`, role: 'viewer', is_active: false },
        { id: user.organizationId, name: 'Personal', role: 'owner', is_active: false },
      ]);
    });

    it('normalises a stale active org to the oldest membership first', async () => {
      const { owner, org } = await ownerOfNewOrg('Stale');
      // The membership of the active org disappears behind the API's back.
      await t.dataSource.getRepository(OrganizationMember).delete({ id: owner.memberId });
      const res = await t.http.get(`${API}/organizations/me/list`).set(owner.headers).expect(200);
      expect(res.body).toEqual([
        { id: owner.organizationId, name: 'Personal', role: 'owner', is_active: true },
      ]);
      expect(res.body.map((o: { id: string }) => o.id)).not.toContain(org.id);
      const dbUser = await t.dataSource.getRepository(User).findOneByOrFail({ id: owner.userId });
      expect(dbUser.activeOrganizationId).toBe(owner.organizationId);
    });
  });

  describe('T3 PATCH /organizations/me/active', () => {
    it('switches to an org the caller belongs to and returns it', async () => {
      const { owner, org } = await ownerOfNewOrg('Switch');
      const res = await t.http
        .patch(`${API}/organizations/me/active`)
        .set(owner.headers)
        .send({ organization_id: owner.organizationId.toUpperCase() })
        .expect(200);
      const personal = await t.dataSource
        .getRepository(Organization)
        .findOneByOrFail({ id: owner.organizationId });
      expect(res.body).toEqual({
        id: personal.id,
        name: 'Personal',
        created_at: personal.createdAt.toISOString(),
        updated_at: personal.updatedAt.toISOString(),
      });
      const me = await t.http.get(`${API}/organizations/me`).set(owner.headers).expect(200);
      expect(me.body.id).toBe(owner.organizationId);
      const back = await t.http
        .patch(`${API}/organizations/me/active`)
        .set(owner.headers)
        .send({ organization_id: org.id })
        .expect(200);
      expect(back.body.id).toBe(org.id);
      const list = await t.http.get(`${API}/organizations/me/list`).set(owner.headers).expect(200);
      expect(list.body.find((o: { is_active: boolean }) => o.is_active).id).toBe(org.id);
    });

    it('answers 403 "No org access" for an org of others or one that does not exist', async () => {
      const { org } = await ownerOfNewOrg('Private');
      const outsider = await signIn(t.http, t.dataSource);
      for (const organizationId of [org.id, MISSING_ID]) {
        const res = await t.http
          .patch(`${API}/organizations/me/active`)
          .set(outsider.headers)
          .send({ organization_id: organizationId })
          .expect(403);
        expect(res.body).toEqual({ detail: 'No org access', request_id: expect.any(String) });
      }
      const dbUser = await t.dataSource
        .getRepository(User)
        .findOneByOrFail({ id: outsider.userId });
      expect(dbUser.activeOrganizationId).toBe(outsider.organizationId);
    });

    it('validates organization_id as a UUID', async () => {
      const user = await signIn(t.http, t.dataSource);
      const bad = await t.http
        .patch(`${API}/organizations/me/active`)
        .set(user.headers)
        .send({ organization_id: 'nope' })
        .expect(422);
      expect(bad.body.detail).toEqual([
        expect.objectContaining({
          type: 'uuid_parsing',
          loc: ['body', 'organization_id'],
          input: 'nope',
        }),
      ]);
      const missing = await t.http
        .patch(`${API}/organizations/me/active`)
        .set(user.headers)
        .send({})
        .expect(422);
      expect(missing.body.detail).toEqual([
        expect.objectContaining({ type: 'missing', loc: ['body', 'organization_id'] }),
      ]);
    });
  });

  describe('T4 GET /organizations/me', () => {
    it('returns the active org; a brand-new user gets "Personal"', async () => {
      const identity = newIdentity('fresh');
      const token = await userToken(identity);
      const res = await t.http.get(`${API}/organizations/me`).set(bearer(token)).expect(200);
      expect(res.body).toEqual({
        id: expect.stringMatching(UUID_PATTERN),
        name: 'Personal',
        created_at: expect.stringMatching(ISO_Z),
        updated_at: expect.stringMatching(ISO_Z),
      });
      const user = await t.dataSource
        .getRepository(User)
        .findOneByOrFail({ clerkUserId: identity.sub });
      expect(user.activeOrganizationId).toBe(res.body.id);
      const member = await t.dataSource
        .getRepository(OrganizationMember)
        .findOneByOrFail({ userId: user.id });
      expect(member).toMatchObject({
        organizationId: res.body.id,
        role: 'owner',
        allBoardsRead: true,
        allBoardsWrite: true,
      });
    });
  });

  describe('T6 GET /organizations/me/member', () => {
    it('returns the caller membership with the user and every board row', async () => {
      const { owner, org } = await ownerOfNewOrg('Self');
      const gateway = await buildGateway(t.dataSource, org.id);
      const [b1, b2] = [
        await buildBoard(t.dataSource, org.id, gateway.id),
        await buildBoard(t.dataSource, org.id, gateway.id),
      ];
      const member = await joinOrg(org.id, { role: 'member' });
      const r1 = await grantBoard(t.dataSource, member.memberId, b1.id, { canRead: true });
      const r2 = await grantBoard(t.dataSource, member.memberId, b2.id, {
        canRead: false,
        canWrite: true,
      });
      const res = await t.http
        .get(`${API}/organizations/me/member`)
        .set(member.headers)
        .expect(200);
      const dbMember = await t.dataSource
        .getRepository(OrganizationMember)
        .findOneByOrFail({ id: member.memberId });
      expect(res.body).toEqual({
        id: member.memberId,
        organization_id: org.id,
        user_id: member.userId,
        role: 'member',
        all_boards_read: false,
        all_boards_write: false,
        created_at: dbMember.createdAt.toISOString(),
        updated_at: dbMember.updatedAt.toISOString(),
        user: {
          id: member.userId,
          email: member.identity.email,
          name: member.identity.name,
          preferred_name: null,
        },
        board_access: expect.arrayContaining([
          {
            id: r1.id,
            board_id: b1.id,
            can_read: true,
            can_write: false,
            created_at: expect.stringMatching(ISO_Z),
            updated_at: expect.stringMatching(ISO_Z),
          },
          {
            id: r2.id,
            board_id: b2.id,
            can_read: false,
            can_write: true,
            created_at: expect.stringMatching(ISO_Z),
            updated_at: expect.stringMatching(ISO_Z),
          },
        ]),
      });
      expect(res.body.board_access).toHaveLength(2);

      // The owner's own membership: no rows, both flags.
      const mine = await t.http
        .get(`${API}/organizations/me/member`)
        .set(owner.headers)
        .expect(200);
      expect(mine.body).toMatchObject({
        id: owner.memberId,
        role: 'owner',
        all_boards_read: true,
        all_boards_write: true,
        board_access: [],
      });
    });
  });

  describe('T7 GET /organizations/me/members', () => {
    it('lists members by lower(email), then name (NULLs last), with user and no board rows', async () => {
      const { owner, org } = await ownerOfNewOrg('Roster');
      const users = t.dataSource.getRepository(User);
      const m1 = await joinOrg(org.id);
      const m2 = await joinOrg(org.id);
      const m3 = await joinOrg(org.id);
      const m4 = await joinOrg(org.id, { role: 'admin' });
      const m5 = await joinOrg(org.id);
      const gateway = await buildGateway(t.dataSource, org.id);
      const board = await buildBoard(t.dataSource, org.id, gateway.id);
      await grantBoard(t.dataSource, m1.memberId, board.id);
      // Stored emails of mixed case (written directly, as a legacy row could be).
      // The owner's stored email is re-synced from the token on each request (user-...@).
      await users.update({ id: m1.userId }, { email: 'Zed@example.test', name: 'A' });
      await users.update({ id: m2.userId }, { email: 'abe@example.test', name: 'B' });
      await users.update({ id: m3.userId }, { email: 'ABE@example.test', name: 'A' });
      await users.update({ id: m4.userId }, { email: null, name: 'Nobody' });
      await users.update({ id: m5.userId }, { email: 'abe@example.test', name: null });

      const res = await t.http
        .get(`${API}/organizations/me/members`)
        .set(owner.headers)
        .expect(200);
      expect(res.body).toMatchObject({ total: 6, limit: 200, offset: 0 });
      const order = [m3, m2, m5, owner, m1, m4].map((u) => u.memberId);
      expect(res.body.items.map((m: { id: string }) => m.id)).toEqual(order);
      for (const item of res.body.items) expect(item.board_access).toEqual([]);
      const first = res.body.items[0];
      expect(first).toEqual({
        id: m3.memberId,
        organization_id: org.id,
        user_id: m3.userId,
        role: 'member',
        all_boards_read: false,
        all_boards_write: false,
        created_at: expect.stringMatching(ISO_Z),
        updated_at: expect.stringMatching(ISO_Z),
        user: { id: m3.userId, email: 'ABE@example.test', name: 'A', preferred_name: null },
        board_access: [],
      });
      expect(res.body.items[5].user).toEqual({
        id: m4.userId,
        email: null,
        name: 'Nobody',
        preferred_name: null,
      });

      // Any member may list (not admin-only); pages keep the order.
      const reader = await joinOrg(org.id);
      await users.update({ id: reader.userId }, { email: 'zzzz@example.test' });
      const paged = await t.http
        .get(`${API}/organizations/me/members?limit=2&offset=1`)
        .set(owner.headers)
        .expect(200);
      expect(paged.body).toMatchObject({ total: 7, limit: 2, offset: 1 });
      expect(paged.body.items.map((m: { id: string }) => m.id)).toEqual(order.slice(1, 3));
      const past = await t.http
        .get(`${API}/organizations/me/members?offset=50`)
        .set(owner.headers)
        .expect(200);
      expect(past.body).toEqual({ items: [], total: 7, limit: 200, offset: 50 });
    });

    it('is open to plain members and shows only the active org', async () => {
      const { org } = await ownerOfNewOrg('Visible');
      const member = await joinOrg(org.id);
      const res = await t.http
        .get(`${API}/organizations/me/members`)
        .set(member.headers)
        .expect(200);
      expect(res.body.total).toBe(2);
      for (const item of res.body.items) expect(item.organization_id).toBe(org.id);

      const outsider = await signIn(t.http, t.dataSource);
      const theirs = await t.http
        .get(`${API}/organizations/me/members`)
        .set(outsider.headers)
        .expect(200);
      expect(theirs.body.items.map((m: { user_id: string }) => m.user_id)).toEqual([
        outsider.userId,
      ]);
    });

    it.each([
      ['limit=0', 'limit', 'greater_than_equal'],
      ['limit=201', 'limit', 'less_than_equal'],
      ['offset=-1', 'offset', 'greater_than_equal'],
      ['limit=abc', 'limit', 'int_type'],
    ])('rejects %s with a 422 list', async (query, field, type) => {
      const user = await signIn(t.http, t.dataSource);
      const res = await t.http
        .get(`${API}/organizations/me/members?${query}`)
        .set(user.headers)
        .expect(422);
      expect(res.body.detail).toEqual([expect.objectContaining({ type, loc: ['query', field] })]);
    });

    it('accepts the bounds limit=1 and limit=200', async () => {
      const user = await signIn(t.http, t.dataSource);
      for (const limit of [1, 200]) {
        const res = await t.http
          .get(`${API}/organizations/me/members?limit=${limit}`)
          .set(user.headers)
          .expect(200);
        expect(res.body).toMatchObject({ total: 1, limit, offset: 0 });
        expect(res.body.items).toHaveLength(1);
      }
    });
  });

  describe('T8 GET /organizations/me/members/:memberId', () => {
    let owner: SignedInUser;
    let org: { id: string };
    let member: SignedInUser;
    let other: SignedInUser;
    let outsider: SignedInUser;
    let row: OrganizationBoardAccess;

    beforeAll(async () => {
      ({ owner, org } = await ownerOfNewOrg('Lookup'));
      member = await joinOrg(org.id);
      other = await joinOrg(org.id, { role: 'member', allBoardsRead: true });
      outsider = await signIn(t.http, t.dataSource);
      const board = await buildBoard(t.dataSource, org.id, null);
      row = await grantBoard(t.dataSource, member.memberId, board.id, { canWrite: true });
    });

    it('an admin reads any member, with user and board rows', async () => {
      const res = await t.http
        .get(`${API}/organizations/me/members/${member.memberId}`)
        .set(owner.headers)
        .expect(200);
      expect(res.body).toMatchObject({
        id: member.memberId,
        organization_id: org.id,
        user_id: member.userId,
        role: 'member',
        user: { id: member.userId, email: member.identity.email },
        board_access: [{ id: row.id, board_id: row.boardId, can_read: true, can_write: true }],
      });
      const upper = await t.http
        .get(`${API}/organizations/me/members/${member.memberId.toUpperCase()}`)
        .set(owner.headers)
        .expect(200);
      expect(upper.body.id).toBe(member.memberId);
    });

    it('a plain member reads only themself: others are 403 "Forbidden"', async () => {
      const self = await t.http
        .get(`${API}/organizations/me/members/${member.memberId}`)
        .set(member.headers)
        .expect(200);
      expect(self.body.board_access).toHaveLength(1);
      const res = await t.http
        .get(`${API}/organizations/me/members/${other.memberId}`)
        .set(member.headers)
        .expect(403);
      expect(res.body).toEqual({ detail: 'Forbidden', request_id: expect.any(String) });
    });

    it('a member of another org, or a missing id, is 404 before the permission check', async () => {
      for (const id of [outsider.memberId, MISSING_ID]) {
        const res = await t.http
          .get(`${API}/organizations/me/members/${id}`)
          .set(member.headers)
          .expect(404);
        expect(res.body).toEqual({ detail: 'Not Found', request_id: expect.any(String) });
      }
      // The outsider cannot reach members of this org either.
      await t.http
        .get(`${API}/organizations/me/members/${owner.memberId}`)
        .set(outsider.headers)
        .expect(404);
    });

    it('a bad UUID in the path is a 422 list', async () => {
      const res = await t.http
        .get(`${API}/organizations/me/members/not-a-uuid`)
        .set(owner.headers)
        .expect(422);
      expect(res.body.detail).toEqual([
        {
          type: 'uuid_parsing',
          loc: ['path', 'member_id'],
          msg: 'Input should be a valid UUID',
          input: 'not-a-uuid',
        },
      ]);
    });
  });

  it('serves the organization routes in the OpenAPI document', async () => {
    const res = await t.http.get('/openapi.json').expect(200);
    const paths = Object.keys(res.body.paths);
    for (const path of [
      '/api/v1/organizations',
      '/api/v1/organizations/me',
      '/api/v1/organizations/me/list',
      '/api/v1/organizations/me/active',
      '/api/v1/organizations/me/member',
      '/api/v1/organizations/me/members',
      '/api/v1/organizations/me/members/{memberId}',
      '/api/v1/organizations/me/members/{memberId}/access',
      '/api/v1/organizations/me/invites',
      '/api/v1/organizations/me/invites/{inviteId}',
      '/api/v1/organizations/invites/accept',
    ]) {
      expect(paths).toContain(path);
    }
    expect(res.body.components.schemas.OrganizationMemberRead.properties).toHaveProperty(
      'board_access',
    );
  });
});
