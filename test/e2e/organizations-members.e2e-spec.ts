import { OrganizationBoardAccess } from '../../src/organizations/entities/organization-board-access.entity';
import { OrganizationInvite } from '../../src/organizations/entities/organization-invite.entity';
import { OrganizationMember } from '../../src/organizations/entities/organization-member.entity';
import { User } from '../../src/users/entities/user.entity';
import { newIdentity } from '../support/auth';
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
import { API, ISO_Z, MISSING_ID } from '../support/expectations';

const LAST_OWNER = 'Organization must have at least one owner';

/** Member management: T9 PATCH, T10 PUT access, T11 DELETE. */
describe('organization members: T9-T11', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const members = () => t.dataSource.getRepository(OrganizationMember);
  const accessRows = () => t.dataSource.getRepository(OrganizationBoardAccess);

  /** An org created through the API by a new owner (active there), plus one board. */
  async function orgFixture() {
    const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Members');
    const ownerMember = await members().findOneByOrFail({
      organizationId: orgId,
      userId: owner.userId,
    });
    const gateway = await buildGateway(t.dataSource, orgId);
    const board = await buildBoard(t.dataSource, orgId, gateway.id);
    return { owner: { ...owner, memberId: ownerMember.id }, orgId, gateway, board };
  }

  async function joinOrg(
    organizationId: string,
    fields: Parameters<typeof buildMember>[3] = {},
  ): Promise<SignedInUser> {
    const user = await signIn(t.http, t.dataSource, newIdentity());
    const member = await buildMember(t.dataSource, organizationId, user.userId, fields);
    await t.http
      .patch(`${API}/organizations/me/active`)
      .set(user.headers)
      .send({ organization_id: organizationId })
      .expect(200);
    return { ...user, memberId: member.id };
  }

  describe('T9 PATCH /organizations/me/members/:memberId', () => {
    it('normalises the role, bumps updated_at and returns the member without board rows', async () => {
      const { owner, orgId, board } = await orgFixture();
      const member = await joinOrg(orgId);
      await grantBoard(t.dataSource, member.memberId, board.id);
      const before = await members().findOneByOrFail({ id: member.memberId });

      const res = await t.http
        .patch(`${API}/organizations/me/members/${member.memberId}`)
        .set(owner.headers)
        .send({ role: '  ADMIN ', all_boards_write: true, organization_id: MISSING_ID })
        .expect(200);
      expect(res.body).toEqual({
        id: member.memberId,
        organization_id: orgId,
        user_id: member.userId,
        role: 'admin',
        all_boards_read: false,
        all_boards_write: false,
        created_at: before.createdAt.toISOString(),
        updated_at: expect.stringMatching(ISO_Z),
        user: {
          id: member.userId,
          email: member.identity.email,
          name: member.identity.name,
          preferred_name: null,
        },
        board_access: [],
      });
      expect(new Date(res.body.updated_at).getTime()).toBeGreaterThan(before.updatedAt.getTime());
      const after = await members().findOneByOrFail({ id: member.memberId });
      expect(after).toMatchObject({ role: 'admin', allBoardsWrite: false, organizationId: orgId });

      // Blank becomes "member"; any other string is kept (no allowed list).
      const blank = await t.http
        .patch(`${API}/organizations/me/members/${member.memberId}`)
        .set(owner.headers)
        .send({ role: '   ' })
        .expect(200);
      expect(blank.body.role).toBe('member');
      const custom = await t.http
        .patch(`${API}/organizations/me/members/${member.memberId}`)
        .set(owner.headers)
        .send({ role: 'Viewer' })
        .expect(200);
      expect(custom.body.role).toBe('viewer');

      // An empty body changes nothing but updated_at.
      const empty = await t.http
        .patch(`${API}/organizations/me/members/${member.memberId}`)
        .set(owner.headers)
        .send({})
        .expect(200);
      expect(empty.body.role).toBe('viewer');
      expect(new Date(empty.body.updated_at).getTime()).toBeGreaterThan(
        new Date(custom.body.updated_at).getTime(),
      );
    });

    it('lets only owners grant owner: an admin cannot promote anyone, themself included', async () => {
      const { owner, orgId } = await orgFixture();
      const admin = await joinOrg(orgId, { role: 'admin' });
      const res = await t.http
        .patch(`${API}/organizations/me/members/${admin.memberId}`)
        .set(admin.headers)
        .send({ role: 'owner' })
        .expect(403);
      expect(res.body).toEqual({
        detail: 'Only owners can grant or revoke the owner role',
        request_id: expect.any(String),
      });
      expect((await members().findOneByOrFail({ id: admin.memberId })).role).toBe('admin');
      const promoted = await t.http
        .patch(`${API}/organizations/me/members/${admin.memberId}`)
        .set(owner.headers)
        .send({ role: 'owner' })
        .expect(200);
      expect(promoted.body.role).toBe('owner');
    });

    it('refuses to demote the last owner (422), but allows it while another owner remains', async () => {
      const { owner, orgId } = await orgFixture();
      const admin = await joinOrg(orgId, { role: 'admin' });
      const res = await t.http
        .patch(`${API}/organizations/me/members/${owner.memberId}`)
        .set(owner.headers)
        .send({ role: 'admin' })
        .expect(422);
      expect(res.body).toEqual({ detail: LAST_OWNER, request_id: expect.any(String) });
      // An admin may not change an owner's role at all.
      await t.http
        .patch(`${API}/organizations/me/members/${owner.memberId}`)
        .set(admin.headers)
        .send({ role: 'admin' })
        .expect(403);
      expect((await members().findOneByOrFail({ id: owner.memberId })).role).toBe('owner');
      // Re-stating the owner role is not a demotion.
      await t.http
        .patch(`${API}/organizations/me/members/${owner.memberId}`)
        .set(owner.headers)
        .send({ role: ' Owner ' })
        .expect(200);

      const second = await joinOrg(orgId, { role: 'owner' });
      const demoted = await t.http
        .patch(`${API}/organizations/me/members/${owner.memberId}`)
        .set(second.headers)
        .send({ role: 'member' })
        .expect(200);
      expect(demoted.body.role).toBe('member');
      // Now `second` is the only owner and cannot demote themself.
      await t.http
        .patch(`${API}/organizations/me/members/${second.memberId}`)
        .set(second.headers)
        .send({ role: 'admin' })
        .expect(422);
      expect(await members().countBy({ organizationId: orgId, role: 'owner' })).toBe(1);
    });

    it('serialises owner changes: a demotion waits for a concurrent one and then sees it', async () => {
      const { owner, orgId } = await orgFixture();
      const second = await joinOrg(orgId, { role: 'owner' });
      // Another request's transaction, mid-way: it holds the org's owner lock and has demoted
      // `owner`, not yet committed.
      const runner = t.dataSource.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      let settled = false;
      let pending: Promise<{ status: number; body: { detail: string } }> | undefined;
      try {
        await runner.query('SELECT id FROM organizations WHERE id = $1 FOR NO KEY UPDATE', [orgId]);
        await runner.query(`UPDATE organization_members SET role = 'admin' WHERE id = $1`, [
          owner.memberId,
        ]);
        pending = t.http
          .patch(`${API}/organizations/me/members/${second.memberId}`)
          .set(owner.headers)
          .send({ role: 'admin' })
          .then((res) => {
            settled = true;
            return res;
          });
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(settled).toBe(false);
        await runner.commitTransaction();
      } finally {
        if (runner.isTransactionActive) await runner.rollbackTransaction();
        await runner.release();
      }
      const res = await pending;
      expect(res.status).toBe(422);
      expect(res.body.detail).toBe(LAST_OWNER);
      expect(await members().countBy({ organizationId: orgId, role: 'owner' })).toBe(1);
    });

    it('validates the body: null and non-string roles are 422 lists', async () => {
      const { owner, orgId } = await orgFixture();
      const member = await joinOrg(orgId);
      const nullRole = await t.http
        .patch(`${API}/organizations/me/members/${member.memberId}`)
        .set(owner.headers)
        .send({ role: null })
        .expect(422);
      expect(nullRole.body.detail).toEqual([
        expect.objectContaining({ type: 'string_type', loc: ['body', 'role'], input: null }),
      ]);
      await t.http
        .patch(`${API}/organizations/me/members/${member.memberId}`)
        .set(owner.headers)
        .send({ role: 5 })
        .expect(422);
      expect((await members().findOneByOrFail({ id: member.memberId })).role).toBe('member');
    });

    it('is admin-only (403 "Forbidden"), scoped to the active org (404), and checks the UUID', async () => {
      const { owner, orgId } = await orgFixture();
      const member = await joinOrg(orgId);
      const denied = await t.http
        .patch(`${API}/organizations/me/members/${member.memberId}`)
        .set(member.headers)
        .send({ role: 'owner' })
        .expect(403);
      expect(denied.body).toEqual({ detail: 'Forbidden', request_id: expect.any(String) });
      // The admin guard answers before body validation.
      await t.http
        .patch(`${API}/organizations/me/members/${member.memberId}`)
        .set(member.headers)
        .send({ role: null })
        .expect(403);

      // An admin of another org cannot reach this org's members.
      const outsider = await signIn(t.http, t.dataSource);
      for (const id of [member.memberId, MISSING_ID]) {
        const res = await t.http
          .patch(`${API}/organizations/me/members/${id}`)
          .set(outsider.headers)
          .send({ role: 'member' })
          .expect(404);
        expect(res.body.detail).toBe('Not Found');
      }
      const bad = await t.http
        .patch(`${API}/organizations/me/members/123`)
        .set(owner.headers)
        .send({ role: 'member' })
        .expect(422);
      expect(bad.body.detail).toEqual([
        expect.objectContaining({ type: 'uuid_parsing', loc: ['path', 'member_id'], input: '123' }),
      ]);
      expect((await members().findOneByOrFail({ id: member.memberId })).role).toBe('member');
    });
  });

  describe('T10 PUT /organizations/me/members/:memberId/access', () => {
    it('replaces the flags and board rows, storing can_read/can_write as sent', async () => {
      const { owner, orgId, gateway, board } = await orgFixture();
      const board2 = await buildBoard(t.dataSource, orgId, gateway.id);
      const board3 = await buildBoard(t.dataSource, orgId, gateway.id);
      const member = await joinOrg(orgId, { allBoardsRead: true });
      const old = await grantBoard(t.dataSource, member.memberId, board3.id, { canWrite: true });

      const res = await t.http
        .put(`${API}/organizations/me/members/${member.memberId}/access`)
        .set(owner.headers)
        .send({
          board_access: [
            { board_id: board.id.toUpperCase(), can_write: true, can_read: false, extra: 1 },
            { board_id: board2.id },
          ],
        })
        .expect(200);
      expect(res.body).toMatchObject({
        id: member.memberId,
        all_boards_read: false,
        all_boards_write: false,
        board_access: [],
        user: { id: member.userId },
      });
      const rows = await accessRows().find({ where: { organizationMemberId: member.memberId } });
      expect(
        rows
          .map((r) => [r.boardId, r.canRead, r.canWrite])
          .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      ).toEqual(
        [
          [board.id, false, true],
          [board2.id, true, false],
        ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      );
      expect(rows.map((r) => r.id)).not.toContain(old.id);

      // Read back through the API.
      const read = await t.http
        .get(`${API}/organizations/me/members/${member.memberId}`)
        .set(owner.headers)
        .expect(200);
      expect(read.body.board_access).toHaveLength(2);
      expect(read.body.board_access).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ board_id: board.id, can_read: false, can_write: true }),
        ]),
      );
    });

    it('with a flag set, drops every board row; an empty body revokes everything', async () => {
      const { owner, orgId, board } = await orgFixture();
      const member = await joinOrg(orgId);
      await grantBoard(t.dataSource, member.memberId, board.id);
      const flagged = await t.http
        .put(`${API}/organizations/me/members/${member.memberId}/access`)
        .set(owner.headers)
        .send({ all_boards_write: true, board_access: [{ board_id: board.id }] })
        .expect(200);
      expect(flagged.body).toMatchObject({ all_boards_read: false, all_boards_write: true });
      expect(await accessRows().countBy({ organizationMemberId: member.memberId })).toBe(0);

      const revoked = await t.http
        .put(`${API}/organizations/me/members/${member.memberId}/access`)
        .set(owner.headers)
        .send({})
        .expect(200);
      expect(revoked.body).toMatchObject({ all_boards_read: false, all_boards_write: false });
      const mine = await t.http
        .get(`${API}/organizations/me/member`)
        .set(member.headers)
        .expect(200);
      expect(mine.body).toMatchObject({
        all_boards_read: false,
        all_boards_write: false,
        board_access: [],
      });
    });

    it('lets an admin change an owner, or themself', async () => {
      const { owner, orgId } = await orgFixture();
      const admin = await joinOrg(orgId, { role: 'admin' });
      await t.http
        .put(`${API}/organizations/me/members/${owner.memberId}/access`)
        .set(admin.headers)
        .send({ all_boards_read: true })
        .expect(200);
      expect(await members().findOneByOrFail({ id: owner.memberId })).toMatchObject({
        allBoardsRead: true,
        allBoardsWrite: false,
      });
      await t.http
        .put(`${API}/organizations/me/members/${admin.memberId}/access`)
        .set(admin.headers)
        .send({ all_boards_write: true })
        .expect(200);
    });

    it('rejects a board of another org with 422 "Unprocessable Entity" and changes nothing', async () => {
      const { owner, orgId, board } = await orgFixture();
      const other = await orgFixture();
      const member = await joinOrg(orgId);
      await grantBoard(t.dataSource, member.memberId, board.id);
      for (const body of [
        { board_access: [{ board_id: board.id }, { board_id: other.board.id }] },
        // Checked even when a flag makes the rows irrelevant.
        { all_boards_read: true, board_access: [{ board_id: MISSING_ID }] },
      ]) {
        const res = await t.http
          .put(`${API}/organizations/me/members/${member.memberId}/access`)
          .set(owner.headers)
          .send(body)
          .expect(422);
        expect(res.body).toEqual({
          detail: 'Unprocessable Entity',
          request_id: expect.any(String),
        });
      }
      const rows = await accessRows().find({ where: { organizationMemberId: member.memberId } });
      expect(rows.map((r) => r.boardId)).toEqual([board.id]);
      expect(await members().findOneByOrFail({ id: member.memberId })).toMatchObject({
        allBoardsRead: false,
      });
    });

    it('rejects a repeated board id with 422 and a clear detail (not a 500)', async () => {
      const { owner, orgId, board } = await orgFixture();
      const member = await joinOrg(orgId);
      const res = await t.http
        .put(`${API}/organizations/me/members/${member.memberId}/access`)
        .set(owner.headers)
        .send({
          board_access: [
            { board_id: board.id },
            { board_id: board.id.toUpperCase(), can_write: true },
          ],
        })
        .expect(422);
      expect(res.body).toEqual({
        detail: 'Duplicate board_id in board_access',
        request_id: expect.any(String),
      });
      expect(await accessRows().countBy({ organizationMemberId: member.memberId })).toBe(0);
    });

    it('validates the body as a 422 list', async () => {
      const { owner, orgId } = await orgFixture();
      const member = await joinOrg(orgId);
      const res = await t.http
        .put(`${API}/organizations/me/members/${member.memberId}/access`)
        .set(owner.headers)
        .send({
          all_boards_read: 'yes',
          board_access: [{ board_id: 'x' }, { can_read: null }],
        })
        .expect(422);
      expect(res.body.detail).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'bool_type', loc: ['body', 'all_boards_read'] }),
          expect.objectContaining({
            type: 'uuid_parsing',
            loc: ['body', 'board_access', 0, 'board_id'],
            input: 'x',
          }),
          expect.objectContaining({
            type: 'missing',
            loc: ['body', 'board_access', 1, 'board_id'],
          }),
          expect.objectContaining({
            type: 'bool_type',
            loc: ['body', 'board_access', 1, 'can_read'],
          }),
        ]),
      );
      const notList = await t.http
        .put(`${API}/organizations/me/members/${member.memberId}/access`)
        .set(owner.headers)
        .send({ board_access: { board_id: MISSING_ID } })
        .expect(422);
      expect(notList.body.detail).toEqual(
        expect.arrayContaining([expect.objectContaining({ loc: ['body', 'board_access'] })]),
      );
    });

    it('is admin-only, scoped to the active org, and checks the UUID', async () => {
      const { owner, orgId } = await orgFixture();
      const member = await joinOrg(orgId);
      const denied = await t.http
        .put(`${API}/organizations/me/members/${member.memberId}/access`)
        .set(member.headers)
        .send({ all_boards_write: true })
        .expect(403);
      expect(denied.body.detail).toBe('Forbidden');
      const outsider = await signIn(t.http, t.dataSource);
      await t.http
        .put(`${API}/organizations/me/members/${member.memberId}/access`)
        .set(outsider.headers)
        .send({ all_boards_write: true })
        .expect(404);
      const bad = await t.http
        .put(`${API}/organizations/me/members/zzz/access`)
        .set(owner.headers)
        .send({})
        .expect(422);
      expect(bad.body.detail[0]).toMatchObject({
        type: 'uuid_parsing',
        loc: ['path', 'member_id'],
      });
      expect(await members().findOneByOrFail({ id: member.memberId })).toMatchObject({
        allBoardsWrite: false,
      });
    });
  });

  describe('T11 DELETE /organizations/me/members/:memberId', () => {
    it('removes the member and its board rows, and moves their active org to the oldest other', async () => {
      const { owner, orgId, board } = await orgFixture();
      const member = await joinOrg(orgId);
      await grantBoard(t.dataSource, member.memberId, board.id);
      // A newer org of the removed user, to show the oldest membership (Personal) wins.
      const newer = await t.http
        .post(`${API}/organizations`)
        .set(member.headers)
        .send({ name: `Newer ${Math.random().toString(36).slice(2, 10)}` })
        .expect(200);
      await t.http
        .patch(`${API}/organizations/me/active`)
        .set(member.headers)
        .send({ organization_id: orgId })
        .expect(200);
      const invite = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({ invited_email: 'someone@example.test' })
        .expect(200);

      const res = await t.http
        .delete(`${API}/organizations/me/members/${member.memberId}`)
        .set(owner.headers)
        .expect(200);
      expect(res.body).toEqual({ ok: true });
      expect(await members().findOneBy({ id: member.memberId })).toBeNull();
      expect(await accessRows().countBy({ organizationMemberId: member.memberId })).toBe(0);
      const user = await t.dataSource.getRepository(User).findOneByOrFail({ id: member.userId });
      expect(user.activeOrganizationId).toBe(member.organizationId);
      expect(user.activeOrganizationId).not.toBe(newer.body.id);
      // Invites are untouched.
      expect(
        await t.dataSource.getRepository(OrganizationInvite).countBy({ id: invite.body.id }),
      ).toBe(1);

      const list = await t.http
        .get(`${API}/organizations/me/members`)
        .set(owner.headers)
        .expect(200);
      expect(list.body.items.map((m: { id: string }) => m.id)).toEqual([owner.memberId]);
      const mine = await t.http.get(`${API}/organizations/me`).set(member.headers).expect(200);
      expect(mine.body.id).toBe(member.organizationId);
    });

    it('leaves the removed user active org alone when it is another org, and nulls it when none is left', async () => {
      const { owner, orgId } = await orgFixture();
      const elsewhere = await joinOrg(orgId);
      await t.http
        .patch(`${API}/organizations/me/active`)
        .set(elsewhere.headers)
        .send({ organization_id: elsewhere.organizationId })
        .expect(200);
      await t.http
        .delete(`${API}/organizations/me/members/${elsewhere.memberId}`)
        .set(owner.headers)
        .expect(200);
      const kept = await t.dataSource.getRepository(User).findOneByOrFail({ id: elsewhere.userId });
      expect(kept.activeOrganizationId).toBe(elsewhere.organizationId);

      const only = await joinOrg(orgId);
      // Drop their Personal membership, so this org is their only one.
      await members().delete({ userId: only.userId, organizationId: only.organizationId });
      await t.http
        .delete(`${API}/organizations/me/members/${only.memberId}`)
        .set(owner.headers)
        .expect(200);
      const none = await t.dataSource.getRepository(User).findOneByOrFail({ id: only.userId });
      expect(none.activeOrganizationId).toBeNull();
    });

    it('refuses self-removal: 403 "You cannot remove yourself from the organization"', async () => {
      const { owner, orgId } = await orgFixture();
      const admin = await joinOrg(orgId, { role: 'admin' });
      for (const caller of [owner, admin]) {
        const res = await t.http
          .delete(`${API}/organizations/me/members/${caller.memberId}`)
          .set(caller.headers)
          .expect(403);
        expect(res.body).toEqual({
          detail: 'You cannot remove yourself from the organization',
          request_id: expect.any(String),
        });
      }
      expect(await members().countBy({ organizationId: orgId })).toBe(2);
    });

    it('lets only owners remove owners: 403 "Only owners can remove owners"', async () => {
      const { owner, orgId } = await orgFixture();
      const admin = await joinOrg(orgId, { role: 'admin' });
      const second = await joinOrg(orgId, { role: 'owner' });
      const res = await t.http
        .delete(`${API}/organizations/me/members/${second.memberId}`)
        .set(admin.headers)
        .expect(403);
      expect(res.body).toEqual({
        detail: 'Only owners can remove owners',
        request_id: expect.any(String),
      });
      // An admin may remove an admin; an owner may remove another owner while one remains.
      const admin2 = await joinOrg(orgId, { role: 'admin' });
      await t.http
        .delete(`${API}/organizations/me/members/${admin2.memberId}`)
        .set(admin.headers)
        .expect(200);
      await t.http
        .delete(`${API}/organizations/me/members/${second.memberId}`)
        .set(owner.headers)
        .expect(200);
      expect(await members().countBy({ organizationId: orgId, role: 'owner' })).toBe(1);
    });

    it('is admin-only, scoped to the active org, and checks the UUID', async () => {
      const { owner, orgId } = await orgFixture();
      const member = await joinOrg(orgId);
      const other = await joinOrg(orgId);
      const denied = await t.http
        .delete(`${API}/organizations/me/members/${other.memberId}`)
        .set(member.headers)
        .expect(403);
      expect(denied.body.detail).toBe('Forbidden');
      const outsider = await signIn(t.http, t.dataSource);
      for (const id of [other.memberId, MISSING_ID]) {
        const res = await t.http
          .delete(`${API}/organizations/me/members/${id}`)
          .set(outsider.headers)
          .expect(404);
        expect(res.body.detail).toBe('Not Found');
      }
      const bad = await t.http
        .delete(`${API}/organizations/me/members/not-a-uuid`)
        .set(owner.headers)
        .expect(422);
      expect(bad.body.detail).toEqual([
        {
          type: 'uuid_parsing',
          loc: ['path', 'member_id'],
          msg: 'Input should be a valid UUID',
          input: 'not-a-uuid',
        },
      ]);
      expect(await members().countBy({ organizationId: orgId })).toBe(3);
    });
  });
});
