/**
 * DELETE /organizations/me and DELETE /users/me on a real PostgreSQL, with in-process fake
 * gateways holding the organization's agents: agents are removed from their gateways first
 * (best effort; a gateway that refuses is reported, a broken one is not asked once per agent),
 * then every row the organization owns goes, other organizations' rows stay, and the caller's
 * next request resolves to another membership or a new "Personal" organization.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { Agent } from '../../src/agents/entities/agent.entity';
import { NotFoundError } from '../../src/common/errors/app-error';
import { Gateway } from '../../src/gateways/entities/gateway.entity';
import { OrganizationMember } from '../../src/organizations/entities/organization-member.entity';
import { OrganizationDeletionService } from '../../src/organizations/organization-deletion.service';
import { agentGatewayIdentity } from '../../src/provisioning/agent-identity';
import { User } from '../../src/users/entities/user.entity';
import {
  addPendingAgentToken,
  buildAgent,
  buildBoard,
  buildBoardGroup,
  buildGateway,
  buildMember,
  grantBoard,
  SignedInUser,
  signInMember,
  signInOwnerOfNewOrganization,
} from '../support/builders';
import { FakeGateway, FakeRpcError } from '../support/fake-gateway';
import {
  Gate,
  gatewayFieldsFor,
  serveOpenClawState,
  startOpenClawFake,
} from '../support/fake-openclaw-state';
import { waitUntil } from '../support/eventually';
import { createTestApp, TestApp } from '../support/test-app';

type FakeState = ReturnType<typeof serveOpenClawState>;

/** Puts the agent's gateway agent on the fake, so its removal is observable. */
function placeOnFake(state: FakeState, agent: Agent, gateway: Gateway): string {
  const id = agentGatewayIdentity(agent, gateway).gatewayAgentId;
  state.agents.set(id, { name: id, workspace: `/srv/openclaw/workspace-${id}` });
  state.files.set(id, new Map([['AGENTS.md', 'x']]));
  return id;
}

/**
 * Every kind of row an organization owns, around one board: a task (created by `userId`,
 * assigned to `agentId`), an approval, board memory, an onboarding session, activity, a board
 * group, an invite with a board row and a member board row.
 */
async function populate(
  ds: DataSource,
  organizationId: string,
  boardId: string,
  userId: string,
  agentId: string,
  memberId: string,
): Promise<void> {
  const [task] = await ds.query<{ id: string }[]>(
    `INSERT INTO tasks (board_id, title, created_by_user_id, assigned_agent_id, status)
     VALUES ($1, 'a task', $2, $3, 'in_progress') RETURNING id`,
    [boardId, userId, agentId],
  );
  await ds.query(
    `INSERT INTO approvals (board_id, task_id, agent_id, action_type, confidence)
     VALUES ($1, $2, $3, 'deploy', 80)`,
    [boardId, task.id, agentId],
  );
  await ds.query(`INSERT INTO board_memory (board_id, content) VALUES ($1, 'remember')`, [boardId]);
  await ds.query(
    `INSERT INTO board_onboarding_sessions (board_id, session_key) VALUES ($1, 'agent:x:onboarding')`,
    [boardId],
  );
  await ds.query(
    `INSERT INTO activity_events (organization_id, board_id, task_id, agent_id, event_type, message)
     VALUES ($1, $2, $3, $4, 'task.created', 'hello')`,
    [organizationId, boardId, task.id, agentId],
  );
  await buildBoardGroup(ds, organizationId);
  const [invite] = await ds.query<{ id: string }[]>(
    `INSERT INTO organization_invites (organization_id, invited_email, token, created_by_user_id)
     VALUES ($1, $2, $3, $4) RETURNING id`,
    [organizationId, `invitee-${randomUUID()}@example.test`, randomUUID(), userId],
  );
  await ds.query(
    `INSERT INTO organization_invite_board_access (organization_invite_id, board_id, can_read, can_write)
     VALUES ($1, $2, true, false)`,
    [invite.id, boardId],
  );
  await grantBoard(ds, memberId, boardId, { canRead: true });
}

/** Rows of each table that belong to the organization (directly or through its boards). */
async function ownedRows(ds: DataSource, organizationId: string): Promise<Record<string, number>> {
  const boards = 'SELECT id FROM boards WHERE organization_id = $1';
  const queries: Record<string, string> = {
    organizations: 'SELECT count(*) FROM organizations WHERE id = $1',
    organization_members: 'SELECT count(*) FROM organization_members WHERE organization_id = $1',
    organization_invites: 'SELECT count(*) FROM organization_invites WHERE organization_id = $1',
    organization_board_access: `SELECT count(*) FROM organization_board_access WHERE board_id IN (${boards})`,
    organization_invite_board_access: `SELECT count(*) FROM organization_invite_board_access WHERE board_id IN (${boards})`,
    gateways: 'SELECT count(*) FROM gateways WHERE organization_id = $1',
    board_groups: 'SELECT count(*) FROM board_groups WHERE organization_id = $1',
    boards: 'SELECT count(*) FROM boards WHERE organization_id = $1',
    agents: 'SELECT count(*) FROM agents WHERE organization_id = $1',
    agent_pending_tokens: 'SELECT count(*) FROM agent_pending_tokens WHERE organization_id = $1',
    tasks: `SELECT count(*) FROM tasks WHERE board_id IN (${boards})`,
    approvals: `SELECT count(*) FROM approvals WHERE board_id IN (${boards})`,
    board_memory: `SELECT count(*) FROM board_memory WHERE board_id IN (${boards})`,
    board_onboarding_sessions: `SELECT count(*) FROM board_onboarding_sessions WHERE board_id IN (${boards})`,
    activity_events: 'SELECT count(*) FROM activity_events WHERE organization_id = $1',
  };
  const counts: Record<string, number> = {};
  for (const [table, sql] of Object.entries(queries)) {
    const [{ count }] = await ds.query<{ count: string }[]>(sql, [organizationId]);
    counts[table] = Number(count);
  }
  return counts;
}

const none = (counts: Record<string, number>) =>
  Object.fromEntries(Object.keys(counts).map((table) => [table, 0]));

describe('organization and account deletion', () => {
  let t: TestApp;
  let fakeA: FakeGateway;
  let stateA: FakeState;
  let fakeB: FakeGateway;
  let stateB: FakeState;

  beforeAll(async () => {
    t = await createTestApp();
    ({ fake: fakeA, state: stateA } = await startOpenClawFake());
    ({ fake: fakeB, state: stateB } = await startOpenClawFake());
    // Gateway B refuses to delete agents, for good (not a transient error).
    fakeB.methods['agents.delete'] = () => {
      throw new FakeRpcError({ code: 'INVALID_REQUEST', message: 'agent deletion is disabled' });
    };
  });
  afterAll(async () => {
    await t.close();
    await fakeA.stop();
    await fakeB.stop();
  });

  /**
   * An organization owned by a new user, with gateway A (main agent + two board agents, all on
   * fake A) and gateway B (one board agent, which B refuses to delete), every kind of row, a
   * plain member, and the same shape of rows in an unrelated organization.
   */
  async function world() {
    const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Doomed');
    const member = await signInMember(t.http, t.dataSource, orgId);
    const gatewayA = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fakeA));
    const gatewayB = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fakeB));
    const boardA = await buildBoard(t.dataSource, orgId, gatewayA.id);
    const boardB = await buildBoard(t.dataSource, orgId, gatewayB.id);
    const main = (await buildAgent(t.dataSource, gatewayA.id, null, { name: 'Main' })).agent;
    const a1 = (await buildAgent(t.dataSource, gatewayA.id, boardA.id)).agent;
    const a2 = (await buildAgent(t.dataSource, gatewayA.id, boardA.id)).agent;
    const b1 = (await buildAgent(t.dataSource, gatewayB.id, boardB.id, { name: 'Stuck' })).agent;
    const onA = [main, a1, a2].map((agent) => placeOnFake(stateA, agent, gatewayA));
    const onB = placeOnFake(stateB, b1, gatewayB);
    await addPendingAgentToken(t.dataSource, a2.id);
    await populate(t.dataSource, orgId, boardA.id, owner.userId, a1.id, member.memberId);
    await populate(t.dataSource, orgId, boardB.id, owner.userId, b1.id, member.memberId);

    const other = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Bystander');
    const otherGateway = await buildGateway(t.dataSource, other.orgId, gatewayFieldsFor(fakeA));
    const otherBoard = await buildBoard(t.dataSource, other.orgId, otherGateway.id);
    const otherAgent = (await buildAgent(t.dataSource, otherGateway.id, otherBoard.id)).agent;
    const otherOnA = placeOnFake(stateA, otherAgent, otherGateway);
    const otherMember = await signInMember(t.http, t.dataSource, other.orgId);
    await populate(
      t.dataSource,
      other.orgId,
      otherBoard.id,
      other.owner.userId,
      otherAgent.id,
      otherMember.memberId,
    );
    return { owner, orgId, member, gatewayB, b1, onA, onB, other, otherOnA };
  }

  describe('DELETE /organizations/me', () => {
    it('removes the agents from their gateways, reports the refused one, deletes every row', async () => {
      const w = await world();
      const before = await ownedRows(t.dataSource, w.orgId);
      expect(Object.values(before).every((count) => count > 0)).toBe(true);
      const otherBefore = await ownedRows(t.dataSource, w.other.orgId);

      const res = await t.http.delete('/api/v1/organizations/me').set(w.owner.headers).expect(200);

      expect(res.body).toEqual({
        ok: true,
        agents_removed: 3,
        agent_cleanup_failures: [
          {
            agent_id: w.b1.id,
            agent_name: 'Stuck',
            gateway_id: w.gatewayB.id,
            gateway_name: w.gatewayB.name,
            error: expect.stringMatching(/^Gateway cleanup failed: .*agent deletion is disabled/),
          },
        ],
      });
      for (const id of w.onA) expect(stateA.agents.has(id)).toBe(false);
      expect(stateB.agents.has(w.onB)).toBe(true);
      expect(await ownedRows(t.dataSource, w.orgId)).toEqual(none(before));
      // The other organization, its agent on the same fake gateway, and its rows are untouched.
      expect(stateA.agents.has(w.otherOnA)).toBe(true);
      expect(await ownedRows(t.dataSource, w.other.orgId)).toEqual(otherBefore);
      // Rows that only mentioned the organization's members stay (users are not deleted).
      expect(await t.dataSource.getRepository(User).countBy({ id: w.member.userId })).toBe(1);
    });

    it("the caller's next request lands in a new Personal organization; a member's in their other one", async () => {
      const w = await world();
      // The member also belongs to the bystander organization (joined later, so not the oldest).
      await buildMember(t.dataSource, w.other.orgId, w.member.userId);
      await t.http.delete('/api/v1/organizations/me').set(w.owner.headers).expect(200);

      const mine = await t.http.get('/api/v1/organizations/me').set(w.owner.headers).expect(200);
      expect(mine.body.name).toBe('Personal');
      expect(mine.body.id).not.toBe(w.orgId);
      const theirs = await t.http.get('/api/v1/organizations/me').set(w.member.headers).expect(200);
      const remaining = await t.dataSource
        .getRepository(OrganizationMember)
        .findBy({ userId: w.member.userId });
      // Their memberships left: their own Personal organization and the bystander one.
      expect(remaining.map((m) => m.organizationId)).toContain(w.other.orgId);
      expect(remaining).toHaveLength(2);
      expect(remaining.map((m) => m.organizationId)).toContain(theirs.body.id);
      const list = await t.http
        .get('/api/v1/organizations/me/list')
        .set(w.member.headers)
        .expect(200);
      expect(list.body.map((o: { id: string }) => o.id)).not.toContain(w.orgId);
    });

    it('a gateway that rejects our credentials is tried once, not once per agent', async () => {
      const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Locked');
      const gateway = await buildGateway(t.dataSource, orgId, {
        ...gatewayFieldsFor(fakeA),
        token: 'not-the-token',
      });
      const board = await buildBoard(t.dataSource, orgId, gateway.id);
      for (let i = 0; i < 6; i++) await buildAgent(t.dataSource, gateway.id, board.id);
      const connectsBefore = fakeA.connects.length;

      const res = await t.http.delete('/api/v1/organizations/me').set(owner.headers).expect(200);

      const errors = (res.body.agent_cleanup_failures as { error: string }[]).map((f) => f.error);
      expect(res.body.agents_removed).toBe(0);
      expect(errors).toHaveLength(6);
      // Four start at once (the concurrency) and share one refused dial; the rest are skipped.
      expect(
        errors.filter((e) => /token/i.test(e) && e.startsWith('Gateway cleanup failed')),
      ).toHaveLength(4);
      expect(errors.filter((e) => e.startsWith('not attempted: the gateway failed'))).toHaveLength(
        2,
      );
      expect(fakeA.connects.length - connectsBefore).toBeLessThanOrEqual(4);
      expect(await ownedRows(t.dataSource, orgId)).toMatchObject({ agents: 0, organizations: 0 });
    });

    /**
     * An organization whose six agents sit on a fake gateway that never answers `agents.delete`;
     * `run` gets the organization and the agent ids; the gateway is released and stopped after.
     */
    const withHungGateway = async (
      prefix: string,
      run: (orgId: string, agentIds: string[], gate: Gate) => Promise<void>,
    ): Promise<void> => {
      const gate = new Gate();
      const { fake, state } = await startOpenClawFake({ gate });
      try {
        const { orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, prefix);
        const gateway = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake));
        const board = await buildBoard(t.dataSource, orgId, gateway.id);
        const agentIds: string[] = [];
        for (let i = 0; i < 6; i++) {
          const { agent } = await buildAgent(t.dataSource, gateway.id, board.id);
          placeOnFake(state, agent, gateway);
          agentIds.push(agent.id);
        }
        gate.close('agents.delete');
        await run(orgId, agentIds, gate);
      } finally {
        gate.open();
        await fake.stop();
      }
    };

    it('an attempt cut off at the budget starts no other, even when its timer fires early', async () => {
      // The cut-off timers run on the event loop's millisecond clock, Date.now() on the wall
      // clock: about one timer in twenty fires just before Date.now() reaches the deadline, and
      // the freed slot started a fifth attempt (seen in CI). Forty short rounds of four timers
      // each make that all but certain to happen here at least once.
      await withHungGateway('Early', async (orgId) => {
        const service = t.app.get(OrganizationDeletionService);
        const targets = await service.agentsOnGateways(t.dataSource.manager, [orgId]);
        const rounds: string[] = [];
        for (let round = 0; round < 40; round++) {
          const report = await service.removeFromGateways(targets, [orgId], 20);
          const errors = report.failed.map((f) => f.error);
          const started = errors.filter((e) => e.startsWith('not finished within')).length;
          const skipped = errors.filter((e) => e.startsWith('not attempted within')).length;
          rounds.push(`${started}+${skipped}`);
        }
        expect(rounds).toEqual(Array.from({ length: 40 }, () => '4+2'));
      });
    });

    it('a gateway that never answers ends the clean-up at its time budget, every agent reported', async () => {
      await withHungGateway('Hung', async (orgId, agentIds, gate) => {
        const report = await t.app
          .get(OrganizationDeletionService)
          .removeAgentsFromGateways([orgId], 300);

        expect(report.removed).toEqual([]);
        expect(report.failed.map((f) => f.agent_id).sort()).toEqual([...agentIds].sort());
        const errors = report.failed.map((f) => f.error);
        // Four were started (the concurrency) and cut off; the other two never started.
        expect(errors.filter((e) => e.startsWith('not finished within'))).toHaveLength(4);
        expect(errors.filter((e) => e.startsWith('not attempted within'))).toHaveLength(2);
        expect(gate.held).toBeGreaterThan(0);
      });
    });

    it('a task being created on one of its boards meanwhile is deleted too, not a 500', async () => {
      const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Busy');
      const gateway = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fakeA));
      const board = await buildBoard(t.dataSource, orgId, gateway.id);
      // Another request's transaction has inserted a task on the board and not committed yet.
      const writer = t.dataSource.createQueryRunner();
      await writer.connect();
      try {
        await writer.startTransaction();
        await writer.query(`INSERT INTO tasks (board_id, title) VALUES ($1, 'late task')`, [
          board.id,
        ]);
        const deletion = t.http.delete('/api/v1/organizations/me').set(owner.headers).then();
        await waitUntil(
          async () => {
            const [{ waiting }] = await t.dataSource.query<{ waiting: number }[]>(
              `SELECT count(*)::int AS waiting FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            );
            return waiting > 0;
          },
          { what: () => 'the deletion never waited for the task writer' },
        );
        await writer.commitTransaction();
        const res = await deletion;
        expect(res.status).toBe(200);
      } finally {
        if (writer.isTransactionActive) await writer.rollbackTransaction();
        await writer.release();
      }
      expect(await ownedRows(t.dataSource, orgId)).toMatchObject({ organizations: 0, boards: 0 });
      const [{ count }] = await t.dataSource.query<{ count: number }[]>(
        'SELECT count(*)::int AS count FROM tasks WHERE board_id = $1',
        [board.id],
      );
      expect(count).toBe(0);
    });

    it('an owner demoted while the agents are being removed: 403, the organization kept', async () => {
      const gate = new Gate();
      const { fake, state } = await startOpenClawFake({ gate });
      try {
        const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Demo');
        await signInMember(t.http, t.dataSource, orgId, { role: 'owner' });
        const gateway = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake));
        const board = await buildBoard(t.dataSource, orgId, gateway.id);
        const { agent } = await buildAgent(t.dataSource, gateway.id, board.id);
        placeOnFake(state, agent, gateway);
        gate.close('agents.delete');
        const deletion = t.http.delete('/api/v1/organizations/me').set(owner.headers).then();
        await waitUntil(() => gate.held > 0, { what: () => 'agents.delete never reached' });
        // The other owner demotes the caller meanwhile.
        await t.dataSource.query(
          `UPDATE organization_members SET role = 'admin' WHERE organization_id = $1 AND user_id = $2`,
          [orgId, owner.userId],
        );
        gate.open();
        const res = await deletion;
        expect(res.status).toBe(403);
        expect(res.body.detail).toBe('Only organization owners can delete organizations');
        expect((await ownedRows(t.dataSource, orgId)).organizations).toBe(1);
      } finally {
        gate.open();
        await fake.stop();
      }
    });

    it('an agent created while the agents are being removed is removed from its gateway too', async () => {
      const gate = new Gate();
      const { fake, state } = await startOpenClawFake({ gate });
      try {
        const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Late');
        const gateway = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fake));
        const board = await buildBoard(t.dataSource, orgId, gateway.id);
        const early = (await buildAgent(t.dataSource, gateway.id, board.id)).agent;
        const earlyOnFake = placeOnFake(state, early, gateway);
        gate.close('agents.delete');
        const deletion = t.http.delete('/api/v1/organizations/me').set(owner.headers).then();
        await waitUntil(() => gate.held > 0, { what: () => 'agents.delete never reached' });
        const late = (await buildAgent(t.dataSource, gateway.id, board.id, { name: 'Late' })).agent;
        const lateOnFake = placeOnFake(state, late, gateway);
        gate.open();
        const res = await deletion;
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ agents_removed: 2, agent_cleanup_failures: [] });
        expect(state.agents.has(earlyOnFake)).toBe(false);
        expect(state.agents.has(lateOnFake)).toBe(false);
      } finally {
        gate.open();
        await fake.stop();
      }
    });

    it('a second deletion of the same organization (a concurrent request) is a 404', async () => {
      const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Twice');
      const member = await t.dataSource
        .getRepository(OrganizationMember)
        .findOneByOrFail({ organizationId: orgId, userId: owner.userId });
      const deletion = t.app.get(OrganizationDeletionService);
      await deletion.deleteOrganization(member);
      await expect(deletion.deleteOrganization(member)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('an admin who is not an owner: 403; a member: 403; anonymous: 401; nothing deleted', async () => {
      const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Kept');
      const admin = await signInMember(t.http, t.dataSource, orgId, { role: 'admin' });
      const member = await signInMember(t.http, t.dataSource, orgId);
      const res = await t.http.delete('/api/v1/organizations/me').set(admin.headers).expect(403);
      expect(res.body.detail).toBe('Only organization owners can delete organizations');
      await t.http.delete('/api/v1/organizations/me').set(member.headers).expect(403);
      await t.http.delete('/api/v1/organizations/me').expect(401);
      await t.http.get('/api/v1/organizations/me').set(owner.headers).expect(200);
      expect((await ownedRows(t.dataSource, orgId)).organizations).toBe(1);
    });
  });

  describe('DELETE /users/me', () => {
    it('409 while the user is the last owner of an organization with other members', async () => {
      const { owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Team');
      await signInMember(t.http, t.dataSource, orgId, { role: 'admin' });
      const res = await t.http.delete('/api/v1/users/me').set(owner.headers).expect(409);
      expect(res.body.detail).toMatch(/^You are the last owner of the organization "Team [^"]+"/);
      expect(await t.dataSource.getRepository(User).countBy({ id: owner.userId })).toBe(1);
      // Nothing was deleted: the Personal organization (sole) is still there too.
      expect(
        await t.dataSource.getRepository(OrganizationMember).countBy({ userId: owner.userId }),
      ).toBe(2);
    });

    it('deletes the account, its memberships and its sole organizations; shared rows keep a null reference', async () => {
      // The user: owner of a sole organization with agents on fake A, co-owner of a team
      // organization, where they created a task and an invite.
      const { owner: user, orgId: soleOrg } = await signInOwnerOfNewOrganization(
        t.http,
        t.dataSource,
        'Solo',
      );
      const personal = user.organizationId;
      const soleGateway = await buildGateway(t.dataSource, soleOrg, gatewayFieldsFor(fakeA));
      const soleBoard = await buildBoard(t.dataSource, soleOrg, soleGateway.id);
      const soleAgent = (await buildAgent(t.dataSource, soleGateway.id, soleBoard.id)).agent;
      const soleOnA = placeOnFake(stateA, soleAgent, soleGateway);

      const team = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Shared');
      const userInTeam = await buildMember(t.dataSource, team.orgId, user.userId, {
        role: 'owner',
      });
      const teamGateway = await buildGateway(t.dataSource, team.orgId);
      const teamBoard = await buildBoard(t.dataSource, team.orgId, teamGateway.id);
      await grantBoard(t.dataSource, userInTeam.id, teamBoard.id, { canRead: true });
      const [task] = await t.dataSource.query<{ id: string }[]>(
        `INSERT INTO tasks (board_id, title, created_by_user_id) VALUES ($1, 't', $2) RETURNING id`,
        [teamBoard.id, user.userId],
      );
      const [invite] = await t.dataSource.query<{ id: string }[]>(
        `INSERT INTO organization_invites (organization_id, invited_email, token, created_by_user_id, accepted_by_user_id)
         VALUES ($1, 'x@example.test', $2, $3, $3) RETURNING id`,
        [team.orgId, randomUUID(), user.userId],
      );
      const teamBefore = await ownedRows(t.dataSource, team.orgId);

      const res = await t.http.delete('/api/v1/users/me').set(user.headers).expect(200);

      expect(res.body).toEqual({
        ok: true,
        agents_removed: 1,
        agent_cleanup_failures: [],
        deleted_organization_ids: expect.arrayContaining([soleOrg, personal]),
      });
      expect(res.body.deleted_organization_ids).toHaveLength(2);
      expect(stateA.agents.has(soleOnA)).toBe(false);
      for (const orgId of [soleOrg, personal]) {
        const counts = await ownedRows(t.dataSource, orgId);
        expect(counts).toEqual(none(counts));
      }
      expect(await t.dataSource.getRepository(User).countBy({ id: user.userId })).toBe(0);
      expect(
        await t.dataSource.getRepository(OrganizationMember).countBy({ userId: user.userId }),
      ).toBe(0);
      // The team keeps its rows, less the user's membership and board row.
      expect(await ownedRows(t.dataSource, team.orgId)).toEqual({
        ...teamBefore,
        organization_members: teamBefore.organization_members - 1,
        organization_board_access: teamBefore.organization_board_access - 1,
      });
      const [taskRow] = await t.dataSource.query(
        'SELECT created_by_user_id FROM tasks WHERE id = $1',
        [task.id],
      );
      expect(taskRow).toEqual({ created_by_user_id: null });
      const [inviteRow] = await t.dataSource.query(
        'SELECT created_by_user_id, accepted_by_user_id FROM organization_invites WHERE id = $1',
        [invite.id],
      );
      expect(inviteRow).toEqual({ created_by_user_id: null, accepted_by_user_id: null });

      // The same identity signing in again is a new user in a new Personal organization.
      const again = await t.http.get('/api/v1/users/me').set(user.headers).expect(200);
      expect(again.body.id).not.toBe(user.userId);
      const org = await t.http.get('/api/v1/organizations/me').set(user.headers).expect(200);
      expect(org.body.name).toBe('Personal');
    });

    it('someone joining a sole organization meanwhile: 409, and its agents stay on their gateway', async () => {
      const { owner: user, orgId } = await signInOwnerOfNewOrganization(
        t.http,
        t.dataSource,
        'Solo',
      );
      const gateway = await buildGateway(t.dataSource, orgId, gatewayFieldsFor(fakeA));
      const board = await buildBoard(t.dataSource, orgId, gateway.id);
      const agent = (await buildAgent(t.dataSource, gateway.id, board.id)).agent;
      const onA = placeOnFake(stateA, agent, gateway);
      const joiner = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Joiner');
      // An invite acceptance in flight: it holds the user row the deletion locks, and commits
      // the new membership once the deletion is under way.
      const acceptance = t.dataSource.createQueryRunner();
      await acceptance.connect();
      try {
        await acceptance.startTransaction();
        await acceptance.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [user.userId]);
        const deletion = t.http.delete('/api/v1/users/me').set(user.headers).then();
        await waitUntil(
          async () => {
            const [{ waiting }] = await t.dataSource.query<{ waiting: number }[]>(
              `SELECT count(*)::int AS waiting FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            );
            return waiting > 0;
          },
          { what: () => 'the deletion never reached its transaction' },
        );
        await acceptance.query(
          `INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'member')`,
          [orgId, joiner.owner.userId],
        );
        await acceptance.commitTransaction();
        const res = await deletion;
        expect(res.status).toBe(409);
      } finally {
        if (acceptance.isTransactionActive) await acceptance.rollbackTransaction();
        await acceptance.release();
      }
      // The organization lives on with its new member: its agent must still be on the gateway.
      expect(await t.dataSource.getRepository(User).countBy({ id: user.userId })).toBe(1);
      expect((await ownedRows(t.dataSource, orgId)).agents).toBe(1);
      expect(stateA.agents.has(onA)).toBe(true);
    });

    it('an invite acceptance into a sole organization still in flight: 409, the new member keeps it', async () => {
      const { owner: user, orgId } = await signInOwnerOfNewOrganization(
        t.http,
        t.dataSource,
        'Solo',
      );
      const joiner = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Joiner');
      const acceptance = t.dataSource.createQueryRunner();
      await acceptance.connect();
      try {
        // The acceptance has inserted the membership but not committed when the deletion runs.
        await acceptance.startTransaction();
        await acceptance.query(
          `INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'member')`,
          [orgId, joiner.owner.userId],
        );
        const deletion = t.http.delete('/api/v1/users/me').set(user.headers).then();
        await waitUntil(
          async () => {
            const [{ waiting }] = await t.dataSource.query<{ waiting: number }[]>(
              `SELECT count(*)::int AS waiting FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            );
            return waiting > 0;
          },
          { what: () => 'the deletion never waited for the acceptance' },
        );
        await acceptance.commitTransaction();
        const res = await deletion;
        expect(res.status).toBe(409);
      } finally {
        if (acceptance.isTransactionActive) await acceptance.rollbackTransaction();
        await acceptance.release();
      }
      expect(await t.dataSource.getRepository(User).countBy({ id: user.userId })).toBe(1);
      expect(
        await t.dataSource
          .getRepository(OrganizationMember)
          .countBy({ organizationId: orgId, userId: joiner.owner.userId }),
      ).toBe(1);
    });

    it('a plain member of a shared organization just leaves it', async () => {
      const team = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Crew');
      const member: SignedInUser = await signInMember(t.http, t.dataSource, team.orgId);
      await t.http.delete('/api/v1/users/me').set(member.headers).expect(200);
      expect(await t.dataSource.getRepository(User).countBy({ id: member.userId })).toBe(0);
      const res = await t.http
        .get('/api/v1/organizations/me/members')
        .set(team.owner.headers)
        .expect(200);
      expect(res.body.total).toBe(1);
    });

    it('anonymous: 401', async () => {
      await t.http.delete('/api/v1/users/me').expect(401);
    });
  });
});
