import { Inject, Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { Agent, AGENT_STATUS } from '../agents/entities/agent.entity';
import type { Board } from '../boards/entities/board.entity';
import {
  GatewayError,
  GatewayNotConfiguredError,
  GatewayOperationError,
  GatewayRpcError,
  GatewayTimeoutError,
  ProvisioningError,
} from '../common/errors/gateway-errors';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import type { Gateway } from '../gateways/entities/gateway.entity';
import {
  agentConfigShape,
  agentHeartbeatPatch,
  isAgentExistsError,
  isUnsupportedFileError,
} from '../openclaw/compat';
import type { GatewayMethods } from '../openclaw/gateway-methods';
import { OpenClawGatewayService } from '../openclaw/openclaw-gateway.service';
import { isTransientGatewayError, withGatewayRetry, type RetryProfile } from '../openclaw/retry';
import { uniqueSessionLabel } from '../openclaw/session-label';
import { agentGatewayIdentity, mainSessionKey, type AgentGatewayIdentity } from './agent-identity';
import { agentPatch, loadAgentTarget } from './agent-target';
import { agentRunLockKey, RunLockLostError, type RunLease } from './agent-run-lock';
import { checkRequestedToken, runToken, runTokenLedger } from './agent-tokens';
import { parseConnectionBlock } from './connection-block';
import { defaultHeartbeatConfig, effectiveHeartbeat } from './heartbeat';
import type {
  ProvisionAction,
  ProvisionOutcome,
  ProvisionRequest,
  TenantAgentRef,
} from './provisioning.types';
import { buildTemplateContext, type AgentKind } from './template-context';
import { templatedFiles, WorkspaceTemplates } from './templates';
import { planWorkspaceFiles, tokenCarriers } from './workspace-files';

/** How long a just-created gateway agent may take to show up (config hot-reload). */
const CREATE_VISIBLE_TIMEOUT_MS = 15_000;
const CREATE_VISIBLE_POLL_MS = 150;

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

/**
 * The steps of one run, each named (the name is part of a failure's text), and the run's
 * deadline (PROVISION_RUN_TIMEOUT_MS): no step starts past it. Every step is bounded itself
 * (gateway request timeouts, the create-visible wait), so a run ends within the deadline plus one
 * step; the sweeper (provision-run-sweeper.ts) handles runs whose process died.
 */
class RunSteps {
  private readonly deadlineAt: number;

  constructor(
    private readonly timeoutMs: number,
    private readonly signal: AbortSignal,
  ) {
    this.deadlineAt = Date.now() + timeoutMs;
  }

  async run<T>(name: string, work: () => Promise<T> | T): Promise<T> {
    try {
      // A run that lost its lock stops: another run on the agent may be executing.
      this.signal.throwIfAborted();
      if (Date.now() > this.deadlineAt) {
        throw new GatewayTimeoutError(
          `provision run exceeded its deadline of ${Math.round(this.timeoutMs / 1000)} s`,
          { retryable: false },
        );
      }
      return await work();
    } catch (error) {
      throw error instanceof ProvisioningStepError ? error : new ProvisioningStepError(name, error);
    }
  }
}

interface RunState {
  manager: EntityManager;
  agent: Agent;
  gateway: Gateway;
  board: Board | null;
  identity: AgentGatewayIdentity;
  token: string;
  digest: string;
  /** The run made the token (not a `{ raw }` one it was given). */
  generated: boolean;
  request: ProvisionRequest;
  outcome: ProvisionOutcome;
  lease: RunLease;
  steps: RunSteps;
}

/**
 * One provision run: puts an agent onto its gateway (gateway agent, heartbeat config, workspace
 * files, session, wake-up) and records the outcome on its row. The caller holds the agent's run
 * lock (AgentRunLock).
 */
@Injectable()
export class ProvisionRunner {
  private readonly logger = new Logger('Provisioning');

  constructor(
    private readonly gateways: OpenClawGatewayService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly templates: WorkspaceTemplates,
  ) {}

  async run(
    manager: EntityManager,
    ref: TenantAgentRef,
    request: ProvisionRequest,
    lease: RunLease,
  ): Promise<ProvisionOutcome> {
    const { agent, gateway, board } = await loadAgentTarget(manager, ref);
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
    try {
      if (!gateway.workspaceRoot.trim()) {
        throw new GatewayNotConfiguredError('Gateway workspace_root is required');
      }
      await checkRequestedToken(manager, agent.id, request);
    } catch (error) {
      // This run holds the lock: the row is its own to write.
      await recordNotStarted(manager, agent, request.action, error, { holdsLock: true });
      throw error;
    }
    const identity = agentGatewayIdentity(agent, gateway);
    outcome.identity = identity;
    const { token, digest, generated } = runToken(request);
    const priorStatus = agent.status;
    agent.heartbeatConfig ??= defaultHeartbeatConfig();
    const repo = manager.getRepository(Agent);
    await repo.update(
      { id: agent.id },
      agentPatch({
        provisionRequestedAt: new Date(),
        provisionAction: request.action,
        status: request.action === 'update' ? AGENT_STATUS.updating : agent.status,
        openclawSessionId: identity.sessionKey,
        heartbeatConfig: agent.heartbeatConfig,
        // The run under way owns the row's outcome: an earlier failure's text would hide this
        // run from the sweeper, were its instance to stop.
        lastProvisionError: null,
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
        generated,
        request,
        outcome,
        lease,
        steps: new RunSteps(this.config.provisioning.runTimeoutMs, lease.signal),
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
    await recordActivity(
      manager,
      agent,
      `agent.${request.action}.direct`,
      `${verb} directly for ${agent.name}.`,
    );
    if (outcome.woke) {
      await recordActivity(
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

  private async provisionOnGateway(run: RunState): Promise<void> {
    const { manager, agent, gateway, board, identity, token, request, outcome, steps } = run;
    const step = <T>(name: string, work: () => Promise<T> | T) => steps.run(name, work);
    const tokens = runTokenLedger(
      manager,
      run.lease,
      { id: agent.id, organizationId: gateway.organizationId },
      { digest: run.digest, generated: run.generated },
    );
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

    outcome.createdOnGateway = await this.upsertGatewayAgent(steps, methods, identity, agent.name);

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
      overwriteAgentEdited: request.overwriteAgentFiles ?? false,
    });
    outcome.filesSkipped = [...plan.skip];
    const { ordered, carriers } = tokenCarriers(plan.write, rendered, token);
    // Whether a carrier write may have reached the workspace (sent, and not refused outright).
    let tokenMayBeWritten = false;
    for (const name of ordered) {
      const content = rendered.get(name) ?? '';
      const carrier = carriers.includes(name);
      if (name === carriers[0]) {
        await step('registering the token', async () => {
          await tokens.makeRoom(() => this.workspaceTokens(methods, agentId, carriers));
          await tokens.beforeCarrierWrite();
        });
      }
      if (content.trim()) {
        let sent = false;
        try {
          await step(`writing ${name}`, () => {
            sent = true;
            return methods.agentFilesSet({ agentId, name, content });
          });
          outcome.filesWritten.push(name);
          if (carrier) tokenMayBeWritten = true;
        } catch (error) {
          const original = (error as ProvisioningStepError).original;
          const refused = !sent || original instanceof GatewayRpcError;
          if (carrier && !refused) tokenMayBeWritten = true;
          if (!isUnsupportedFileError(original)) {
            // Nothing of the token reached the workspace: it must not count against the cap.
            if (carrier && !tokenMayBeWritten) await tokens.notWritten();
            throw error;
          }
          outcome.filesSkipped.push({ name, reason: 'unsupported' });
        }
      }
      if (name === carriers[carriers.length - 1]) {
        await step('confirming the token', () => tokens.carrierWritten());
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

  /** The tokens the carriers hold now (their connection blocks); unsupported files hold none. */
  private async workspaceTokens(
    methods: GatewayMethods,
    agentId: string,
    carriers: readonly string[],
  ): Promise<string[]> {
    const tokens: string[] = [];
    for (const name of carriers) {
      try {
        const { file } = await methods.agentFilesGet(agentId, name);
        const token = parseConnectionBlock(file.content ?? '').AUTH_TOKEN?.trim();
        if (token) tokens.push(token);
      } catch (error) {
        if (!isUnsupportedFileError(error)) throw error;
      }
    }
    return tokens;
  }

  /**
   * Creates the gateway agent when missing (the gateway derives the id from the name, so it is
   * created under its id and renamed), then sets its display name and workspace. Returns whether
   * it was created by this call.
   */
  private async upsertGatewayAgent(
    steps: RunSteps,
    methods: GatewayMethods,
    identity: AgentGatewayIdentity,
    displayName: string,
  ): Promise<boolean> {
    const agentId = identity.gatewayAgentId;
    const workspace = identity.workspacePath;
    const step = <T>(name: string, work: () => Promise<T> | T) => steps.run(name, work);
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
      entry = await step('agents.create', () => waitUntilListed(methods, agentId));
    }
    if (created || entry.name !== displayName || entry.workspace !== workspace) {
      await step('agents.update', () =>
        methods.agentsUpdate({ agentId, name: displayName, workspace }, { afterCreate: created }),
      );
    }
    return created;
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
    const patch = agentPatch({
      status: stableStatus(priorStatus, agent.lastSeenAt),
      lastProvisionError: message,
    });
    if (original instanceof RunLockLostError) {
      // Another run may hold the lock now and own the row: write it only while nobody does.
      await updateRowUnlessLocked(manager, agent.id, patch);
    } else {
      await repo.update({ id: agent.id }, patch);
    }
    const label = request.action === 'update' ? 'Update' : 'Provision';
    await recordActivity(
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
}

/**
 * Waiting for a create to show up in `agents.list` (a config hot-reload applies it): short
 * spaced polls within a bound, paced by the one retry mechanism (GatewayBackoff); a transient
 * list failure is retried the same way.
 */
const CREATE_VISIBLE: RetryProfile = {
  timeoutMs: CREATE_VISIBLE_TIMEOUT_MS,
  baseDelayMs: CREATE_VISIBLE_POLL_MS,
  maxDelayMs: 1_000,
  jitter: 0.1,
  context: 'agent create visibility',
};

/** The created agent is not in `agents.list` yet (its config hot-reload has not landed). */
class NotListedYet extends Error {}

/** A create is applied by a config hot-reload; methods on the agent fail until it lands. */
async function waitUntilListed(methods: GatewayMethods, agentId: string) {
  try {
    return await withGatewayRetry(
      CREATE_VISIBLE,
      async () => {
        const found = (await methods.agentsList()).agents.find((entry) => entry.id === agentId);
        if (!found) throw new NotListedYet(`agent ${agentId} is not listed yet`);
        return found;
      },
      undefined,
      {
        retryIf: (error) => error instanceof NotListedYet || isTransientGatewayError(error),
        exhausted: 'last',
      },
    );
  } catch (error) {
    if (!(error instanceof NotListedYet)) throw error;
    throw new GatewayTimeoutError(
      `agent ${agentId} was created but did not appear in agents.list within ${CREATE_VISIBLE_TIMEOUT_MS / 1000} s`,
      { retryable: false },
    );
  }
}

/**
 * Writes the agent row only while no run holds the agent's lock (a run that holds it owns the
 * row); returns whether it wrote.
 */
async function updateRowUnlessLocked(
  manager: EntityManager,
  agentId: string,
  patch: ReturnType<typeof agentPatch>,
): Promise<boolean> {
  return manager.transaction(async (tx) => {
    const [free] = await tx.query<{ locked: boolean }[]>(
      'SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked',
      [agentRunLockKey(agentId)],
    );
    if (!free?.locked) return false;
    await tx.getRepository(Agent).update({ id: agentId }, patch);
    return true;
  });
}

/**
 * Records a run that failed before it started (it changed nothing yet): the error on the row
 * (a stable status) and an `agent.<action>.failed` activity. A caller that does not hold the
 * agent's lock writes the row only while nobody does (else the live run owns it).
 */
export async function recordNotStarted(
  manager: EntityManager,
  agent: Agent,
  action: ProvisionAction,
  error: unknown,
  options: { holdsLock: boolean },
): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  const patch = agentPatch({
    status: stableStatus(agent.status, agent.lastSeenAt),
    lastProvisionError: message,
  });
  if (options.holdsLock) await manager.getRepository(Agent).update({ id: agent.id }, patch);
  else await updateRowUnlessLocked(manager, agent.id, patch);
  const label = action === 'update' ? 'Update' : 'Provision';
  await recordActivity(
    manager,
    agent,
    `agent.${action}.failed`,
    `${label} message failed: ${message}`,
  );
}

async function recordActivity(
  manager: EntityManager,
  agent: Agent,
  eventType: string,
  message: string,
): Promise<void> {
  await manager.getRepository(ActivityEvent).insert({
    organizationId: agent.organizationId,
    eventType,
    message,
    agentId: agent.id,
    boardId: agent.boardId,
  });
}

/** After a failed run: never `updating`/`deleting` forever. */
export function stableStatus(prior: string, lastSeenAt: Date | null): string {
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
