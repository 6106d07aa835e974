import { exportJWK, generateKeyPair, JWK, SignJWT } from 'jose';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { OrganizationMember } from '../../src/organizations/entities/organization-member.entity';
import { User } from '../../src/users/entities/user.entity';
import { bearer, newIdentity, userToken } from '../support/auth';
import { createTestApp, TEST_JWT_SECRET, TEST_LOCAL_TOKEN, TestApp } from '../support/test-app';

describe('AUTH_MODE=local', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ AUTH_MODE: 'local', LOCAL_AUTH_TOKEN: TEST_LOCAL_TOKEN });
  });
  afterAll(async () => {
    await t.close();
  });

  it('maps the shared token to the one local user, with a Personal org', async () => {
    const res = await t.http.get('/api/v1/users/me').set(bearer(TEST_LOCAL_TOKEN)).expect(200);
    expect(res.body).toMatchObject({
      clerk_user_id: 'local-auth-user',
      email: 'admin@home.local',
      name: 'Local User',
    });
    const again = await t.http
      .post('/api/v1/auth/bootstrap')
      .set(bearer(TEST_LOCAL_TOKEN))
      .expect(200);
    expect(again.body.id).toBe(res.body.id);
    const members = await t.dataSource
      .getRepository(OrganizationMember)
      .find({ where: { userId: res.body.id } });
    expect(members).toHaveLength(1);
    expect(members[0]).toMatchObject({ role: 'owner', allBoardsRead: true, allBoardsWrite: true });
  });

  it('accepts a case-insensitive scheme and rejects any other token', async () => {
    await t.http
      .get('/api/v1/users/me')
      .set('Authorization', `bearer   ${TEST_LOCAL_TOKEN}`)
      .expect(200);
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(`${TEST_LOCAL_TOKEN}x`))
      .expect(401);
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(TEST_LOCAL_TOKEN.slice(0, -1)))
      .expect(401);
    await t.http
      .get('/api/v1/users/me')
      .set('Authorization', `Basic ${TEST_LOCAL_TOKEN}`)
      .expect(401);
    // A JWT is not a local token.
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(await userToken(newIdentity())))
      .expect(401);
  });

  it('back-fills a blank local profile but keeps edits', async () => {
    await t.dataSource
      .getRepository(User)
      .update({ clerkUserId: 'local-auth-user' }, { name: null });
    const res = await t.http.get('/api/v1/users/me').set(bearer(TEST_LOCAL_TOKEN)).expect(200);
    expect(res.body.name).toBe('Local User');
    await t.http
      .patch('/api/v1/users/me')
      .set(bearer(TEST_LOCAL_TOKEN))
      .send({ name: 'Grace' })
      .expect(200);
    const after = await t.http.get('/api/v1/users/me').set(bearer(TEST_LOCAL_TOKEN)).expect(200);
    expect(after.body.name).toBe('Grace');
  });
});

describe('AUTH_MODE=jwt with HS256', () => {
  let t: TestApp;
  const secret = new TextEncoder().encode(TEST_JWT_SECRET);

  beforeAll(async () => {
    t = await createTestApp({
      AUTH_JWT_ISSUER: 'https://issuer.test',
      AUTH_JWT_AUDIENCE: 'mission-control',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  const sign = (claims: Record<string, unknown>, edit: (jwt: SignJWT) => SignJWT = (j) => j) =>
    edit(
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .setIssuer('https://issuer.test')
        .setAudience('mission-control')
        .setExpirationTime('5m'),
    ).sign(secret);

  it('creates the user from sub, email and name claims', async () => {
    const token = await sign({
      sub: 'oidc|42',
      email: ' Ada@Example.TEST ',
      given_name: 'Ada',
      family_name: 'L',
    });
    const res = await t.http.get('/api/v1/users/me').set(bearer(token)).expect(200);
    expect(res.body).toMatchObject({
      clerk_user_id: 'oidc|42',
      email: 'ada@example.test',
      name: 'Ada L',
    });
  });

  it('updates a changed email only when verified, and fills the name only when empty', async () => {
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(await sign({ sub: 'oidc|43', email: 'a@x.test', name: 'First' })))
      .expect(200);
    // An unverified email fills an empty column but never replaces a stored one.
    const unverified = await t.http
      .get('/api/v1/users/me')
      .set(bearer(await sign({ sub: 'oidc|43', email: 'b@x.test', name: 'Second' })))
      .expect(200);
    expect(unverified.body).toMatchObject({ email: 'a@x.test', name: 'First' });
    const verified = await t.http
      .get('/api/v1/users/me')
      .set(
        bearer(
          await sign({ sub: 'oidc|43', email: 'b@x.test', email_verified: true, name: 'Second' }),
        ),
      )
      .expect(200);
    expect(verified.body).toMatchObject({ email: 'b@x.test', name: 'First' });
  });

  it.each([
    ['expired', (j: SignJWT) => j.setExpirationTime(Math.floor(Date.now() / 1000) - 120)],
    ['not yet valid', (j: SignJWT) => j.setNotBefore(Math.floor(Date.now() / 1000) + 600)],
    ['wrong issuer', (j: SignJWT) => j.setIssuer('https://evil.test')],
    ['wrong audience', (j: SignJWT) => j.setAudience('someone-else')],
  ])('rejects a token that is %s', async (_label, edit) => {
    const token = await sign({ sub: 'oidc|44' }, edit);
    await t.http.get('/api/v1/users/me').set(bearer(token)).expect(401);
  });

  it('rejects a token without sub, and unsigned tokens', async () => {
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(await sign({})))
      .expect(401);
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ sub: 'oidc|45', exp: 9999999999 })).toString(
      'base64url',
    );
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(`${header}.${payload}.`))
      .expect(401);
  });

  it('concurrent first requests of a new user create exactly one user and one Personal org', async () => {
    const token = await sign({ sub: 'oidc|race', email: 'race@x.test' });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => t.http.post('/api/v1/auth/bootstrap').set(bearer(token))),
    );
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const users = await t.dataSource
      .getRepository(User)
      .find({ where: { clerkUserId: 'oidc|race' } });
    expect(users).toHaveLength(1);
    const members = await t.dataSource
      .getRepository(OrganizationMember)
      .find({ where: { userId: users[0].id } });
    expect(members).toHaveLength(1);
  });
});

describe('AUTH_MODE=jwt with a JWKS (RS256 and ES256)', () => {
  let t: TestApp;
  let server: Server;
  let keys: JWK[] = [];
  let jwksRequests = 0;

  async function newKey(alg: 'RS256' | 'ES256', kid: string) {
    const pair = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
    return { privateKey: pair.privateKey, jwk };
  }

  const sign = (
    key: Awaited<ReturnType<typeof newKey>>['privateKey'],
    alg: string,
    kid: string,
    sub: string,
  ) =>
    new SignJWT({ email: `${sub}@jwks.test` })
      .setProtectedHeader({ alg, kid })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key);

  beforeAll(async () => {
    server = createServer((_req, res) => {
      jwksRequests += 1;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    t = await createTestApp({
      AUTH_JWT_SECRET: undefined,
      AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
    });
  });
  afterAll(async () => {
    await t.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('verifies RS256 and ES256 tokens against the key set, caching it', async () => {
    const rsa = await newKey('RS256', 'rsa-1');
    const ec = await newKey('ES256', 'ec-1');
    keys = [rsa.jwk, ec.jwk];
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(await sign(rsa.privateKey, 'RS256', 'rsa-1', 'rsa-user')))
      .expect(200);
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(await sign(ec.privateKey, 'ES256', 'ec-1', 'ec-user')))
      .expect(200);
    const before = jwksRequests;
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(await sign(rsa.privateKey, 'RS256', 'rsa-1', 'rsa-user')))
      .expect(200);
    expect(jwksRequests).toBe(before);
  });

  it('refetches the key set when a token names an unknown kid (key rotation)', async () => {
    const rotated = await newKey('RS256', 'rsa-2');
    keys = [...keys, rotated.jwk];
    const before = jwksRequests;
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(await sign(rotated.privateKey, 'RS256', 'rsa-2', 'rotated')))
      .expect(200);
    expect(jwksRequests).toBe(before + 1);
  });

  it('rejects a token signed by a key not in the set, and HS256 tokens', async () => {
    const stranger = await newKey('RS256', 'rsa-1');
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(await sign(stranger.privateKey, 'RS256', 'rsa-1', 'x')))
      .expect(401);
    await t.http
      .get('/api/v1/users/me')
      .set(bearer(await userToken(newIdentity())))
      .expect(401);
  });
});
