import fc from 'fast-check';
import type { Response } from 'supertest';
import { buildAgent, buildBoard, buildGateway, signIn, SignedInUser } from '../support/builders';
import { API } from '../support/expectations';
import type { FakeGateway } from '../support/fake-gateway';
import { gatewayFieldsFor, startOpenClawFake } from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

/** Fixed, so a failure replays; bounded, so the suite stays a few seconds long. */
const SEED = 20_261_130;
const RUNS_PER_ROUTE = 40;

/** Halves of a surrogate pair: alone, they are not well-formed Unicode (JSON allows them). */
const loneSurrogate = fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff');

/**
 * Strings a client may send: ordinary ones, NULs or lone surrogates anywhere, long and
 * multi-byte ones.
 */
const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc
    .tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }))
    .map(([head, tail]) => `${head}\u0000${tail}`),
  fc
    .constantFrom(100, 199, 200, 201, 320, 321, 2_000, 3_000, 20_001, 100_000)
    .chain((length) => fc.constantFrom('x', 'é', '😀', 'ab').map((unit) => unit.repeat(length))),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc
    .tuple(fc.string({ maxLength: 20 }), loneSurrogate, fc.string({ maxLength: 20 }))
    .map(([head, half, tail]) => `${head}${half}${tail}`),
  // 'binary' draws whole code points only; these draw single UTF-16 code units, surrogates too.
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)) }),
);

/**
 * Pagination numbers: ordinary, at and beyond every bound (JS safe integers, PostgreSQL bigint,
 * exponent forms), and not numbers at all.
 */
const hostileNumber = fc.oneof(
  fc.integer({ min: -5, max: 1_000 }).map(String),
  fc.bigInt({ min: 0n, max: 2n ** 80n }).map(String),
  fc.constantFrom(
    '9007199254740991',
    '9007199254740992',
    '9223372036854775807',
    '9223372036854775808',
    '99999999999999999999',
    '1e21',
    '1e308',
    '-0',
    '1.5',
    'NaN',
    'Infinity',
    '',
    '0x10',
  ),
);

/** Any JSON value, hostile strings included, a few levels deep. */
const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Arrays from empty to far past every bound (150,000 items stays under the 1 MB body limit). */
const hugeArray = fc
  .constantFrom(0, 1, 999, 1_000, 1_001, 10_001, 150_000)
  .chain((length) =>
    fc
      .constantFrom<unknown>(null, {}, 'x', { board_id: 'not-a-uuid' }, [])
      .map((item) => Array.from({ length }, () => item)),
  );

/** A field's replacement: a hostile string, a huge array or any JSON value. */
const hostileValue = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 1, arbitrary: hugeArray },
  { weight: 2, arbitrary: hostileJson },
);

/** A valid body with some of its fields (and maybe an unknown one) replaced by hostile values. */
function hostileBody(base: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const fields = [...Object.keys(base), 'unexpected'];
  return fc
    .uniqueArray(fc.constantFrom(...fields), { minLength: 1, maxLength: 3 })
    .chain((chosen) =>
      fc.tuple(...chosen.map(() => hostileValue)).map((values) => {
        const body: Record<string, unknown> = { ...base };
        chosen.forEach((field, index) => (body[field] = values[index]));
        return body;
      }),
    );
}

/**
 * encodeURIComponent, except that a lone surrogate (which it refuses) becomes its 3-byte
 * CESU-8 form: bytes that are not valid UTF-8, as a hostile client could send.
 */
function encodeLoosely(text: string): string {
  let encoded = '';
  for (const char of text) {
    const unit = char.charCodeAt(0);
    if (char.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
      encoded += [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
        .map((byte) => `%${byte.toString(16).toUpperCase()}`)
        .join('');
    } else {
      encoded += encodeURIComponent(char);
    }
  }
  return encoded;
}

/** Never a 500; every 4xx carries the upstream envelope (a string or a pydantic list). */
function expectHandled(res: Response, what: string): void {
  if (res.status >= 500) {
    throw new Error(`${what} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  }
  if (res.status >= 400) {
    expect(res.body).toEqual({
      detail: expect.anything() as unknown,
      request_id: expect.any(String) as unknown,
    });
    if (res.status === 422 && Array.isArray(res.body.detail)) {
      for (const issue of res.body.detail as Record<string, unknown>[]) {
        expect(issue).toEqual(
          expect.objectContaining({
            type: expect.any(String) as unknown,
            loc: expect.any(Array) as unknown,
            msg: expect.any(String) as unknown,
          }),
        );
      }
    }
  }
}

/**
 * Property-based edge test (issue 9 items 11-13): NULs, lone surrogates, long strings and huge
 * arrays in the bodies of the tenancy, board and agent routes never reach PostgreSQL or overflow
 * the stack; pagination numbers past PostgreSQL's bigint never reach it either.
 */
describe('edge fuzz: hostile bodies never cause a 500', () => {
  let t: TestApp;
  let owner: SignedInUser;
  let agentToken: string;
  let gatewayId: string;
  let boardId: string;
  /** Agent routes provision on an in-process gateway (test/support/fake-openclaw-state.ts). */
  let fake: FakeGateway;
  let agentBoardId: string;
  let fuzzAgentId: string;
  let leadToken: string;

  beforeAll(async () => {
    t = await createTestApp();
    owner = await signIn(t.http, t.dataSource);
    gatewayId = (await buildGateway(t.dataSource, owner.organizationId)).id;
    boardId = (await buildBoard(t.dataSource, owner.organizationId, gatewayId)).id;
    agentToken = (await buildAgent(t.dataSource, gatewayId, boardId)).token;
    ({ fake } = await startOpenClawFake());
    const fakeGatewayId = (
      await buildGateway(t.dataSource, owner.organizationId, gatewayFieldsFor(fake))
    ).id;
    // Room for every worker the fuzzed lead creates (max_agents caps a lead's creates).
    agentBoardId = (
      await buildBoard(t.dataSource, owner.organizationId, fakeGatewayId, { maxAgents: 100_000 })
    ).id;
    fuzzAgentId = (await buildAgent(t.dataSource, fakeGatewayId, agentBoardId)).agent.id;
    leadToken = (await buildAgent(t.dataSource, fakeGatewayId, agentBoardId, { isBoardLead: true }))
      .token;
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });

  const randomName = () => `Fuzz ${Math.random().toString(36).slice(2)}`;

  interface Route {
    name: string;
    send(body: Record<string, unknown>): Promise<Response>;
    base(): Record<string, unknown>;
  }

  const routes: Route[] = [
    {
      name: 'PATCH /users/me',
      send: (body) => t.http.patch(`${API}/users/me`).set(owner.headers).send(body),
      base: () => ({
        name: 'N',
        preferred_name: 'P',
        pronouns: 'they',
        timezone: 'UTC',
        notes: '',
      }),
    },
    {
      name: 'POST /organizations',
      send: (body) => t.http.post(`${API}/organizations`).set(owner.headers).send(body),
      base: () => ({ name: `Fuzz ${Math.random().toString(36).slice(2)}` }),
    },
    {
      name: 'POST /boards',
      send: (body) => t.http.post(`${API}/boards`).set(owner.headers).send(body),
      base: () => ({
        name: 'Fuzz board',
        slug: `fuzz-${Math.random().toString(36).slice(2)}`,
        gateway_id: gatewayId,
        board_type: 'goal',
        objective: 'Ship',
        success_metrics: { done: true },
        goal_source: 'user',
      }),
    },
    {
      name: 'PATCH /boards/{id}',
      send: (body) => t.http.patch(`${API}/boards/${boardId}`).set(owner.headers).send(body),
      base: () => ({
        name: 'Renamed',
        slug: 'renamed',
        board_type: 'general',
        success_metrics: {},
      }),
    },
    {
      name: 'POST /organizations/me/invites',
      send: (body) => t.http.post(`${API}/organizations/me/invites`).set(owner.headers).send(body),
      base: () => ({
        invited_email: `fuzz-${Math.random().toString(36).slice(2)}@example.test`,
        role: 'member',
        board_access: [{ board_id: boardId, can_read: true, can_write: false }],
      }),
    },
    {
      name: 'POST /organizations/invites/accept',
      send: (body) =>
        t.http.post(`${API}/organizations/invites/accept`).set(owner.headers).send(body),
      base: () => ({ token: 'no-such-invite-token' }),
    },
    {
      name: 'PUT /organizations/me/members/{id}/access',
      send: (body) =>
        t.http
          .put(`${API}/organizations/me/members/${owner.memberId}/access`)
          .set(owner.headers)
          .send(body),
      base: () => ({
        all_boards_read: true,
        all_boards_write: true,
        board_access: [{ board_id: boardId }],
      }),
    },
    {
      name: 'PATCH /organizations/me/members/{id}',
      send: (body) =>
        t.http
          .patch(`${API}/organizations/me/members/${owner.memberId}`)
          .set(owner.headers)
          .send(body),
      base: () => ({ role: 'owner' }),
    },
    {
      name: 'POST /agents',
      send: (body) => t.http.post(`${API}/agents`).set(owner.headers).send(body),
      base: () => ({
        name: randomName(),
        board_id: agentBoardId,
        heartbeat_config: { every: '5m' },
        identity_profile: { role: 'Fuzzer', skills: ['a', 'b'] },
        identity_template: 'I am {{ agent_name }}.',
        soul_template: 'Careful.',
      }),
    },
    {
      name: 'PATCH /agents/{id}',
      send: (body) => t.http.patch(`${API}/agents/${fuzzAgentId}`).set(owner.headers).send(body),
      base: () => ({
        name: randomName(),
        board_id: agentBoardId,
        is_gateway_main: false,
        identity_profile: { role: 'Fuzzer' },
        heartbeat_config: { every: '7m' },
      }),
    },
    {
      name: 'POST /agents/heartbeat',
      send: (body) => t.http.post(`${API}/agents/heartbeat`).set(owner.headers).send(body),
      base: () => ({ name: randomName(), board_id: agentBoardId, status: 'online' }),
    },
    {
      name: 'POST /agent/agents',
      send: (body) => t.http.post(`${API}/agent/agents`).set('X-Agent-Token', leadToken).send(body),
      base: () => ({ name: randomName(), identity_profile: { role: 'Worker' } }),
    },
    {
      name: 'POST /agent/heartbeat',
      send: (body) =>
        t.http.post(`${API}/agent/heartbeat`).set('X-Agent-Token', agentToken).send(body),
      base: () => ({ status: 'online', name: 'ignored', board_id: boardId }),
    },
  ];

  for (const route of routes) {
    it(`${route.name}: every answer is < 500, with the error envelope on 4xx`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constant(null).chain(() => hostileBody(route.base())),
          async (body) => {
            expectHandled(await route.send(body), route.name);
            // Creating organizations moves the owner's active one; keep acting on the first.
            await t.http
              .patch(`${API}/organizations/me/active`)
              .set(owner.headers)
              .send({ organization_id: owner.organizationId });
          },
        ),
        { seed: SEED, numRuns: RUNS_PER_ROUTE },
      );
    });
  }

  it('free JSON (success_metrics) with hostile keys and values is answered < 500', async () => {
    const metrics = fc.dictionary(hostileString, hostileJson, { minKeys: 1, maxKeys: 4 });
    await fc.assert(
      fc.asyncProperty(fc.boolean(), metrics, async (create, successMetrics) => {
        const res = create
          ? await t.http
              .post(`${API}/boards`)
              .set(owner.headers)
              .send({
                name: 'Metrics',
                slug: `metrics-${Math.random().toString(36).slice(2)}`,
                gateway_id: gatewayId,
                board_type: 'goal',
                objective: 'Ship',
                success_metrics: successMetrics,
              })
          : await t.http
              .patch(`${API}/boards/${boardId}`)
              .set(owner.headers)
              .send({ success_metrics: successMetrics });
        expectHandled(res, create ? 'POST /boards' : 'PATCH /boards/{id}');
      }),
      { seed: SEED, numRuns: RUNS_PER_ROUTE },
    );
  });

  it('text PATCH /users/me accepts is stored exactly as sent', async () => {
    const fields = ['name', 'preferred_name', 'pronouns', 'timezone', 'notes', 'context'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fields), hostileString, async (field, text) => {
        const res = await t.http
          .patch(`${API}/users/me`)
          .set(owner.headers)
          .send({ [field]: text });
        expectHandled(res, 'PATCH /users/me');
        if (res.status !== 200) return;
        const me = await t.http.get(`${API}/users/me`).set(owner.headers).expect(200);
        // U+FFFD in place of a lone surrogate would be data silently changed.
        expect([field, (me.body as Record<string, unknown>)[field]]).toEqual([field, text]);
      }),
      { seed: SEED, numRuns: RUNS_PER_ROUTE },
    );
  });

  it('hostile offsets and limits on paginated routes are answered < 500', async () => {
    const paginated = [
      { path: '/boards', headers: () => owner.headers },
      { path: '/organizations/me/members', headers: () => owner.headers },
      { path: '/organizations/me/invites', headers: () => owner.headers },
      { path: '/agent/boards', headers: () => ({ 'X-Agent-Token': agentToken }) },
      { path: '/agents', headers: () => owner.headers },
      { path: '/agent/agents', headers: () => ({ 'X-Agent-Token': agentToken }) },
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paginated),
        hostileNumber,
        fc.option(hostileNumber, { nil: undefined }),
        async (route, offset, limit) => {
          const query = `offset=${encodeURIComponent(offset)}${
            limit === undefined ? '' : `&limit=${encodeURIComponent(limit)}`
          }`;
          expectHandled(
            await t.http.get(`${API}${route.path}?${query}`).set(route.headers()),
            `GET ${route.path}?${query}`,
          );
        },
      ),
      { seed: SEED, numRuns: RUNS_PER_ROUTE * 2 },
    );
  });

  it('hostile query strings and paths are answered < 500 too', async () => {
    await fc.assert(
      fc.asyncProperty(hostileString, async (text) => {
        // Node itself refuses request lines over 16 KiB (431, no body): stay under it.
        const encoded = encodeLoosely(text.slice(0, 1_000));
        expectHandled(
          await t.http
            .get(`${API}/boards?gateway_id=${encoded}&limit=${encoded}`)
            .set(owner.headers),
          'GET /boards?…',
        );
        expectHandled(
          await t.http.get(`${API}/organizations/me/members/${encoded}`).set(owner.headers),
          'GET /organizations/me/members/{id}',
        );
      }),
      { seed: SEED, numRuns: RUNS_PER_ROUTE },
    );
  });
});
