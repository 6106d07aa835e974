import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Agent } from '../agents/entities/agent.entity';
import { findGatewayMainAgent } from '../agents/gateway-main-agent';
import { MembershipService } from '../auth/membership.service';
import { Board } from '../boards/entities/board.entity';
import { InvalidRequestError, NotFoundError } from '../common/errors/app-error';
import {
  GatewayError,
  GatewayOperationError,
  type GatewayOperation,
} from '../common/errors/gateway-errors';
import { Gateway } from '../gateways/entities/gateway.entity';
import type { GatewaySession, SessionsListResult } from '../openclaw/gateway-methods';
import {
  gatewayTarget,
  OpenClawGatewayService,
  type GatewayRecord,
} from '../openclaw/openclaw-gateway.service';
import {
  CLIENT_EVENTS,
  CLIENT_METHODS,
  displayUrl,
  isRecord,
  MAX_PROTOCOL,
} from '../openclaw/protocol';
import { uniqueSessionLabel } from '../openclaw/session-label';
import type { OrganizationMember } from '../organizations/entities/organization-member.entity';
import { agentGatewayIdentity, gatewayAgentIdFromSessionKey } from '../provisioning/agent-identity';
import type { User } from '../users/entities/user.entity';
import type {
  GatewayCommandsResponse,
  GatewaySessionHistoryResponse,
  GatewaySessionResponse,
  GatewaySessionsResponse,
  GatewaysStatusResponse,
  GatewayStatusQuery,
} from './dto/sessions.dto';

/** Contract §1.1 texts. */
export const BOARD_OR_URL_REQUIRED = 'board_id or gateway_url is required';
export const BOARD_NOT_FOUND = 'Board not found';
export const BOARD_GATEWAY_REQUIRED = 'Board gateway_id is required';
export const BOARD_GATEWAY_INVALID = 'Board gateway_id is invalid';
export const GATEWAY_URL_REQUIRED = 'Gateway url is required';
export const SESSION_NOT_FOUND = 'Session not found';

/** A status error is shown in a form: the gateway client's short cause, cut at this length. */
const MAX_STATUS_ERROR_LENGTH = 300;

/** The caller of a sessions route: the user and their active membership (org admin). */
export interface SessionsCaller {
  user: User;
  member: OrganizationMember;
}

/** The gateway a request names, and what the database knows about it. */
interface ResolvedGateway {
  record: GatewayRecord;
  /** The URL as shown to the caller (no token, credentials masked). */
  displayUrl: string;
  board: Board | null;
  /** The gateway's main agent (no board), whose session is the "main session". */
  mainAgent: Agent | null;
  mainSessionKey: string | null;
}

/**
 * Live inspection of a gateway's sessions (contract §1.1 E1–E6), for org admins. Reads never
 * write to the gateway: the main session is ensured (`sessions.patch`) only before a message
 * is sent to it, never on a GET (upstream patched it on every status and list call).
 */
@Injectable()
export class SessionsService {
  private readonly logger = new Logger('GatewaySessions');

  constructor(
    private readonly gateways: OpenClawGatewayService,
    private readonly membership: MembershipService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /** E1: never fails on a gateway error; answers `connected: false` with a short error. */
  async status(caller: SessionsCaller, query: GatewayStatusQuery): Promise<GatewaysStatusResponse> {
    const resolved = query.gateway_url
      ? this.fromUrl(query)
      : await this.fromBoard(caller, query.board_id, false);
    let listed: SessionsListResult;
    try {
      // A URL under test gets a one-off connection, closed after: never a pooled client.
      listed = query.gateway_url
        ? await this.gateways.probe(resolved.record, (methods) => methods.sessionsList())
        : await this.gateways.methods(resolved.record).sessionsList();
    } catch (error) {
      return {
        connected: false,
        gateway_url: resolved.displayUrl,
        sessions_count: null,
        sessions: null,
        main_session: null,
        main_session_error: null,
        error: this.shortError(error),
      };
    }
    const sessions = sessionItems(listed);
    let mainSession: GatewaySession | null = null;
    let mainSessionError: string | null = null;
    if (resolved.mainSessionKey) {
      try {
        mainSession = await this.findSession(resolved, resolved.mainSessionKey, listed);
        if (!mainSession) {
          mainSessionError =
            `main session ${resolved.mainSessionKey} is not on the gateway yet ` +
            "(it is created when the gateway's main agent is provisioned)";
        }
      } catch (error) {
        mainSessionError = this.shortError(error);
      }
    }
    return {
      connected: true,
      gateway_url: resolved.displayUrl,
      sessions_count: sessions.length,
      sessions,
      main_session: mainSession,
      main_session_error: mainSessionError,
      error: null,
    };
  }

  /** E2: gateway failures are 502 (the gateway client's text names the call). */
  async sessions(caller: SessionsCaller, boardId?: string): Promise<GatewaySessionsResponse> {
    const resolved = await this.fromBoard(caller, boardId, false);
    const listed = await gatewayCall('sessionsList', () =>
      this.gateways.methods(resolved.record).sessionsList(),
    );
    const mainSession = resolved.mainSessionKey
      ? await this.findSession(resolved, resolved.mainSessionKey, listed).catch((error) => {
          this.logger.debug(`main session lookup: ${(error as Error).message}`);
          return null;
        })
      : null;
    return { sessions: sessionItems(listed), main_session: mainSession };
  }

  /** E3: one session by key; 404 when the gateway does not list it. */
  async session(
    caller: SessionsCaller,
    sessionKey: string,
    boardId?: string,
  ): Promise<GatewaySessionResponse> {
    const resolved = await this.fromBoard(caller, boardId, false);
    const session = await gatewayCall('sessionsList', async () =>
      this.findSession(
        resolved,
        sessionKey,
        await this.gateways.methods(resolved.record).sessionsList(),
      ),
    );
    if (!session) throw new NotFoundError(SESSION_NOT_FOUND);
    return { session };
  }

  /** E4: the gateway's messages, unchanged (roles, content blocks, timestamps). */
  async history(
    caller: SessionsCaller,
    sessionKey: string,
    boardId?: string,
  ): Promise<GatewaySessionHistoryResponse> {
    const resolved = await this.fromBoard(caller, boardId, false);
    const result = await gatewayCall('sessionHistory', () =>
      this.gateways.methods(resolved.record).chatHistory({ sessionKey }),
    );
    return { history: Array.isArray(result.messages) ? result.messages : [] };
  }

  /**
   * E5 with upstream's later fix: org admin (route guard), the board in the active organization
   * and board write access. The main session is ensured first when it is the target.
   */
  async sendMessage(
    caller: SessionsCaller,
    sessionKey: string,
    content: string,
    boardId?: string,
  ): Promise<void> {
    const resolved = await this.fromBoard(caller, boardId, true);
    const mainAgent = resolved.mainAgent;
    await gatewayCall('sessionMessage', async () => {
      const methods = this.gateways.methods(resolved.record);
      if (mainAgent && sessionKey === resolved.mainSessionKey) {
        await methods.sessionsPatch({
          key: sessionKey,
          label: uniqueSessionLabel(mainAgent.name, sessionKey),
        });
      }
      await methods.chatSend({ sessionKey, message: content, deliver: false });
    });
  }

  /**
   * E6: with a board, the protocol and the methods/events its gateway advertised in hello-ok;
   * without one, what this client speaks and uses.
   */
  async commands(caller: SessionsCaller, boardId?: string): Promise<GatewayCommandsResponse> {
    if (!boardId) {
      return {
        protocol_version: MAX_PROTOCOL,
        methods: [...CLIENT_METHODS],
        events: [...CLIENT_EVENTS],
        source: 'client',
      };
    }
    const resolved = await this.fromBoard(caller, boardId, false);
    const server = await gatewayCall('commands', () =>
      this.gateways.client(resolved.record).connect(),
    );
    return {
      protocol_version: server.protocol,
      methods: [...server.methods],
      events: [...server.events],
      source: 'gateway',
    };
  }

  // ---- resolution (contract §1.1 resolve_gateway, pinned to the active organization) ---------

  /** The URL form: no board, no main session, nothing read from the database. */
  private fromUrl(query: GatewayStatusQuery): ResolvedGateway {
    const record: GatewayRecord = {
      url: query.gateway_url!.trim(),
      token: query.gateway_token?.trim() || null,
      tokenIsPlain: true,
      disableDevicePairing: query.gateway_disable_device_pairing === true,
      allowInsecureTls: query.gateway_allow_insecure_tls === true,
    };
    return {
      record,
      displayUrl: safeDisplayUrl(record),
      board: null,
      mainAgent: null,
      mainSessionKey: null,
    };
  }

  /**
   * The board form: the board must be in the caller's active organization (404 otherwise, so
   * other organizations' ids are not revealed) and grant read (or write) access; then its
   * gateway and main agent, keyed by the organization.
   */
  private async fromBoard(
    caller: SessionsCaller,
    boardId: string | undefined,
    write: boolean,
  ): Promise<ResolvedGateway> {
    if (!boardId) throw new InvalidRequestError(BOARD_OR_URL_REQUIRED);
    const organizationId = caller.member.organizationId;
    const manager = this.dataSource.manager;
    const board = await manager.findOne(Board, { where: { id: boardId, organizationId } });
    if (!board) throw new NotFoundError(BOARD_NOT_FOUND);
    await this.membership.requireBoardAccess(caller.user, board, write);
    if (!board.gatewayId) throw new InvalidRequestError(BOARD_GATEWAY_REQUIRED);
    const gateway = await manager.findOne(Gateway, {
      where: { id: board.gatewayId, organizationId },
    });
    if (!gateway) throw new InvalidRequestError(BOARD_GATEWAY_INVALID);
    if (!gateway.url.trim()) throw new InvalidRequestError(GATEWAY_URL_REQUIRED);
    const mainAgent = await findGatewayMainAgent(manager, gateway);
    return {
      record: gateway,
      displayUrl: safeDisplayUrl(gateway),
      board,
      mainAgent,
      mainSessionKey: mainAgent ? agentGatewayIdentity(mainAgent, gateway).sessionKey : null,
    };
  }

  /**
   * The listed session with this key. The gateway pages `sessions.list` (100 by default), so a
   * key not on the first page is looked up once more among its agent's sessions.
   */
  private async findSession(
    resolved: ResolvedGateway,
    sessionKey: string,
    listed: SessionsListResult,
  ): Promise<GatewaySession | null> {
    const found = sessionItems(listed).find((item) => item.key === sessionKey);
    if (found) return found;
    const agentId = gatewayAgentIdFromSessionKey(sessionKey);
    if (!listed.hasMore || !agentId) return null;
    const narrowed = await this.gateways.methods(resolved.record).sessionsList({ agentId });
    return sessionItems(narrowed).find((item) => item.key === sessionKey) ?? null;
  }

  private shortError(error: unknown): string {
    if (!(error instanceof GatewayError)) {
      this.logger.warn(`gateway status check failed: ${describe(error)}`);
    }
    const text = describe(error);
    return text.length > MAX_STATUS_ERROR_LENGTH
      ? `${text.slice(0, MAX_STATUS_ERROR_LENGTH - 1)}…`
      : text;
  }
}

/** Runs gateway calls; a gateway failure becomes a 502 naming the operation. */
async function gatewayCall<T>(operation: GatewayOperation, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof GatewayError) throw new GatewayOperationError(operation, error);
    throw error;
  }
}

/** The objects of a `sessions.list` answer, as the gateway sent them. */
function sessionItems(listed: SessionsListResult): GatewaySession[] {
  const items: unknown = listed.sessions;
  return Array.isArray(items) ? (items.filter(isRecord) as GatewaySession[]) : [];
}

function safeDisplayUrl(record: GatewayRecord): string {
  try {
    return displayUrl(gatewayTarget(record).url);
  } catch {
    return displayUrl(record.url);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
