import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, IsNull } from 'typeorm';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { Agent, AGENT_STATUS } from '../agents/entities/agent.entity';
import { requireBoardGateway } from '../boards/board-gateway';
import { Board } from '../boards/entities/board.entity';
import { mappingAgentConflicts, NAME_TAKEN_ON_BOARD } from '../agents/agent-conflicts';
import { findGatewayMainAgent } from '../agents/gateway-main-agent';
import { ConflictError, NotFoundError } from '../common/errors/app-error';
import { Gateway } from '../gateways/entities/gateway.entity';
import { leadSessionKey, mainSessionKey } from './agent-identity';
import { agentPatch } from './agent-target';
import { defaultHeartbeatConfig } from './heartbeat';
import { DEFAULT_LEAD_NAME, type EnsureLeadOptions } from './provisioning.types';
import { defaultIdentityProfile } from './template-context';

/**
 * The agent rows only the engine creates: a gateway's main agent and a board's lead. Both are
 * unique (per gateway, per board), so concurrent ensure-calls from several instances are safe.
 */
@Injectable()
export class AgentRowsService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Finds or creates the gateway's main agent row and repairs drift (contract §5.4) without
   * touching its token or the gateway. Safe for concurrent callers (unique per gateway).
   */
  async upsertMainAgentRecord(gateway: Gateway): Promise<{ agent: Agent; changed: boolean }> {
    const repo = this.dataSource.getRepository(Agent);
    const name = `${gateway.name} Gateway Agent`;
    const sessionKey = mainSessionKey(gateway.id);
    const inserted = await repo
      .createQueryBuilder()
      .insert()
      .values(
        agentPatch({
          organizationId: gateway.organizationId,
          gatewayId: gateway.id,
          boardId: null,
          name,
          status: AGENT_STATUS.provisioning,
          isBoardLead: false,
          openclawSessionId: sessionKey,
          heartbeatConfig: defaultHeartbeatConfig(),
          identityProfile: defaultIdentityProfile('main'),
        }),
      )
      .orIgnore()
      .returning(['id'])
      .execute();
    const agent = await repo.findOneOrFail({ where: { gatewayId: gateway.id, boardId: IsNull() } });
    if ((inserted.raw as { id: string }[])[0]?.id === agent.id) return { agent, changed: true };
    const repairs: Partial<Agent> = {};
    if (agent.name !== name) repairs.name = name;
    if (agent.isBoardLead) repairs.isBoardLead = false;
    if (agent.openclawSessionId !== sessionKey) repairs.openclawSessionId = sessionKey;
    if (!agent.heartbeatConfig) repairs.heartbeatConfig = defaultHeartbeatConfig();
    if (!agent.identityProfile) repairs.identityProfile = defaultIdentityProfile('main');
    if (!agent.status) repairs.status = AGENT_STATUS.provisioning;
    if (Object.keys(repairs).length === 0) return { agent, changed: false };
    await repo.update({ id: agent.id }, agentPatch(repairs));
    return { agent: await repo.findOneByOrFail({ id: agent.id }), changed: true };
  }

  /** The gateway's main agent row, if any. */
  findMainAgent(gateway: Gateway): Promise<Agent | null> {
    return findGatewayMainAgent(this.dataSource.manager, gateway);
  }

  /** The board and its gateway, when a lead can be provisioned there (contract §5.2 texts). */
  async leadTarget(scope: {
    organizationId: string;
    boardId: string;
  }): Promise<{ board: Board; gateway: Gateway }> {
    const board = await this.dataSource
      .getRepository(Board)
      .findOneBy({ id: scope.boardId, organizationId: scope.organizationId });
    if (!board) throw new NotFoundError();
    return { board, gateway: await requireBoardGateway(this.dataSource, board) };
  }

  findGateway(id: string, organizationId: string): Promise<Gateway | null> {
    return this.dataSource.getRepository(Gateway).findOneBy({ id, organizationId });
  }

  findLead(boardId: string): Promise<Agent | null> {
    return this.dataSource.getRepository(Agent).findOneBy({ boardId, isBoardLead: true });
  }

  /** The lead profile a new lead gets: the lead defaults overlaid with the non-blank given values. */
  private leadIdentityProfile(overlay: Record<string, string> | null | undefined) {
    const identityProfile = defaultIdentityProfile('lead');
    for (const [key, value] of Object.entries(overlay ?? {})) {
      if (typeof value === 'string' && value.trim()) identityProfile[key] = value.trim();
    }
    return identityProfile;
  }

  /** Replaces an existing lead's identity profile as a new lead with `overlay` would get it. */
  async setLeadIdentity(lead: Agent, overlay: Record<string, string> | null | undefined) {
    const identityProfile = this.leadIdentityProfile(overlay);
    const repo = this.dataSource.getRepository(Agent);
    const key = { id: lead.id, organizationId: lead.organizationId };
    await repo.update(key, agentPatch({ identityProfile }));
    return repo.findOneByOrFail(key);
  }

  /** Inserts the board's lead; null when the board already has one (unique lead per board). */
  async insertLead(
    board: Board,
    gateway: Gateway,
    name: string | null,
    options: EnsureLeadOptions,
  ): Promise<string | null> {
    const identityProfile = this.leadIdentityProfile(options.identityProfile);
    const inserted = await this.dataSource
      .getRepository(Agent)
      .createQueryBuilder()
      .insert()
      .values(
        agentPatch({
          organizationId: board.organizationId,
          boardId: board.id,
          gatewayId: gateway.id,
          name: name ?? DEFAULT_LEAD_NAME,
          status: AGENT_STATUS.provisioning,
          isBoardLead: true,
          openclawSessionId: leadSessionKey(board.id),
          heartbeatConfig: defaultHeartbeatConfig(),
          identityProfile,
        }),
      )
      .orIgnore()
      .returning(['id'])
      .execute();
    const id = (inserted.raw as { id: string }[])[0]?.id ?? null;
    // Nothing inserted: either the board has its lead (another caller was first), or the name
    // is another agent's on this board (the only other unique index a new lead can hit).
    if (id === null && !(await this.findLead(board.id))) {
      throw new ConflictError(NAME_TAKEN_ON_BOARD);
    }
    return id;
  }

  async repairLead(lead: Agent, board: Board, gateway: Gateway, name: string | null) {
    const repairs: Partial<Agent> = {};
    if (name && lead.name !== name) repairs.name = name;
    if (lead.gatewayId !== gateway.id) repairs.gatewayId = gateway.id;
    if (!lead.openclawSessionId) repairs.openclawSessionId = leadSessionKey(board.id);
    if (Object.keys(repairs).length === 0) return lead;
    const repo = this.dataSource.getRepository(Agent);
    await mappingAgentConflicts(() => repo.update({ id: lead.id }, agentPatch(repairs)));
    return repo.findOneByOrFail({ id: lead.id });
  }

  /** Records an activity event about the agent (e.g. a cleanup that failed). */
  async recordActivity(agent: Agent, eventType: string, message: string): Promise<void> {
    await this.dataSource.getRepository(ActivityEvent).insert({
      organizationId: agent.organizationId,
      eventType,
      message,
      agentId: agent.id,
      boardId: agent.boardId,
    });
  }
}
