import { OrganizationBoardAccess } from '../../src/organizations/entities/organization-board-access.entity';
import { OrganizationInviteBoardAccess } from '../../src/organizations/entities/organization-invite-board-access.entity';
import { OrganizationInvite } from '../../src/organizations/entities/organization-invite.entity';
import { OrganizationMember } from '../../src/organizations/entities/organization-member.entity';
import { Organization } from '../../src/organizations/entities/organization.entity';
import { User } from '../../src/users/entities/user.entity';
import { bearer, newIdentity, TestIdentity, userToken } from '../support/auth';
import {
  buildBoard,
  buildGateway,
  buildMember,
  grantBoard,
  signIn,
  signInOwnerOfNewOrganization,
  SignedInUser,
} from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';
import { API, ISO_Z, MISSING_ID, UUID_PATTERN } from '../support/expectations';

/** Invites: T12 list, T13 create, T14 revoke, T15 accept, and auto-acceptance on first sign-in. */
describe('organization invites: T12-T15', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const invites = () => t.dataSource.getRepository(OrganizationInvite);
  const inviteRows = () => t.dataSource.getRepository(OrganizationInviteBoardAccess);
  const members = () => t.dataSource.getRepository(OrganizationMember);
  const accessRows = () => t.dataSource.getRepository(OrganizationBoardAccess);

  async function orgFixture() {
    const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Invites');
    const gateway = await buildGateway(t.dataSource, orgId);
    const boards = [
      await buildBoard(t.dataSource, orgId, gateway.id),
      await buildBoard(t.dataSource, orgId, gateway.id),
    ];
    return { owner, orgId, boards };
  }

  async function joinOrg(
    organizationId: string,
    fields: Parameters<typeof buildMember>[3] = {},
    identity: TestIdentity = newIdentity(),
  ): Promise<SignedInUser> {
    const user = await signIn(t.http, t.dataSource, identity);
    const member = await buildMember(t.dataSource, organizationId, user.userId, fields);
    await t.http
      .patch(`${API}/organizations/me/active`)
      .set(user.headers)
      .send({ organization_id: organizationId })
      .expect(200);
    return { ...user, memberId: member.id };
  }

  async function invite(headers: { Authorization: string }, body: Record<string, unknown>) {
    const res = await t.http.post(`${API}/organizations/me/invites`).set(headers).send(body);
    expect(res.status).toBe(200);
    return res.body as { id: string; token: string; invited_email: string; created_at: string };
  }

  describe('T13 POST /organizations/me/invites', () => {
    it('creates an invite with a normalised email and role, a 32-char token, and no email sent', async () => {
      const { owner, orgId } = await orgFixture();
      const res = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({
          invited_email: '  New.Person@Example.TEST ',
          role: ' Admin ',
          all_boards_read: true,
          token: 'chosen-by-client',
          accepted_at: '2020-01-01T00:00:00Z',
        })
        .expect(200);
      expect(res.body).toEqual({
        id: expect.stringMatching(UUID_PATTERN),
        organization_id: orgId,
        invited_email: 'new.person@example.test',
        role: 'admin',
        all_boards_read: true,
        all_boards_write: false,
        token: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
        created_by_user_id: owner.userId,
        accepted_by_user_id: null,
        accepted_at: null,
        created_at: expect.stringMatching(ISO_Z),
        updated_at: expect.stringMatching(ISO_Z),
      });
      const stored = await invites().findOneByOrFail({ id: res.body.id });
      expect(stored.token).toBe(res.body.token);
      expect(stored.acceptedAt).toBeNull();
    });

    it('defaults role to member and flags to false; blank role is member', async () => {
      const { owner } = await orgFixture();
      const plain = await invite(owner.headers, { invited_email: 'plain@example.test' });
      expect(plain).toMatchObject({
        role: 'member',
        all_boards_read: false,
        all_boards_write: false,
      });
      const blank = await invite(owner.headers, {
        invited_email: 'blank@example.test',
        role: '  ',
      });
      expect(blank).toMatchObject({ role: 'member' });
      // Duplicate pending invites for one email are allowed; tokens differ.
      const again = await invite(owner.headers, { invited_email: 'PLAIN@example.test' });
      expect(again.token).not.toBe(plain.token);
    });

    it('stores per-board rows only when both flags are false', async () => {
      const { owner, boards } = await orgFixture();
      const scoped = await invite(owner.headers, {
        invited_email: 'scoped@example.test',
        board_access: [
          { board_id: boards[0].id, can_write: true },
          { board_id: boards[1].id, can_read: false },
        ],
      });
      const rows = await inviteRows().find({ where: { organizationInviteId: scoped.id } });
      expect(
        rows
          .map((r) => ({ boardId: r.boardId, canRead: r.canRead, canWrite: r.canWrite }))
          .sort((a, b) => a.boardId.localeCompare(b.boardId)),
      ).toEqual(
        [
          { boardId: boards[0].id, canRead: true, canWrite: true },
          { boardId: boards[1].id, canRead: false, canWrite: false },
        ].sort((a, b) => a.boardId.localeCompare(b.boardId)),
      );
      const flagged = await invite(owner.headers, {
        invited_email: 'flagged@example.test',
        all_boards_write: true,
        board_access: [{ board_id: boards[0].id }],
      });
      expect(await inviteRows().countBy({ organizationInviteId: flagged.id })).toBe(0);
    });

    it('rejects a blank email with 422 "Unprocessable Entity"', async () => {
      const { owner, orgId } = await orgFixture();
      const res = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({ invited_email: '   ' })
        .expect(422);
      expect(res.body).toEqual({ detail: 'Unprocessable Entity', request_id: expect.any(String) });
      expect(await invites().countBy({ organizationId: orgId })).toBe(0);
    });

    it('validates the body as a 422 list', async () => {
      const { owner } = await orgFixture();
      const res = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({ role: null, all_boards_write: 1 })
        .expect(422);
      expect(res.body.detail).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'missing', loc: ['body', 'invited_email'] }),
          expect.objectContaining({ type: 'string_type', loc: ['body', 'role'] }),
          expect.objectContaining({ type: 'bool_type', loc: ['body', 'all_boards_write'] }),
        ]),
      );
    });

    it('answers 409 "Conflict" when a member of the org already has that email', async () => {
      const { owner, orgId } = await orgFixture();
      const member = await joinOrg(orgId);
      const res = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({ invited_email: ` ${member.identity.email!.toUpperCase()} ` })
        .expect(409);
      expect(res.body).toEqual({ detail: 'Conflict', request_id: expect.any(String) });
      // A user of another org with some email is no conflict here.
      const outsider = await signIn(t.http, t.dataSource);
      await invite(owner.headers, { invited_email: outsider.identity.email });
      expect(await invites().countBy({ organizationId: orgId })).toBe(1);
    });

    it('rejects boards of another org (422 default) or repeated boards (422), saving nothing', async () => {
      const { owner, orgId, boards } = await orgFixture();
      const other = await orgFixture();
      const foreign = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({
          invited_email: 'x@example.test',
          board_access: [{ board_id: boards[0].id }, { board_id: other.boards[0].id }],
        })
        .expect(422);
      expect(foreign.body.detail).toBe('Unprocessable Entity');
      const repeated = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({
          invited_email: 'x@example.test',
          board_access: [{ board_id: boards[0].id }, { board_id: boards[0].id }],
        })
        .expect(422);
      expect(repeated.body.detail).toBe('Duplicate board_id in board_access');
      expect(await invites().countBy({ organizationId: orgId })).toBe(0);
    });

    it('is admin-only: a plain member gets 403 "Forbidden"', async () => {
      const { orgId } = await orgFixture();
      const member = await joinOrg(orgId);
      const res = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(member.headers)
        .send({ invited_email: 'friend@example.test' })
        .expect(403);
      expect(res.body).toEqual({ detail: 'Forbidden', request_id: expect.any(String) });
      expect(await invites().countBy({ organizationId: orgId })).toBe(0);
    });
  });

  describe('T12 GET /organizations/me/invites', () => {
    it('lists pending invites of the active org, newest first, with tokens and paging', async () => {
      const { owner, orgId } = await orgFixture();
      const created = [];
      for (const n of [1, 2, 3]) {
        created.push(await invite(owner.headers, { invited_email: `p${n}@example.test` }));
      }
      // An accepted invite is not listed.
      const accepted = await invite(owner.headers, { invited_email: 'done@example.test' });
      await invites().update({ id: accepted.id }, { acceptedAt: new Date() });
      // Nor are invites of other orgs.
      const other = await orgFixture();
      await invite(other.owner.headers, { invited_email: 'elsewhere@example.test' });

      const res = await t.http
        .get(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .expect(200);
      expect(res.body).toMatchObject({ total: 3, limit: 200, offset: 0 });
      expect(res.body.items.map((i: { id: string }) => i.id)).toEqual(
        created.map((i) => i.id).reverse(),
      );
      expect(res.body.items[0]).toEqual({
        id: created[2].id,
        organization_id: orgId,
        invited_email: 'p3@example.test',
        role: 'member',
        all_boards_read: false,
        all_boards_write: false,
        token: created[2].token,
        created_by_user_id: owner.userId,
        accepted_by_user_id: null,
        accepted_at: null,
        created_at: created[2].created_at,
        updated_at: expect.stringMatching(ISO_Z),
      });

      const paged = await t.http
        .get(`${API}/organizations/me/invites?limit=1&offset=1`)
        .set(owner.headers)
        .expect(200);
      expect(paged.body).toMatchObject({ total: 3, limit: 1, offset: 1 });
      expect(paged.body.items.map((i: { id: string }) => i.id)).toEqual([created[1].id]);
      for (const query of ['limit=0', 'limit=201', 'offset=-5']) {
        await t.http.get(`${API}/organizations/me/invites?${query}`).set(owner.headers).expect(422);
      }
    });

    it('is admin-only: a plain member gets 403 "Forbidden"', async () => {
      const { orgId } = await orgFixture();
      const member = await joinOrg(orgId, { allBoardsWrite: true });
      const res = await t.http
        .get(`${API}/organizations/me/invites`)
        .set(member.headers)
        .expect(403);
      expect(res.body.detail).toBe('Forbidden');
      // 403 beats query validation.
      await t.http.get(`${API}/organizations/me/invites?limit=0`).set(member.headers).expect(403);
    });
  });

  describe('T14 DELETE /organizations/me/invites/:inviteId', () => {
    it('deletes the invite and its board rows and returns the deleted invite', async () => {
      const { owner, boards } = await orgFixture();
      const created = await invite(owner.headers, {
        invited_email: 'gone@example.test',
        board_access: [{ board_id: boards[0].id }],
      });
      const res = await t.http
        .delete(`${API}/organizations/me/invites/${created.id}`)
        .set(owner.headers)
        .expect(200);
      expect(res.body).toEqual(created);
      expect(await invites().countBy({ id: created.id })).toBe(0);
      expect(await inviteRows().countBy({ organizationInviteId: created.id })).toBe(0);
      await t.http
        .delete(`${API}/organizations/me/invites/${created.id}`)
        .set(owner.headers)
        .expect(404);
    });

    it('can delete an accepted invite', async () => {
      const { owner } = await orgFixture();
      const identity = newIdentity('acc');
      const created = await invite(owner.headers, { invited_email: identity.email });
      await signIn(t.http, t.dataSource, identity); // auto-accepts
      expect((await invites().findOneByOrFail({ id: created.id })).acceptedAt).not.toBeNull();
      const res = await t.http
        .delete(`${API}/organizations/me/invites/${created.id}`)
        .set(owner.headers)
        .expect(200);
      expect(res.body.accepted_at).toMatch(ISO_Z);
    });

    it('answers 404 for an invite of another org, 403 for members, 422 for a bad UUID', async () => {
      const { owner, orgId } = await orgFixture();
      const other = await orgFixture();
      const foreign = await invite(other.owner.headers, { invited_email: 'f@example.test' });
      for (const id of [foreign.id, MISSING_ID]) {
        const res = await t.http
          .delete(`${API}/organizations/me/invites/${id}`)
          .set(owner.headers)
          .expect(404);
        expect(res.body).toEqual({ detail: 'Not Found', request_id: expect.any(String) });
      }
      expect(await invites().countBy({ id: foreign.id })).toBe(1);

      const mine = await invite(owner.headers, { invited_email: 'm@example.test' });
      const member = await joinOrg(orgId);
      await t.http
        .delete(`${API}/organizations/me/invites/${mine.id}`)
        .set(member.headers)
        .expect(403);
      const bad = await t.http
        .delete(`${API}/organizations/me/invites/nope`)
        .set(owner.headers)
        .expect(422);
      expect(bad.body.detail).toEqual([
        {
          type: 'uuid_parsing',
          loc: ['path', 'invite_id'],
          msg: 'Input should be a valid UUID',
          input: 'nope',
        },
      ]);
      expect(await invites().countBy({ id: mine.id })).toBe(1);
    });
  });

  describe('T15 POST /organizations/invites/accept', () => {
    it('makes a new member with the invite role, flags and board rows; the active org stays', async () => {
      const { owner, orgId, boards } = await orgFixture();
      const guest = await signIn(t.http, t.dataSource);
      const created = await invite(owner.headers, {
        invited_email: guest.identity.email!.toUpperCase(),
        role: 'admin',
        board_access: [
          { board_id: boards[0].id, can_read: false, can_write: true },
          { board_id: boards[1].id },
        ],
      });
      const res = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(guest.headers)
        .send({ token: created.token })
        .expect(200);
      expect(res.body).toEqual({
        id: expect.stringMatching(UUID_PATTERN),
        organization_id: orgId,
        user_id: guest.userId,
        role: 'admin',
        all_boards_read: false,
        all_boards_write: false,
        created_at: expect.stringMatching(ISO_Z),
        updated_at: expect.stringMatching(ISO_Z),
        user: {
          id: guest.userId,
          email: guest.identity.email,
          name: guest.identity.name,
          preferred_name: null,
        },
        board_access: [],
      });
      const rows = await accessRows().find({ where: { organizationMemberId: res.body.id } });
      expect(
        rows
          .map((r) => ({ boardId: r.boardId, canRead: r.canRead, canWrite: r.canWrite }))
          .sort((a, b) => a.boardId.localeCompare(b.boardId)),
      ).toEqual(
        [
          { boardId: boards[0].id, canRead: false, canWrite: true },
          { boardId: boards[1].id, canRead: true, canWrite: false },
        ].sort((a, b) => a.boardId.localeCompare(b.boardId)),
      );
      const stored = await invites().findOneByOrFail({ id: created.id });
      expect(stored.acceptedByUserId).toBe(guest.userId);
      expect(stored.acceptedAt).toBeInstanceOf(Date);
      const user = await t.dataSource.getRepository(User).findOneByOrFail({ id: guest.userId });
      expect(user.activeOrganizationId).toBe(guest.organizationId);

      const list = await t.http.get(`${API}/organizations/me/list`).set(guest.headers).expect(200);
      expect(list.body).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ id: orgId, role: 'admin', is_active: false }),
        ]),
      );
      // The accepted invite leaves the pending list; its token is spent (404).
      const pending = await t.http
        .get(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .expect(200);
      expect(pending.body.total).toBe(0);
      const reused = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(guest.headers)
        .send({ token: created.token })
        .expect(404);
      expect(reused.body).toEqual({ detail: 'Not Found', request_id: expect.any(String) });
    });

    it('with a flag on the invite, copies the flags and no board rows', async () => {
      const { owner, boards } = await orgFixture();
      const guest = await signIn(t.http, t.dataSource);
      const created = await invite(owner.headers, {
        invited_email: guest.identity.email,
        all_boards_read: true,
        board_access: [{ board_id: boards[0].id }],
      });
      const res = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(guest.headers)
        .send({ token: created.token })
        .expect(200);
      expect(res.body).toMatchObject({
        role: 'member',
        all_boards_read: true,
        all_boards_write: false,
      });
      expect(await accessRows().countBy({ organizationMemberId: res.body.id })).toBe(0);
    });

    it('merges into an existing membership without ever downgrading', async () => {
      const { owner, orgId, boards } = await orgFixture();
      // Invites are created while the user is not yet a member (T13 answers 409 otherwise).
      const user = await signIn(t.http, t.dataSource);
      const email = user.identity.email;
      // A lower role and per-board rows: role kept, rows OR-merged.
      const first = await invite(owner.headers, {
        invited_email: email,
        role: 'member',
        board_access: [
          { board_id: boards[0].id, can_read: false, can_write: false },
          { board_id: boards[1].id, can_read: false, can_write: true },
        ],
      });
      // A higher role and flags: role raised, read |= read or write, write |= write.
      const second = await invite(owner.headers, {
        invited_email: email,
        role: 'owner',
        all_boards_write: true,
      });
      // A flags-false, lower invite.
      const third = await invite(owner.headers, { invited_email: email });
      const member = await joinOrg(orgId, { role: 'admin' }, user.identity);
      const r0 = await grantBoard(t.dataSource, member.memberId, boards[0].id, {
        canRead: false,
        canWrite: true,
      });
      const merged = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(member.headers)
        .send({ token: first.token })
        .expect(200);
      expect(merged.body).toMatchObject({
        id: member.memberId,
        role: 'admin',
        all_boards_read: false,
        all_boards_write: false,
        board_access: [],
      });
      const rows = await accessRows().find({ where: { organizationMemberId: member.memberId } });
      const byBoard = Object.fromEntries(rows.map((r) => [r.boardId, [r.canRead, r.canWrite]]));
      // Existing row: read = old OR (invite read OR write) = false, write = old OR write = true.
      // New row: read = invite read OR write = true, write = true.
      expect(byBoard).toEqual({ [boards[0].id]: [false, true], [boards[1].id]: [true, true] });
      expect(rows.find((r) => r.boardId === boards[0].id)!.id).toBe(r0.id);

      const raised = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(member.headers)
        .send({ token: second.token })
        .expect(200);
      expect(raised.body).toMatchObject({
        id: member.memberId,
        role: 'owner',
        all_boards_read: true,
        all_boards_write: true,
      });
      expect(await members().countBy({ organizationId: orgId, userId: member.userId })).toBe(1);

      // A flags-false, lower invite changes nothing.
      const same = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(member.headers)
        .send({ token: third.token })
        .expect(200);
      expect(same.body).toMatchObject({
        role: 'owner',
        all_boards_read: true,
        all_boards_write: true,
      });
    });

    it('answers 403 "Forbidden" when the caller email differs, is missing or is unverified', async () => {
      const { owner, orgId } = await orgFixture();
      const created = await invite(owner.headers, { invited_email: 'someone-else@example.test' });
      const stranger = await signIn(t.http, t.dataSource);
      const res = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(stranger.headers)
        .send({ token: created.token })
        .expect(403);
      expect(res.body).toEqual({ detail: 'Forbidden', request_id: expect.any(String) });
      expect((await invites().findOneByOrFail({ id: created.id })).acceptedAt).toBeNull();
      expect(await members().countBy({ organizationId: orgId, userId: stranger.userId })).toBe(0);

      // Upstream lets a caller without an email accept any invite; here the caller's current
      // token must carry the invited email, verified (the token alone is not enough).
      const anonymous = await signIn(t.http, t.dataSource, { sub: `noemail-${Date.now()}` });
      const unverified = await signIn(t.http, t.dataSource, {
        ...newIdentity('unverified'),
        email: 'someone-else@example.test',
        emailVerified: false,
      });
      for (const caller of [anonymous, unverified]) {
        const refused = await t.http
          .post(`${API}/organizations/invites/accept`)
          .set(caller.headers)
          .send({ token: created.token })
          .expect(403);
        expect(refused.body).toEqual({ detail: 'Forbidden', request_id: expect.any(String) });
        expect(await members().countBy({ organizationId: orgId, userId: caller.userId })).toBe(0);
      }
      expect((await invites().findOneByOrFail({ id: created.id })).acceptedAt).toBeNull();
    });

    it('answers 404 for an unknown token (exact match, not trimmed) and 422 for a missing one', async () => {
      const { owner } = await orgFixture();
      const guest = await signIn(t.http, t.dataSource);
      const created = await invite(owner.headers, { invited_email: guest.identity.email });
      for (const token of ['nope', ` ${created.token}`, `${created.token} `, '']) {
        await t.http
          .post(`${API}/organizations/invites/accept`)
          .set(guest.headers)
          .send({ token })
          .expect(404);
      }
      const missing = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(guest.headers)
        .send({})
        .expect(422);
      expect(missing.body.detail).toEqual([
        expect.objectContaining({ type: 'missing', loc: ['body', 'token'] }),
      ]);
      expect((await invites().findOneByOrFail({ id: created.id })).acceptedAt).toBeNull();
    });
  });

  describe('auto-acceptance on a new user first request (§5.2 step 3)', () => {
    it('joins the oldest pending invite for the email instead of creating "Personal"', async () => {
      const { owner, orgId, boards } = await orgFixture();
      const identity = newIdentity('invitee');
      const oldest = await invite(owner.headers, {
        invited_email: identity.email!.toUpperCase(),
        role: 'admin',
        board_access: [{ board_id: boards[0].id, can_write: true }],
      });
      const other = await orgFixture();
      const newer = await invite(other.owner.headers, { invited_email: identity.email });

      const token = await userToken(identity);
      const me = await t.http.get(`${API}/organizations/me`).set(bearer(token)).expect(200);
      expect(me.body.id).toBe(orgId);
      const user = await t.dataSource
        .getRepository(User)
        .findOneByOrFail({ clerkUserId: identity.sub });
      expect(user.activeOrganizationId).toBe(orgId);
      const memberships = await members().find({ where: { userId: user.id } });
      expect(memberships).toHaveLength(1);
      expect(memberships[0]).toMatchObject({
        organizationId: orgId,
        role: 'admin',
        allBoardsRead: false,
        allBoardsWrite: false,
      });
      const rows = await accessRows().find({ where: { organizationMemberId: memberships[0].id } });
      expect(rows.map((r) => [r.boardId, r.canRead, r.canWrite])).toEqual([
        [boards[0].id, true, true],
      ]);
      expect(await invites().findOneByOrFail({ id: oldest.id })).toMatchObject({
        acceptedByUserId: user.id,
      });
      expect((await invites().findOneByOrFail({ id: newer.id })).acceptedAt).toBeNull();
      expect(
        await t.dataSource
          .getRepository(Organization)
          .createQueryBuilder('o')
          .innerJoin(OrganizationMember, 'm', 'm.organization_id = o.id')
          .where('m.user_id = :id', { id: user.id })
          .andWhere(`o.name = 'Personal'`)
          .getCount(),
      ).toBe(0);

      // The newer invite can still be accepted explicitly.
      const res = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(bearer(token))
        .send({ token: newer.token })
        .expect(200);
      expect(res.body.organization_id).toBe(other.orgId);
      const still = await t.http.get(`${API}/organizations/me`).set(bearer(token)).expect(200);
      expect(still.body.id).toBe(orgId);
    });
  });
});
