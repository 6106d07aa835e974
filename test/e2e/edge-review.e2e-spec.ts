import { SignJWT } from 'jose';
import { Agent } from '../../src/agents/entities/agent.entity';
import { OrganizationInvite } from '../../src/organizations/entities/organization-invite.entity';
import { OrganizationMember } from '../../src/organizations/entities/organization-member.entity';
import { User } from '../../src/users/entities/user.entity';
import { bearer, newIdentity, userToken } from '../support/auth';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  signIn,
  signInOwnerOfNewOrganization,
  signInMember,
  SignedInUser,
} from '../support/builders';
import { API } from '../support/expectations';
import { createTestApp, TEST_JWT_SECRET, TestApp } from '../support/test-app';

/** A token with exactly these claims (plus sub, iat, exp): no defaults filled in. */
function rawToken(sub: string, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

/** Review findings on the edge hardening: each test reproduces one finding. */
describe('edge review findings', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const invites = () => t.dataSource.getRepository(OrganizationInvite);
  const members = () => t.dataSource.getRepository(OrganizationMember);

  async function ownedOrg(): Promise<{ owner: SignedInUser; orgId: string }> {
    return signInOwnerOfNewOrganization(t.http, t.dataSource, 'Review');
  }

  async function ownerInvite(owner: SignedInUser, email: string): Promise<OrganizationInvite> {
    const res = await t.http
      .post(`${API}/organizations/me/invites`)
      .set(owner.headers)
      .send({ invited_email: email, role: 'owner' })
      .expect(200);
    return invites().findOneByOrFail({ id: res.body.id as string });
  }

  describe('finding 1: accepting an invite takes the invitee verified email', () => {
    it('an admin cannot accept an owner invite without an email claim or with an unverified one', async () => {
      const { owner, orgId } = await ownedOrg();
      const invite = await ownerInvite(owner, 'new-owner@example.test');
      const admin = await signInMember(t.http, t.dataSource, orgId, { role: 'admin' });

      const noEmail = await rawToken(admin.identity.sub, {});
      const unverified = await rawToken(admin.identity.sub, {
        email: 'new-owner@example.test',
        email_verified: false,
      });
      for (const token of [noEmail, unverified]) {
        const res = await t.http
          .post(`${API}/organizations/invites/accept`)
          .set(bearer(token))
          .send({ token: invite.token });
        expect({ status: res.status, body: res.body as unknown }).toEqual({
          status: 403,
          body: { detail: 'Forbidden', request_id: expect.any(String) as unknown },
        });
      }
      expect((await members().findOneByOrFail({ id: admin.memberId })).role).toBe('admin');
      expect((await invites().findOneByOrFail({ id: invite.id })).acceptedAt).toBeNull();
    });

    it('non-owners list owner invites without their token; owners see it', async () => {
      const { owner, orgId } = await ownedOrg();
      const invite = await ownerInvite(owner, 'owner-to-be@example.test');
      await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({ invited_email: 'plain@example.test', role: 'member' })
        .expect(200);
      const admin = await signInMember(t.http, t.dataSource, orgId, { role: 'admin' });

      const asAdmin = await t.http
        .get(`${API}/organizations/me/invites`)
        .set(admin.headers)
        .expect(200);
      const tokens = Object.fromEntries(
        (asAdmin.body.items as { role: string; token: string | null }[]).map((item) => [
          item.role,
          item.token,
        ]),
      );
      expect(tokens).toEqual({ owner: null, member: expect.any(String) as unknown });

      const asOwner = await t.http
        .get(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .expect(200);
      expect(
        (asOwner.body.items as { id: string; token: string }[]).find(
          (item) => item.id === invite.id,
        )?.token,
      ).toBe(invite.token);
    });

    it('the invitee, with a verified email, accepts the owner invite', async () => {
      const { owner, orgId } = await ownedOrg();
      const invitee = await signIn(t.http, t.dataSource);
      const invite = await ownerInvite(owner, invitee.identity.email!);
      const res = await t.http
        .post(`${API}/organizations/invites/accept`)
        .set(invitee.headers)
        .send({ token: invite.token })
        .expect(200);
      expect(res.body).toMatchObject({ organization_id: orgId, role: 'owner' });
    });
  });

  it('finding 1, AUTH_JWT_TRUST_EMAIL=true: an email claim without email_verified accepts', async () => {
    const trusting = await createTestApp({ AUTH_JWT_TRUST_EMAIL: 'true' });
    try {
      const boss = await signIn(trusting.http, trusting.dataSource);
      const email = `trusted-accept-${Date.now()}@example.test`;
      const invitee = await signIn(trusting.http, trusting.dataSource);
      const invite = await trusting.http
        .post(`${API}/organizations/me/invites`)
        .set(boss.headers)
        .send({ invited_email: email, role: 'owner' })
        .expect(200);
      const accept = (token: string) =>
        trusting.http
          .post(`${API}/organizations/invites/accept`)
          .set(bearer(token))
          .send({ token: invite.body.token as string });
      // Trusting the claim does not make a missing one match.
      await accept(await rawToken(invitee.identity.sub, {})).expect(403);
      const res = await accept(await rawToken(invitee.identity.sub, { email })).expect(200);
      expect(res.body).toMatchObject({ organization_id: boss.organizationId, role: 'owner' });
    } finally {
      await trusting.close();
    }
  });

  describe('finding 2: strings and keys that are not well-formed UTF-16 are a 422', () => {
    it('lone surrogates in jsonb values, keys and text columns', async () => {
      const { owner, orgId } = await ownedOrg();
      await t.http
        .patch(`${API}/organizations/me/active`)
        .set(owner.headers)
        .send({ organization_id: orgId })
        .expect(200);
      const gateway = await buildGateway(t.dataSource, orgId);
      const board = await buildBoard(t.dataSource, orgId, gateway.id);
      const raw = (method: 'patch' | 'post', path: string, json: string) =>
        t.http[method](`${API}${path}`)
          .set(owner.headers)
          .set('Content-Type', 'application/json')
          .send(json);
      const answers = [
        await raw('patch', `/boards/${board.id}`, '{"success_metrics":{"a":"\\ud800"}}'),
        await raw(
          'post',
          '/boards',
          `{"name":"S","slug":"s-${Date.now()}","gateway_id":"${gateway.id}",` +
            '"board_type":"goal","objective":"o","success_metrics":{"\\udc00":1}}',
        ),
        await raw('patch', '/users/me', '{"name":"a\\udfffb"}'),
      ];
      expect(answers.map((res) => [res.status, (res.body as { detail: unknown }).detail])).toEqual(
        answers.map(() => [
          422,
          [
            expect.objectContaining({
              type: 'value_error',
              msg: expect.stringContaining('surrogate') as unknown,
            }),
          ],
        ]),
      );
      const user = await t.dataSource.getRepository(User).findOneByOrFail({ id: owner.userId });
      expect(user.name).toBe(owner.identity.name);
    });
  });

  describe('finding 3: pagination numbers beyond what PostgreSQL takes are a 422', () => {
    it('huge offsets answer 422 on paginated routes; the largest allowed one answers 200', async () => {
      const owner = await signIn(t.http, t.dataSource);
      for (const offset of ['9223372036854775807', '99999999999999999999', '1e21']) {
        for (const path of ['/boards', '/organizations/me/members', '/organizations/me/invites']) {
          const res = await t.http.get(`${API}${path}?offset=${offset}`).set(owner.headers);
          expect([path, offset, res.status]).toEqual([path, offset, 422]);
        }
      }
      const largest = await t.http
        .get(`${API}/boards?offset=${Number.MAX_SAFE_INTEGER}`)
        .set(owner.headers)
        .expect(200);
      expect(largest.body).toMatchObject({ items: [], offset: Number.MAX_SAFE_INTEGER });
    });
  });

  describe('finding 4: invite auto-join uses only the current token verified email', () => {
    it('a stored (unverified) email does not open an invite for a token without an email claim', async () => {
      const { owner, orgId } = await ownedOrg();
      const victim = `victim-${Date.now()}@example.test`;
      const sub = newIdentity('squatter').sub;
      // First request: an unverified claim of the victim's address.
      await t.http
        .get(`${API}/users/me`)
        .set(bearer(await rawToken(sub, { email: victim, email_verified: false })))
        .expect(200);
      const user = await t.dataSource.getRepository(User).findOneByOrFail({ clerkUserId: sub });
      // The user then leaves every organization (e.g. removed by its owners).
      await members().delete({ userId: user.id });
      await t.dataSource
        .getRepository(User)
        .update({ id: user.id }, { activeOrganizationId: null });
      const invite = await t.http
        .post(`${API}/organizations/me/invites`)
        .set(owner.headers)
        .send({ invited_email: victim, role: 'admin' })
        .expect(200);
      // email_verified without an email claim verifies nothing.
      await t.http
        .get(`${API}/users/me`)
        .set(bearer(await rawToken(sub, { email_verified: true })))
        .expect(200);
      expect(await members().countBy({ userId: user.id, organizationId: orgId })).toBe(0);
      expect(
        (await invites().findOneByOrFail({ id: invite.body.id as string })).acceptedAt,
      ).toBeNull();
    });

    it('an unverified email does not replace a stored one', async () => {
      const identity = newIdentity('keeper');
      await signIn(t.http, t.dataSource, identity);
      await t.http
        .get(`${API}/users/me`)
        .set(
          bearer(
            await userToken({ ...identity, email: 'other@example.test', emailVerified: false }),
          ),
        )
        .expect(200);
      const user = await t.dataSource
        .getRepository(User)
        .findOneByOrFail({ clerkUserId: identity.sub });
      expect(user.email).toBe(identity.email);
    });
  });

  describe('minor: authentication answers before a body is judged (401/403/404 before 422)', () => {
    it('an unsafe body is a 401 without credentials and a 422 with them', async () => {
      const owner = await signIn(t.http, t.dataSource);
      const unsafe = { name: 'a\u0000b' };
      await t.http.patch(`${API}/users/me`).send(unsafe).expect(401);
      await t.http
        .post(`${API}/agent/heartbeat`)
        .set('X-Agent-Token', 'not-a-token')
        .send({ status: '\u0000' })
        .expect(401);
      const judged = await t.http.patch(`${API}/users/me`).set(owner.headers).send(unsafe);
      expect([
        judged.status,
        (judged.body as { detail: { loc: unknown }[] }).detail[0].loc,
      ]).toEqual([422, ['body', 'name']]);
      // Path and query stay judged first: guards read them (board ids) before any handler.
      await t.http.get(`${API}/boards?gateway_id=%00`).expect(422);
    });
  });

  describe('finding 5: a heartbeat keeps the engine-owned statuses', () => {
    it('updating and deleting survive a heartbeat claiming online', async () => {
      const { orgId } = await ownedOrg();
      const gateway = await buildGateway(t.dataSource, orgId);
      const board = await buildBoard(t.dataSource, orgId, gateway.id);
      for (const status of ['updating', 'deleting']) {
        const { agent, token } = await buildAgent(t.dataSource, gateway.id, board.id, { status });
        const res = await t.http
          .post(`${API}/agent/heartbeat`)
          .set('X-Agent-Token', token)
          .send({ status: 'online' })
          .expect(200);
        const stored = await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agent.id });
        expect([status, res.body.status, stored.status, stored.lastSeenAt]).toEqual([
          status,
          status,
          status,
          expect.any(Date),
        ]);
      }
    });
  });
});
