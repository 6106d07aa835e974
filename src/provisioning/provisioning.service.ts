import { Injectable } from '@nestjs/common';
import type { Agent } from '../agents/entities/agent.entity';
import type { Gateway } from '../gateways/entities/gateway.entity';
import { OpenClawGatewayService } from '../openclaw/openclaw-gateway.service';
import type { User } from '../users/entities/user.entity';
import { AgentCleanup } from './agent-cleanup';
import { agentGatewayIdentity, mainAgentId } from './agent-identity';
import { AgentRowsService } from './agent-rows.service';
import { AgentRunLock } from './agent-run-lock';
import { AgentTokens } from './agent-tokens';
import { ProvisionRunner } from './provision-run';
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
  constructor(
    private readonly runner: ProvisionRunner,
    private readonly runLock: AgentRunLock,
    private readonly rows: AgentRowsService,
    private readonly cleanup: AgentCleanup,
    private readonly tokens: AgentTokens,
    private readonly gateways: OpenClawGatewayService,
  ) {}

  /**
   * (Re)provisions one agent. A failure is recorded (`last_provision_error`, an
   * `agent.<action>.failed` activity) and leaves the agent in a stable status.
   */
  async provisionAgent(ref: TenantAgentRef, request: ProvisionRequest): Promise<ProvisionOutcome> {
    return this.runLock.run(ref.agentId, (manager) => this.runner.run(manager, ref, request));
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
   * existing lead is not provisioned again, and is renamed only when a name is given.
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
    if (!leadId) {
      // An existing lead, or one another instance created between our read and insert.
      const lead = existing ?? (await this.rows.findLead(board.id));
      if (!lead) throw new Error(`board ${board.id} has no lead after a conflicting insert`);
      return {
        lead: await this.rows.repairLead(lead, board, gateway, wantedName),
        created: false,
        outcome: null,
      };
    }
    const outcome = await this.provisionAgent(
      { organizationId: scope.organizationId, agentId: leadId },
      { action: options.action ?? 'provision', user: options.user },
    );
    return { lead: outcome.agent, created: true, outcome };
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
