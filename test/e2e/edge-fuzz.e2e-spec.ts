import fc from 'fast-check';
import type { Response } from 'supertest';
import { buildAgent, buildBoard, buildGateway, signIn, SignedInUser } from '../support/builders';
import { API } from '../support/expectations';
import type { FakeGateway } from '../support/fake-gateway';
import {
  encodeLoosely,
  expectHandled,
  hostileBody,
  hostileJson,
  hostileNumber,
  hostileString,
} from '../support/hostile-input';
import { gatewayFieldsFor, startOpenClawFake } from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

/** Fixed, so a failure replays; bounded, so the suite stays a few seconds long. */
const SEED = 20_261_130;
const RUNS_PER_ROUTE = 40;

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
