/**
 * The agents module's rules and faults over HTTP, on real PostgreSQL and the in-process OpenClaw
 * fake (test/support/fake-openclaw-state.ts): creation through the provisioning engine, name
 * uniqueness (the fixes over upstream), updates and deletes that fail on the gateway, the lead's
 * routes and the main agent's listing. The happy path on a real gateway is in
 * test/gateway/agents.gateway-spec.ts.
 */
import { randomUUID } from 'node:crypto';
import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import {
  BOARD_HAS_LEAD,
  GATEWAY_HAS_MAIN,
  NAME_TAKEN_ON_BOARD,
  NAME_TAKEN_ON_GATEWAY,
} from '../../src/agents/agents.service';
import { Approval } from '../../src/approvals/entities/approval.entity';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { Task } from '../../src/tasks/entities/task.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  buildOrganization,
  grantBoard,
  signInMember,
  SignedInUser,
} from '../support/builders';
import { FakeRpcError, type FakeGateway, type MethodHandler } from '../support/fake-gateway';
import {
  gatewayFieldsFor,
  serveOpenClawState,
  startOpenClawFake,
} from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

const API = '/api/v1';

describe('agents (in-process gateway)', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let state: ReturnType<typeof serveOpenClawState>;
  let orgId: string;
  let gatewayId: string;
  let boardId: string;
  let otherBoardId: string;
  let admin: SignedInUser;
  let writer: SignedInUser;

  beforeAll(async () => {
    t = await createTestApp();
    ({ fake, state } = await startOpenClawFake());
    orgId = (await buildOrganization(t.dataSource)).id;
    gatewayId = (await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake))).id;
    boardId = (await buildBoard(t.dataSource, orgId, gatewayId)).id;
    otherBoardId = (await buildBoard(t.dataSource, orgId, gatewayId)).id;
    admin = await signInMember(t.http, t.dataSource, orgId, {
      role: 'admin',
      allBoardsWrite: true,
    });
    writer = await signInMember(t.http, t.dataSource, orgId, { allBoardsWrite: true });
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });
  afterEach(() => {
    state.failures.clear();
  });

  const reload = (id: string) => t.dataSource.getRepository(Agent).findOneBy({ id });
  const uniqueName = (prefix = 'Agent') => `${prefix} ${randomUUID().slice(0, 8)}`;
  const create = (body: object, as: SignedInUser = admin) =>
    t.http.post(`${API}/agents`).set(as.headers).send(body);
  const heartbeat = (token: string) =>
    t.http.post(`${API}/agent/heartbeat`).set('X-Agent-Token', token).send({});
  /** The token the agent's AGENTS.md on the fake gateway holds. */
  const writtenToken = (agentId: string) =>
    /^AUTH_TOKEN=(.+)$/m.exec(state.files.get(`mc-${agentId}`)?.get('AGENTS.md') ?? '')?.[1] ?? '';
  /** Replaces one gateway method until the returned function restores it. */
  const replaceMethod = (method: string, handler: MethodHandler) => {
    const original = fake.methods[method];
    fake.methods[method] = handler;
    return () => {
      fake.methods[method] = original;
    };
  };

  describe('create', () => {
    it('an org admin creates an agent: provisioned on the gateway, computed status, no digests, activity with its tenancy', async () => {
      const name = uniqueName();
      const res = await create({ name, board_id: boardId }).expect(200);
      expect(res.body).toMatchObject({
        name,
        board_id: boardId,
        gateway_id: gatewayId,
        status: 'provisioning',
        is_board_lead: false,
        is_gateway_main: false,
        last_provision_error: null,
        openclaw_session_id: `agent:mc-${res.body.id}:main`,
      });
      expect(Object.keys(res.body as object).join(',')).not.toMatch(/hash|token/);
      expect(state.agents.has(`mc-${res.body.id}`)).toBe(true);
      await heartbeat(writtenToken(res.body.id as string)).expect(200);
      const events = await t.dataSource
        .getRepository(ActivityEvent)
        .findBy({ agentId: res.body.id as string });
      expect(events.map((e) => e.eventType)).toEqual(
        expect.arrayContaining(['agent.provision.direct', 'agent.wakeup.sent']),
      );
      for (const event of events) expect(event).toMatchObject({ organizationId: orgId, boardId });
    });

    it('a member with write access but no admin role cannot create (403)', async () => {
      await create({ name: uniqueName(), board_id: boardId }, writer).expect(403);
    });

    it('board_id is required (422), an unknown board is 404', async () => {
      const missing = await create({ name: uniqueName() }).expect(422);
      expect(missing.body.detail).toBe('board_id is required');
      const unknown = await create({ name: uniqueName(), board_id: randomUUID() }).expect(404);
      expect(unknown.body.detail).toBe('Board not found');
    });

    it('a board whose gateway has no workspace root is 422 with the contract text', async () => {
      const gateway = await buildGateway(t.dataSource, orgId, {
        ...gatewayFieldsFor(fake),
        workspaceRoot: ' ',
      });
      const board = await buildBoard(t.dataSource, orgId, gateway.id);
      const res = await create({ name: uniqueName(), board_id: board.id }).expect(422);
      expect(res.body.detail).toBe('Gateway workspace_root is required');
    });

    it('a provision that fails on the gateway leaves a stable agent with last_provision_error (200)', async () => {
      state.failures.set('agents.files.set', () => true);
      const res = await create({ name: uniqueName(), board_id: boardId }).expect(200);
      expect(res.body.status).toBe('provisioning');
      expect(res.body.last_provision_error).toMatch(/^writing AGENTS\.md: /);
      const stored = await reload(res.body.id as string);
      expect(stored).toMatchObject({ status: 'provisioning' });
      // Provisioning it again repairs it.
      state.failures.clear();
      const repaired = await t.http
        .patch(`${API}/agents/${res.body.id}?force=true`)
        .set(admin.headers)
        .send({})
        .expect(200);
      expect(repaired.body.last_provision_error).toBeNull();
      await heartbeat(writtenToken(res.body.id as string)).expect(200);
    });
  });

  describe('name uniqueness (fixes over upstream)', () => {
    it('is case-insensitive on the board and on the gateway', async () => {
      const name = uniqueName('Alpha');
      await create({ name, board_id: boardId }).expect(200);
      const sameBoard = await create({ name: name.toUpperCase(), board_id: boardId }).expect(409);
      expect(sameBoard.body.detail).toBe(NAME_TAKEN_ON_BOARD);
      const sameGateway = await create({ name: name.toLowerCase(), board_id: otherBoardId });
      expect([sameGateway.status, sameGateway.body.detail]).toEqual([409, NAME_TAKEN_ON_GATEWAY]);
    });

    it('is an exact comparison: LIKE wildcards in a name match nothing else', async () => {
      // Upstream compared with ILIKE: "Be%" matched "Beta …" and was refused.
      const suffix = randomUUID().slice(0, 8);
      await create({ name: `Beta ${suffix}`, board_id: boardId }).expect(200);
      await create({ name: `Be% ${suffix}`.replace(' ', ''), board_id: boardId }).expect(200);
      await create({ name: `B_ta ${suffix}`, board_id: boardId }).expect(200);
      await create({ name: '%', board_id: boardId }).expect(200);
    });

    it('applies to renames', async () => {
      const taken = uniqueName('Gamma');
      await create({ name: taken, board_id: boardId }).expect(200);
      const other = await create({ name: uniqueName(), board_id: boardId }).expect(200);
      const res = await t.http
        .patch(`${API}/agents/${other.body.id}`)
        .set(admin.headers)
        .send({ name: taken.toLowerCase() })
        .expect(409);
      expect(res.body.detail).toBe(NAME_TAKEN_ON_BOARD);
      expect((await reload(other.body.id as string))?.name).toBe(other.body.name);
    });

    it('applies to heartbeat-create: the name (any case) finds the existing agent', async () => {
      const name = uniqueName('Delta');
      const first = await create({ name, board_id: boardId }).expect(200);
      const res = await t.http
        .post(`${API}/agents/heartbeat`)
        .set(admin.headers)
        .send({ name: name.toUpperCase(), board_id: boardId })
        .expect(200);
      expect(res.body.id).toBe(first.body.id);
      const count = await t.dataSource
        .getRepository(Agent)
        .createQueryBuilder('a')
        .where('lower(a.name) = lower(:name)', { name })
        .getCount();
      expect(count).toBe(1);
    });

    it('heartbeat-create refuses a name taken on another board of the gateway (409)', async () => {
      const name = uniqueName('Epsilon');
      await create({ name, board_id: boardId }).expect(200);
      const res = await t.http
        .post(`${API}/agents/heartbeat`)
        .set(admin.headers)
        .send({ name, board_id: otherBoardId })
        .expect(409);
      expect(res.body.detail).toBe(NAME_TAKEN_ON_GATEWAY);
    });

    it('concurrent creates of one name: exactly one succeeds (enforced by the database)', async () => {
      const name = uniqueName('Zeta');
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          create({
            name: i % 2 ? name : name.toUpperCase(),
            board_id: i < 3 ? boardId : otherBoardId,
          }),
        ),
      );
      expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409, 409, 409, 409]);
      const count = await t.dataSource
        .getRepository(Agent)
        .createQueryBuilder('a')
        .where('lower(a.name) = lower(:name)', { name })
        .getCount();
      expect(count).toBe(1);
    });

    it('the database refuses a duplicate name on one gateway even without the service check', async () => {
      const { agent } = await buildAgent(t.dataSource, gatewayId, boardId, {
        name: uniqueName('Eta'),
      });
      await expect(
        buildAgent(t.dataSource, gatewayId, otherBoardId, { name: agent.name.toLowerCase() }),
      ).rejects.toThrow(/ux_agents_gateway_worker_lower_name/);
      // Leads keep the default name on every board of a gateway.
      await buildAgent(t.dataSource, gatewayId, boardId, { name: 'Lead Agent', isBoardLead: true });
      await buildAgent(t.dataSource, gatewayId, otherBoardId, {
        name: 'Lead Agent',
        isBoardLead: true,
      });
    });
  });

  describe('lead names', () => {
    it('a board whose worker already holds the lead name: ensureBoardLead is a 409 naming the conflict, not an internal error', async () => {
      const provisioning = t.app.get(ProvisioningService);
      const board = await buildBoard(t.dataSource, orgId, gatewayId);
      await create({ name: 'lead agent', board_id: board.id }).expect(200);
      await expect(
        provisioning.ensureBoardLead({ organizationId: orgId, boardId: board.id }),
      ).rejects.toMatchObject({ kind: 'conflict', detail: NAME_TAKEN_ON_BOARD });
      // A lead renamed to a worker's name: the same 409.
      const { lead } = await provisioning.ensureBoardLead(
        { organizationId: orgId, boardId: board.id },
        { agentName: 'Boss' },
      );
      expect(lead.name).toBe('Boss');
      await expect(
        provisioning.ensureBoardLead(
          { organizationId: orgId, boardId: board.id },
          { agentName: 'LEAD AGENT' },
        ),
      ).rejects.toMatchObject({ kind: 'conflict', detail: NAME_TAKEN_ON_BOARD });
      expect((await reload(lead.id))?.name).toBe('Boss');
    });
  });

  describe('heartbeat-or-create needs org admin on both paths (fix over upstream)', () => {
    it('existing agent: a writer who is not admin gets 403 (upstream let it through)', async () => {
      const name = uniqueName('Theta');
      await create({ name, board_id: boardId }).expect(200);
      await t.http
        .post(`${API}/agents/heartbeat`)
        .set(writer.headers)
        .send({ name, board_id: boardId })
        .expect(403);
    });

    it('new agent: a writer who is not admin gets 403 and nothing is created', async () => {
      const name = uniqueName('Iota');
      await t.http
        .post(`${API}/agents/heartbeat`)
        .set(writer.headers)
        .send({ name, board_id: boardId })
        .expect(403);
      expect(await t.dataSource.getRepository(Agent).findOneBy({ name })).toBeNull();
    });

    it('an existing agent that holds no token is provisioned, then heartbeats', async () => {
      const { agent } = await buildAgent(t.dataSource, gatewayId, boardId, {
        name: uniqueName('Lambda'),
        agentTokenHash: null,
      });
      const res = await t.http
        .post(`${API}/agents/heartbeat`)
        .set(admin.headers)
        .send({ name: agent.name, board_id: boardId })
        .expect(200);
      expect(res.body).toMatchObject({ id: agent.id, status: 'online' });
      expect(state.agents.has(`mc-${agent.id}`)).toBe(true);
      await heartbeat(writtenToken(agent.id)).expect(200);
    });

    it('concurrent heartbeat-or-creates of one new name: one creates it, the others heartbeat it (no 409)', async () => {
      const name = uniqueName('Mu');
      const results = await Promise.all(
        Array.from({ length: 4 }, () =>
          t.http
            .post(`${API}/agents/heartbeat`)
            .set(admin.headers)
            .send({ name, board_id: boardId }),
        ),
      );
      expect(results.map((r) => `${r.status} ${JSON.stringify(r.body.detail ?? null)}`)).toEqual(
        Array.from({ length: 4 }, () => '200 null'),
      );
      expect(new Set(results.map((r) => r.body.id as string)).size).toBe(1);
      expect(await t.dataSource.getRepository(Agent).countBy({ name })).toBe(1);
    });

    it('an admin creates it when missing and it heartbeats (online)', async () => {
      const name = uniqueName('Kappa');
      const res = await t.http
        .post(`${API}/agents/heartbeat`)
        .set(admin.headers)
        .send({ name, board_id: boardId, status: 'online' })
        .expect(200);
      expect(res.body).toMatchObject({ name, status: 'online', board_id: boardId });
      expect(state.agents.has(`mc-${res.body.id}`)).toBe(true);
    });
  });

  describe('update', () => {
    it('a gateway failure is 502 with the contract detail; the agent stays usable with its previous token', async () => {
      const created = await create({ name: uniqueName(), board_id: boardId }).expect(200);
      const id = created.body.id as string;
      const token = writtenToken(id);
      await heartbeat(token).expect(200);
      state.failures.set('agents.files.set', () => true);
      const res = await t.http
        .patch(`${API}/agents/${id}`)
        .set(admin.headers)
        .send({ soul_template: 'You are careful.' })
        .expect(502);
      expect(res.body.detail).toMatch(/^Gateway update failed: writing AGENTS\.md: /);
      const stored = await reload(id);
      expect(stored).toMatchObject({ status: 'online' });
      expect(stored?.lastProvisionError).toMatch(/^writing AGENTS\.md: /);
      await heartbeat(token).expect(200);
    });

    it('status in the body is 403 with the contract detail', async () => {
      const created = await create({ name: uniqueName(), board_id: boardId }).expect(200);
      const res = await t.http
        .patch(`${API}/agents/${created.body.id}`)
        .set(admin.headers)
        .send({ status: 'online' })
        .expect(403);
      expect(res.body.detail).toBe('status is controlled by agent heartbeat');
    });

    it('making an agent main on a gateway that has one is 409 with a clear detail', async () => {
      await buildAgent(t.dataSource, gatewayId, null, { name: uniqueName('Main') });
      const created = await create({ name: uniqueName(), board_id: boardId }).expect(200);
      const res = await t.http
        .patch(`${API}/agents/${created.body.id}`)
        .set(admin.headers)
        .send({ is_gateway_main: true })
        .expect(409);
      expect(res.body.detail).toBe(GATEWAY_HAS_MAIN);
      expect((await reload(created.body.id as string))?.boardId).toBe(boardId);
    });

    it('makes a board agent its gateway main agent and back; the gateway agent it leaves is removed', async () => {
      const gateway = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake));
      const board = await buildBoard(t.dataSource, orgId, gateway.id);
      const created = await create({ name: uniqueName(), board_id: board.id }).expect(200);
      const id = created.body.id as string;
      const main = await t.http
        .patch(`${API}/agents/${id}`)
        .set(admin.headers)
        .send({ is_gateway_main: true })
        .expect(200);
      expect(main.body).toMatchObject({
        is_gateway_main: true,
        board_id: null,
        gateway_id: gateway.id,
        openclaw_session_id: `agent:mc-gateway-${gateway.id}:main`,
        last_provision_error: null,
      });
      expect(state.agents.has(`mc-gateway-${gateway.id}`)).toBe(true);
      expect(state.agents.has(`mc-${id}`)).toBe(false);
      // A board_id alone does not move a main agent (upstream); is_gateway_main: false does.
      const stays = await t.http
        .patch(`${API}/agents/${id}`)
        .set(admin.headers)
        .send({ board_id: board.id })
        .expect(200);
      expect(stays.body.is_gateway_main).toBe(true);
      const back = await t.http
        .patch(`${API}/agents/${id}`)
        .set(admin.headers)
        .send({ is_gateway_main: false, board_id: board.id })
        .expect(200);
      expect(back.body).toMatchObject({
        is_gateway_main: false,
        board_id: board.id,
        openclaw_session_id: `agent:mc-${id}:main`,
      });
      expect(state.agents.has(`mc-${id}`)).toBe(true);
    });

    it('moving a lead to a board that has a lead is 409 with a clear detail', async () => {
      const boardA = await buildBoard(t.dataSource, orgId, gatewayId);
      const boardB = await buildBoard(t.dataSource, orgId, gatewayId);
      const { agent: leadA } = await buildAgent(t.dataSource, gatewayId, boardA.id, {
        isBoardLead: true,
        name: uniqueName('Lead'),
      });
      await buildAgent(t.dataSource, gatewayId, boardB.id, {
        isBoardLead: true,
        name: uniqueName('Lead'),
      });
      const res = await t.http
        .patch(`${API}/agents/${leadA.id}`)
        .set(admin.headers)
        .send({ board_id: boardB.id })
        .expect(409);
      expect(res.body.detail).toBe(BOARD_HAS_LEAD);
    });

    it("moving a lead to a board without one re-keys it to that board's lead, so the old board's next lead gets a gateway agent of its own", async () => {
      const provisioning = t.app.get(ProvisioningService);
      const boardA = await buildBoard(t.dataSource, orgId, gatewayId);
      const boardB = await buildBoard(t.dataSource, orgId, gatewayId);
      const { lead } = await provisioning.ensureBoardLead({
        organizationId: orgId,
        boardId: boardA.id,
      });
      const moved = await t.http
        .patch(`${API}/agents/${lead.id}`)
        .set(admin.headers)
        .send({ board_id: boardB.id })
        .expect(200);
      expect(moved.body).toMatchObject({
        board_id: boardB.id,
        is_board_lead: true,
        openclaw_session_id: `agent:lead-${boardB.id}:main`,
        last_provision_error: null,
      });
      expect(state.agents.has(`lead-${boardB.id}`)).toBe(true);
      expect(state.agents.has(`lead-${boardA.id}`)).toBe(false);
      const movedToken = /^AUTH_TOKEN=(.+)$/m.exec(
        state.files.get(`lead-${boardB.id}`)?.get('AGENTS.md') ?? '',
      )?.[1];
      // Board A's next lead: its own gateway agent, which does not overwrite the moved lead's.
      const { lead: next } = await provisioning.ensureBoardLead({
        organizationId: orgId,
        boardId: boardA.id,
      });
      expect(next.id).not.toBe(lead.id);
      expect(next.openclawSessionId).toBe(`agent:lead-${boardA.id}:main`);
      await heartbeat(movedToken ?? '').expect(200);
    });
  });

  describe('delete', () => {
    it('gateway first: when the gateway refuses, nothing is deleted, 502 with the contract detail', async () => {
      const created = await create({ name: uniqueName(), board_id: boardId }).expect(200);
      const id = created.body.id as string;
      const token = writtenToken(id);
      const restore = replaceMethod('agents.delete', () => {
        throw new FakeRpcError({ code: 'INVALID_REQUEST', message: 'refused by policy' });
      });
      try {
        const res = await t.http.delete(`${API}/agents/${id}`).set(admin.headers).expect(502);
        expect(res.body.detail).toBe('Gateway cleanup failed: refused by policy');
      } finally {
        restore();
      }
      expect(await reload(id)).not.toBeNull();
      expect(state.agents.has(`mc-${id}`)).toBe(true);
      await heartbeat(token).expect(200);
      const failed = await t.dataSource
        .getRepository(ActivityEvent)
        .findOneByOrFail({ agentId: id, eventType: 'agent.delete.failed' });
      expect(failed).toMatchObject({
        organizationId: orgId,
        boardId,
        message: 'Delete message failed: refused by policy',
      });
    });

    it('removes it from the gateway, un-links tasks and approvals, its token stops working at once', async () => {
      const created = await create({ name: uniqueName(), board_id: boardId }).expect(200);
      const id = created.body.id as string;
      const token = writtenToken(id);
      await heartbeat(token).expect(200);
      const tasks = t.dataSource.getRepository(Task);
      const working = await tasks.save({
        boardId,
        title: 'working',
        status: 'in_progress',
        inProgressAt: new Date(),
        assignedAgentId: id,
      });
      const review = await tasks.save({
        boardId,
        title: 'review',
        status: 'review',
        assignedAgentId: id,
      });
      const approval = await t.dataSource.getRepository(Approval).save({
        boardId,
        agentId: id,
        actionType: 'deploy',
        confidence: 50,
        status: 'pending',
      });
      await t.http.delete(`${API}/agents/${id}`).set(admin.headers).expect(200, { ok: true });
      expect(await reload(id)).toBeNull();
      expect(state.agents.has(`mc-${id}`)).toBe(false);
      await heartbeat(token).expect(401);
      expect(await tasks.findOneByOrFail({ id: working.id })).toMatchObject({
        status: 'inbox',
        assignedAgentId: null,
        inProgressAt: null,
      });
      expect(await tasks.findOneByOrFail({ id: review.id })).toMatchObject({
        status: 'review',
        assignedAgentId: null,
      });
      expect(
        await t.dataSource.getRepository(Approval).findOneByOrFail({ id: approval.id }),
      ).toMatchObject({ agentId: null });
      const deleted = await t.dataSource.getRepository(ActivityEvent).findOneByOrFail({
        eventType: 'agent.delete.direct',
        message: `Deleted agent ${created.body.name}.`,
      });
      expect(deleted).toMatchObject({ organizationId: orgId, boardId, agentId: null });
      // Idempotent.
      await t.http.delete(`${API}/agents/${id}`).set(admin.headers).expect(200, { ok: true });
    });

    it('an org admin deletes a gateway main agent (upstream: 422 board_id is required)', async () => {
      const gateway = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake));
      const { agent: main, token } = await buildAgent(t.dataSource, gateway.id, null, {
        openclawSessionId: `agent:mc-gateway-${gateway.id}:main`,
      });
      state.agents.set(`mc-gateway-${gateway.id}`, { name: main.name, workspace: '/srv/x' });
      await t.http.delete(`${API}/agents/${main.id}`).set(admin.headers).expect(200);
      expect(await reload(main.id)).toBeNull();
      expect(state.agents.has(`mc-gateway-${gateway.id}`)).toBe(false);
      await heartbeat(token).expect(401);
    });

    it('a writer who is not admin cannot delete (403)', async () => {
      const created = await create({ name: uniqueName(), board_id: boardId }).expect(200);
      await t.http.delete(`${API}/agents/${created.body.id}`).set(writer.headers).expect(403);
    });
  });

  describe('agent-facing routes', () => {
    it('a lead lists and creates workers on its board; another board_id is 403', async () => {
      const board = await buildBoard(t.dataSource, orgId, gatewayId);
      const { token: leadToken } = await buildAgent(t.dataSource, gatewayId, board.id, {
        isBoardLead: true,
        name: uniqueName('Lead'),
      });
      const res = await t.http
        .post(`${API}/agent/agents`)
        .set('X-Agent-Token', leadToken)
        .send({ name: uniqueName('Worker'), board_id: boardId })
        .expect(200);
      expect(res.body.board_id).toBe(board.id);
      expect(state.agents.has(`mc-${res.body.id}`)).toBe(true);
      const list = await t.http
        .get(`${API}/agent/agents?board_id=null`)
        .set('Authorization', `Bearer ${leadToken}`)
        .expect(200);
      expect(
        (list.body.items as { board_id: string }[]).every((a) => a.board_id === board.id),
      ).toBe(true);
      expect(list.body.total).toBe(2);
      await t.http
        .get(`${API}/agent/agents?board_id=${boardId}`)
        .set('X-Agent-Token', leadToken)
        .expect(403);
    });

    it('a worker cannot create agents (403)', async () => {
      const { token } = await buildAgent(t.dataSource, gatewayId, boardId);
      await t.http
        .post(`${API}/agent/agents`)
        .set('X-Agent-Token', token)
        .send({ name: uniqueName() })
        .expect(403);
    });

    it("the gateway main agent lists only its own gateway's agents (upstream: every tenant's)", async () => {
      const mainGateway = (await buildGateway(t.dataSource, orgId)).id;
      const { agent: main, token: mainToken } = await buildAgent(t.dataSource, mainGateway, null);
      const { agent: own } = await buildAgent(
        t.dataSource,
        mainGateway,
        (await buildBoard(t.dataSource, orgId, mainGateway)).id,
      );
      // Another organization's agent, and one of another gateway of the same organization: the
      // main agent may act on neither board (agentMayActOnBoard), so it lists neither.
      const otherOrg = (await buildOrganization(t.dataSource)).id;
      const otherGateway = await buildGateway(t.dataSource, otherOrg);
      const { agent: foreign } = await buildAgent(
        t.dataSource,
        otherGateway.id,
        (await buildBoard(t.dataSource, otherOrg, otherGateway.id)).id,
      );
      const { agent: sameOrgElsewhere } = await buildAgent(t.dataSource, gatewayId, boardId);
      const list = (query = '') =>
        t.http.get(`${API}/agent/agents${query}`).set('X-Agent-Token', mainToken).expect(200);
      const res = await list();
      const ids = (res.body.items as { id: string }[]).map((a) => a.id);
      expect(ids.sort()).toEqual([main.id, own.id].sort());
      expect(res.body.total).toBe(2);
      expect(ids).not.toContain(foreign.id);
      expect(ids).not.toContain(sameOrgElsewhere.id);
      // Naming another gateway's board finds nothing either.
      expect((await list(`?board_id=${boardId}`)).body).toMatchObject({ items: [], total: 0 });
    });

    it('a main agent lists the agents of the boards its gateway has now, not of a board moved away', async () => {
      const gatewayA = (await buildGateway(t.dataSource, orgId)).id;
      const gatewayB = (await buildGateway(t.dataSource, orgId)).id;
      const { agent: mainA, token: mainAToken } = await buildAgent(t.dataSource, gatewayA, null);
      const { token: mainBToken } = await buildAgent(t.dataSource, gatewayB, null);
      const moved = await buildBoard(t.dataSource, orgId, gatewayA);
      const { agent: worker } = await buildAgent(t.dataSource, gatewayA, moved.id);
      await t.http
        .patch(`${API}/boards/${moved.id}`)
        .set(admin.headers)
        .send({ gateway_id: gatewayB })
        .expect(200);
      const idsOf = async (token: string, query = '') =>
        (
          (await t.http.get(`${API}/agent/agents${query}`).set('X-Agent-Token', token).expect(200))
            .body.items as { id: string }[]
        ).map((a) => a.id);
      // The board is gateway B's now: B's main agent may act on it (GET /agent/boards agrees),
      // A's may not, whatever gateway the worker row still names.
      expect(await idsOf(mainAToken)).toEqual([mainA.id]);
      expect(await idsOf(mainBToken, `?board_id=${moved.id}`)).toEqual([worker.id]);
    });

    it('a lead deletes a worker of its board, never a lead, a main agent or another board’s agent', async () => {
      const board = await buildBoard(t.dataSource, orgId, gatewayId);
      const { agent: lead, token: leadToken } = await buildAgent(
        t.dataSource,
        gatewayId,
        board.id,
        { isBoardLead: true, name: uniqueName('Lead') },
      );
      const worker = await t.http
        .post(`${API}/agent/agents`)
        .set('X-Agent-Token', leadToken)
        .send({ name: uniqueName('Worker') })
        .expect(200);
      const { agent: main } = await buildAgent(
        t.dataSource,
        (await buildGateway(t.dataSource, orgId)).id,
        null,
      );
      const { agent: elsewhere } = await buildAgent(t.dataSource, gatewayId, boardId);
      const del = (agentId: string) =>
        t.http
          .delete(`${API}/agent/boards/${board.id}/agents/${agentId}`)
          .set('X-Agent-Token', leadToken);
      expect((await del(lead.id).expect(403)).body.detail).toBe(
        'Board leads cannot delete lead agents',
      );
      expect((await del(main.id).expect(403)).body.detail).toBe(
        'Board leads cannot delete gateway main agents',
      );
      await del(elsewhere.id).expect(404);
      await del(worker.body.id as string).expect(200, { ok: true });
      expect(await reload(worker.body.id as string)).toBeNull();
      expect(state.agents.has(`mc-${worker.body.id}`)).toBe(false);
    });
  });

  describe('listing', () => {
    it('board_id=null and empty values are absent; an unknown gateway_id is 404', async () => {
      const all = await t.http.get(`${API}/agents`).set(admin.headers).expect(200);
      const nulls = await t.http
        .get(`${API}/agents?board_id=null&gateway_id=`)
        .set(admin.headers)
        .expect(200);
      expect(nulls.body.total).toBe(all.body.total);
      await t.http.get(`${API}/agents?gateway_id=${randomUUID()}`).set(admin.headers).expect(404);
      const agentId = (all.body.items as { id: string }[])[0].id;
      await t.http
        .patch(`${API}/agents/${agentId}?force=null`)
        .set(admin.headers)
        .send({})
        .expect(200);
      const one = await t.http
        .get(`${API}/agents?board_id=${otherBoardId}`)
        .set(admin.headers)
        .expect(200);
      expect(
        (one.body.items as { board_id: string }[]).every((a) => a.board_id === otherBoardId),
      ).toBe(true);
    });

    it('a board the admin cannot read is 403 as a filter and absent from the list', async () => {
      const plainAdmin = await signInMember(t.http, t.dataSource, orgId, { role: 'admin' });
      await t.http.get(`${API}/agents?board_id=${boardId}`).set(plainAdmin.headers).expect(403);
      const res = await t.http.get(`${API}/agents`).set(plainAdmin.headers).expect(200);
      expect(
        (res.body.items as { board_id: string | null }[]).every((a) => a.board_id === null),
      ).toBe(true);
      await grantBoard(t.dataSource, plainAdmin.memberId, boardId, { canRead: true });
      await t.http.get(`${API}/agents?board_id=${boardId}`).set(plainAdmin.headers).expect(200);
    });
  });
});
