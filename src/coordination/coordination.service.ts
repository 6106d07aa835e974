import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, In } from 'typeorm';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { Agent } from '../agents/entities/agent.entity';
import { findGatewayMainAgent } from '../agents/gateway-main-agent';
import { requireBoardGateway } from '../boards/board-gateway';
import { Board } from '../boards/entities/board.entity';
import { forEachConcurrently } from '../common/async/concurrency';
import {
  AppError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
} from '../common/errors/app-error';
import {
  GATEWAY_OPERATION_PREFIX,
  GatewayError,
  GatewayOperationError,
  GatewayProtocolError,
  type GatewayOperation,
} from '../common/errors/gateway-errors';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Gateway } from '../gateways/entities/gateway.entity';
import {
  agentGatewayIdentity,
  mainSessionKey,
  sessionKeyFor,
} from '../provisioning/agent-identity';
import { ProvisioningService } from '../provisioning/provisioning.service';
import {
  askUserMessage,
  gatewayFileContent,
  leadMessage,
  soulUpdatedNote,
  type LeadMessageKind,
} from './coordination-messages';
import type {
  GatewayLeadBroadcastBoardResult,
  GatewayLeadBroadcastRequest,
  GatewayLeadBroadcastResponse,
  GatewayLeadMessageRequest,
  GatewayLeadMessageResponse,
  GatewayMainAskUserRequest,
  GatewayMainAskUserResponse,
  SoulUpdateRequest,
} from './dto/coordination.dto';
import { GatewayDispatchService, type DispatchOptions } from './gateway-dispatch.service';

/** Contract §1.4 texts. */
export const ONLY_GATEWAY_AGENT = 'Only the dedicated gateway agent may call this endpoint.';
export const TARGET_NO_SESSION_KEY = 'Target agent has no session key';
export const LEAD_NO_SESSION_KEY = 'Lead agent has no session key';
export const CONTENT_REQUIRED = 'content is required';
export const INVALID_GATEWAY_RESPONSE = 'Invalid gateway response';
export const GATEWAY_URL_REQUIRED = 'Gateway url is required';
export const BOARD_NOT_FOUND = 'Board not found';
/** The session label of a gateway's main session when no main-agent row names it (upstream). */
const GATEWAY_AGENT_LABEL = 'Gateway Agent';
const SOUL_FILE = 'SOUL.md';

interface ActivityInput {
  organizationId: string;
  boardId: string | null;
  agentId: string;
  eventType: string;
  message: string;
}

/**
 * Leads coordinating their board through the gateway (nudge, SOUL read/write, asking the human
 * through the gateway agent), and the gateway agent talking to board leads (contract §1.4.1–
 * §1.4.4). Access beyond the route's board guard (lead only, self, the gateway's main agent)
 * is checked here. Every gateway call runs under the coordination retry profile
 * ({@link GatewayDispatchService}); a gateway failure is a 502 with the contract's text, after
 * its failure activity is committed.
 */
@Injectable()
export class CoordinationService {
  private readonly logger = new Logger('Coordination');
  private readonly baseUrl: string;
  private readonly broadcastConcurrency: number;

  constructor(
    private readonly dispatcher: GatewayDispatchService,
    private readonly provisioning: ProvisioningService,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.baseUrl = config.baseUrl;
    this.broadcastConcurrency = config.coordination.broadcastConcurrency;
  }

  // ---- C4 nudge ------------------------------------------------------------------------------

  async nudge(caller: Agent, board: Board, targetId: string, message: string): Promise<void> {
    requireLead(caller);
    const target = await this.boardAgentOr404(board, targetId);
    if (!target.openclawSessionId) throw new InvalidRequestError(TARGET_NO_SESSION_KEY);
    const gateway = await this.boardGateway(board);
    await this.dispatchOrRecord(
      () =>
        this.dispatcher.dispatch(gateway, {
          sessionKey: target.openclawSessionId as string,
          agentName: target.name,
          message,
          deliver: true,
        }),
      'nudge',
      (error) => ({
        ...this.activityOn(board, caller),
        eventType: 'agent.nudge.failed',
        message: `Nudge failed for ${target.name}: ${error.message}`,
      }),
    );
    await this.record({
      ...this.activityOn(board, caller),
      eventType: 'agent.nudge.sent',
      message: `Nudge sent to ${target.name}.`,
    });
  }

  // ---- C5 / C6 SOUL --------------------------------------------------------------------------

  /** C5: the target's SOUL.md as the gateway holds it. A lead reads any; others only their own. */
  async readSoul(caller: Agent, board: Board, targetId: string): Promise<string> {
    if (!caller.isBoardLead && caller.id !== targetId) throw new ForbiddenError();
    const target = await this.boardAgentOr404(board, targetId);
    const gateway = await this.boardGateway(board);
    const agentId = agentGatewayIdentity(target, gateway).gatewayAgentId;
    const methods = this.dispatcher.methods(gateway);
    const payload = await gatewayOperation('soulRead', () =>
      this.dispatcher.withRetry((budget) =>
        methods.agentFilesGetPayload(agentId, SOUL_FILE, { timeoutMs: budget.callTimeoutMs() }),
      ),
    );
    const content = gatewayFileContent(payload);
    // Not prefixed: the gateway answered, with something that is not a file (contract §1.4.2).
    if (content === null) throw new GatewayProtocolError(INVALID_GATEWAY_RESPONSE);
    return content;
  }

  /**
   * C6, with contract §10 item 8 fixed: the gateway first; the database keeps the new SOUL
   * (and its activity) only once the gateway accepted it. A failure leaves the row unchanged.
   */
  async writeSoul(
    caller: Agent,
    board: Board,
    targetId: string,
    body: SoulUpdateRequest,
  ): Promise<void> {
    requireLead(caller);
    await this.boardAgentOr404(board, targetId);
    const content = body.content.trim();
    if (!content) throw new InvalidRequestError(CONTENT_REQUIRED);
    const gateway = await this.boardGateway(board);
    // Under the agent's run lock, the gateway write and the row write happen as one step: two
    // writes (or a write and a provision run, which renders SOUL.md from the row) interleaved
    // could leave the gateway with one SOUL and the row with the other.
    await this.provisioning.underAgentRunLock(targetId, async () => {
      // Read again under the lock: the agent may have been removed or moved meanwhile.
      const target = await this.boardAgentOr404(board, targetId);
      const agentId = agentGatewayIdentity(target, gateway).gatewayAgentId;
      const methods = this.dispatcher.methods(gateway);
      await gatewayOperation('soulUpdate', () =>
        this.dispatcher.withRetry((budget) =>
          // Writing the whole file again is harmless, so a write whose answer was lost is retried.
          methods.agentFilesSet(
            { agentId, name: SOUL_FILE, content },
            { timeoutMs: budget.callTimeoutMs(), idempotent: true },
          ),
        ),
      );
      await this.dataSource.transaction(async (manager) => {
        await manager
          .getRepository(Agent)
          .update(
            { id: target.id, organizationId: target.organizationId },
            { soulTemplate: content, updatedAt: new Date() },
          );
        await this.record(
          {
            ...this.activityOn(board, caller),
            eventType: 'agent.soul.updated',
            message: soulUpdatedNote(target.name, body.reason, body.source_url),
          },
          manager,
        );
      });
    });
  }

  // ---- C7 ask-user ---------------------------------------------------------------------------

  async askUser(
    caller: Agent,
    board: Board,
    body: GatewayMainAskUserRequest,
  ): Promise<GatewayMainAskUserResponse> {
    requireLead(caller);
    const gateway = await this.boardGateway(board);
    const mainAgent = await findGatewayMainAgent(this.dataSource.manager, gateway);
    const sessionKey = mainAgent
      ? agentGatewayIdentity(mainAgent, gateway).sessionKey
      : mainSessionKey(gateway.id);
    const message = askUserMessage({
      baseUrl: this.baseUrl,
      board,
      leadName: caller.name,
      content: body.content,
      correlationId: body.correlation_id,
      preferredChannel: body.preferred_channel,
      replyTags: body.reply_tags,
      replySource: body.reply_source,
    });
    await this.dispatchOrRecord(
      () =>
        this.dispatcher.dispatch(gateway, {
          sessionKey,
          agentName: mainAgent?.name ?? GATEWAY_AGENT_LABEL,
          message,
          deliver: true,
        }),
      'askUser',
      (error) => ({
        ...this.activityOn(board, caller),
        eventType: 'gateway.lead.ask_user.failed',
        message: `Lead user question failed for ${board.name}: ${error.message}`,
      }),
    );
    await this.record({
      ...this.activityOn(board, caller),
      eventType: 'gateway.lead.ask_user.sent',
      message: `Lead requested user info via gateway agent for board: ${board.name}.`,
    });
    return {
      ok: true,
      board_id: board.id,
      main_agent_id: mainAgent?.id ?? null,
      main_agent_name: mainAgent?.name ?? null,
    };
  }

  // ---- C8 / C9 gateway agent -> leads ------------------------------------------------------

  async messageLead(
    caller: Agent,
    boardId: string,
    body: GatewayLeadMessageRequest,
  ): Promise<GatewayLeadMessageResponse> {
    const gateway = await this.requireGatewayMainActor(caller);
    const board = await this.dataSource.getRepository(Board).findOneBy({ id: boardId });
    if (!board) throw new NotFoundError(BOARD_NOT_FOUND);
    if (board.gatewayId !== gateway.id) throw new ForbiddenError();
    const kind = body.kind ?? 'question';
    const { lead, created } = await this.dispatchOrRecord(
      () => this.ensureAndMessageLead(board, gateway, this.leadText(board, caller, kind, body)),
      'leadMessage',
      (error) => ({
        ...this.activityOn(board, caller),
        eventType: 'gateway.main.lead_message.failed',
        message: `Lead message failed for ${board.name}: ${error.message}`,
      }),
    );
    await this.record({
      ...this.activityOn(board, caller),
      eventType: 'gateway.main.lead_message.sent',
      message: `Sent ${kind} to lead for board: ${board.name}.`,
    });
    return {
      ok: true,
      board_id: board.id,
      lead_agent_id: lead.id,
      lead_agent_name: lead.name,
      lead_created: created,
    };
  }

  /**
   * C9: every board of the caller's gateway (newest first, or the named ones among them), its
   * lead ensured and messaged, at most COORDINATION_BROADCAST_CONCURRENCY boards at once, so one
   * unreachable board holds back no other beyond its own retry budget. Always 200 once the
   * caller is the gateway agent; each board reports its own outcome, in board order.
   */
  async broadcast(
    caller: Agent,
    body: GatewayLeadBroadcastRequest,
  ): Promise<GatewayLeadBroadcastResponse> {
    const gateway = await this.requireGatewayMainActor(caller);
    const kind = body.kind ?? 'question';
    const boardIds = body.board_ids ?? [];
    const boards = await this.dataSource.getRepository(Board).find({
      where: {
        gatewayId: gateway.id,
        organizationId: gateway.organizationId,
        ...(boardIds.length > 0 ? { id: In(boardIds) } : {}),
      },
      order: { createdAt: 'DESC', id: 'ASC' },
    });
    const results: GatewayLeadBroadcastBoardResult[] = new Array(boards.length);
    // One budget for the whole broadcast: a board queued behind the bound gets its attempt, but
    // no retry budget of its own once the broadcast's is spent.
    const retryUntil = Date.now() + this.dispatcher.retryProfile.timeoutMs;
    await forEachConcurrently(
      boards.map((board, index) => ({ board, index })),
      this.broadcastConcurrency,
      async ({ board, index }) => {
        results[index] = await this.broadcastTo(
          board,
          gateway,
          this.leadText(board, caller, kind, body),
          retryUntil,
        );
      },
    );
    const sent = results.filter((result) => result.ok).length;
    const failed = results.length - sent;
    await this.record({
      organizationId: caller.organizationId,
      boardId: null,
      agentId: caller.id,
      eventType: 'gateway.main.lead_broadcast.sent',
      message: `Broadcast ${kind} to ${sent} board leads (failed: ${failed}).`,
    });
    return { ok: true, sent, failed, results };
  }

  /** One board of a broadcast. Never rejects: any failure is that board's result. */
  private async broadcastTo(
    board: Board,
    gateway: Gateway,
    message: string,
    retryUntil: number,
  ): Promise<GatewayLeadBroadcastBoardResult> {
    try {
      const { lead } = await this.ensureAndMessageLead(board, gateway, message, { retryUntil });
      return {
        board_id: board.id,
        lead_agent_id: lead.id,
        lead_agent_name: lead.name,
        ok: true,
        error: null,
      };
    } catch (error) {
      return {
        board_id: board.id,
        lead_agent_id: null,
        lead_agent_name: null,
        ok: false,
        error: this.broadcastError(board, error),
      };
    }
  }

  /** A 4xx's detail as it is; a gateway failure with the broadcast prefix (contract §1.4.4). */
  private broadcastError(board: Board, error: unknown): string {
    if (error instanceof AppError) return error.detail ?? error.name;
    if (error instanceof GatewayError) {
      return `${GATEWAY_OPERATION_PREFIX.leadBroadcast}: ${error.message}`;
    }
    if (error instanceof GatewayOperationError) return error.message;
    // Our own failure (database, provisioning): logged, not shown to the agent.
    this.logger.error(
      `broadcast to the lead of board ${board.id} failed: ${(error as Error)?.stack ?? String(error)}`,
    );
    return `${GATEWAY_OPERATION_PREFIX.leadBroadcast}: unexpected error`;
  }

  private leadText(
    board: Board,
    caller: Agent,
    kind: LeadMessageKind,
    body: GatewayLeadMessageRequest,
  ): string {
    return leadMessage({
      baseUrl: this.baseUrl,
      board,
      fromAgentName: caller.name,
      kind,
      content: body.content,
      correlationId: body.correlation_id,
      replyTags: body.reply_tags,
      replySource: body.reply_source,
    });
  }

  /**
   * The board's lead, created and provisioned when it has none (the provisioning engine; an
   * existing lead is never renamed), then messaged (deliver false) under the coordination
   * retry profile.
   */
  private async ensureAndMessageLead(
    board: Board,
    gateway: Gateway,
    message: string,
    options: DispatchOptions = {},
  ): Promise<{ lead: Agent; created: boolean }> {
    const { lead, created } = await this.provisioning.ensureBoardLead(
      { organizationId: board.organizationId, boardId: board.id },
      { action: 'provision' },
    );
    if (!lead.openclawSessionId) throw new InvalidRequestError(LEAD_NO_SESSION_KEY);
    await this.dispatcher.dispatch(
      gateway,
      { sessionKey: lead.openclawSessionId, agentName: lead.name, message, deliver: false },
      options,
    );
    return { lead, created };
  }

  /**
   * The caller must be its gateway's main agent: no board, its gateway row exists, and its
   * session key is that gateway's main session key (today's, or upstream's older
   * `agent:gateway-<id>:main`). Then the gateway needs a URL.
   */
  private async requireGatewayMainActor(caller: Agent): Promise<Gateway> {
    if (caller.boardId !== null) throw new ForbiddenError(ONLY_GATEWAY_AGENT);
    const gateway = await this.dataSource
      .getRepository(Gateway)
      .findOneBy({ id: caller.gatewayId, organizationId: caller.organizationId });
    if (!gateway) throw new ForbiddenError(ONLY_GATEWAY_AGENT);
    const mainKeys = [mainSessionKey(gateway.id), sessionKeyFor(`gateway-${gateway.id}`)];
    if (!caller.openclawSessionId || !mainKeys.includes(caller.openclawSessionId)) {
      throw new ForbiddenError(ONLY_GATEWAY_AGENT);
    }
    if (!gateway.url.trim()) throw new InvalidRequestError(GATEWAY_URL_REQUIRED);
    return gateway;
  }

  // ---- shared --------------------------------------------------------------------------------

  /**
   * An agent of the path board (contract §1.4.1, tightened): unknown ids, agents of other
   * boards and gateway main agents (no board) are 404.
   */
  private async boardAgentOr404(board: Board, agentId: string): Promise<Agent> {
    const target = await this.dataSource
      .getRepository(Agent)
      .findOneBy({ id: agentId, boardId: board.id, organizationId: board.organizationId });
    if (!target) throw new NotFoundError();
    return target;
  }

  /** The board's gateway (contract §5.2 texts). */
  private boardGateway(board: Board): Promise<Gateway> {
    return requireBoardGateway(this.dataSource, board);
  }

  private activityOn(board: Board, caller: Agent) {
    return { organizationId: board.organizationId, boardId: board.id, agentId: caller.id };
  }

  /**
   * Runs gateway work; a gateway failure (including the retry timeout) records its failure
   * activity (committed on its own, the request then answers 502) and becomes the operation's
   * 502. Other errors (a 4xx) pass unchanged, with no activity.
   */
  private async dispatchOrRecord<T>(
    work: () => Promise<T>,
    operation: GatewayOperation,
    failure: (error: GatewayError) => ActivityInput,
  ): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      await this.record(failure(error));
      throw new GatewayOperationError(operation, error);
    }
  }

  private async record(input: ActivityInput, manager?: EntityManager): Promise<void> {
    await (manager ?? this.dataSource.manager).getRepository(ActivityEvent).insert({
      organizationId: input.organizationId,
      boardId: input.boardId,
      agentId: input.agentId,
      eventType: input.eventType,
      message: input.message,
    });
  }
}

function requireLead(caller: Agent): void {
  if (!caller.isBoardLead) throw new ForbiddenError();
}

/** Runs gateway calls; a gateway failure becomes the operation's 502. */
async function gatewayOperation<T>(
  operation: GatewayOperation,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof GatewayError) throw new GatewayOperationError(operation, error);
    throw error;
  }
}
