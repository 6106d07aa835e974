import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { plainToInstance } from 'class-transformer';
import { validate, validateSync } from 'class-validator';
import { DataSource, EntityManager, QueryFailedError } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { Agent } from '../agents/entities/agent.entity';
import { findGatewayMainAgent } from '../agents/gateway-main-agent';
import { requireBoardGateway } from '../boards/board-gateway';
import { Board } from '../boards/entities/board.entity';
import {
  AppError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  RequestValidationError,
  type ValidationIssue,
} from '../common/errors/app-error';
import {
  GatewayError,
  GatewayOperationError,
  type GatewayOperation,
} from '../common/errors/gateway-errors';
import { toIssues } from '../common/validation/request-validation.pipe';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { GatewayDispatchService } from '../coordination/gateway-dispatch.service';
import { Gateway } from '../gateways/entities/gateway.entity';
import { agentGatewayIdentity } from '../provisioning/agent-identity';
import { ProvisioningService } from '../provisioning/provisioning.service';
import { User } from '../users/entities/user.entity';
import {
  BoardOnboardingAgentComplete,
  BoardOnboardingLeadAgentDraft,
  BoardOnboardingUserProfile,
} from './dto/board-onboarding-read.dto';
import {
  BoardOnboardingAgentQuestion,
  ONBOARDING_TEXT_LIMITS,
  type BoardOnboardingAnswer,
  type BoardOnboardingConfirm,
} from './dto/board-onboarding-requests.dto';
import {
  BoardOnboardingSession,
  ONE_ACTIVE_ONBOARDING_INDEX,
  type OnboardingMessage,
} from './entities/board-onboarding-session.entity';
import { onboardingStartPrompt } from './onboarding-prompt';

/** The session label of a gateway's main session when no main-agent row names it (upstream). */
export const GATEWAY_AGENT_LABEL = 'Gateway Agent';
export const GOAL_SOURCE_ONBOARDING = 'lead_agent_onboarding';
export const CONVERSATION_FULL = `The onboarding conversation is full (at most ${ONBOARDING_TEXT_LIMITS.messages} messages, ${ONBOARDING_TEXT_LIMITS.messagesBytes} bytes)`;
export const START_IN_PROGRESS = 'Another onboarding start for this board is still in progress';

/** Starts of one board take this transaction-scoped advisory lock (try, never wait in it). */
const START_LOCK_SQL = `SELECT pg_try_advisory_xact_lock(hashtextextended('board-onboarding-start:' || $1, 0)) AS locked`;

/**
 * Whether a session ($1) has room for the messages $2 (a JSON array): fewer than $3 messages and
 * at most $4 bytes of stored jsonb text once they are added. The append and its pre-check share it.
 */
const ROOM_FOR_MESSAGE_SQL = `jsonb_array_length(COALESCE(messages, '[]'::jsonb)) < $3
          AND octet_length(COALESCE(messages, '[]'::jsonb)::text) + octet_length($2) <= $4`;

/** How often a start waiting for a concurrent start of the same board looks again. */
const START_WAIT_POLL_MS = 100;

interface ActivityInput {
  organizationId: string;
  boardId: string;
  agentId?: string | null;
  eventType: string;
  message: string;
}

/** Where a new session's prompt goes: the board's gateway and its main agent, made ready. */
interface StartTarget {
  gateway: Gateway;
  mainAgent: Agent;
}

export interface StartResult {
  session: BoardOnboardingSession;
  resent: boolean;
}

export interface ConfirmResult {
  board: Board;
  leadId: string | null;
  leadCreated: boolean;
  leadError: string | null;
}

type AgentUpdate =
  | { kind: 'question'; payload: BoardOnboardingAgentQuestion }
  | { kind: 'complete'; payload: BoardOnboardingAgentComplete };

/**
 * Board onboarding (contract §1.5, §6, C10): the gateway main agent interviews the user about the
 * board's goal and its lead, through the main agent's session of the board's gateway; the user
 * confirms, which sets the goal and creates (or updates) the lead via the provisioning engine.
 *
 * Gateway first, database after: a message is stored only once the gateway accepted it; a
 * failure stores nothing but its (separately committed) failure activity, and answers 502.
 */
@Injectable()
export class OnboardingService {
  private readonly logger = new Logger('Onboarding');
  private readonly baseUrl: string;
  /** The longest a start waits for a concurrent start of the same board. */
  private readonly startWaitMs: number;

  constructor(
    private readonly dispatcher: GatewayDispatchService,
    private readonly provisioning: ProvisioningService,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.baseUrl = config.baseUrl;
    this.startWaitMs = config.coordination.retryTimeoutMs + config.provisioning.runTimeoutMs;
  }

  // ---- O1 ------------------------------------------------------------------------------------

  async get(board: Board): Promise<BoardOnboardingSession> {
    const session = await this.latest(this.dataSource.manager, board);
    if (!session) throw new NotFoundError();
    return session;
  }

  // ---- O2 ------------------------------------------------------------------------------------

  /**
   * Starts the board's onboarding, or, while a session is active, re-sends its pending message.
   * Starts of one board are serialised by an advisory lock held while the start dispatches and
   * inserts: a concurrent start waits (without holding a connection) and then returns the
   * session the first one created, with no second dispatch.
   *
   * The gateway main agent is made ready BEFORE the lock's transaction: provisioning takes
   * connections of the application pool, so a transaction held across it could wait forever
   * for them once concurrent starts hold the whole pool. Inside the transaction only its own
   * connection is used (a failure's activity is written after the rollback).
   */
  async start(board: Board, user: User): Promise<StartResult> {
    const deadline = Date.now() + this.startWaitMs;
    for (;;) {
      let target: StartTarget | null = null;
      if (!(await this.active(this.dataSource.manager, board))) {
        const gateway = await requireBoardGateway(this.dataSource, board);
        target = { gateway, mainAgent: await this.readyMainAgent(board, gateway, user) };
      }
      let result: StartResult | 'retry' | 'lost' | 'busy';
      try {
        result = await this.dataSource.transaction(async (manager) => {
          const [{ locked }] = await manager.query<{ locked: boolean }[]>(START_LOCK_SQL, [
            board.id,
          ]);
          if (!locked) return 'busy' as const;
          return this.startLocked(manager, board, target);
        });
      } catch (error) {
        if (!(error instanceof DispatchFailure)) throw error;
        await this.record(this.dataSource.manager, error.activity);
        throw error.reply;
      }
      if (typeof result === 'object') return result;
      if (result === 'lost') {
        // Another writer's session won the insert (after our dispatch): it is the answer.
        const winner = await this.active(this.dataSource.manager, board);
        if (winner) return { session: winner, resent: false };
      }
      if (Date.now() >= deadline) throw new ConflictError(START_IN_PROGRESS);
      if (result !== 'busy') continue;
      // Another start of this board holds the lock: wait for it, then take its session.
      while (Date.now() < deadline) {
        await sleep(START_WAIT_POLL_MS);
        const winner = await this.active(this.dataSource.manager, board);
        if (winner) return { session: winner, resent: false };
        if (await this.startLockFree(board)) break;
      }
      if (Date.now() >= deadline) throw new ConflictError(START_IN_PROGRESS);
    }
  }

  /** Whether no start of the board holds its lock (taken and released at once). */
  private async startLockFree(board: Board): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const [{ locked }] = await manager.query<{ locked: boolean }[]>(START_LOCK_SQL, [board.id]);
      return locked;
    });
  }

  /**
   * The start under the board's lock, on the lock transaction's connection only. 'retry' when
   * the main agent was not made ready (a session was active before the lock, gone since): the
   * caller starts over; 'lost' when another writer's session won the insert.
   */
  private async startLocked(
    manager: EntityManager,
    board: Board,
    target: StartTarget | null,
  ): Promise<StartResult | 'retry' | 'lost'> {
    const active = await this.active(manager, board);
    if (active) return this.resendPending(manager, board, active);
    if (!target) return 'retry';

    const { gateway, mainAgent } = target;
    const sessionKey = agentGatewayIdentity(mainAgent, gateway).sessionKey;
    const prompt = onboardingStartPrompt({
      baseUrl: this.baseUrl,
      boardId: board.id,
      boardName: board.name,
    });
    await this.dispatchOrFail(
      'onboardingStart',
      gateway,
      { sessionKey, agentName: mainAgent.name || GATEWAY_AGENT_LABEL, message: prompt },
      (error) => ({
        ...activityOn(board),
        eventType: 'onboarding.start.failed',
        message: `Onboarding start failed for ${board.name}: ${error.message}`,
      }),
    );
    const repo = manager.getRepository(BoardOnboardingSession);
    let id: string;
    try {
      const inserted = await repo.insert({
        organizationId: board.organizationId,
        boardId: board.id,
        sessionKey,
        status: 'active',
        messages: [message('user', prompt)],
        draftGoal: null,
      });
      id = (inserted.identifiers[0] as { id: string }).id;
    } catch (error) {
      // The lock makes this unreachable across well-behaved starts; should another writer have
      // opened a session meanwhile, its session wins (the caller returns it, once this
      // transaction, aborted by the violation, is over).
      if (isViolationOf(error, ONE_ACTIVE_ONBOARDING_INDEX)) return 'lost';
      throw error;
    }
    await this.record(manager, {
      ...activityOn(board),
      eventType: 'onboarding.started',
      message: `Onboarding started for ${board.name}.`,
    });
    return { session: await repo.findOneByOrFail({ id }), resent: false };
  }

  /**
   * A start while a session is active: its last message, when it is the user's (the prompt or
   * an answer the agent has not replied to), goes to the gateway agent again; `updated_at` is
   * bumped. When the agent spoke last it is the user's turn: nothing is sent.
   */
  private async resendPending(
    manager: EntityManager,
    board: Board,
    session: BoardOnboardingSession,
  ): Promise<StartResult> {
    const last = session.messages?.[session.messages.length - 1];
    if (!last || last.role !== 'user') return { session, resent: false };
    const gateway = await requireBoardGateway(manager, board);
    const mainAgent = await findGatewayMainAgent(manager, gateway);
    await this.dispatchOrFail(
      'onboardingStart',
      gateway,
      {
        sessionKey: session.sessionKey,
        agentName: mainAgent?.name || GATEWAY_AGENT_LABEL,
        message: last.content,
      },
      (error) => ({
        ...activityOn(board),
        eventType: 'onboarding.resend.failed',
        message: `Onboarding re-send failed for ${board.name}: ${error.message}`,
      }),
    );
    const repo = manager.getRepository(BoardOnboardingSession);
    await repo.update({ id: session.id }, { updatedAt: new Date() });
    await this.record(manager, {
      ...activityOn(board),
      eventType: 'onboarding.resent',
      message: `Onboarding: pending message re-sent for ${board.name}.`,
    });
    return { session: await repo.findOneByOrFail({ id: session.id }), resent: true };
  }

  /**
   * The gateway's main agent, provisioned: a missing row, or one never provisioned or whose last
   * provision failed, is (re)provisioned first. A failure records its activity and is the
   * start's 502; nothing else is stored.
   */
  private async readyMainAgent(board: Board, gateway: Gateway, user: User): Promise<Agent> {
    const ready = (agent: Agent | null): boolean =>
      agent !== null && agent.agentTokenHash !== null && agent.lastProvisionError === null;
    let existing = await findGatewayMainAgent(this.dataSource.manager, gateway);
    if (existing && ready(existing)) return existing;
    if (existing && existing.agentTokenHash === null && existing.lastProvisionError === null) {
      // Never provisioned, no failure recorded: a concurrent start may be provisioning it. Wait
      // for that run (the agent's run lock) rather than provision (and rotate its token) again.
      const agentId = existing.id;
      existing = await this.provisioning.underAgentRunLock(agentId, () =>
        this.dataSource
          .getRepository(Agent)
          .findOneBy({ id: agentId, organizationId: gateway.organizationId }),
      );
      if (existing && ready(existing)) return existing;
    }
    let failure: Error;
    try {
      const outcome = await this.provisioning.ensureMainAgent(gateway, {
        action: existing?.agentTokenHash ? 'update' : 'provision',
        user,
      });
      if (outcome.status === 'provisioned') return outcome.agent;
      failure = new Error(outcome.error ?? `main agent provisioning ${outcome.status}`);
    } catch (error) {
      if (!(error instanceof GatewayError || error instanceof GatewayOperationError)) throw error;
      failure = error;
    }
    await this.record(this.dataSource.manager, {
      ...activityOn(board),
      eventType: 'onboarding.start.failed',
      message: `Onboarding start failed for ${board.name}: gateway agent provisioning: ${failure.message}`,
    });
    throw new GatewayOperationError('onboardingStart', failure);
  }

  // ---- O3 ------------------------------------------------------------------------------------

  /**
   * The user's answer: sent to the session first, stored (appended atomically, so concurrent
   * answers are all kept) only once the gateway accepted it.
   */
  async answer(
    board: Board,
    user: User,
    body: BoardOnboardingAnswer,
  ): Promise<BoardOnboardingSession> {
    const session = await this.latest(this.dataSource.manager, board);
    if (!session) throw new NotFoundError();
    const gateway = await requireBoardGateway(this.dataSource, board);
    const answerText = body.other_text ? `${body.answer}: ${body.other_text}` : body.answer;
    if (!(await this.hasRoomFor(session.id, message('user', answerText)))) {
      throw new ConflictError(CONVERSATION_FULL);
    }
    const mainAgent = await findGatewayMainAgent(this.dataSource.manager, gateway);
    await this.dispatchOrRecord(
      'onboardingAnswer',
      gateway,
      {
        sessionKey: session.sessionKey,
        agentName: mainAgent?.name || GATEWAY_AGENT_LABEL,
        message: answerText,
      },
      (error) => ({
        ...activityOn(board),
        eventType: 'onboarding.answer.failed',
        message: `Onboarding answer failed for ${board.name}: ${error.message}`,
      }),
    );
    return this.dataSource.transaction(async (manager) => {
      const stored = await this.append(manager, session.id, message('user', answerText));
      await this.record(manager, {
        ...activityOn(board),
        eventType: 'onboarding.answered',
        message: `Onboarding answer sent for ${board.name} by ${user.name ?? user.email ?? user.id}.`,
      });
      return stored;
    });
  }

  // ---- O4 / C10 ------------------------------------------------------------------------------

  /**
   * The gateway main agent's question or completion. Only the main agent of the board's gateway
   * may post (contract §7.10); the route's board guard has let it at the board.
   */
  async agentUpdate(board: Board, caller: Agent, body: unknown): Promise<BoardOnboardingSession> {
    if (caller.boardId !== null) throw new ForbiddenError();
    if (board.gatewayId && caller.gatewayId !== board.gatewayId) throw new ForbiddenError();
    const update = await parseAgentUpdate(body);
    return this.dataSource.transaction(async (manager) => {
      const session = await this.latest(manager, board, { lock: true });
      if (!session) throw new NotFoundError();
      if (session.status === 'confirmed') throw new ConflictError();
      const content = JSON.stringify(dumpAgentUpdate(update));
      const stored = await this.append(
        manager,
        session.id,
        message('assistant', content),
        update.kind === 'complete'
          ? { draftGoal: JSON.parse(content) as Record<string, unknown>, status: 'completed' }
          : undefined,
      );
      await this.record(manager, {
        ...activityOn(board),
        agentId: caller.id,
        eventType: update.kind === 'complete' ? 'onboarding.completed' : 'onboarding.question',
        message:
          update.kind === 'complete'
            ? `Onboarding draft completed for ${board.name}.`
            : `Onboarding question asked for ${board.name}.`,
      });
      return stored;
    });
  }

  // ---- O5 ------------------------------------------------------------------------------------

  /**
   * The user confirms the goal: board, session and user profile change in one transaction
   * (nothing when the gateway configuration is missing), then the lead is created, or updated
   * with the drafted name and identity and re-provisioned. A lead failure does not undo the
   * confirmation: it is recorded (agent row, activity) and reported in the response.
   */
  async confirm(board: Board, user: User, body: BoardOnboardingConfirm): Promise<ConfirmResult> {
    const found = await this.latest(this.dataSource.manager, board);
    if (!found) throw new NotFoundError();
    await requireBoardGateway(this.dataSource, board);

    const confirmed = await this.dataSource.transaction(async (manager) => {
      const session = await this.latest(manager, board, { lock: true });
      if (!session) throw new NotFoundError();
      await manager
        .getRepository(Board)
        .update({ id: board.id, organizationId: board.organizationId }, {
          boardType: body.board_type,
          objective: body.objective ?? null,
          successMetrics: body.success_metrics ?? null,
          targetDate: body.target_date ?? null,
          goalConfirmed: true,
          goalSource: GOAL_SOURCE_ONBOARDING,
          updatedAt: new Date(),
        } as QueryDeepPartialEntity<Board>);
      await manager
        .getRepository(BoardOnboardingSession)
        .update({ id: session.id }, { status: 'confirmed', updatedAt: new Date() });
      const draft = asRecord(session.draftGoal);
      const profile = lenient(BoardOnboardingUserProfile, draft?.user_profile);
      if (profile) await applyUserProfile(manager, user, profile);
      await this.record(manager, {
        ...activityOn(board),
        eventType: 'onboarding.confirmed',
        message: `Onboarding goal confirmed for ${board.name}.`,
      });
      return { leadDraft: lenient(BoardOnboardingLeadAgentDraft, draft?.lead_agent) };
    });

    // The lead's files (USER.md, SOUL.md) render the user: the profile as just copied, not as
    // it was when the request came in.
    const current = await this.dataSource.getRepository(User).findOneBy({ id: user.id });
    const lead = await this.ensureLead(board, current ?? user, confirmed.leadDraft);
    const updated = await this.dataSource
      .getRepository(Board)
      .findOneByOrFail({ id: board.id, organizationId: board.organizationId });
    return { board: updated, ...lead };
  }

  /** The lead with the drafted name and identity; a failure is recorded and returned. */
  private async ensureLead(
    board: Board,
    user: User,
    draft: BoardOnboardingLeadAgentDraft | null,
  ): Promise<Omit<ConfirmResult, 'board'>> {
    try {
      const { lead, created, outcome } = await this.provisioning.ensureBoardLead(
        { organizationId: board.organizationId, boardId: board.id },
        {
          agentName: draft?.name ?? null,
          identityProfile: leadIdentityProfile(draft),
          action: 'provision',
          user,
          // Only a drafted lead updates an existing one: without a draft its name, identity
          // (perhaps set by hand) and token stay as they are.
          reprovisionExisting: draft !== null,
        },
      );
      const leadError = outcome?.status === 'failed' ? (outcome.error ?? 'failed') : null;
      await this.record(this.dataSource.manager, {
        ...activityOn(board),
        agentId: lead.id,
        eventType: leadError
          ? 'onboarding.lead.failed'
          : created
            ? 'onboarding.lead.created'
            : 'onboarding.lead.updated',
        message: leadError
          ? `Onboarding lead ${lead.name} not provisioned for ${board.name}: ${leadError}`
          : `Onboarding lead ${lead.name} ${created ? 'created' : 'updated'} for ${board.name}.`,
      });
      return { leadId: lead.id, leadCreated: created, leadError };
    } catch (error) {
      const text =
        error instanceof AppError
          ? (error.detail ?? error.name)
          : error instanceof GatewayError || error instanceof GatewayOperationError
            ? error.message
            : 'unexpected error';
      if (text === 'unexpected error') {
        this.logger.error(
          `lead of board ${board.id} after onboarding: ${(error as Error)?.stack ?? String(error)}`,
        );
      }
      await this.record(this.dataSource.manager, {
        ...activityOn(board),
        eventType: 'onboarding.lead.failed',
        message: `Onboarding lead not provisioned for ${board.name}: ${text}`,
      });
      return { leadId: null, leadCreated: false, leadError: text };
    }
  }

  // ---- shared --------------------------------------------------------------------------------

  /** The board's latest session (greatest `updated_at`), optionally locked for update. */
  private latest(
    manager: EntityManager,
    board: Board,
    options: { lock?: boolean } = {},
  ): Promise<BoardOnboardingSession | null> {
    return manager.getRepository(BoardOnboardingSession).findOne({
      where: { boardId: board.id, organizationId: board.organizationId },
      order: { updatedAt: 'DESC', createdAt: 'DESC' },
      ...(options.lock ? { lock: { mode: 'pessimistic_write' as const } } : {}),
    });
  }

  private active(manager: EntityManager, board: Board): Promise<BoardOnboardingSession | null> {
    return manager.getRepository(BoardOnboardingSession).findOne({
      where: { boardId: board.id, organizationId: board.organizationId, status: 'active' },
    });
  }

  /**
   * Whether one more message fits the session's bounds, measured as {@link append} measures
   * (the stored jsonb text, not compact JSON), so what the pre-check lets through to the gateway
   * the append does not refuse (concurrent appends aside).
   */
  private async hasRoomFor(sessionId: string, entry: OnboardingMessage): Promise<boolean> {
    const rows = await this.dataSource.query<{ room: boolean }[]>(
      `SELECT ${ROOM_FOR_MESSAGE_SQL} AS room FROM board_onboarding_sessions WHERE id = $1`,
      [
        sessionId,
        JSON.stringify([entry]),
        ONBOARDING_TEXT_LIMITS.messages,
        ONBOARDING_TEXT_LIMITS.messagesBytes,
      ],
    );
    return rows[0]?.room === true;
  }

  /**
   * Appends one message atomically (`messages || [message]` in the UPDATE itself: concurrent
   * appends all land), within the conversation bound, with optional column changes.
   */
  private async append(
    manager: EntityManager,
    sessionId: string,
    entry: OnboardingMessage,
    changes?: { draftGoal: Record<string, unknown>; status: 'completed' },
  ): Promise<BoardOnboardingSession> {
    const params: unknown[] = [
      sessionId,
      JSON.stringify([entry]),
      ONBOARDING_TEXT_LIMITS.messages,
      ONBOARDING_TEXT_LIMITS.messagesBytes,
    ];
    let extra = '';
    if (changes) {
      params.push(JSON.stringify(changes.draftGoal), changes.status);
      extra = ', draft_goal = $5::jsonb, status = $6';
    }
    const [rows] = await manager.query<[{ id: string }[], number]>(
      `UPDATE board_onboarding_sessions
          SET messages = COALESCE(messages, '[]'::jsonb) || $2::jsonb, updated_at = now()${extra}
        WHERE id = $1 AND ${ROOM_FOR_MESSAGE_SQL}
        RETURNING id`,
      params,
    );
    if (rows.length === 0) {
      const exists = await manager
        .getRepository(BoardOnboardingSession)
        .existsBy({ id: sessionId });
      if (!exists) throw new NotFoundError();
      throw new ConflictError(CONVERSATION_FULL);
    }
    return manager.getRepository(BoardOnboardingSession).findOneByOrFail({ id: sessionId });
  }

  /**
   * Sends a message to the gateway main session (deliver false) with the coordination dispatch;
   * a gateway failure records its activity (committed on its own) and is the operation's 502.
   */
  private async dispatchOrRecord(
    operation: GatewayOperation,
    gateway: Gateway,
    request: { sessionKey: string; agentName: string; message: string },
    failure: (error: Error) => ActivityInput,
  ): Promise<void> {
    try {
      await this.dispatchOrFail(operation, gateway, request, failure);
    } catch (error) {
      if (!(error instanceof DispatchFailure)) throw error;
      await this.record(this.dataSource.manager, error.activity);
      throw error.reply;
    }
  }

  /**
   * The dispatch of {@link dispatchOrRecord} for callers inside a transaction: a gateway failure
   * is a DispatchFailure carrying the activity to record once the transaction is over.
   */
  private async dispatchOrFail(
    operation: GatewayOperation,
    gateway: Gateway,
    request: { sessionKey: string; agentName: string; message: string },
    failure: (error: Error) => ActivityInput,
  ): Promise<void> {
    try {
      await this.dispatcher.dispatch(gateway, { ...request, deliver: false });
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      throw new DispatchFailure(failure(error), new GatewayOperationError(operation, error));
    }
  }

  private async record(manager: EntityManager, input: ActivityInput): Promise<void> {
    await manager.getRepository(ActivityEvent).insert({
      organizationId: input.organizationId,
      boardId: input.boardId,
      agentId: input.agentId ?? null,
      eventType: input.eventType,
      message: input.message,
    });
  }
}

/** A failed dispatch inside a transaction: its activity (recorded after it) and its 502. */
class DispatchFailure extends Error {
  constructor(
    readonly activity: ActivityInput,
    readonly reply: GatewayOperationError,
  ) {
    super(reply.message);
  }
}

function activityOn(board: Board): Pick<ActivityInput, 'organizationId' | 'boardId'> {
  return { organizationId: board.organizationId, boardId: board.id };
}

function message(role: OnboardingMessage['role'], content: string): OnboardingMessage {
  return { role, content, timestamp: new Date().toISOString() };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isViolationOf(error: unknown, constraint: string): boolean {
  const driver = (error as { driverError?: { code?: string; constraint?: string } }).driverError;
  return (
    error instanceof QueryFailedError &&
    driver?.code === '23505' &&
    driver.constraint === constraint
  );
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

/** `value` validated as `cls` (transformed: trimmed, blanks null), or null when invalid. */
function lenient<T extends object>(cls: new () => T, value: unknown): T | null {
  if (!asRecord(value)) return null;
  const instance = plainToInstance(cls, value);
  return validateSync(instance, { whitelist: true, forbidUnknownValues: false }).length === 0
    ? instance
    : null;
}

/**
 * The agent update body as one of the union's branches (pydantic smart union): the Question
 * when it validates, else the Complete; when neither does, a 422 listing both branches' issues,
 * each located under its branch's model name as pydantic does.
 */
export async function parseAgentUpdate(body: unknown): Promise<AgentUpdate> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RequestValidationError([
      {
        type: 'model_attributes_type',
        loc: ['body'],
        msg: 'Input should be a valid dictionary or object to extract fields from',
        input: body,
      },
    ]);
  }
  const options = {
    whitelist: true,
    forbidUnknownValues: false,
    validationError: { target: false, value: true },
  };
  const question = plainToInstance(BoardOnboardingAgentQuestion, body);
  const questionErrors = await validate(question, options);
  if (questionErrors.length === 0) return { kind: 'question', payload: question };
  const complete = plainToInstance(BoardOnboardingAgentComplete, body);
  const completeErrors = await validate(complete, options);
  if (completeErrors.length === 0) return { kind: 'complete', payload: complete };
  const issues: ValidationIssue[] = [
    ...toIssues(questionErrors, ['body', 'BoardOnboardingAgentQuestion'], body),
    ...toIssues(completeErrors, ['body', 'BoardOnboardingAgentComplete'], body),
  ];
  throw new RequestValidationError(issues);
}

/** Drops null and undefined members of a model (pydantic `exclude_none`), recursing into models. */
function withoutNulls(entries: [string, unknown][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) if (value !== null && value !== undefined) out[key] = value;
  return out;
}

/** The payload as stored and shown: compact JSON fields in model order, nulls omitted. */
export function dumpAgentUpdate(update: AgentUpdate): Record<string, unknown> {
  if (update.kind === 'question') {
    return {
      question: update.payload.question,
      options: update.payload.options.map((option) => ({ id: option.id, label: option.label })),
    };
  }
  const p = update.payload;
  const profile = p.user_profile
    ? withoutNulls([
        ['preferred_name', p.user_profile.preferred_name],
        ['pronouns', p.user_profile.pronouns],
        ['timezone', p.user_profile.timezone],
        ['notes', p.user_profile.notes],
        ['context', p.user_profile.context],
      ])
    : null;
  const lead = p.lead_agent
    ? withoutNulls([
        ['name', p.lead_agent.name],
        ['identity_profile', p.lead_agent.identity_profile],
        ['autonomy_level', p.lead_agent.autonomy_level],
        ['verbosity', p.lead_agent.verbosity],
        ['output_format', p.lead_agent.output_format],
        ['update_cadence', p.lead_agent.update_cadence],
        ['custom_instructions', p.lead_agent.custom_instructions],
      ])
    : null;
  return withoutNulls([
    ['status', 'complete'],
    ['board_type', p.board_type],
    ['objective', p.objective],
    ['success_metrics', p.success_metrics],
    ['target_date', p.target_date ? p.target_date.toISOString() : null],
    ['user_profile', profile],
    ['lead_agent', lead],
  ]);
}

/** The lead's identity profile from the draft: its profile plus the working-style keys. */
export function leadIdentityProfile(
  draft: BoardOnboardingLeadAgentDraft | null,
): Record<string, string> | null {
  if (!draft) return null;
  const profile: Record<string, string> = { ...(draft.identity_profile ?? {}) };
  const keys = [
    'autonomy_level',
    'verbosity',
    'output_format',
    'update_cadence',
    'custom_instructions',
  ] as const;
  for (const key of keys) {
    const value = draft[key];
    if (value) profile[key] = value;
  }
  return Object.keys(profile).length > 0 ? profile : null;
}

/** Each non-null field of the drafted profile overwrites the user's. */
async function applyUserProfile(
  manager: EntityManager,
  user: User,
  profile: BoardOnboardingUserProfile,
): Promise<void> {
  const changes: Partial<User> = {};
  if (profile.preferred_name != null) changes.preferredName = profile.preferred_name;
  if (profile.pronouns != null) changes.pronouns = profile.pronouns;
  if (profile.timezone != null) changes.timezone = profile.timezone;
  if (profile.notes != null) changes.notes = profile.notes;
  if (profile.context != null) changes.context = profile.context;
  if (Object.keys(changes).length === 0) return;
  await manager.getRepository(User).update({ id: user.id }, { ...changes, updatedAt: new Date() });
}
