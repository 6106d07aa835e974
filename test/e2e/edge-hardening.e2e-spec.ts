import { SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import { Agent } from '../../src/agents/entities/agent.entity';
import { OrganizationInvite } from '../../src/organizations/entities/organization-invite.entity';
import { OrganizationMember } from '../../src/organizations/entities/organization-member.entity';
import { bearer, newIdentity } from '../support/auth';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  signIn,
  SignedInUser,
  signInOwnerOfNewOrganization,
} from '../support/builders';
import { API, REQUEST_ID } from '../support/expectations';
import { createTestApp, TEST_JWT_SECRET, TestApp } from '../support/test-app';

const NUL = '\u0000';

/** A 4xx with the upstream error envelope; for 422 a pydantic-style list naming `loc`. */
function expectIssueAt(res: Response, loc: (string | number)[]): void {
  expect(res.status).toBe(422);
  expect(res.body).toEqual({ detail: expect.any(Array) as unknown, request_id: REQUEST_ID });
  const locs = (res.body.detail as { loc: (string | number)[] }[]).map((issue) => issue.loc);
  expect(locs).toContainEqual(loc);
}

function hs256(claims: Record<string, unknown>, withExp = true): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (withExp) jwt.setExpirationTime('1h');
  return jwt.sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

/** Issue 9 items 11-13 and the low edge items: NULs, long strings, huge arrays, tokens, statuses. */
describe('edge hardening (issue 9)', () => {
  let t: TestApp;
  let owner: SignedInUser;
  let gatewayId: string;
  let boardId: string;

  beforeAll(async () => {
    t = await createTestApp();
    owner = await signIn(t.http, t.dataSource);
    gatewayId = (await buildGateway(t.dataSource, owner.organizationId)).id;
    boardId = (await buildBoard(t.dataSource, owner.organizationId, gatewayId)).id;
  });
  afterAll(async () => {
    await t.close();
  });

  const boardBody = (fields: Record<string, unknown> = {}) => ({
    name: 'Edge board',
    slug: 'edge-board',
    gateway_id: gatewayId,
    board_type: 'general',
    ...fields,
  });

  describe('item 11: a NUL character (U+0000) is a 422 for bodies, queries and paths', () => {
    it('PATCH /users/me {"name":"\\u0000"}', async () => {
      const res = await t.http.patch(`${API}/users/me`).set(owner.headers).send({ name: NUL });
      expectIssueAt(res, ['body', 'name']);
    });

    it('organization, board, invite and invite-accept fields', async () => {
      expectIssueAt(
        await t.http
          .post(`${API}/organizations`)
          .set(owner.headers)
          .send({ name: `Org${NUL}x` }),
        ['body', 'name'],
      );
      expectIssueAt(
        await t.http
          .post(`${API}/boards`)
          .set(owner.headers)
          .send(boardBody({ objective: `a${NUL}` })),
        ['body', 'objective'],
      );
      expectIssueAt(
        await t.http.patch(`${API}/boards/${boardId}`).set(owner.headers).send({ slug: NUL }),
        ['body', 'slug'],
      );
      expectIssueAt(
        await t.http
          .post(`${API}/organizations/me/invites`)
          .set(owner.headers)
          .send({ invited_email: `a${NUL}@example.test` }),
        ['body', 'invited_email'],
      );
      expectIssueAt(
        await t.http
          .post(`${API}/organizations/invites/accept`)
          .set(owner.headers)
          .send({ token: NUL }),
        ['body', 'token'],
      );
    });

    it('NULs nested in success_metrics values and keys (jsonb)', async () => {
      expectIssueAt(
        await t.http
          .post(`${API}/boards`)
          .set(owner.headers)
          .send(boardBody({ success_metrics: { deep: [{ value: `x${NUL}` }] } })),
        ['body', 'success_metrics', 'deep', 0, 'value'],
      );
      const badKey = await t.http
        .patch(`${API}/boards/${boardId}`)
        .set(owner.headers)
        .send({ success_metrics: { [`k${NUL}`]: 1 } });
      expect(badKey.status).toBe(422);
    });

    it('POST /agent/heartbeat status', async () => {
      const { token } = await buildAgent(t.dataSource, gatewayId, boardId);
      expectIssueAt(
        await t.http
          .post(`${API}/agent/heartbeat`)
          .set('X-Agent-Token', token)
          .send({
            status: `online${NUL}`,
          }),
        ['body', 'status'],
      );
    });

    it('queries and paths', async () => {
      expectIssueAt(await t.http.get(`${API}/users/me?note=a%00b`).set(owner.headers), [
        'query',
        'note',
      ]);
      const path = await t.http.get(`${API}/boards/%00`).set(owner.headers);
      expect(path.status).toBe(422);
    });

    it('a signed JWT whose sub, email or name holds a NUL is a 401, on every user route', async () => {
      for (const claims of [
        { sub: `user-${NUL}` },
        { sub: 'nul-email', email: `a${NUL}@example.test` },
        { sub: 'nul-name', name: `A${NUL}` },
      ]) {
        const token = await hs256(claims);
        const res = await t.http.get(`${API}/users/me`).set(bearer(token));
        expect(res.status).toBe(401);
        expect(res.body).toEqual({ detail: 'Unauthorized', request_id: REQUEST_ID });
      }
    });
  });

  describe('item 12: over-long strings are a 422, never an index error', () => {
    // Incompressible, so PostgreSQL cannot squeeze it under the btree row limit (2704 bytes).
    const long = randomBytes(1500).toString('hex');

    it('organization name, board slug and board_type', async () => {
      const org = await t.http.post(`${API}/organizations`).set(owner.headers).send({ name: long });
      expectIssueAt(org, ['body', 'name']);
      expect(org.body.detail[0].type).toBe('string_too_long');
      expectIssueAt(
        await t.http
          .post(`${API}/boards`)
          .set(owner.headers)
          .send(boardBody({ slug: long })),
        ['body', 'slug'],
      );
      expectIssueAt(
        await t.http
          .patch(`${API}/boards/${boardId}`)
          .set(owner.headers)
          .send({ board_type: long }),
        ['body', 'board_type'],
      );
    });

    it('invited_email, invite role and member role', async () => {
      expectIssueAt(
        await t.http
          .post(`${API}/organizations/me/invites`)
          .set(owner.headers)
          .send({ invited_email: `${long}@example.test` }),
        ['body', 'invited_email'],
      );
      expectIssueAt(
        await t.http
          .post(`${API}/organizations/me/invites`)
          .set(owner.headers)
          .send({ invited_email: 'long-role@example.test', role: long }),
        ['body', 'role'],
      );
      expectIssueAt(
        await t.http
          .patch(`${API}/organizations/me/members/${owner.memberId}`)
          .set(owner.headers)
          .send({ role: long }),
        ['body', 'role'],
      );
    });

    it('a JWT subject too long for the users index is a 401', async () => {
      const res = await t.http.get(`${API}/users/me`).set(bearer(await hs256({ sub: long })));
      expect(res.status).toBe(401);
    });

    it('free JSON (success_metrics) is bounded in depth and size', async () => {
      // Built as text: a JSON serializer would itself recurse 50,000 levels deep.
      const depth = 50_000;
      const deepBody =
        JSON.stringify(boardBody()).slice(0, -1) +
        ',"success_metrics":' +
        '{"a":'.repeat(depth) +
        '1' +
        '}'.repeat(depth) +
        '}';
      const res = await t.http
        .post(`${API}/boards`)
        .set(owner.headers)
        .set('Content-Type', 'application/json')
        .send(deepBody);
      expect(res.status).toBe(422);
      expect(res.body.request_id).toEqual(expect.any(String));
      const nine = { a: { a: { a: { a: { a: { a: { a: { a: { a: 1 } } } } } } } } };
      expectIssueAt(
        await t.http
          .post(`${API}/boards`)
          .set(owner.headers)
          .send(boardBody({ success_metrics: nine })),
        ['body', 'success_metrics'],
      );
      const wide = Object.fromEntries(
        Array.from({ length: 2_000 }, (_, i) => [`k${i}`, 'v'.repeat(200)]),
      );
      const big = await t.http
        .post(`${API}/boards`)
        .set(owner.headers)
        .send(boardBody({ success_metrics: wide }));
      expectIssueAt(big, ['body', 'success_metrics']);
    });
  });

  describe('item 13: huge arrays are a 422, not a stack overflow', () => {
    it('PUT member access with 150,000 board_access items', async () => {
      const res = await t.http
        .put(`${API}/organizations/me/members/${owner.memberId}/access`)
        .set(owner.headers)
        .send({ board_access: Array.from({ length: 150_000 }, () => ({})) });
      expect(res.status).toBe(422);
      expect(res.body.request_id).toEqual(expect.any(String));
    });

    it('POST invite with 150,000 nulls in board_access', async () => {
      const res = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({
          invited_email: 'many@example.test',
          board_access: Array.from({ length: 150_000 }, () => null),
        });
      expect(res.status).toBe(422);
    });

    it('just past the DTO bound: 1,001 items are refused with too_long', async () => {
      const res = await t.http
        .put(`${API}/organizations/me/members/${owner.memberId}/access`)
        .set(owner.headers)
        .send({
          board_access: Array.from({ length: 1_001 }, () => ({ board_id: boardId })),
        });
      expectIssueAt(res, ['body', 'board_access']);
      expect(res.body.detail.some((issue: { type: string }) => issue.type === 'too_long')).toBe(
        true,
      );
    });
  });

  describe('board and gateway belong to one organization (enforced by the database)', () => {
    it('refuses a direct insert or update of a board pointing at another organization gateway', async () => {
      const other = await signIn(t.http, t.dataSource);
      const foreignGateway = await buildGateway(t.dataSource, other.organizationId);
      await expect(
        t.dataSource.query(
          `INSERT INTO boards (organization_id, gateway_id, name, slug, board_type)
           VALUES ($1, $2, 'Cross', 'cross', 'general')`,
          [owner.organizationId, foreignGateway.id],
        ),
      ).rejects.toThrow(/foreign key/);
      await expect(
        t.dataSource.query(`UPDATE boards SET gateway_id = $1 WHERE id = $2`, [
          foreignGateway.id,
          boardId,
        ]),
      ).rejects.toThrow(/foreign key/);
      await expect(
        t.dataSource.query(`UPDATE gateways SET organization_id = $1 WHERE id = $2`, [
          other.organizationId,
          gatewayId,
        ]),
      ).rejects.toThrow(/foreign key/);
      // The same organization's gateway, and no gateway at all, stay allowed.
      await t.dataSource.query(
        `INSERT INTO boards (organization_id, gateway_id, name, slug, board_type)
         VALUES ($1, $2, 'Same', 'same', 'general'), ($1, NULL, 'None', 'none', 'general')`,
        [owner.organizationId, gatewayId],
      );
    });
  });

  describe('JWTs without exp', () => {
    it('are refused with 401', async () => {
      const token = await hs256({ sub: `no-exp-${Date.now()}` }, false);
      await t.http.get(`${API}/users/me`).set(bearer(token)).expect(401);
    });
  });

  describe('agent heartbeat statuses', () => {
    it('accepts only statuses an agent may claim; the engine-owned ones are a 422', async () => {
      const { agent, token } = await buildAgent(t.dataSource, gatewayId, boardId);
      for (const status of ['deleting', 'updating', 'provisioning', 'offline', 'hacked']) {
        const res = await t.http
          .post(`${API}/agent/heartbeat`)
          .set('X-Agent-Token', token)
          .send({ status });
        expectIssueAt(res, ['body', 'status']);
      }
      // None of the refused ones stuck, and a refused heartbeat records nothing: the heartbeat
      // route skips authentication's presence write (its own write records presence), so the
      // agent is still where it was.
      expect(
        (await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id })).status,
      ).toBe('provisioning');
      for (const status of ['busy', ' Online ']) {
        await t.http
          .post(`${API}/agent/heartbeat`)
          .set('X-Agent-Token', token)
          .send({ status })
          .expect(200);
      }
      expect(
        (await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id })).status,
      ).toBe('online');
    });
  });

  describe('item 10: only owners grant or revoke owner', () => {
    async function orgWithAdmin() {
      const { owner: boss, orgId } = await signInOwnerOfNewOrganization(
        t.http,
        t.dataSource,
        'Owners',
      );
      const members = t.dataSource.getRepository(OrganizationMember);
      const bossMember = await members.findOneByOrFail({
        organizationId: orgId,
        userId: boss.userId,
      });
      const join = async (role: string) => {
        const user = await signIn(t.http, t.dataSource, newIdentity(role));
        const member = await members.save({
          organizationId: orgId,
          userId: user.userId,
          role,
          allBoardsRead: false,
          allBoardsWrite: false,
        });
        await t.http
          .patch(`${API}/organizations/me/active`)
          .set(user.headers)
          .send({ organization_id: orgId })
          .expect(200);
        return { ...user, memberId: member.id };
      };
      return { boss: { ...boss, memberId: bossMember.id }, orgId, join, members };
    }

    it('an admin cannot make anyone owner, nor change an owner role; an owner can', async () => {
      const { boss, join, members } = await orgWithAdmin();
      const admin = await join('admin');
      const plain = await join('member');
      const second = await join('owner');
      const patchRole = (caller: SignedInUser, memberId: string, role: string) =>
        t.http
          .patch(`${API}/organizations/me/members/${memberId}`)
          .set(caller.headers)
          .send({ role });

      for (const [memberId, role] of [
        [admin.memberId, 'owner'],
        [plain.memberId, ' OWNER '],
        [second.memberId, 'admin'],
        [boss.memberId, 'member'],
      ]) {
        const res = await patchRole(admin, memberId, role);
        expect(res.status).toBe(403);
        expect(res.body).toEqual({ detail: expect.any(String) as unknown, request_id: REQUEST_ID });
      }
      expect((await members.findOneByOrFail({ id: admin.memberId })).role).toBe('admin');
      expect((await members.findOneByOrFail({ id: plain.memberId })).role).toBe('member');
      expect((await members.findOneByOrFail({ id: second.memberId })).role).toBe('owner');

      // Admins still manage non-owner roles; owners grant and revoke owner.
      expect((await patchRole(admin, plain.memberId, 'admin').expect(200)).body.role).toBe('admin');
      expect((await patchRole(boss, plain.memberId, 'owner').expect(200)).body.role).toBe('owner');
      expect((await patchRole(boss, second.memberId, 'member').expect(200)).body.role).toBe(
        'member',
      );
    });

    it('an admin cannot invite an owner; an owner can', async () => {
      const { boss, join } = await orgWithAdmin();
      const admin = await join('admin');
      const res = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(admin.headers)
        .send({ invited_email: 'would-be-owner@example.test', role: 'Owner' });
      expect(res.status).toBe(403);
      expect(
        await t.dataSource.getRepository(OrganizationInvite).countBy({
          invitedEmail: 'would-be-owner@example.test',
        }),
      ).toBe(0);
      await t.http
        .post(`${API}/organizations/me/invites`)
        .set(admin.headers)
        .send({ invited_email: 'admin-invite@example.test', role: 'admin' })
        .expect(200);
      const byOwner = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(boss.headers)
        .send({ invited_email: 'real-owner@example.test', role: 'owner' })
        .expect(200);
      expect(byOwner.body.role).toBe('owner');
    });
  });

  describe('item 10: pending invites are auto-accepted only for verified emails', () => {
    async function pendingInviteFor(email: string): Promise<string> {
      const { owner: inviter, orgId } = await signInOwnerOfNewOrganization(
        t.http,
        t.dataSource,
        'Verified',
      );
      const invite = await t.dataSource.getRepository(OrganizationInvite).save({
        organizationId: orgId,
        invitedEmail: email,
        token: `tok-${Math.random().toString(36).slice(2)}`,
        role: 'admin',
        allBoardsRead: true,
        allBoardsWrite: true,
        createdByUserId: inviter.userId,
        acceptedByUserId: null,
        acceptedAt: null,
      });
      return invite.organizationId;
    }

    async function firstRequest(app: TestApp, claims: Record<string, unknown>) {
      const res = await app.http
        .post(`${API}/auth/bootstrap`)
        .set(bearer(await hs256(claims)))
        .expect(200);
      return app.dataSource
        .getRepository(OrganizationMember)
        .find({ where: { userId: res.body.id as string }, relations: { organization: true } });
    }

    it('an email without email_verified does not join the inviting organization', async () => {
      const email = `unverified-${Date.now()}@example.test`;
      const orgId = await pendingInviteFor(email);
      for (const verified of [undefined, false, 'false']) {
        const claims: Record<string, unknown> = { sub: `unverified-${Math.random()}`, email };
        if (verified !== undefined) claims.email_verified = verified;
        const memberships = await firstRequest(t, claims);
        expect(memberships.map((m) => m.organization?.name)).toEqual(['Personal']);
      }
      const invite = await t.dataSource
        .getRepository(OrganizationInvite)
        .findOneByOrFail({ organizationId: orgId });
      expect(invite.acceptedAt).toBeNull();
      const joined = await firstRequest(t, {
        sub: `verified-${Date.now()}`,
        email,
        email_verified: true,
      });
      expect(joined.map((m) => m.organizationId)).toEqual([orgId]);
    });

    it('AUTH_JWT_TRUST_EMAIL=true trusts the email claim', async () => {
      const trusting = await createTestApp({ AUTH_JWT_TRUST_EMAIL: 'true' });
      try {
        const email = `trusted-${Date.now()}@example.test`;
        const boss = await signIn(trusting.http, trusting.dataSource);
        const created = await trusting.http
          .post(`${API}/organizations`)
          .set(boss.headers)
          .send({ name: 'Trusting org' })
          .expect(200);
        await trusting.http
          .post(`${API}/organizations/me/invites`)
          .set(boss.headers)
          .send({ invited_email: email })
          .expect(200);
        const memberships = await firstRequest(trusting, { sub: 'trusted-user', email });
        expect(memberships.map((m) => m.organizationId)).toEqual([created.body.id]);
      } finally {
        await trusting.close();
      }
    });
  });
});
