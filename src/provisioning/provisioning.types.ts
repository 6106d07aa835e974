import type { Agent } from '../agents/entities/agent.entity';
import type { User } from '../users/entities/user.entity';
import type { AgentGatewayIdentity } from './agent-identity';
import type { SkipReason } from './workspace-files';

export type ProvisionAction = 'provision' | 'update';

export interface ProvisionRequest {
  action: ProvisionAction;
  /** The human whose profile goes into USER.md (null: none). */
  user?: User | null;
  /**
   * Issue a new agent token (the default), or provision with one the agent already holds
   * (template sync re-rendering files without re-keying).
   */
  token?: { rotate: true } | { raw: string };
  /** Write BOOTSTRAP.md even on an update after the agent consumed it. */
  forceBootstrap?: boolean;
  /**
   * Rewrite the agent-editable files (USER.md, MEMORY.md…) too, replacing the agent's edits
   * (template sync `overwrite`). Default: written only when missing or the agent is new.
   */
  overwriteAgentFiles?: boolean;
  /** `sessions.reset` the agent's session after the files are in place. */
  resetSession?: boolean;
  /** Send the wake-up message (default true). */
  wake?: boolean;
  /**
   * After recording a failure, throw it: a gateway failure as a 502 GatewayOperationError, any
   * other as a 500 ProvisioningError. Otherwise the outcome carries it.
   */
  raise?: boolean;
}

export interface ProvisionOutcome {
  status: 'provisioned' | 'failed' | 'skipped';
  /** The row as stored after the run. */
  agent: Agent;
  identity: AgentGatewayIdentity | null;
  /** What failed (`<step>: <error>`), as stored in `last_provision_error`. */
  error: string | null;
  /** The raw token the written files carry (null when no carrier file was written). */
  token: string | null;
  createdOnGateway: boolean;
  configPatched: boolean;
  filesWritten: string[];
  filesSkipped: { name: string; reason: SkipReason }[];
  woke: boolean;
}

export interface TenantAgentRef {
  organizationId: string;
  agentId: string;
}

export interface EnsureLeadOptions {
  /** Name for a new lead; renames an existing lead only when given. */
  agentName?: string | null;
  identityProfile?: Record<string, string> | null;
  action?: ProvisionAction;
  user?: User | null;
  /**
   * An existing lead is updated too (onboarding confirm): it takes the given name and identity
   * profile (the lead defaults overlaid with `identityProfile`; none given, it keeps its own) and
   * is provisioned again
   * (`update`), so its files carry them. Without it (C8/C9) an existing lead is only repaired.
   */
  reprovisionExisting?: boolean;
}

export interface EnsureLeadResult {
  lead: Agent;
  created: boolean;
  outcome: ProvisionOutcome | null;
}

export const DEFAULT_LEAD_NAME = 'Lead Agent';
