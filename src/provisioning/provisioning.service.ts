import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { Agent } from '../agents/entities/agent.entity';
import type { Board } from '../boards/entities/board.entity';
import type { Gateway } from '../gateways/entities/gateway.entity';
import { NotFoundError } from '../common/errors/app-error';
import { OpenClawGatewayService } from '../openclaw/openclaw-gateway.service';
import type { User } from '../users/entities/user.entity';
import { AgentCleanup } from './agent-cleanup';
import { agentGatewayIdentity, mainAgentId } from './agent-identity';
import { AgentRowsService } from './agent-rows.service';
import { AgentRunLock, RunNotStartedError } from './agent-run-lock';
import { loadAgentTarget } from './agent-target';
import { AgentTokens } from './agent-tokens';
import { ProvisionRunner, recordNotStarted } from './provision-run';
import type {
  EnsureLeadOptions,
  EnsureLeadResult,
  ProvisionAction,
  ProvisionOutcome,
  ProvisionRequest,
  TenantAgentRef,
} from './provisioning.types';

export * from './provisioning.types';
export { wakeUpMessage } from './provision-run';

/**
 * The provisioning engine's entry point, a thin facade over its parts: the run pipeline
 * (provision-run.ts) under the per-agent run lock (agent-run-lock.ts), the rows only the engine
 * creates (agent-rows.service.ts), cleanup (agent-cleanup.ts) and workspace tokens
 * (agent-tokens.ts). Feature modules check access and configuration (the 4xx) first, then call
 * this.
 */
@Injectable()
export class ProvisioningService {
  private readonly logger = new Logger('Provisioning');

  constructor(
    private readonly runner: ProvisionRunner,
    private readonly runLock: AgentRunLock,
    private readonly rows: AgentRowsService,
    private readonly cleanup: AgentCleanup,
    private readonly tokens: AgentTokens,
    private readonly gateways: OpenClawGatewayService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /**
   * (Re)provisions one agent. A failure is recorded (`last_provision_error`, an
   * `agent.<action>.failed` activity) and leaves the agent in a stable status.
   */
  async provisionAgent(ref: TenantAgentRef, request: ProvisionRequest): Promise<ProvisionOutcome> {
    try {
      return await this.runLock.run(ref.agentId, (manager, lease) =>
        this.runner.run(manager, ref, request, lease),
      );
    } catch (error) {
      if (error instanceof RunNotStartedError) await this.recordNotStarted(ref, request, error);
      throw error;
    }
  }

  /** A run that gave up waiting is recorded too (best effort: the wait's error is what counts). */
  private async recordNotStarted(
    ref: TenantAgentRef,
    request: ProvisionRequest,
    error: RunNotStartedError,
  ): Promise<void> {
    try {
      const { agent } = await loadAgentTarget(this.dataSource.manager, ref);
      await recordNotStarted(this.dataSource.manager, agent, request.action, error, {
        holdsLock: false,
      });
    } catch (failure) {
      this.logger.warn(`recording a run that never started failed: ${(failure as Error).message}`);
    }
  }

  /**
   * Finds or creates the gateway's main agent row and repairs drift (contract §5.4) without
   * touching its token or the gateway.
   */
  upsertMainAgentRecord(gateway: Gateway): Promise<{ agent: Agent; changed: boolean }> {
    return this.rows.upsertMainAgentRecord(gateway);
  }

  /** Upsert + provision the main agent (G2 create with `provision`, G4 update with `update`). */
  async ensureMainAgent(
    gateway: Gateway,
    options: { action: ProvisionAction; user?: User | null; notify?: boolean; raise?: boolean },
  ): Promise<ProvisionOutcome> {
    const { agent } = await this.rows.upsertMainAgentRecord(gateway);
    return this.provisionAgent(
      { organizationId: gateway.organizationId, agentId: agent.id },
      {
        action: options.action,
        user: options.user,
        wake: options.notify ?? true,
        raise: options.raise,
      },
    );
  }

  /**
   * Whether the gateway has the main agent's gateway agent. Read-only: for GETs, which never
   * provision or rotate anything.
   */
  async mainAgentOnGateway(gateway: Gateway): Promise<boolean> {
    const agent = await this.rows.findMainAgent(gateway);
    const agentId = agent
      ? agentGatewayIdentity(agent, gateway).gatewayAgentId
      : mainAgentId(gateway.id);
    const listed = await this.gateways.methods(gateway).agentsList();
    return listed.agents.some((entry) => entry.id === agentId);
  }

  /**
   * The board's lead (contract §5.8): created and provisioned when the board has none. An
   * existing lead is renamed only when a name is given, and provisioned again only when it is
   * not in order: its last provision failed or never finished (`last_provision_error`, which the
   * sweeper also sets for abandoned runs), or the board moved to another gateway (then it is
   * provisioned on the new gateway and removed from the old one, best effort). With
   * `reprovisionExisting` (onboarding confirm) an existing lead takes the given identity and is
   * always provisioned again.
   */
  async ensureBoardLead(
    scope: { organizationId: string; boardId: string },
    options: EnsureLeadOptions = {},
  ): Promise<EnsureLeadResult> {
    const { board, gateway } = await this.rows.leadTarget(scope);
    const wantedName = options.agentName?.trim() || null;
    const existing = await this.rows.findLead(board.id);
    const leadId = existing
      ? null
      : await this.rows.insertLead(board, gateway, wantedName, options);
    const ref = (agentId: string) => ({ organizationId: scope.organizationId, agentId });
    if (leadId) {
      const outcome = await this.provisionAgent(ref(leadId), {
        action: options.action ?? 'provision',
        user: options.user,
      });
      return { lead: outcome.agent, created: true, outcome };
    }
    // An existing lead, or one another instance created between our read and insert.
    let found = existing ?? (await this.rows.findLead(board.id));
    if (!found) throw new Error(`board ${board.id} has no lead after a conflicting insert`);
    if (options.reprovisionExisting && options.identityProfile) {
      // No identity given (a draft naming the lead only): the lead's own one stays.
      found = await this.rows.setLeadIdentity(found, options.identityProfile);
    }
    if (found.gatewayId !== gateway.id) {
      const outcome = await this.moveLead(found.id, board, gateway, wantedName, options);
      if (outcome) return { lead: outcome.agent, created: false, outcome };
    }
    let lead = await this.rows.repairLead(found, board, gateway, wantedName);
    if (options.reprovisionExisting) {
      // The new name and identity reach the lead's files (the run lock orders this run after
      // any run under way, e.g. the creator's first provision).
      const outcome = await this.provisionAgent(ref(lead.id), {
        action: 'update',
        user: options.user,
      });
      return { lead: outcome.agent, created: false, outcome };
    }
    if (lead.agentTokenHash === null && lead.lastProvisionError === null) {
      // Never provisioned and no failure recorded: the caller that created it is running (or
      // about to run) its first provision. Wait for that run (the agent's run lock) and read the
      // row again, so no caller messages a lead the gateway does not have yet.
      lead = (await this.runLock.run(lead.id, () => this.rows.findLead(board.id))) ?? lead;
    }
    if (lead.lastProvisionError === null) return { lead, created: false, outcome: null };

    const outcome = await this.provisionAgent(ref(lead.id), {
      action: (lead.provisionAction as ProvisionAction | null) ?? options.action ?? 'provision',
      user: options.user,
    });
    return { lead: outcome.agent, created: false, outcome };
  }

  /**
   * Moves a lead to its board's new gateway under the lead's run lock: first removes it from
   * the old gateway (best effort, a failure is recorded), then points the row at the new gateway
   * and provisions it there. In that order a process stopping in between leaves the row on the
   * old gateway, so the next call cleans up and moves again: no orphan is left behind. Null when
   * another call moved it meanwhile.
   */
  private moveLead(
    leadId: string,
    board: Board,
    gateway: Gateway,
    wantedName: string | null,
    options: EnsureLeadOptions,
  ): Promise<ProvisionOutcome | null> {
    const ref = { organizationId: gateway.organizationId, agentId: leadId };
    return this.runLock.run(leadId, async (manager, lease) => {
      const lead = await this.rows.findLead(board.id);
      if (!lead || lead.id !== leadId || lead.gatewayId === gateway.id) return null;
      await this.cleanupElsewhere(lead, lead.gatewayId, gateway.organizationId);
      await this.rows.repairLead(lead, board, gateway, wantedName);
      return this.runner.run(manager, ref, { action: 'provision', user: options.user }, lease);
    });
  }

  /** Best effort: removes the agent from a gateway it no longer lives on. */
  private async cleanupElsewhere(agent: Agent, gatewayId: string, organizationId: string) {
    try {
      const previous = await this.rows.findGateway(gatewayId, organizationId);
      if (previous) await this.cleanup.cleanupAgent(agent, previous);
    } catch (error) {
      const message =
        `Cleanup of agent ${agent.id} on its previous gateway ${gatewayId} failed: ` +
        `${(error as Error).message}`;
      this.logger.warn(message);
      await this.rows
        .recordActivity(agent, 'agent.cleanup.failed', message)
        .catch((recording: unknown) =>
          this.logger.warn(`Recording the failed cleanup failed: ${(recording as Error).message}`),
        );
    }
  }

  /**
   * Deletes an agent, gateway first: under the agent's run lock (so no run re-creates it on the
   * gateway meanwhile) it is removed from its gateway with its files and session ("already gone"
   * is success), then `removeRows` runs in one transaction (the database side). A gateway
   * failure throws GatewayOperationError('cleanup') before the database changed. Returns false
   * when the agent no longer exists (deleted meanwhile).
   */
  async removeAgent(
    ref: TenantAgentRef,
    removeRows: (manager: EntityManager) => Promise<void>,
  ): Promise<boolean> {
    return this.runLock.run(ref.agentId, async () => {
      let target: Awaited<ReturnType<typeof loadAgentTarget>>;
      try {
        target = await loadAgentTarget(this.dataSource.manager, ref);
      } catch (error) {
        if (error instanceof NotFoundError) return false;
        throw error;
      }
      await this.cleanup.cleanupAgent(target.agent, target.gateway);
      await this.dataSource.transaction(removeRows);
      return true;
    });
  }

  /**
   * Runs `work` under the agent's run lock (the one provision runs and removal take, across
   * instances): for a write of one of the agent's workspace files that must not interleave with
   * another such write, a provision run rendering the file from the row, or the agent's removal.
   */
  underAgentRunLock<T>(agentId: string, work: () => Promise<T>): Promise<T> {
    return this.runLock.run(agentId, () => work());
  }

  /** Removes the agent (its files and session) from its gateway; "already gone" is success. */
  cleanupAgent(agent: Agent, gateway: Gateway): Promise<void> {
    return this.cleanup.cleanupAgent(agent, gateway);
  }

  /**
   * The token the agent's workspace holds, and whether it matches the agent's token in force or
   * a pending one. For template sync.
   */
  readWorkspaceToken(
    ref: TenantAgentRef,
  ): Promise<{ token: string | null; matches: 'current' | 'pending' | 'none' }> {
    return this.tokens.readWorkspaceToken(ref);
  }
}
