import { forEachConcurrently } from '../common/async/concurrency';
import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, In } from 'typeorm';
import { deleteAgentRows } from '../agents/agent-removal';
import { Agent } from '../agents/entities/agent.entity';
import { ForbiddenError, NotFoundError } from '../common/errors/app-error';
import {
  GatewayAuthError,
  GatewayDialRefusedError,
  GatewayNotConfiguredError,
  GatewayOperationError,
  GatewayPairingRequiredError,
  GatewayProtocolError,
  GatewayTimeoutError,
  GatewayUnavailableError,
} from '../common/errors/gateway-errors';
import { Gateway } from '../gateways/entities/gateway.entity';
import { ProvisioningService } from '../provisioning/provisioning.service';
import { OrganizationMember } from './entities/organization-member.entity';
import { Organization } from './entities/organization.entity';

export const ONLY_OWNERS_DELETE_DETAIL = 'Only organization owners can delete organizations';
const OWNER_ROLE = 'owner';

/** Agents removed from gateways at once while an organization is deleted. */
export const AGENT_CLEANUP_CONCURRENCY = 4;
/**
 * The whole gateway clean-up of one deletion gets this long; agents not reached by then are
 * reported and their rows deleted anyway (one agent's own removal is bounded at about 10 s).
 */
export const AGENT_CLEANUP_BUDGET_MS = 30_000;

/** An agent that may still exist on its gateway after its organization was deleted. */
export interface AgentCleanupFailure {
  agent_id: string;
  agent_name: string;
  gateway_id: string;
  gateway_name: string;
  error: string;
}

/** An agent row deleted with its organization. */
export interface DeletedAgent {
  id: string;
  name: string;
  gatewayId: string;
  gatewayName: string;
}

/** Agent rows and their gateway rows, loaded before the rows are deleted. */
export interface GatewayAgents {
  agents: Agent[];
  gateways: Gateway[];
}

export interface AgentCleanupReport {
  /** Agents removed from their gateway (or already gone there). */
  removed: string[];
  failed: AgentCleanupFailure[];
}

/**
 * Failures that say the gateway as a whole cannot be used (not this agent): the other agents on
 * that gateway are not tried, so a dead gateway costs one bounded attempt, not one per agent.
 */
const WHOLE_GATEWAY_FAILURES = [
  GatewayUnavailableError,
  GatewayTimeoutError,
  GatewayAuthError,
  GatewayPairingRequiredError,
  GatewayDialRefusedError,
  GatewayProtocolError,
  GatewayNotConfiguredError,
];

const TIMED_OUT = Symbol('cleanup budget spent');

/**
 * Deleting an organization and everything it owns (tenancy T5, with the gateway clean-up
 * upstream's T5 lacks): its agents are first removed from their gateways, best effort, with
 * bounded concurrency and total time; then every row goes in one transaction. Used by
 * `DELETE /organizations/me` and by `DELETE /users/me` for the user's sole organizations.
 */
@Injectable()
export class OrganizationDeletionService {
  private readonly logger = new Logger('OrganizationDeletion');

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly provisioning: ProvisioningService,
  ) {}

  /**
   * Removes every agent of these organizations from its gateway (agent, files, session).
   * Never throws for a gateway failure: what could not be removed is reported.
   */
  async removeAgentsFromGateways(
    organizationIds: readonly string[],
    budgetMs = AGENT_CLEANUP_BUDGET_MS,
  ): Promise<AgentCleanupReport> {
    if (organizationIds.length === 0) return { removed: [], failed: [] };
    const targets = await this.agentsOnGateways(this.dataSource.manager, organizationIds);
    return this.removeFromGateways(targets, organizationIds, budgetMs);
  }

  /** The agents of these organizations and their gateways, as removeFromGateways needs them. */
  async agentsOnGateways(
    manager: EntityManager,
    organizationIds: readonly string[],
  ): Promise<GatewayAgents> {
    if (organizationIds.length === 0) return { agents: [], gateways: [] };
    return {
      agents: await manager.find(Agent, {
        where: { organizationId: In([...organizationIds]) },
        order: { createdAt: 'ASC', id: 'ASC' },
      }),
      gateways: await manager.find(Gateway, {
        where: { organizationId: In([...organizationIds]) },
      }),
    };
  }

  /**
   * Removes these agents from their gateways, best effort, with bounded concurrency and total
   * time; never throws for a gateway failure: what could not be removed is reported.
   */
  async removeFromGateways(
    targets: GatewayAgents,
    organizationIds: readonly string[],
    budgetMs = AGENT_CLEANUP_BUDGET_MS,
  ): Promise<AgentCleanupReport> {
    const report: AgentCleanupReport = { removed: [], failed: [] };
    const agents = interleaveByGateway(targets.agents);
    const gateways = new Map(targets.gateways.map((gateway) => [gateway.id, gateway]));
    const deadGateways = new Map<string, string>();
    const deadline = Date.now() + budgetMs;
    // Set when an attempt is cut off: the budget is spent. Not left to the clock alone: the cut-off
    // timer runs on the event loop's millisecond clock, and about one in twenty fires just before
    // Date.now() reaches the deadline, so the freed slot would start another attempt only to cut
    // it off at once (a fifth "not finished" where four were started).
    let budgetSpent = false;
    const fail = (agent: Agent, gateway: Gateway, error: string) =>
      report.failed.push({
        agent_id: agent.id,
        agent_name: agent.name,
        gateway_id: gateway.id,
        gateway_name: gateway.name,
        error,
      });

    await forEachConcurrently(agents, AGENT_CLEANUP_CONCURRENCY, async (agent) => {
      const gateway = gateways.get(agent.gatewayId);
      if (!gateway) return; // impossible: (gateway_id, organization_id) is a foreign key
      const dead = deadGateways.get(gateway.id);
      if (dead !== undefined) {
        fail(agent, gateway, `not attempted: the gateway failed for another agent (${dead})`);
        return;
      }
      const remaining = deadline - Date.now();
      if (budgetSpent || remaining <= 0) {
        fail(agent, gateway, `not attempted within the ${budgetMs / 1000} s clean-up budget`);
        return;
      }
      const outcome = await this.cleanupWithin(agent, gateway, remaining);
      if (outcome === null) report.removed.push(agent.id);
      else if (outcome === TIMED_OUT) {
        budgetSpent = true;
        fail(agent, gateway, `not finished within the ${budgetMs / 1000} s clean-up budget`);
      } else {
        fail(agent, gateway, outcome.message);
        const cause = outcome instanceof GatewayOperationError ? outcome.gatewayError : outcome;
        if (WHOLE_GATEWAY_FAILURES.some((kind) => cause instanceof kind)) {
          deadGateways.set(gateway.id, cause.message);
        }
      }
    });
    if (report.failed.length > 0) {
      this.logger.warn(
        `${report.failed.length} agent(s) of organization(s) ${organizationIds.join(', ')} ` +
          'could not be removed from their gateways',
      );
    }
    return report;
  }

  /** null: removed; an Error: failed; TIMED_OUT: still running when the time was up. */
  private async cleanupWithin(
    agent: Agent,
    gateway: Gateway,
    timeoutMs: number,
  ): Promise<Error | null | typeof TIMED_OUT> {
    let timer: NodeJS.Timeout | undefined;
    // Settles to a value, never rejects: an attempt outliving the budget cannot go unhandled.
    const attempt = this.provisioning.cleanupAgent(agent, gateway).then(
      () => null,
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
    });
    try {
      return await Promise.race([attempt, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Deletes the organization's rows inside the caller's transaction, children first, and
   * returns the agent rows deleted (with their gateway's name). Users whose active organization it was fall back
   * to another membership (or a new "Personal" organization) on their next request.
   */
  async deleteOrganizationRows(
    manager: EntityManager,
    organizationId: string,
    /** Given: receives the deleted agents' and the organization's gateways' rows. */
    collect?: GatewayAgents,
  ): Promise<DeletedAgent[]> {
    const locked = await manager
      .createQueryBuilder(Organization, 'o')
      .setLock('pessimistic_write')
      .where('o.id = :organizationId', { organizationId })
      .getOne();
    if (!locked) throw new NotFoundError();
    // Rows on a board (tasks, approvals, activity…) key-share-lock the board, not the
    // organization: locking the boards waits for writers already inside and holds off new ones,
    // so the child deletes below see every row and the board deletes cannot hit RESTRICT.
    await manager.query('SELECT id FROM boards WHERE organization_id = $1 FOR UPDATE', [
      organizationId,
    ]);
    const agents = await manager.find(Agent, {
      where: { organizationId },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
    const gateways = await manager.find(Gateway, { where: { organizationId } });
    const gatewayNames = new Map(gateways.map((gateway) => [gateway.id, gateway.name]));
    const deletedIds = new Set(
      await deleteAgentRows(
        manager,
        organizationId,
        agents.map((agent) => agent.id),
      ),
    );

    const boards = 'SELECT id FROM boards WHERE organization_id = $1';
    const tasks = `SELECT id FROM tasks WHERE board_id IN (${boards})`;
    const statements = [
      `DELETE FROM activity_events WHERE organization_id = $1 OR board_id IN (${boards})
         OR task_id IN (${tasks})`,
      `DELETE FROM approvals WHERE board_id IN (${boards})`,
      `DELETE FROM board_memory WHERE board_id IN (${boards})`,
      `DELETE FROM board_onboarding_sessions WHERE board_id IN (${boards})`,
      `DELETE FROM organization_board_access WHERE board_id IN (${boards})
         OR organization_member_id IN (SELECT id FROM organization_members WHERE organization_id = $1)`,
      `DELETE FROM organization_invite_board_access WHERE board_id IN (${boards})
         OR organization_invite_id IN (SELECT id FROM organization_invites WHERE organization_id = $1)`,
      `DELETE FROM tasks WHERE board_id IN (${boards})`,
      'DELETE FROM boards WHERE organization_id = $1',
      'DELETE FROM board_groups WHERE organization_id = $1',
      'DELETE FROM gateways WHERE organization_id = $1',
      'DELETE FROM organization_invites WHERE organization_id = $1',
      'DELETE FROM organization_members WHERE organization_id = $1',
      'UPDATE users SET active_organization_id = NULL WHERE active_organization_id = $1',
      'DELETE FROM organizations WHERE id = $1',
    ];
    for (const sql of statements) await manager.query(sql, [organizationId]);
    if (collect) {
      collect.agents.push(...agents.filter((agent) => deletedIds.has(agent.id)));
      collect.gateways.push(...gateways);
    }
    return agents
      .filter((agent) => deletedIds.has(agent.id))
      .map((agent) => ({
        id: agent.id,
        name: agent.name,
        gatewayId: agent.gatewayId,
        gatewayName: gatewayNames.get(agent.gatewayId) ?? '',
      }));
  }

  /**
   * DELETE /organizations/me: agents off their gateways (best effort), then every row in one
   * transaction; agents created meanwhile are removed from their gateways after it.
   */
  async deleteOrganization(member: OrganizationMember): Promise<AgentCleanupReport> {
    if (member.role !== OWNER_ROLE) throw new ForbiddenError(ONLY_OWNERS_DELETE_DETAIL);
    const organizationId = member.organizationId;
    const report = await this.removeAgentsFromGateways([organizationId]);
    const deleted: GatewayAgents = { agents: [], gateways: [] };
    await this.dataSource.transaction(async (manager) => {
      // The clean-up above takes up to its budget: the caller must still be an owner once the
      // organization is locked (owner changes lock it too), or nothing is deleted.
      const organization = await manager
        .createQueryBuilder(Organization, 'o')
        .setLock('pessimistic_write')
        .where('o.id = :organizationId', { organizationId })
        .getOne();
      if (!organization) throw new NotFoundError(); // deleted by a concurrent request
      const current = await manager.findOne(OrganizationMember, {
        where: { id: member.id, organizationId },
      });
      if (current?.role !== OWNER_ROLE) throw new ForbiddenError(ONLY_OWNERS_DELETE_DETAIL);
      await this.deleteOrganizationRows(manager, organizationId, deleted);
    });
    // Agents created during the clean-up above were deleted with the organization but never
    // removed from their gateway: they are removed now (their rows were read under the lock).
    const seen = new Set([...report.removed, ...report.failed.map((failure) => failure.agent_id)]);
    const late = deleted.agents.filter((agent) => !seen.has(agent.id));
    if (late.length === 0) return report;
    const lateReport = await this.removeFromGateways({ agents: late, gateways: deleted.gateways }, [
      organizationId,
    ]);
    return {
      removed: [...report.removed, ...lateReport.removed],
      failed: [...report.failed, ...lateReport.failed],
    };
  }
}

/**
 * One agent of each gateway in turn, so the concurrent slots spread over the gateways and a
 * slow or dead gateway does not hold every slot.
 */
function interleaveByGateway(agents: Agent[]): Agent[] {
  const queues = new Map<string, Agent[]>();
  for (const agent of agents) {
    const queue = queues.get(agent.gatewayId) ?? [];
    queue.push(agent);
    queues.set(agent.gatewayId, queue);
  }
  const ordered: Agent[] = [];
  for (let round = 0; ordered.length < agents.length; round++) {
    for (const queue of queues.values()) if (round < queue.length) ordered.push(queue[round]);
  }
  return ordered;
}
