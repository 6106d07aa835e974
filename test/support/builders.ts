/**
 * Fixture builders: the smallest rows a test needs, written straight to the database, plus
 * `signIn`, which creates a user the way a real client does (through the API).
 */
import { randomUUID } from 'node:crypto';
import type TestAgent from 'supertest/lib/agent';
import { DataSource } from 'typeorm';
import { Agent } from '../../src/agents/entities/agent.entity';
import { agentTokenDigest, generateAgentToken } from '../../src/auth/agent-token';
import { BoardGroup } from '../../src/boards/entities/board-group.entity';
import { Board } from '../../src/boards/entities/board.entity';
import { Gateway } from '../../src/gateways/entities/gateway.entity';
import { OrganizationBoardAccess } from '../../src/organizations/entities/organization-board-access.entity';
import { OrganizationMember } from '../../src/organizations/entities/organization-member.entity';
import { Organization } from '../../src/organizations/entities/organization.entity';
import {
  boardAgentSessionKey,
  leadSessionKey,
  mainSessionKey,
} from '../../src/provisioning/agent-identity';
import { User } from '../../src/users/entities/user.entity';
import { bearer, newIdentity, TestIdentity, userToken } from './auth';

export interface SignedInUser {
  identity: TestIdentity;
  token: string;
  headers: { Authorization: string };
  userId: string;
  /** The organization the first request put the user in ("Personal", or an invite's). */
  organizationId: string;
  memberId: string;
}

/** Authenticates a new (or given) identity through POST /auth/bootstrap. */
export async function signIn(
  http: TestAgent,
  dataSource: DataSource,
  identity: TestIdentity = newIdentity(),
): Promise<SignedInUser> {
  const token = await userToken(identity);
  const res = await http.post('/api/v1/auth/bootstrap').set(bearer(token)).expect(200);
  const userId = (res.body as { id: string }).id;
  const member = await dataSource.getRepository(OrganizationMember).findOneOrFail({
    where: { userId },
    order: { createdAt: 'ASC' },
  });
  return {
    identity,
    token,
    headers: bearer(token),
    userId,
    organizationId: member.organizationId,
    memberId: member.id,
  };
}

/**
 * A new user who created an organization through the API (so its owner, and active there);
 * the organization is named `prefix` plus a random suffix.
 */
export async function signInOwnerOfNewOrganization(
  http: TestAgent,
  dataSource: DataSource,
  prefix: string,
): Promise<{ owner: SignedInUser; orgId: string }> {
  const owner = await signIn(http, dataSource);
  const res = await http
    .post('/api/v1/organizations')
    .set(owner.headers)
    .send({ name: `${prefix} ${Math.random().toString(36).slice(2, 10)}` })
    .expect(200);
  return { owner, orgId: (res.body as { id: string }).id };
}

export async function buildOrganization(
  dataSource: DataSource,
  name = `Org ${randomUUID().slice(0, 8)}`,
) {
  return dataSource.getRepository(Organization).save({ name });
}

export async function buildMember(
  dataSource: DataSource,
  organizationId: string,
  userId: string,
  fields: Partial<Pick<OrganizationMember, 'role' | 'allBoardsRead' | 'allBoardsWrite'>> = {},
) {
  return dataSource.getRepository(OrganizationMember).save({
    organizationId,
    userId,
    role: 'member',
    allBoardsRead: false,
    allBoardsWrite: false,
    ...fields,
  });
}

export async function grantBoard(
  dataSource: DataSource,
  memberId: string,
  boardId: string,
  access: { canRead?: boolean; canWrite?: boolean } = {},
) {
  return dataSource.getRepository(OrganizationBoardAccess).save({
    organizationMemberId: memberId,
    boardId,
    canRead: access.canRead ?? true,
    canWrite: access.canWrite ?? false,
  });
}

export async function buildGateway(
  dataSource: DataSource,
  organizationId: string,
  fields: Partial<Gateway> = {},
) {
  return dataSource.getRepository(Gateway).save({
    organizationId,
    name: `Gateway ${randomUUID().slice(0, 8)}`,
    url: 'ws://127.0.0.1:18789',
    token: null,
    workspaceRoot: '~/.openclaw',
    ...fields,
  });
}

export async function buildBoard(
  dataSource: DataSource,
  organizationId: string,
  gatewayId: string | null,
  fields: Partial<Board> = {},
) {
  const suffix = randomUUID().slice(0, 8);
  return dataSource.getRepository(Board).save({
    organizationId,
    gatewayId,
    name: `Board ${suffix}`,
    slug: `board-${suffix}`,
    boardType: 'general',
    ...fields,
  });
}

/** An organization with one gateway (given fields) and one board on that gateway. */
export async function buildBoardOnGateway(
  dataSource: DataSource,
  gatewayFields: Partial<Gateway> = {},
) {
  const organizationId = (await buildOrganization(dataSource)).id;
  const gateway = await buildGateway(dataSource, organizationId, gatewayFields);
  const board = await buildBoard(dataSource, organizationId, gateway.id);
  return { organizationId, gateway, board };
}

/** An agent with a fresh token; returns the token in clear, as only provisioned files would hold it. */
export async function buildAgent(
  dataSource: DataSource,
  gatewayId: string,
  boardId: string | null,
  fields: Partial<Agent> = {},
): Promise<{ agent: Agent; token: string }> {
  const token = generateAgentToken();
  const { organizationId } = await dataSource
    .getRepository(Gateway)
    .findOneByOrFail({ id: gatewayId });
  const agent = await dataSource.getRepository(Agent).save({
    organizationId,
    gatewayId,
    boardId,
    name: `Agent ${randomUUID().slice(0, 8)}`,
    status: 'provisioning',
    agentTokenHash: agentTokenDigest(token),
    ...fields,
  });
  return { agent, token };
}

/**
 * A board agent (worker) as the engine keys it: id chosen up front, session key
 * `agent:mc-<id>:main`.
 */
export async function buildWorker(
  dataSource: DataSource,
  gatewayId: string,
  boardId: string,
  fields: Partial<Agent> = {},
): Promise<{ agent: Agent; token: string }> {
  const id = randomUUID();
  return buildAgent(dataSource, gatewayId, boardId, {
    id,
    openclawSessionId: boardAgentSessionKey(id),
    ...fields,
  });
}

/** The board's lead, keyed as the engine keys it (`agent:lead-<board>:main`). */
export async function buildLead(
  dataSource: DataSource,
  gatewayId: string,
  boardId: string,
  fields: Partial<Agent> = {},
): Promise<{ agent: Agent; token: string }> {
  return buildAgent(dataSource, gatewayId, boardId, {
    name: `Lead ${randomUUID().slice(0, 8)}`,
    isBoardLead: true,
    openclawSessionId: leadSessionKey(boardId),
    ...fields,
  });
}

/** The gateway's main agent (no board), keyed `agent:mc-gateway-<gateway>:main`. */
export async function buildMainAgent(
  dataSource: DataSource,
  gatewayId: string,
  fields: Partial<Agent> = {},
): Promise<{ agent: Agent; token: string }> {
  return buildAgent(dataSource, gatewayId, null, {
    name: `Gateway Agent ${randomUUID().slice(0, 8)}`,
    openclawSessionId: mainSessionKey(gatewayId),
    ...fields,
  });
}

/**
 * Records a fresh token as unconfirmed for the agent (as a run does just before writing it into
 * the workspace); returns the token in clear.
 */
export async function addPendingAgentToken(dataSource: DataSource, agentId: string) {
  const token = generateAgentToken();
  await dataSource.query(
    `INSERT INTO agent_pending_tokens (organization_id, agent_id, token_hash)
     SELECT g.organization_id, a.id, $2 FROM agents a JOIN gateways g ON g.id = a.gateway_id
     WHERE a.id = $1`,
    [agentId, agentTokenDigest(token)],
  );
  return token;
}

/** The digests of the agent's unconfirmed tokens, oldest first. */
export async function pendingAgentTokenDigests(
  dataSource: DataSource,
  agentId: string,
): Promise<string[]> {
  const rows = await dataSource.query<{ token_hash: string }[]>(
    'SELECT token_hash FROM agent_pending_tokens WHERE agent_id = $1 ORDER BY created_at',
    [agentId],
  );
  return rows.map((row) => row.token_hash);
}

export async function buildBoardGroup(
  dataSource: DataSource,
  organizationId: string,
  fields: Partial<BoardGroup> = {},
) {
  const suffix = randomUUID().slice(0, 8);
  return dataSource.getRepository(BoardGroup).save({
    organizationId,
    name: `Group ${suffix}`,
    slug: `group-${suffix}`,
    description: null,
    ...fields,
  });
}

/**
 * Signs a new user in (which gives them a "Personal" organization), then makes them a member of
 * `organizationId` with the given role and flags, active unless `activate` is false. The
 * returned `organizationId` and `memberId` are those of the new membership.
 */
export async function signInMember(
  http: TestAgent,
  dataSource: DataSource,
  organizationId: string,
  fields: Partial<Pick<OrganizationMember, 'role' | 'allBoardsRead' | 'allBoardsWrite'>> = {},
  options: { activate?: boolean; identity?: TestIdentity } = {},
): Promise<SignedInUser> {
  const user = await signIn(http, dataSource, options.identity ?? newIdentity());
  const member = await buildMember(dataSource, organizationId, user.userId, fields);
  if (options.activate ?? true) {
    await dataSource
      .getRepository(User)
      .update({ id: user.userId }, { activeOrganizationId: organizationId });
  }
  return { ...user, organizationId, memberId: member.id };
}
