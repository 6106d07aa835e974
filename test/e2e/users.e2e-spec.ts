import { bearer, newIdentity, userToken } from '../support/auth';
import { signIn } from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';

describe('users and auth bootstrap (AUTH_MODE=jwt)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('bootstrap creates the user from the token claims and a Personal organization', async () => {
    const identity = newIdentity('boot');
    const token = await userToken({ ...identity, email: identity.email!.toUpperCase() });
    const res = await t.http.post('/api/v1/auth/bootstrap').set(bearer(token)).expect(200);
    expect(res.body).toEqual({
      id: expect.any(String),
      clerk_user_id: identity.sub,
      email: identity.email,
      name: identity.name,
      preferred_name: null,
      pronouns: null,
      timezone: null,
      notes: null,
      context: null,
      is_super_admin: false,
    });
    const orgs = await t.http.get('/api/v1/organizations/me/list').set(bearer(token));
    if (orgs.status === 200) {
      expect(orgs.body).toEqual([
        expect.objectContaining({ name: 'Personal', role: 'owner', is_active: true }),
      ]);
    }
  });

  it('PATCH /users/me writes only the keys sent, null clears', async () => {
    const user = await signIn(t.http, t.dataSource);
    await t.http
      .patch('/api/v1/users/me')
      .set(user.headers)
      .send({ preferred_name: 'Ada', timezone: 'Europe/Paris', email: 'ignored@x.test' })
      .expect(200);
    const res = await t.http
      .patch('/api/v1/users/me')
      .set(user.headers)
      .send({ timezone: null, notes: 'likes tea' })
      .expect(200);
    expect(res.body).toMatchObject({
      preferred_name: 'Ada',
      timezone: null,
      notes: 'likes tea',
      email: user.identity.email,
    });
    const me = await t.http.get('/api/v1/users/me').set(user.headers).expect(200);
    expect(me.body).toEqual(res.body);
  });

  it('PATCH /users/me rejects wrong types with a 422 list', async () => {
    const user = await signIn(t.http, t.dataSource);
    const res = await t.http
      .patch('/api/v1/users/me')
      .set(user.headers)
      .send({ name: 42 })
      .expect(422);
    expect(res.body.detail).toEqual([
      expect.objectContaining({ type: 'string_type', loc: ['body', 'name'], input: 42 }),
    ]);
  });

  it('rejects missing, malformed and wrongly signed tokens with 401', async () => {
    await t.http.get('/api/v1/users/me').expect(401);
    await t.http.get('/api/v1/users/me').set('Authorization', 'Bearer not-a-jwt').expect(401);
    const forged = await userToken(newIdentity(), 'another-secret-that-is-long-enough-to-sign');
    const res = await t.http.get('/api/v1/users/me').set(bearer(forged)).expect(401);
    expect(res.body).toEqual({ detail: 'Unauthorized', request_id: expect.any(String) });
  });
});
