/**
 * The gateways module over HTTP on a real PostgreSQL, with the in-process OpenClaw fake for the
 * gateway: token encryption at rest, side-effect-free GETs, re-provisioning only on changed
 * fields, provisioning failures reported, delete rules, access on every route. The template
 * sync's rules and faults are in gateway-template-sync.e2e-spec.ts; the happy paths against a
 * real gateway in test/gateway/gateways.gateway-spec.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { IsNull } from 'typeorm';
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import { Board } from '../../src/boards/entities/board.entity';
import { SecretBox } from '../../src/common/secrets/secret-box';
import { Gateway } from '../../src/gateways/entities/gateway.entity';
import { Task } from '../../src/tasks/entities/task.entity';
import {
  buildBoard,
  buildGateway,
  signInMember,
  signInOwnerOfNewOrganization,
  SignedInUser,
} from '../support/builders';
import { FakeGateway } from '../support/fake-gateway';
import { FAKE_GATEWAY_TOKEN, Gate, startOpenClawFake } from '../support/fake-openclaw-state';
import { waitUntil } from '../support/eventually';
import { createTestApp, TestApp } from '../support/test-app';

type State = Awaited<ReturnType<typeof startOpenClawFake>>['state'];

interface GatewayBody {
  id: string;
  name: string;
  url: string;
  token: string | null;
  token_error: string | null;
  updated_at: string;
  main_agent: { id: string; status: string; last_provision_error: string | null } | null;
}

// Removing an agent from an unreachable gateway retries for up to 10 s before reporting.
jest.setTimeout(30_000);

describe('gateways (in-process gateway)', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let state: State;
  let owner: SignedInUser;
  let orgId: string;

  beforeAll(async () => {
    t = await createTestApp();
    ({ fake, state } = await startOpenClawFake());
    ({ owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Gateways'));
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });

  const create = (fields: Record<string, unknown> = {}) =>
    t.http
      .post('/api/v1/gateways')
      .set(owner.headers)
      .send({
        name: `Edge ${randomUUID().slice(0, 6)}`,
        url: fake.url,
        token: FAKE_GATEWAY_TOKEN,
        workspace_root: '/srv/openclaw',
        disable_device_pairing: true,
        ...fields,
      });
  const storedToken = async (id: string) =>
    (
      await t.dataSource.query<{ token: string | null }[]>(
        'SELECT token FROM gateways WHERE id = $1',
        [id],
      )
    )[0].token;
  const mainAgentOf = (gatewayId: string) =>
    t.dataSource.getRepository(Agent).findOneByOrFail({ gatewayId, boardId: IsNull() });
  const callsTo = (method: string) => fake.requests.filter((r) => r.method === method).length;

  it('create stores the token encrypted, returns it in clear and provisions the main agent', async () => {
    const res = await create().expect(200);
    const body = res.body as GatewayBody;
    expect(body.token).toBe(FAKE_GATEWAY_TOKEN);
    expect(body.token_error).toBeNull();
    expect(body.main_agent).toMatchObject({ last_provision_error: null });

    const column = await storedToken(body.id);
    expect(column).toMatch(/^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(column).not.toContain(FAKE_GATEWAY_TOKEN);

    expect(state.agents.has(`mc-gateway-${body.id}`)).toBe(true);
    expect(state.files.get(`mc-gateway-${body.id}`)?.get('AGENTS.md')).toContain('AUTH_TOKEN=');
    const main = await mainAgentOf(body.id);
    expect(body.main_agent?.id).toBe(main.id);
    expect(main.organizationId).toBe(orgId);
  });

  it('a token given in the URL (?token=) is stored sealed like any token, not in clear in the url column', async () => {
    const res = await create({
      url: `${fake.url}/?token=${FAKE_GATEWAY_TOKEN}`,
      token: null,
    }).expect(200);
    const body = res.body as GatewayBody;
    expect(body.token).toBe(FAKE_GATEWAY_TOKEN);
    expect(body.url).not.toContain(FAKE_GATEWAY_TOKEN);
    expect(body.main_agent?.last_provision_error).toBeNull();
    const [row] = await t.dataSource.query<{ url: string; token: string | null }[]>(
      'SELECT url, token FROM gateways WHERE id = $1',
      [body.id],
    );
    expect(row.url).not.toContain(FAKE_GATEWAY_TOKEN);
    expect(row.token).toMatch(/^v1:/);

    const patched = await t.http
      .patch(`/api/v1/gateways/${body.id}`)
      .set(owner.headers)
      .send({ url: `${fake.url}/?token=${FAKE_GATEWAY_TOKEN}` })
      .expect(200);
    expect((patched.body as GatewayBody).url).not.toContain(FAKE_GATEWAY_TOKEN);
    expect(await storedToken(body.id)).toMatch(/^v1:/);
  });

  it('list and get make no gateway call and change neither the main agent nor the gateway', async () => {
    const { body } = (await create().expect(200)) as { body: GatewayBody };
    const before = await mainAgentOf(body.id);
    const requests = fake.requests.length;
    const connects = fake.connects.length;

    const list = await t.http.get('/api/v1/gateways').set(owner.headers).expect(200);
    const listed = (list.body as { items: GatewayBody[] }).items.find((g) => g.id === body.id);
    expect(listed).toMatchObject({ token: FAKE_GATEWAY_TOKEN, updated_at: body.updated_at });
    expect(listed?.main_agent?.id).toBe(before.id);
    const got = await t.http.get(`/api/v1/gateways/${body.id}`).set(owner.headers).expect(200);
    expect((got.body as GatewayBody).updated_at).toBe(body.updated_at);

    expect(fake.requests.length).toBe(requests);
    expect(fake.connects.length).toBe(connects);
    const after = await mainAgentOf(body.id);
    expect(after.agentTokenHash).toBe(before.agentTokenHash);
    expect(after.updatedAt.toISOString()).toBe(before.updatedAt.toISOString());
    expect(after.status).toBe(before.status);
  });

  it('PATCH re-provisions only when a field that shapes the main agent changed, and bumps updated_at', async () => {
    const { body } = (await create().expect(200)) as { body: GatewayBody };
    const sets = callsTo('agents.files.set');
    const token = (await mainAgentOf(body.id)).agentTokenHash;

    // The same values again: saved (updated_at moves), nothing sent to the gateway.
    const same = await t.http
      .patch(`/api/v1/gateways/${body.id}`)
      .set(owner.headers)
      .send({
        name: body.name,
        url: body.url,
        token: FAKE_GATEWAY_TOKEN,
        disable_device_pairing: true,
      })
      .expect(200);
    expect(Date.parse((same.body as GatewayBody).updated_at)).toBeGreaterThan(
      Date.parse(body.updated_at),
    );
    expect(callsTo('agents.files.set')).toBe(sets);
    expect((await mainAgentOf(body.id)).agentTokenHash).toBe(token);

    // A new name: the main agent is provisioned again (new files, new token).
    const renamed = await t.http
      .patch(`/api/v1/gateways/${body.id}`)
      .set(owner.headers)
      .send({ name: `${body.name} renamed` })
      .expect(200);
    expect((renamed.body as GatewayBody).name).toBe(`${body.name} renamed`);
    expect((renamed.body as GatewayBody).main_agent?.last_provision_error).toBeNull();
    expect(callsTo('agents.files.set')).toBeGreaterThan(sets);
    expect((await mainAgentOf(body.id)).agentTokenHash).not.toBe(token);
  });

  it('PATCH with the same URL spelled differently (case, default slash) does not re-provision', async () => {
    const { body } = (await create().expect(200)) as { body: GatewayBody };
    const sets = callsTo('agents.files.set');
    const token = (await mainAgentOf(body.id)).agentTokenHash;
    const respelled = body.url.replace('ws://', 'WS://') + '/';
    await t.http
      .patch(`/api/v1/gateways/${body.id}`)
      .set(owner.headers)
      .send({ url: respelled, token: FAKE_GATEWAY_TOKEN })
      .expect(200);
    expect(callsTo('agents.files.set')).toBe(sets);
    expect((await mainAgentOf(body.id)).agentTokenHash).toBe(token);
  });

  it('refuses blank or null required fields, non-ws URLs and URLs the dial policy forbids (422)', async () => {
    for (const fields of [
      { name: '  ' },
      { url: '' },
      { workspace_root: '' },
      { url: 'http://x' },
    ]) {
      const res = await create(fields).expect(422);
      expect((res.body as { detail: { loc: string[] }[] }).detail[0].loc[0]).toBe('body');
    }
    const metadata = await create({ url: 'ws://169.254.169.254:18789' }).expect(422);
    expect(metadata.body).toMatchObject({
      detail: [{ loc: ['body', 'url'], msg: expect.stringContaining('link-local') }],
    });

    const { body } = (await create().expect(200)) as { body: GatewayBody };
    for (const field of ['name', 'url', 'workspace_root']) {
      const res = await t.http
        .patch(`/api/v1/gateways/${body.id}`)
        .set(owner.headers)
        .send({ [field]: null })
        .expect(422);
      expect(res.body).toMatchObject({ detail: [{ loc: ['body', field] }] });
    }
    await t.http
      .patch(`/api/v1/gateways/${body.id}`)
      .set(owner.headers)
      .send({ url: 'ws://[fe80::1]:18789' })
      .expect(422);
  });

  it('a failed main-agent provision is reported in the response and recorded as activity', async () => {
    const res = await create({ token: 'wrong-token' }).expect(200);
    const body = res.body as GatewayBody;
    expect(body.main_agent?.last_provision_error).toMatch(/token/i);
    const events = await t.dataSource
      .getRepository(ActivityEvent)
      .findBy({ agentId: body.main_agent!.id, eventType: 'agent.provision.failed' });
    expect(events).toHaveLength(1);
    expect(events[0].organizationId).toBe(orgId);
    expect(events[0].message).toContain(body.main_agent!.last_provision_error!);
  });

  it('a token sealed under another key: GET answers with token_error, calls fail naming the gateway, nothing is sent', async () => {
    const { body } = (await create().expect(200)) as { body: GatewayBody };
    const otherKey = new SecretBox(randomBytes(32)).seal(FAKE_GATEWAY_TOKEN);
    await t.dataSource.query('UPDATE gateways SET token = $2 WHERE id = $1', [body.id, otherKey]);

    const got = await t.http.get(`/api/v1/gateways/${body.id}`).set(owner.headers).expect(200);
    const read = got.body as GatewayBody;
    expect(read.token).toBeNull();
    expect(read.token_error).toContain(`Gateway "${body.name}" (${body.id})`);
    expect(read.token_error).toContain('SECRETS_KEY');

    // A change re-provisions: it fails at once with the explanation, and nothing reaches the gateway.
    const connects = fake.connects.length;
    const patched = await t.http
      .patch(`/api/v1/gateways/${body.id}`)
      .set(owner.headers)
      .send({ workspace_root: '/srv/other' })
      .expect(200);
    expect((patched.body as GatewayBody).main_agent?.last_provision_error).toContain(
      'cannot be decrypted with the configured SECRETS_KEY',
    );
    expect(fake.connects.length).toBe(connects);
    const sync = await t.http
      .post(`/api/v1/gateways/${body.id}/templates/sync`)
      .set(owner.headers)
      .expect(200);
    expect(JSON.stringify(sync.body)).toContain(`PATCH /api/v1/gateways/${body.id}`);
    expect(fake.connects.length).toBe(connects);

    // Saving the token again repairs it.
    const fixed = await t.http
      .patch(`/api/v1/gateways/${body.id}`)
      .set(owner.headers)
      .send({ token: FAKE_GATEWAY_TOKEN })
      .expect(200);
    expect(fixed.body).toMatchObject({ token: FAKE_GATEWAY_TOKEN, token_error: null });
    expect((fixed.body as GatewayBody).main_agent?.last_provision_error).toBeNull();
  });

  it('a plaintext token from before encryption still works and is sealed at the next write', async () => {
    const legacy = await buildGateway(t.dataSource, orgId, {
      url: fake.url,
      token: FAKE_GATEWAY_TOKEN,
      disableDevicePairing: true,
    });
    expect(await storedToken(legacy.id)).toBe(FAKE_GATEWAY_TOKEN);
    const got = await t.http.get(`/api/v1/gateways/${legacy.id}`).set(owner.headers).expect(200);
    expect((got.body as GatewayBody).token).toBe(FAKE_GATEWAY_TOKEN);

    await t.http
      .patch(`/api/v1/gateways/${legacy.id}`)
      .set(owner.headers)
      .send({ allow_insecure_tls: false })
      .expect(200);
    expect(await storedToken(legacy.id)).toMatch(/^v1:/);
    const again = await t.http.get(`/api/v1/gateways/${legacy.id}`).set(owner.headers).expect(200);
    expect((again.body as GatewayBody).token).toBe(FAKE_GATEWAY_TOKEN);
  });

  describe('delete', () => {
    it('is refused (409) while a board uses the gateway; then removes the main agent and its rows', async () => {
      const { body } = (await create().expect(200)) as { body: GatewayBody };
      const board = await buildBoard(t.dataSource, orgId, body.id);
      const refused = await t.http
        .delete(`/api/v1/gateways/${body.id}`)
        .set(owner.headers)
        .expect(409);
      expect((refused.body as { detail: string }).detail).toMatch(/still used by 1 board/);
      expect(state.agents.has(`mc-gateway-${body.id}`)).toBe(true);

      const main = await mainAgentOf(body.id);
      const task = await t.dataSource.getRepository(Task).save({
        boardId: board.id,
        title: 'held by the main agent',
        status: 'in_progress',
        inProgressAt: new Date(),
        assignedAgentId: main.id,
      });
      await t.dataSource.getRepository(Task).update({ id: task.id }, { boardId: null });
      await t.dataSource.getRepository(Board).delete({ id: board.id });

      const res = await t.http.delete(`/api/v1/gateways/${body.id}`).set(owner.headers).expect(200);
      expect(res.body).toEqual({ ok: true, main_agent_removed: true, warning: null });
      expect(state.agents.has(`mc-gateway-${body.id}`)).toBe(false);
      expect(await t.dataSource.getRepository(Gateway).existsBy({ id: body.id })).toBe(false);
      expect(await t.dataSource.getRepository(Agent).existsBy({ gatewayId: body.id })).toBe(false);
      expect(await t.dataSource.getRepository(Task).findOneByOrFail({ id: task.id })).toMatchObject(
        { assignedAgentId: null, status: 'inbox', inProgressAt: null },
      );
      const events = await t.dataSource.getRepository(ActivityEvent).findBy({ agentId: main.id });
      expect(events).toEqual([]);
    });

    it('a board attached while the main agent is being removed does not leave a gateway without its main agent', async () => {
      const gate = new Gate();
      const { fake: held, state: heldState } = await startOpenClawFake({ gate });
      try {
        const { body } = (await create({ url: held.url }).expect(200)) as { body: GatewayBody };
        const mainKey = `mc-gateway-${body.id}`;
        expect(heldState.agents.has(mainKey)).toBe(true);
        gate.close('agents.delete');
        const deleting = t.http
          .delete(`/api/v1/gateways/${body.id}`)
          .set(owner.headers)
          .then((res) => res);
        await waitUntil(() => gate.held >= 1);
        // A board attached now: it either lands before the delete decides or waits for it.
        let attached: number | 'pending' = 'pending';
        let attachBody: unknown;
        const attach = t.http
          .post('/api/v1/boards')
          .set(owner.headers)
          .send({
            name: 'Late board',
            slug: 'late-board',
            gateway_id: body.id,
            board_type: 'general',
          })
          .then((response) => {
            attached = response.status;
            attachBody = response.body;
          });
        await waitUntil(
          async () =>
            attached !== 'pending' ||
            Number(
              (
                await t.dataSource.query<{ n: string }[]>(
                  "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
              )[0].n,
            ) > 0,
        );
        gate.open();
        const res = await deleting;
        await attach;
        // The delete came first: it wins, and the gateway and its main agent go together.
        expect(res.status).toBe(200);
        // The late board is refused as for any unknown gateway (not a 500 on the foreign key).
        expect(attached).toBe(422);
        expect(attachBody).toMatchObject({ detail: 'gateway_id is invalid' });
        expect(heldState.agents.has(mainKey)).toBe(false);
        expect(await t.dataSource.getRepository(Gateway).existsBy({ id: body.id })).toBe(false);
      } finally {
        gate.open();
        await held.stop();
      }
    });

    it('reports a main agent it could not remove from an unreachable gateway, and deletes the rows', async () => {
      const { fake: doomed } = await startOpenClawFake();
      const { body } = (await create({ url: doomed.url }).expect(200)) as { body: GatewayBody };
      expect(body.main_agent?.last_provision_error).toBeNull();
      await doomed.stop();
      const res = await t.http.delete(`/api/v1/gateways/${body.id}`).set(owner.headers).expect(200);
      expect(res.body).toMatchObject({ ok: true, main_agent_removed: false });
      expect((res.body as { warning: string }).warning).toContain(body.main_agent!.id);
      expect(await t.dataSource.getRepository(Agent).existsBy({ gatewayId: body.id })).toBe(false);
      expect(await t.dataSource.getRepository(Gateway).existsBy({ id: body.id })).toBe(false);
    });
  });

  describe('access', () => {
    let gatewayId: string;
    let member: SignedInUser;
    let otherAdmin: SignedInUser;

    beforeAll(async () => {
      gatewayId = (await buildGateway(t.dataSource, orgId, { url: fake.url })).id;
      member = await signInMember(t.http, t.dataSource, orgId, {
        role: 'member',
        allBoardsRead: true,
        allBoardsWrite: true,
      });
      ({ owner: otherAdmin } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Other'));
    });

    const routes = (id: string) =>
      [
        ['get', '/api/v1/gateways'],
        ['post', '/api/v1/gateways'],
        ['get', `/api/v1/gateways/${id}`],
        ['patch', `/api/v1/gateways/${id}`],
        ['delete', `/api/v1/gateways/${id}`],
        ['post', `/api/v1/gateways/${id}/templates/sync`],
      ] as const;

    it('non-admins get 403 and anonymous callers 401 on every route', async () => {
      for (const [method, path] of routes(gatewayId)) {
        await t.http[method](path).set(member.headers).send({}).expect(403);
        await t.http[method](path).send({}).expect(401);
      }
    });

    it('another organization, an unknown id: 404 "Gateway not found"; a bad UUID: 422', async () => {
      for (const id of [gatewayId, randomUUID()]) {
        for (const [method, path] of routes(id).slice(2)) {
          const res = await t.http[method](path).set(otherAdmin.headers).send({}).expect(404);
          expect(res.body).toMatchObject({ detail: 'Gateway not found' });
        }
      }
      for (const [method, path] of routes('not-a-uuid').slice(2)) {
        const res = await t.http[method](path).set(owner.headers).send({}).expect(422);
        expect(res.body).toMatchObject({ detail: [{ loc: ['path', 'gateway_id'] }] });
      }
      expect(await t.dataSource.getRepository(Gateway).existsBy({ id: gatewayId })).toBe(true);
    });
  });
});
