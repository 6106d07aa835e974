import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, IsNull } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { Agent, AGENT_STATUS } from '../agents/entities/agent.entity';
import {
  agentTokenDigest,
  generateAgentToken,
  promotePendingAgentToken,
} from '../auth/agent-token';
import { Board } from '../boards/entities/board.entity';
import { InvalidRequestError, NotFoundError } from '../common/errors/app-error';
import {
  GatewayError,
  GatewayNotConfiguredError,
  GatewayOperationError,
  GatewayTimeoutError,
  ProvisioningError,
} from '../common/errors/gateway-errors';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Gateway } from '../gateways/entities/gateway.entity';
import {
  agentConfigShape,
  agentHeartbeatPatch,
  isAgentExistsError,
  isAgentNotFoundError,
  isUnsupportedFileError,
} from '../openclaw/compat';
import { isTransientGatewayError, sleep } from '../openclaw/retry';
import type { GatewayMethods } from '../openclaw/gateway-methods';
import { OpenClawGatewayService } from '../openclaw/openclaw-gateway.service';
import { uniqueSessionLabel } from '../openclaw/session-label';
import type { User } from '../users/entities/user.entity';
import {
  agentGatewayIdentity,
  leadSessionKey,
  mainAgentId,
  mainSessionKey,
  type AgentGatewayIdentity,
} from './agent-identity';
import { parseConnectionBlock } from './connection-block';
import { defaultHeartbeatConfig, effectiveHeartbeat } from './heartbeat';
import { buildTemplateContext, defaultIdentityProfile, type AgentKind } from './template-context';
import { templatedFiles, WorkspaceTemplates } from './templates';
import { planWorkspaceFiles, TOKEN_CARRIER_FILES, type SkipReason } from './workspace-files';

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
}

export interface EnsureLeadResult {
  lead: Agent;
  created: boolean;
  outcome: ProvisionOutcome | null;
}

export const DEFAULT_LEAD_NAME = 'Lead Agent';

/** How long a just-created gateway agent may take to show up (config hot-reload). */
const CREATE_VISIBLE_TIMEOUT_MS = 15_000;
const CREATE_VISIBLE_POLL_MS = 150;
const DELETE_ATTEMPTS = 4;
const DELETE_RETRY_DELAY_MS = 1_000;

/** A failure in one named step of a provision run (the step is part of the stored text). */
class ProvisioningStepError extends Error {
  constructor(
    readonly step: string,
    readonly original: unknown,
  ) {
    super(`${step}: ${original instanceof Error ? original.message : String(original)}`, {
      cause: original,
    });
    this.name = 'ProvisioningStepError';
  }
}

async function step<T>(name: string, run: () => Promise<T> | T): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw error instanceof ProvisioningStepError ? error : new ProvisioningStepError(name, error);
  }
}

/**
 * The provisioning engine: puts an agent onto its gateway (gateway agent, heartbeat config,
 * workspace files, session, wake-up), and creates the rows only it creates (a gateway's main
 * agent, a board's lead). Feature modules check access and configuration (the 4xx) first, then
 * call this. Holds no state between calls; runs on one agent are serialised across instances by
 * a PostgreSQL advisory lock.
 */
@Injectable()
export class ProvisioningService {
  private readonly logger = new Logger('Provisioning');

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly gateways: OpenClawGatewayService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly templates: WorkspaceTemplates,
  ) {}

  /**
   * (Re)provisions one agent. The stored token digest changes only once the files carrying the
   * new token are written; until then the new token waits as the pending digest (which also
   * authenticates, see AgentAuthService). A failure is recorded (`last_provision_error`, an
   * `agent.<action>.failed` activity) and leaves the agent in a stable status.
   */
  async provisionAgent(ref: TenantAgentRef, request: ProvisionRequest): Promise<ProvisionOutcome> {
    return this.withAgentLock(ref.agentId, (manager) => this.runProvision(manager, ref, request));
  }

  private async runProvision(
    manager: EntityManager,
    ref: TenantAgentRef,
    request: ProvisionRequest,
  ): Promise<ProvisionOutcome> {
    const { agent, gateway, board } = await this.loadTarget(manager, ref);
    const outcome: ProvisionOutcome = {
      status: 'skipped',
      agent,
      identity: null,
      error: null,
      token: null,
      createdOnGateway: false,
      configPatched: false,
      filesWritten: [],
      filesSkipped: [],
      woke: false,
    };
    // Upstream: a gateway without a URL is not provisioned (nothing to talk to).
    if (!gateway.url.trim()) return outcome;
    if (!gateway.workspaceRoot.trim()) {
      throw new GatewayNotConfiguredError('Gateway workspace_root is required');
    }

    const identity = agentGatewayIdentity(agent, gateway);
    outcome.identity = identity;
    const token =
      request.token && 'raw' in request.token ? request.token.raw : generateAgentToken();
    const digest = agentTokenDigest(token);
    const priorStatus = agent.status;
    agent.heartbeatConfig ??= defaultHeartbeatConfig();
    const repo = manager.getRepository(Agent);
    await repo.update(
      { id: agent.id },
      agentPatch({
        pendingAgentTokenHash: digest === agent.agentTokenHash ? null : digest,
        provisionRequestedAt: new Date(),
        provisionAction: request.action,
        status: request.action === 'update' ? AGENT_STATUS.updating : agent.status,
        openclawSessionId: identity.sessionKey,
        heartbeatConfig: agent.heartbeatConfig,
      }),
    );

    try {
      await this.provisionOnGateway({
        manager,
        agent,
        gateway,
        board,
        identity,
        token,
        digest,
        request,
        outcome,
      });
    } catch (error) {
      return this.recordFailure(manager, agent, priorStatus, request, outcome, error);
    }

    await repo.update(
      { id: agent.id },
      agentPatch({
        status: AGENT_STATUS.online,
        provisionRequestedAt: null,
        provisionAction: null,
        provisionConfirmTokenHash: null,
        lastProvisionError: null,
      }),
    );
    const verb = request.action === 'update' ? 'Updated' : 'Provisioned';
    await this.recordActivity(
      manager,
      agent,
      `agent.${request.action}.direct`,
      `${verb} directly for ${agent.name}.`,
    );
    if (outcome.woke) {
      await this.recordActivity(
        manager,
        agent,
        'agent.wakeup.sent',
        `Wakeup message sent to ${agent.name}.`,
      );
    }
    outcome.status = 'provisioned';
    outcome.agent = await repo.findOneByOrFail({ id: agent.id });
    return outcome;
  }

  private async provisionOnGateway(run: {
    manager: EntityManager;
    agent: Agent;
    gateway: Gateway;
    board: Board | null;
    identity: AgentGatewayIdentity;
    token: string;
    digest: string;
    request: ProvisionRequest;
    outcome: ProvisionOutcome;
  }): Promise<void> {
    const { manager, agent, gateway, board, identity, token, digest, request, outcome } = run;
    const methods = this.gateways.methods(gateway);
    const agentId = identity.gatewayAgentId;

    // Render everything first: a template problem fails the run before anything is written.
    const heartbeat = effectiveHeartbeat(agent.heartbeatConfig);
    const context = buildTemplateContext({
      kind: identity.kind,
      agent,
      gatewayAgentId: agentId,
      sessionKey: identity.sessionKey,
      workspacePath: identity.workspacePath,
      workspaceRoot: gateway.workspaceRoot,
      mainSessionKey: mainSessionKey(gateway.id),
      authToken: token,
      baseUrl: this.config.baseUrl,
      board,
      user: request.user ?? null,
      heartbeat,
    });
    const render = (name: string) =>
      step(`rendering ${name}`, () =>
        this.templates.render(name, identity.kind, context, {
          identityTemplate: agent.identityTemplate,
          soulTemplate: agent.soulTemplate,
        }),
      );
    const rendered = new Map<string, string>();
    for (const name of templatedFiles(identity.kind)) rendered.set(name, await render(name));

    outcome.createdOnGateway = await this.upsertGatewayAgent(methods, identity, agent.name);

    const patched = await step('config.patch (heartbeat)', () =>
      methods.configPatch((config) =>
        agentHeartbeatPatch(
          config,
          [{ agentId, workspace: identity.workspacePath, heartbeat }],
          agentConfigShape(config, methods.server),
        ),
      ),
    );
    outcome.configPatched = patched.noop !== true;

    const listing = await step('agents.files.list', () => methods.agentFilesList(agentId));
    const plan = planWorkspaceFiles({
      templated: [...rendered.keys()],
      listed: listing.files,
      action: request.action,
      forceBootstrap: request.forceBootstrap ?? false,
      createdNow: outcome.createdOnGateway,
    });
    outcome.filesSkipped = [...plan.skip];
    const carriers = plan.write.filter((name) => TOKEN_CARRIER_FILES.includes(name));
    for (const name of plan.write) {
      const content = rendered.get(name) ?? '';
      if (content.trim()) {
        try {
          await step(`writing ${name}`, () => methods.agentFilesSet({ agentId, name, content }));
          outcome.filesWritten.push(name);
        } catch (error) {
          if (!isUnsupportedFileError((error as ProvisioningStepError).original)) throw error;
          outcome.filesSkipped.push({ name, reason: 'unsupported' });
        }
      }
      if (name === carriers[carriers.length - 1]) {
        await promotePendingAgentToken(manager, agent.id, digest);
        outcome.token = token;
      }
    }

    await step('sessions.patch', () =>
      methods.sessionsPatch({
        key: identity.sessionKey,
        label: uniqueSessionLabel(agent.name, identity.sessionKey),
      }),
    );
    if (request.resetSession) {
      await step('sessions.reset', () => methods.sessionsReset(identity.sessionKey));
    }
    if (request.wake ?? true) {
      await step('chat.send (wake-up)', () =>
        methods.chatSend({
          sessionKey: identity.sessionKey,
          message: wakeUpMessage(agent.name, identity.kind, request.action),
          deliver: true,
        }),
      );
      outcome.woke = true;
    }
  }

  /**
   * Creates the gateway agent when missing (the gateway derives the id from the name, so it is
   * created under its id and renamed), then sets its display name and workspace. Returns whether
   * it was created by this call.
   */
  private async upsertGatewayAgent(
    methods: GatewayMethods,
    identity: AgentGatewayIdentity,
    displayName: string,
  ): Promise<boolean> {
    const agentId = identity.gatewayAgentId;
    const workspace = identity.workspacePath;
    const listed = await step('agents.list', () => methods.agentsList());
    let entry = listed.agents.find((candidate) => candidate.id === agentId);
    let created = false;
    if (!entry) {
      try {
        await step('agents.create', () => methods.agentsCreate({ name: agentId, workspace }));
        created = true;
      } catch (error) {
        // agents.list lags a create by up to ~1.5 s: another run may have just created it.
        if (!isAgentExistsError((error as ProvisioningStepError).original)) throw error;
      }
      entry = await step('agents.create', () => this.waitUntilListed(methods, agentId));
    }
    if (created || entry.name !== displayName || entry.workspace !== workspace) {
      await step('agents.update', () =>
        methods.agentsUpdate({ agentId, name: displayName, workspace }, { afterCreate: created }),
      );
    }
    return created;
  }

  /** A create is applied by a config hot-reload; methods on the agent fail until it lands. */
  private async waitUntilListed(methods: GatewayMethods, agentId: string) {
    const giveUpAt = Date.now() + CREATE_VISIBLE_TIMEOUT_MS;
    for (;;) {
      const found = (await methods.agentsList()).agents.find((entry) => entry.id === agentId);
      if (found) return found;
      if (Date.now() >= giveUpAt) {
        throw new GatewayTimeoutError(
          `agent ${agentId} was created but did not appear in agents.list within ${CREATE_VISIBLE_TIMEOUT_MS / 1000} s`,
        );
      }
      await sleep(CREATE_VISIBLE_POLL_MS);
    }
  }

  private async recordFailure(
    manager: EntityManager,
    agent: Agent,
    priorStatus: string,
    request: ProvisionRequest,
    outcome: ProvisionOutcome,
    error: unknown,
  ): Promise<ProvisionOutcome> {
    const original = error instanceof ProvisioningStepError ? error.original : error;
    const message = error instanceof Error ? error.message : String(error);
    this.logger.warn(`${request.action} of agent ${agent.id} failed at ${message}`);
    const repo = manager.getRepository(Agent);
    await repo.update(
      { id: agent.id },
      agentPatch({
        status: stableStatus(priorStatus, agent.lastSeenAt),
        lastProvisionError: message,
      }),
    );
    const label = request.action === 'update' ? 'Update' : 'Provision';
    await this.recordActivity(
      manager,
      agent,
      `agent.${request.action}.failed`,
      `${label} message failed: ${message}`,
    );
    outcome.status = 'failed';
    outcome.error = message;
    outcome.agent = await repo.findOneByOrFail({ id: agent.id });
    if (request.raise) {
      const failure = error instanceof Error ? error : new Error(message);
      if (original instanceof GatewayError)
        throw new GatewayOperationError(request.action, failure);
      throw new ProvisioningError(request.action, failure);
    }
    return outcome;
  }

  // ---- gateway main agent ---------------------------------------------------------------

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

  /** Upsert + provision the main agent (G2 create with `provision`, G4 update with `update`). */
  async ensureMainAgent(
    gateway: Gateway,
    options: { action: ProvisionAction; user?: User | null; notify?: boolean; raise?: boolean },
  ): Promise<ProvisionOutcome> {
    const { agent } = await this.upsertMainAgentRecord(gateway);
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
    const agent = await this.dataSource
      .getRepository(Agent)
      .findOne({ where: { gatewayId: gateway.id, boardId: IsNull() } });
    const agentId = agent
      ? agentGatewayIdentity(agent, gateway).gatewayAgentId
      : mainAgentId(gateway.id);
    const listed = await this.gateways.methods(gateway).agentsList();
    return listed.agents.some((entry) => entry.id === agentId);
  }

  // ---- board lead -----------------------------------------------------------------------

  /**
   * The board's lead (contract §5.8): created and provisioned when the board has none. An
   * existing lead is not provisioned again, and is renamed only when a name is given.
   */
  async ensureBoardLead(
    scope: { organizationId: string; boardId: string },
    options: EnsureLeadOptions = {},
  ): Promise<EnsureLeadResult> {
    const board = await this.dataSource
      .getRepository(Board)
      .findOneBy({ id: scope.boardId, organizationId: scope.organizationId });
    if (!board) throw new NotFoundError();
    if (!board.gatewayId) throw new InvalidRequestError('Board is not attached to a gateway');
    const gateway = await this.dataSource
      .getRepository(Gateway)
      .findOneBy({ id: board.gatewayId, organizationId: scope.organizationId });
    if (!gateway || !gateway.url.trim()) {
      throw new InvalidRequestError('Gateway is not configured for this board');
    }
    const repo = this.dataSource.getRepository(Agent);
    const wantedName = options.agentName?.trim() || null;

    const existing = await repo.findOneBy({ boardId: board.id, isBoardLead: true });
    const leadId = existing ? null : await this.insertLead(board, gateway, wantedName, options);
    if (!leadId) {
      // An existing lead, or one another instance created between our read and insert.
      const lead =
        existing ?? (await repo.findOneByOrFail({ boardId: board.id, isBoardLead: true }));
      return {
        lead: await this.repairLead(lead, board, gateway, wantedName),
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

  /** Inserts the board's lead; null when the board already has one (unique lead per board). */
  private async insertLead(
    board: Board,
    gateway: Gateway,
    name: string | null,
    options: EnsureLeadOptions,
  ): Promise<string | null> {
    const identityProfile = defaultIdentityProfile('lead');
    for (const [key, value] of Object.entries(options.identityProfile ?? {})) {
      if (typeof value === 'string' && value.trim()) identityProfile[key] = value.trim();
    }
    const inserted = await this.dataSource
      .getRepository(Agent)
      .createQueryBuilder()
      .insert()
      .values(
        agentPatch({
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
    return (inserted.raw as { id: string }[])[0]?.id ?? null;
  }

  private async repairLead(lead: Agent, board: Board, gateway: Gateway, name: string | null) {
    const repairs: Partial<Agent> = {};
    if (name && lead.name !== name) repairs.name = name;
    if (lead.gatewayId !== gateway.id) repairs.gatewayId = gateway.id;
    if (!lead.openclawSessionId) repairs.openclawSessionId = leadSessionKey(board.id);
    if (Object.keys(repairs).length === 0) return lead;
    const repo = this.dataSource.getRepository(Agent);
    await repo.update({ id: lead.id }, agentPatch(repairs));
    return repo.findOneByOrFail({ id: lead.id });
  }

  // ---- cleanup and read-back ------------------------------------------------------------

  /**
   * Removes the agent from its gateway: `agents.delete` with its files, then its session. Both
   * tolerate "not found" (already gone); the main session goes with the agent on today's
   * gateway, which refuses to delete it separately.
   */
  async cleanupAgent(agent: Agent, gateway: Gateway): Promise<void> {
    if (!gateway.url.trim()) return;
    const identity = agentGatewayIdentity(agent, gateway);
    const methods = this.gateways.methods(gateway);
    await this.deleteGatewayAgent(methods, identity.gatewayAgentId);
    try {
      await methods.sessionsDelete(identity.sessionKey);
    } catch (error) {
      this.logger.debug(
        `sessions.delete ${identity.sessionKey} after agents.delete: ${(error as Error).message}`,
      );
    }
  }

  /**
   * `agents.delete` with its files; "not found" means already gone. The gateway can refuse while
   * it winds down a run of the agent ("Agent database resource drainage failed", seen on
   * 2026.9.6 right after a wake-up), so transient and busy refusals get a few spaced retries.
   */
  private async deleteGatewayAgent(methods: GatewayMethods, agentId: string): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await methods.agentsDelete({ agentId, deleteFiles: true });
        return;
      } catch (error) {
        if (isAgentNotFoundError(error)) return;
        const busy = error instanceof Error && /drain|busy|in use|locked/i.test(error.message);
        if (attempt < DELETE_ATTEMPTS && (busy || isTransientGatewayError(error))) {
          await sleep(DELETE_RETRY_DELAY_MS * attempt);
          continue;
        }
        throw new GatewayOperationError(
          'cleanup',
          error instanceof Error ? error : new Error(String(error)),
        );
      }
    }
  }

  /**
   * The token the agent's workspace holds (AGENTS.md's connection block; TOOLS.md on older
   * gateways), and whether it matches the stored or pending digest. For template sync.
   */
  async readWorkspaceToken(
    ref: TenantAgentRef,
  ): Promise<{ token: string | null; matches: 'current' | 'pending' | 'none' }> {
    const { agent, gateway } = await this.loadTarget(this.dataSource.manager, ref);
    const identity = agentGatewayIdentity(agent, gateway);
    const methods = this.gateways.methods(gateway);
    let token: string | null = null;
    for (const name of ['AGENTS.md', 'TOOLS.md']) {
      try {
        const { file } = await methods.agentFilesGet(identity.gatewayAgentId, name);
        token = parseConnectionBlock(file.content ?? '').AUTH_TOKEN?.trim() || null;
      } catch (error) {
        if (!isUnsupportedFileError(error)) throw error;
      }
      if (token) break;
    }
    if (!token) return { token: null, matches: 'none' };
    const digest = agentTokenDigest(token);
    const matches =
      digest === agent.agentTokenHash
        ? 'current'
        : digest === agent.pendingAgentTokenHash
          ? 'pending'
          : 'none';
    return { token, matches };
  }

  // ---- helpers --------------------------------------------------------------------------

  /** The agent with its gateway and board, in one query scoped to the organization. */
  private async loadTarget(manager: EntityManager, ref: TenantAgentRef) {
    const agent = await manager
      .getRepository(Agent)
      .createQueryBuilder('agent')
      .innerJoinAndSelect('agent.gateway', 'gateway')
      .leftJoinAndSelect('agent.board', 'board', 'board.organization_id = gateway.organization_id')
      .where('agent.id = :agentId', { agentId: ref.agentId })
      .andWhere('gateway.organization_id = :organizationId', { organizationId: ref.organizationId })
      .getOne();
    // A board agent whose board is not in the gateway's organization is not found either.
    if (!agent?.gateway || (agent.boardId !== null && !agent.board)) throw new NotFoundError();
    return { agent, gateway: agent.gateway, board: agent.board ?? null };
  }

  private async recordActivity(
    manager: EntityManager,
    agent: Agent,
    eventType: string,
    message: string,
  ): Promise<void> {
    await manager.getRepository(ActivityEvent).insert({
      eventType,
      message,
      agentId: agent.id,
      boardId: agent.boardId,
    });
  }

  /**
   * Serialises provision runs on one agent across every instance: a session-level advisory
   * lock on a connection of its own, which also carries the run's queries (one pooled
   * connection per run, so concurrent runs cannot starve the pool of the connections they need).
   */
  private async withAgentLock<T>(
    agentId: string,
    run: (manager: EntityManager) => Promise<T>,
  ): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    const key = `mission-control:agent-provision:${agentId}`;
    try {
      await runner.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
      try {
        return await run(runner.manager);
      } finally {
        await runner.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
      }
    } finally {
      await runner.release();
    }
  }
}

/** TypeORM's update typing cannot express jsonb columns typed as plain records. */
function agentPatch(fields: Partial<Agent>): QueryDeepPartialEntity<Agent> {
  return fields as QueryDeepPartialEntity<Agent>;
}

/** After a failed run: never `updating`/`deleting` forever. */
function stableStatus(prior: string, lastSeenAt: Date | null): string {
  if (prior === AGENT_STATUS.updating || prior === AGENT_STATUS.deleting) {
    return lastSeenAt ? AGENT_STATUS.online : AGENT_STATUS.provisioning;
  }
  return prior;
}

/**
 * The wake-up text. Today's gateway has no TOOLS.md/HEARTBEAT.md/BOOT.md, so it names the
 * files that exist: AGENTS.md carries the connection and heartbeat routine.
 */
export function wakeUpMessage(name: string, kind: AgentKind, action: ProvisionAction): string {
  const what =
    kind === 'main'
      ? `Your gateway provisioning was ${action === 'update' ? 'updated' : 'completed'}.`
      : `Your workspace has been ${action === 'update' ? 'updated' : 'provisioned'}.`;
  return [
    `Hello ${name}. ${what}`,
    '',
    'If BOOTSTRAP.md exists, read it first, follow it once, then delete it. Re-read AGENTS.md ' +
      '(your Mission Control connection and heartbeat routine), SOUL.md, IDENTITY.md and USER.md. ' +
      'Begin heartbeats after startup.',
  ].join('\n');
}
