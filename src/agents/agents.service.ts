import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { Brackets, DataSource, EntityManager } from 'typeorm';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { hasBoardAccess, MembershipService } from '../auth/membership.service';
import { Board } from '../boards/entities/board.entity';
import {
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
} from '../common/errors/app-error';
import { GatewayOperationError } from '../common/errors/gateway-errors';
import { Page, page, PageQuery } from '../common/pagination/pagination';
import { Gateway } from '../gateways/entities/gateway.entity';
import type { OrganizationMember } from '../organizations/entities/organization-member.entity';
import { isOrgAdmin } from '../organizations/roles';
import {
  agentGatewayIdentity,
  boardAgentSessionKey,
  leadSessionKey,
  mainSessionKey,
} from '../provisioning/agent-identity';
import { agentPatch } from '../provisioning/agent-target';
import { defaultHeartbeatConfig } from '../provisioning/heartbeat';
import { ProvisioningService } from '../provisioning/provisioning.service';
import type { User } from '../users/entities/user.entity';
import { AgentHeartbeatService } from './agent-heartbeat.service';
import {
  BOARD_HAS_LEAD,
  GATEWAY_HAS_MAIN,
  mappingAgentConflicts,
  NAME_TAKEN_ON_BOARD,
  NAME_TAKEN_ON_GATEWAY,
} from './agent-conflicts';
import { deleteAgentRows } from './agent-removal';
import {
  AgentAgentsQuery,
  AgentCreate,
  AgentHeartbeatCreate,
  AgentListQuery,
  AgentRead,
  AgentUpdate,
  toAgentRead,
} from './dto/agent.dto';
import { Agent, AGENT_STATUS } from './entities/agent.entity';

/** A user acting in their active organization. */
export interface UserCaller {
  type: 'user';
  user: User;
  member: OrganizationMember;
}
export interface AgentCaller {
  type: 'agent';
  agent: Agent;
}
export type AgentsCaller = UserCaller | AgentCaller;

export {
  BOARD_HAS_LEAD,
  GATEWAY_HAS_MAIN,
  NAME_TAKEN_ON_BOARD,
  NAME_TAKEN_ON_GATEWAY,
} from './agent-conflicts';

/**
 * The session key of a board agent after it moves to `boardId`. A lead's gateway agent is named
 * after its board (`lead-<board>`): a lead moving to another board takes that board's lead key
 * (the update then removes the gateway agent it leaves), else the next lead of its old board
 * would get the same gateway agent and overwrite its workspace and token.
 */
function sessionKeyOnBoard(
  agent: Pick<Agent, 'boardId' | 'isBoardLead' | 'openclawSessionId'>,
  boardId: string,
): string | null {
  if (agent.isBoardLead && agent.boardId !== boardId) return leadSessionKey(boardId);
  return agent.openclawSessionId;
}

/**
 * Upstream's 409 when a lead has created its board's `max_agents` workers (the lead itself does
 * not count).
 */
export function workerLimitReached(maxAgents: number): string {
  const noun = maxAgents === 1 ? 'agent' : 'agents';
  return (
    `Board worker-agent limit reached: max_agents=${maxAgents} (excluding the lead); ` +
    `cannot create more than ${maxAgents} ${noun}.`
  );
}

/** Where a board agent lives: its board, that board's gateway, and whether it leads the board. */
interface NameScope {
  boardId: string;
  gatewayId: string;
  isLead: boolean;
}

/**
 * The agent lifecycle for users and lead agents (contract §1.3, §1.4.5, §7): listing with
 * tenancy, create / update / delete through the provisioning engine, heartbeats. Every query is
 * scoped to an organization; access follows §7.6.
 */
@Injectable()
export class AgentsService {
  private readonly logger = new Logger('Agents');

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly provisioning: ProvisioningService,
    private readonly membership: MembershipService,
    private readonly heartbeats: AgentHeartbeatService,
  ) {}

  private get manager(): EntityManager {
    return this.dataSource.manager;
  }

  // ---------------------------------------------------------------- reads

  /**
   * A1: the agents of the caller's organization on boards it may read, plus (admins) the
   * organization's gateway main agents; `board_id` must be readable (403), `gateway_id` must be
   * the organization's (404). Newest first.
   */
  async list(member: OrganizationMember, query: AgentListQuery): Promise<Page<AgentRead>> {
    const qb = this.manager
      .createQueryBuilder(Agent, 'agent')
      .where('agent.organization_id = :organizationId', {
        organizationId: member.organizationId,
      });
    if (query.board_id) {
      const board = await this.manager.findOneBy(Board, {
        id: query.board_id,
        organizationId: member.organizationId,
      });
      if (!board || !(await hasBoardAccess(this.manager, member, board, false))) {
        throw new ForbiddenError();
      }
      qb.andWhere('agent.board_id = :boardId', { boardId: board.id });
    } else if (member.allBoardsRead || member.allBoardsWrite) {
      // Every board agent; an admin sees the gateway main agents too, so then every agent: no
      // condition beyond the organization (a tautology here would keep the planner off the
      // (organization_id, created_at, id) index and scan the table).
      if (!isOrgAdmin(member)) qb.andWhere('agent.board_id IS NOT NULL');
    } else {
      // `= ANY(ARRAY(subquery))` is evaluated once and, unlike `IN (subquery)` under an OR,
      // lets the board_id index serve both branches (a bitmap OR) instead of a table scan.
      qb.andWhere(
        new Brackets((where) => {
          where.where(
            `agent.board_id = ANY(ARRAY(SELECT access.board_id FROM organization_board_access access
               WHERE access.organization_member_id = :memberId
                 AND (access.can_read OR access.can_write)))`,
            { memberId: member.id },
          );
          if (isOrgAdmin(member)) where.orWhere('agent.board_id IS NULL');
        }),
      );
    }
    if (query.gateway_id) {
      const known = await this.manager.exists(Gateway, {
        where: { id: query.gateway_id, organizationId: member.organizationId },
      });
      if (!known) throw new NotFoundError();
      qb.andWhere('agent.gateway_id = :gatewayId', { gatewayId: query.gateway_id });
    }
    return this.pageOf(qb, query);
  }

  /**
   * C1: a board agent lists its own board's agents (another `board_id` is 403); a gateway main
   * agent lists its organization's agents (upstream listed every tenant's), optionally one board.
   */
  async listForAgent(agent: Agent, query: AgentAgentsQuery): Promise<Page<AgentRead>> {
    const qb = this.manager
      .createQueryBuilder(Agent, 'agent')
      .where('agent.organization_id = :organizationId', { organizationId: agent.organizationId });
    if (agent.boardId) {
      if (query.board_id && query.board_id !== agent.boardId) throw new ForbiddenError();
      qb.andWhere('agent.board_id = :boardId', { boardId: agent.boardId });
    } else {
      // A gateway's main agent acts on its gateway's boards only (agentMayActOnBoard) and lists
      // those boards (GET /agent/boards): it lists their agents and itself, not the agents of
      // another gateway of the organization. "Its boards" by the board's gateway, as those two
      // decide: a board moved to another gateway keeps its agents' rows naming the old one.
      qb.andWhere(
        `((agent.board_id IS NULL AND agent.gateway_id = :gatewayId)
          OR agent.board_id = ANY(ARRAY(SELECT board.id FROM boards board
                                         WHERE board.gateway_id = :gatewayId
                                           AND board.organization_id = :organizationId)))`,
        { gatewayId: agent.gatewayId },
      );
      if (query.board_id) qb.andWhere('agent.board_id = :boardId', { boardId: query.board_id });
    }
    return this.pageOf(qb, query);
  }

  private async pageOf(
    qb: ReturnType<EntityManager['createQueryBuilder']>,
    query: PageQuery,
  ): Promise<Page<AgentRead>> {
    const total = await qb.clone().getCount();
    const agents = (await qb
      .orderBy('agent.created_at', 'DESC')
      .addOrderBy('agent.id', 'DESC')
      .limit(query.limit)
      .offset(query.offset)
      .getMany()) as Agent[];
    const now = new Date();
    return page(
      agents.map((agent) => toAgentRead(agent, now)),
      total,
      query,
    );
  }

  /** A4. */
  async get(member: OrganizationMember, agentId: string): Promise<AgentRead> {
    return toAgentRead(await this.agentForUser(member, agentId, false));
  }

  /** The agent of the caller's organization (404) the caller may read or write (§7.6, 403). */
  private async agentForUser(
    member: OrganizationMember,
    agentId: string,
    write: boolean,
  ): Promise<Agent> {
    const agent = await this.manager.findOneBy(Agent, {
      id: agentId,
      organizationId: member.organizationId,
    });
    if (!agent) throw new NotFoundError();
    await this.requireAgentAccess(member, agent, write);
    return agent;
  }

  /** §7.6: a main agent needs an org admin; a board agent needs access to its board. */
  private async requireAgentAccess(
    member: OrganizationMember,
    agent: Agent,
    write: boolean,
  ): Promise<void> {
    if (agent.boardId === null) {
      if (!isOrgAdmin(member)) throw new ForbiddenError();
      return;
    }
    const board = await this.manager.findOneBy(Board, {
      id: agent.boardId,
      organizationId: member.organizationId,
    });
    if (!board) throw new NotFoundError();
    if (!(await hasBoardAccess(this.manager, member, board, write))) throw new ForbiddenError();
  }

  // ---------------------------------------------------------------- create

  /**
   * A3 / C2: checks (contract order: actor, board, gateway, name), inserts the row, provisions
   * it. A failed provision does not fail the request: the agent stays in a stable status with
   * `last_provision_error` and can be provisioned again (PATCH ?force=true).
   */
  async create(caller: AgentsCaller, body: AgentCreate): Promise<AgentRead> {
    let board: Board;
    let user: User | null = null;
    if (caller.type === 'user') {
      board = await this.boardForUserCreate(caller, body.board_id ?? null);
      user = caller.user;
    } else {
      const lead = caller.agent;
      if (!lead.isBoardLead) throw new ForbiddenError('Only board leads can create agents');
      if (!lead.boardId) throw new ForbiddenError('Board lead must be assigned to a board');
      if (body.board_id && body.board_id !== lead.boardId) {
        throw new ForbiddenError('Board leads can only create agents in their own board');
      }
      const own = await this.manager.findOneBy(Board, {
        id: lead.boardId,
        organizationId: lead.organizationId,
      });
      if (!own) throw new NotFoundError('Board not found');
      board = own;
    }
    // A lead is held to its board's max_agents; users are not limited (as upstream, whose
    // limit check comes before the gateway checks).
    const agent =
      caller.type === 'agent'
        ? await this.insertWorkerForLead(board, body)
        : await this.insertAgent(board, await this.requireBoardGateway(board), body);
    return toAgentRead(await this.provisionNew(agent, user));
  }

  /**
   * The board a user creates an agent on: required (422), existing (404), writable by the user
   * (403), and the user must administer the organization that will own the agent (403).
   */
  private async boardForUserCreate(caller: UserCaller, boardId: string | null): Promise<Board> {
    if (!isOrgAdmin(caller.member)) throw new ForbiddenError();
    if (!boardId) throw new InvalidRequestError('board_id is required');
    const board = await this.manager.findOneBy(Board, { id: boardId });
    if (!board) throw new NotFoundError('Board not found');
    const boardMember = await this.membership.requireBoardAccess(caller.user, board, true);
    if (!isOrgAdmin(boardMember)) throw new ForbiddenError();
    return board;
  }

  /** §7.9: the board's gateway, configured enough to provision on (422 otherwise). */
  private async requireBoardGateway(
    board: Board,
    manager: EntityManager = this.manager,
  ): Promise<Gateway> {
    if (!board.gatewayId) throw new InvalidRequestError('Board gateway_id is required');
    const gateway = await manager.findOneBy(Gateway, {
      id: board.gatewayId,
      organizationId: board.organizationId,
    });
    if (!gateway) throw new InvalidRequestError('Board gateway_id is invalid');
    if (!gateway.url.trim()) throw new InvalidRequestError('Gateway url is required');
    if (!gateway.workspaceRoot.trim()) {
      throw new InvalidRequestError('Gateway workspace_root is required');
    }
    return gateway;
  }

  /**
   * §7.5 with the fix: an exact comparison ignoring case (no LIKE wildcards). Checked first for a
   * clear message; the unique indexes decide between concurrent requests.
   */
  private async ensureUniqueName(
    scope: NameScope,
    name: string,
    exceptId?: string,
    manager: EntityManager = this.manager,
  ) {
    const taken = (where: string, params: Record<string, unknown>) => {
      const qb = manager
        .createQueryBuilder(Agent, 'agent')
        .where(where, params)
        .andWhere('lower(agent.name) = lower(:name)', { name });
      if (exceptId) qb.andWhere('agent.id <> :exceptId', { exceptId });
      return qb.getExists();
    };
    if (await taken('agent.board_id = :boardId', { boardId: scope.boardId })) {
      throw new ConflictError(NAME_TAKEN_ON_BOARD);
    }
    if (
      !scope.isLead &&
      (await taken(
        'agent.gateway_id = :gatewayId AND agent.board_id IS NOT NULL AND NOT agent.is_board_lead',
        { gatewayId: scope.gatewayId },
      ))
    ) {
      throw new ConflictError(NAME_TAKEN_ON_GATEWAY);
    }
  }

  /** Inserts a worker row (no worker limit: a user creating). */
  private async insertAgent(
    board: Board,
    gateway: Gateway,
    body: Pick<
      AgentCreate,
      'name' | 'heartbeat_config' | 'identity_profile' | 'identity_template' | 'soul_template'
    >,
  ): Promise<Agent> {
    return this.insertAgentWith(this.manager, board, gateway, body);
  }

  /**
   * A lead creating a worker: the board row is locked (`FOR NO KEY UPDATE`, which other inserts'
   * foreign-key checks do not wait for) and its workers counted (409) before the gateway checks
   * (422) and the insert, all in one transaction, so concurrent lead creates cannot pass the
   * count together: exactly `max_agents` of them succeed, the others get 409.
   */
  private async insertWorkerForLead(
    board: Board,
    body: Pick<
      AgentCreate,
      'name' | 'heartbeat_config' | 'identity_profile' | 'identity_template' | 'soul_template'
    >,
  ): Promise<Agent> {
    return this.dataSource.transaction(async (manager) => {
      await this.requireWorkerSlot(manager, board);
      const gateway = await this.requireBoardGateway(board, manager);
      return this.insertAgentWith(manager, board, gateway, body);
    });
  }

  /** 409 when the board (locked here until the caller's transaction ends) has no worker slot. */
  private async requireWorkerSlot(manager: EntityManager, board: Board): Promise<void> {
    const locked = await manager
      .createQueryBuilder(Board, 'board')
      .setLock('for_no_key_update')
      .where('board.id = :boardId AND board.organization_id = :organizationId', {
        boardId: board.id,
        organizationId: board.organizationId,
      })
      .getOne();
    if (!locked) throw new NotFoundError('Board not found');
    const workers = await manager
      .createQueryBuilder(Agent, 'agent')
      .where('agent.organization_id = :organizationId AND agent.board_id = :boardId', {
        organizationId: board.organizationId,
        boardId: board.id,
      })
      .andWhere('NOT agent.is_board_lead')
      .getCount();
    if (workers >= locked.maxAgents) {
      throw new ConflictError(workerLimitReached(locked.maxAgents));
    }
  }

  private async insertAgentWith(
    manager: EntityManager,
    board: Board,
    gateway: Gateway,
    body: Pick<
      AgentCreate,
      'name' | 'heartbeat_config' | 'identity_profile' | 'identity_template' | 'soul_template'
    >,
  ): Promise<Agent> {
    const name = body.name.trim();
    await this.ensureUniqueName(
      { boardId: board.id, gatewayId: gateway.id, isLead: false },
      name,
      undefined,
      manager,
    );
    const id = randomUUID();
    await mappingAgentConflicts(() =>
      manager.insert(
        Agent,
        agentPatch({
          id,
          organizationId: board.organizationId,
          boardId: board.id,
          gatewayId: gateway.id,
          name,
          status: AGENT_STATUS.provisioning,
          isBoardLead: false,
          openclawSessionId: boardAgentSessionKey(id),
          heartbeatConfig: body.heartbeat_config ?? defaultHeartbeatConfig(),
          identityProfile: body.identity_profile ?? null,
          identityTemplate: body.identity_template ?? null,
          soulTemplate: body.soul_template ?? null,
        }),
      ),
    );
    return manager.findOneByOrFail(Agent, { id });
  }

  /** First provision of a new agent; its outcome is on the row, never a failed request. */
  private async provisionNew(agent: Agent, user: User | null): Promise<Agent> {
    try {
      const outcome = await this.provisioning.provisionAgent(
        { organizationId: agent.organizationId, agentId: agent.id },
        { action: 'provision', user, resetSession: true },
      );
      return outcome.agent;
    } catch (error) {
      // Recorded on the row by the engine (`last_provision_error`); the agent exists.
      this.logger.warn(`provisioning new agent ${agent.id} failed: ${(error as Error).message}`);
      return this.manager.findOneByOrFail(Agent, { id: agent.id });
    }
  }

  // ---------------------------------------------------------------- update

  /**
   * A5 (§7.7): validates, applies the changes, then re-provisions (`force`: BOOTSTRAP.md too)
   * raising failures: 502 `Gateway update failed: …`, the agent back in a stable status with
   * `last_provision_error` and its previous token still valid (the engine withdraws or keeps
   * the new one only once it is known to be in the workspace).
   */
  async update(
    caller: UserCaller,
    agentId: string,
    body: AgentUpdate,
    force: boolean,
  ): Promise<AgentRead> {
    const { member } = caller;
    const agent = await this.agentForUser(member, agentId, true);
    const makeMain = body.is_gateway_main ?? undefined;
    if (makeMain === true && !isOrgAdmin(member)) throw new ForbiddenError();
    if (body.status !== undefined && body.status !== null) {
      throw new ForbiddenError('status is controlled by agent heartbeat');
    }
    let targetBoard: Board | null = null;
    if (body.board_id) {
      const board = await this.manager.findOneBy(Board, { id: body.board_id });
      if (!board) throw new NotFoundError('Board not found');
      if (board.organizationId !== member.organizationId) throw new NotFoundError();
      if (!(await hasBoardAccess(this.manager, member, board, true))) throw new ForbiddenError();
      targetBoard = board;
    }
    const changes: Partial<Agent> = {};
    if (typeof body.name === 'string') changes.name = body.name;
    if (body.heartbeat_config !== undefined) changes.heartbeatConfig = body.heartbeat_config;
    if (body.identity_profile !== undefined) changes.identityProfile = body.identity_profile;
    if (body.identity_template !== undefined) changes.identityTemplate = body.identity_template;
    if (body.soul_template !== undefined) changes.soulTemplate = body.soul_template;
    if (
      Object.keys(changes).length === 0 &&
      !force &&
      makeMain === undefined &&
      body.board_id === undefined
    ) {
      return toAgentRead(agent);
    }

    const wasMain = agent.boardId === null;
    const placement = await this.placementAfterUpdate(agent, makeMain, body, targetBoard);
    const name = changes.name ?? agent.name;
    if (placement.boardId === null) {
      if (await this.otherMainExists(placement.gatewayId, agent.id)) {
        throw new ConflictError(GATEWAY_HAS_MAIN);
      }
    } else {
      if (placement.isBoardLead && placement.boardId !== agent.boardId) {
        const lead = await this.manager.findOneBy(Agent, {
          boardId: placement.boardId,
          isBoardLead: true,
        });
        if (lead && lead.id !== agent.id) throw new ConflictError(BOARD_HAS_LEAD);
      }
      if (
        changes.name !== undefined ||
        placement.boardId !== agent.boardId ||
        placement.gatewayId !== agent.gatewayId
      ) {
        await this.ensureUniqueName(
          {
            boardId: placement.boardId,
            gatewayId: placement.gatewayId,
            isLead: placement.isBoardLead,
          },
          name,
          agent.id,
        );
      }
    }
    const gateway = await this.manager.findOneByOrFail(Gateway, {
      id: placement.gatewayId,
      organizationId: agent.organizationId,
    });
    if (!gateway.url.trim()) throw new InvalidRequestError('Gateway url is required');
    if (placement.boardId !== null && !gateway.workspaceRoot.trim()) {
      throw new InvalidRequestError('Gateway workspace_root is required');
    }

    const before = { ...agent };
    await mappingAgentConflicts(() =>
      this.manager.update(
        Agent,
        { id: agent.id, organizationId: agent.organizationId },
        agentPatch({
          ...changes,
          ...placement,
          heartbeatConfig:
            (changes.heartbeatConfig !== undefined
              ? changes.heartbeatConfig
              : agent.heartbeatConfig) ?? defaultHeartbeatConfig(),
        }),
      ),
    );
    const outcome = await this.provisioning.provisionAgent(
      { organizationId: agent.organizationId, agentId: agent.id },
      {
        action: 'update',
        user: caller.user,
        resetSession: true,
        forceBootstrap: force,
        raise: true,
      },
    );
    await this.cleanupPreviousIdentity(before, outcome.agent, wasMain);
    return toAgentRead(outcome.agent);
  }

  private async otherMainExists(gatewayId: string, exceptId: string): Promise<boolean> {
    return this.manager
      .createQueryBuilder(Agent, 'agent')
      .where('agent.gateway_id = :gatewayId AND agent.board_id IS NULL', { gatewayId })
      .andWhere('agent.id <> :exceptId', { exceptId })
      .getExists();
  }

  /** Where the agent lives after the update (§7.7 step 5). */
  private async placementAfterUpdate(
    agent: Agent,
    makeMain: boolean | undefined,
    body: AgentUpdate,
    targetBoard: Board | null,
  ): Promise<Pick<Agent, 'boardId' | 'gatewayId' | 'isBoardLead' | 'openclawSessionId'>> {
    const current = {
      boardId: agent.boardId,
      gatewayId: agent.gatewayId,
      isBoardLead: agent.isBoardLead,
      openclawSessionId: agent.openclawSessionId,
    };
    if (makeMain === true) {
      const source =
        targetBoard ??
        (agent.boardId
          ? await this.manager.findOneBy(Board, {
              id: agent.boardId,
              organizationId: agent.organizationId,
            })
          : null);
      if (!source) {
        // Already main: it stays on its gateway.
        if (agent.boardId === null) return current;
        throw new InvalidRequestError('board_id is required');
      }
      const gateway = await this.requireBoardGateway(source);
      return {
        boardId: null,
        gatewayId: gateway.id,
        isBoardLead: false,
        openclawSessionId: mainSessionKey(gateway.id),
      };
    }
    if (makeMain === false) {
      if (!targetBoard) {
        throw new InvalidRequestError(
          'board_id is required when converting a gateway-main agent to board scope',
        );
      }
      if (!targetBoard.gatewayId) throw new InvalidRequestError('Board gateway_id is required');
      return {
        boardId: targetBoard.id,
        gatewayId: targetBoard.gatewayId,
        isBoardLead: agent.isBoardLead,
        openclawSessionId:
          agent.boardId === null
            ? boardAgentSessionKey(agent.id)
            : sessionKeyOnBoard(agent, targetBoard.id),
      };
    }
    if (body.board_id !== undefined) {
      if (!targetBoard) throw new InvalidRequestError('board_id is required');
      if (!targetBoard.gatewayId) throw new InvalidRequestError('Board gateway_id is required');
      // As upstream: a main agent stays main unless told `is_gateway_main: false`.
      if (agent.boardId === null) return current;
      return {
        ...current,
        boardId: targetBoard.id,
        gatewayId: targetBoard.gatewayId,
        openclawSessionId: sessionKeyOnBoard(agent, targetBoard.id),
      };
    }
    return current;
  }

  /**
   * After an update that moved the agent to another gateway agent (made main, made a board
   * agent, or moved to a board of another gateway), removes the one it left behind, best effort.
   */
  private async cleanupPreviousIdentity(before: Agent, after: Agent, wasMain: boolean) {
    if (
      before.gatewayId === after.gatewayId &&
      before.openclawSessionId === after.openclawSessionId
    )
      return;
    // A former main agent's gateway agent is the gateway's: the next main agent takes it over.
    if (wasMain) return;
    try {
      const gateway = await this.manager.findOneBy(Gateway, {
        id: before.gatewayId,
        organizationId: before.organizationId,
      });
      if (!gateway) return;
      const previous = agentGatewayIdentity(before, gateway);
      const current = agentGatewayIdentity(after, gateway);
      if (
        before.gatewayId === after.gatewayId &&
        previous.gatewayAgentId === current.gatewayAgentId
      )
        return;
      await this.provisioning.cleanupAgent(before, gateway);
    } catch (error) {
      this.logger.warn(
        `removing agent ${before.id}'s previous gateway agent failed: ${(error as Error).message}`,
      );
    }
  }

  // ---------------------------------------------------------------- delete

  /** A8: idempotent (a missing agent is `{ok: true}`); main agents too (org admins). */
  async delete(member: OrganizationMember, agentId: string): Promise<void> {
    const agent = await this.manager.findOneBy(Agent, {
      id: agentId,
      organizationId: member.organizationId,
    });
    if (!agent) return;
    await this.requireAgentAccess(member, agent, true);
    await this.remove(agent);
  }

  /**
   * A lead removes a worker of its own board (`DELETE /agent/boards/{board}/agents/{agent}`):
   * never a gateway main agent or a lead (403), never an agent of another board (404).
   */
  async deleteByLead(lead: Agent, board: Board, agentId: string): Promise<void> {
    if (!lead.isBoardLead || lead.boardId !== board.id) {
      throw new ForbiddenError('Only board leads can delete agents');
    }
    const target = await this.manager.findOneBy(Agent, {
      id: agentId,
      organizationId: board.organizationId,
    });
    if (!target) throw new NotFoundError();
    if (target.boardId === null) {
      throw new ForbiddenError('Board leads cannot delete gateway main agents');
    }
    if (target.boardId !== board.id) throw new NotFoundError();
    if (target.isBoardLead) throw new ForbiddenError('Board leads cannot delete lead agents');
    await this.remove(target);
  }

  /**
   * Gateway first, then the rows (contract §7.8 with approvals un-linked): a gateway failure is
   * recorded (`agent.delete.failed`) and answered 502 `Gateway cleanup failed: …` with nothing
   * deleted. Deleting the row (and its pending tokens) makes its tokens fail at once: agent
   * authentication reads the database on every request.
   */
  private async remove(agent: Agent): Promise<void> {
    try {
      await this.provisioning.removeAgent(
        { organizationId: agent.organizationId, agentId: agent.id },
        async (manager) => {
          await manager.insert(ActivityEvent, {
            organizationId: agent.organizationId,
            boardId: agent.boardId,
            agentId: null,
            eventType: 'agent.delete.direct',
            message: `Deleted agent ${agent.name}.`,
          });
          await deleteAgentRows(manager, agent.organizationId, [agent.id]);
        },
      );
    } catch (error) {
      if (error instanceof GatewayOperationError) {
        await this.manager
          .insert(ActivityEvent, {
            organizationId: agent.organizationId,
            boardId: agent.boardId,
            agentId: agent.id,
            eventType: 'agent.delete.failed',
            message: `Delete message failed: ${error.gatewayError.message}`,
          })
          .catch((recording: unknown) =>
            this.logger.warn(`recording a failed delete failed: ${(recording as Error).message}`),
          );
      }
      throw error;
    }
  }

  // ---------------------------------------------------------------- heartbeats

  /** Whether a (re)provision issued the agent a token that may be in its workspace. */
  private async hasPendingToken(agentId: string): Promise<boolean> {
    const rows = await this.manager.query<unknown[]>(
      'SELECT 1 FROM agent_pending_tokens WHERE agent_id = $1 LIMIT 1',
      [agentId],
    );
    return rows.length > 0;
  }

  /** A6: an agent heartbeats only itself; a user needs org admin and write access. */
  async heartbeat(
    caller: AgentsCaller,
    agentId: string,
    status: string | null | undefined,
  ): Promise<AgentRead> {
    if (caller.type === 'agent') {
      const target = await this.manager.findOneBy(Agent, {
        id: agentId,
        organizationId: caller.agent.organizationId,
      });
      if (!target) throw new NotFoundError();
      if (target.id !== caller.agent.id) throw new ForbiddenError();
      return toAgentRead(await this.heartbeats.commitHeartbeat(target, status));
    }
    const target = await this.manager.findOneBy(Agent, {
      id: agentId,
      organizationId: caller.member.organizationId,
    });
    if (!target) throw new NotFoundError();
    if (!isOrgAdmin(caller.member)) throw new ForbiddenError();
    await this.requireAgentAccess(caller.member, target, true);
    return toAgentRead(await this.heartbeats.commitHeartbeat(target, status));
  }

  /**
   * A7: an agent heartbeats itself. A user must administer the organization (on both paths, a
   * fix): the agent named `name` (ignoring case, exactly) on `board_id` heartbeats; when there is
   * none it is created (name uniqueness enforced, a fix) and provisioned first. An existing
   * agent that holds no token (none in force, none pending) is provisioned again.
   */
  async heartbeatOrCreate(caller: AgentsCaller, body: AgentHeartbeatCreate): Promise<AgentRead> {
    if (caller.type === 'agent') {
      return toAgentRead(await this.heartbeats.commitHeartbeat(caller.agent, body.status));
    }
    const { member } = caller;
    if (!isOrgAdmin(member)) throw new ForbiddenError();
    const lookup = this.manager
      .createQueryBuilder(Agent, 'agent')
      .where('agent.organization_id = :organizationId', { organizationId: member.organizationId })
      .andWhere('lower(agent.name) = lower(:name)', { name: body.name.trim() });
    if (body.board_id) lookup.andWhere('agent.board_id = :boardId', { boardId: body.board_id });
    let agent = await lookup.orderBy('agent.created_at', 'ASC').addOrderBy('agent.id').getOne();
    if (!agent) {
      const board = await this.boardForUserCreate(caller, body.board_id ?? null);
      const gateway = await this.requireBoardGateway(board);
      let created: Agent;
      try {
        created = await this.insertAgent(board, gateway, { name: body.name });
      } catch (error) {
        // A concurrent call created the agent after our lookup: this call heartbeats it (its
        // creator provisions it). The caller was just checked for write access to its board.
        // (A concurrent insert may trip the gateway-wide name index first; a name taken only
        // on another board finds no agent here and stays a 409.)
        const winner =
          error instanceof ConflictError &&
          (error.detail === NAME_TAKEN_ON_BOARD || error.detail === NAME_TAKEN_ON_GATEWAY)
            ? await this.manager
                .createQueryBuilder(Agent, 'agent')
                .where('agent.organization_id = :organizationId', {
                  organizationId: board.organizationId,
                })
                .andWhere('agent.board_id = :boardId', { boardId: board.id })
                .andWhere('lower(agent.name) = lower(:name)', { name: body.name.trim() })
                .getOne()
            : null;
        if (!winner) throw error;
        return toAgentRead(await this.heartbeats.commitHeartbeat(winner, body.status));
      }
      agent = await this.provisionNew(created, caller.user);
    } else {
      await this.requireAgentAccess(member, agent, true);
      if (agent.agentTokenHash === null && !(await this.hasPendingToken(agent.id))) {
        if (agent.boardId === null) throw new InvalidRequestError('board_id is required');
        const board = await this.manager.findOneByOrFail(Board, {
          id: agent.boardId,
          organizationId: agent.organizationId,
        });
        await this.membership.requireBoardAccess(caller.user, board, true);
        await this.requireBoardGateway(board);
        agent = await this.provisionNew(agent, caller.user);
      }
    }
    return toAgentRead(await this.heartbeats.commitHeartbeat(agent, body.status));
  }
}
