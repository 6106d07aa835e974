import { applyDecorators, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiNotFoundResponse,
  ApiSecurity,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { ActorGuard } from '../guards/actor.guard';
import {
  AgentAuthGuard,
  AgentBoardGuard,
  type AgentAuthOptions,
  AgentAuthOptionsMetadata,
} from '../guards/agent-auth.guard';
import { BoardActorGuard } from '../guards/board-actor.guard';
import {
  BoardAccessGuard,
  BoardAccessLevel,
  RequireBoardAccess,
} from '../guards/board-access.guard';
import { OrgAccessGuard, RequireOrgRole } from '../guards/org-access.guard';
import { UserAuthGuard } from '../guards/user-auth.guard';

/*
 * One composite decorator per access level, so no route can forget a guard. Guards run in the
 * order listed, which fixes the order of failures: 401 (who are you) before 404 (the board)
 * before 403 (your grant) before 422 (the body, validated by pipes after every guard).
 */

const USER_BEARER = 'user-bearer';
const AGENT_TOKEN = 'agent-token';
const AGENT_BEARER = 'agent-bearer';

const unauthorized = ApiUnauthorizedResponse({ description: 'Missing or invalid credentials' });
const forbidden = ApiForbiddenResponse({ description: 'Authenticated, but not allowed' });

/** Any authenticated user (local token or JWT). */
export const UserAuth = () =>
  applyDecorators(UseGuards(UserAuthGuard), ApiBearerAuth(USER_BEARER), unauthorized);

/** A member of the caller's active organization. */
export const OrgMember = () =>
  applyDecorators(
    RequireOrgRole('member'),
    UseGuards(UserAuthGuard, OrgAccessGuard),
    ApiBearerAuth(USER_BEARER),
    unauthorized,
    forbidden,
  );

/** An owner or admin of the caller's active organization. */
export const OrgAdmin = () =>
  applyDecorators(
    RequireOrgRole('admin'),
    UseGuards(UserAuthGuard, OrgAccessGuard),
    ApiBearerAuth(USER_BEARER),
    unauthorized,
    forbidden,
  );

/** A user with read or write access to the `:boardId` board (through the board's organization). */
export const BoardAccess = (level: BoardAccessLevel) =>
  applyDecorators(
    RequireBoardAccess(level),
    UseGuards(UserAuthGuard, BoardAccessGuard),
    ApiBearerAuth(USER_BEARER),
    unauthorized,
    ApiNotFoundResponse({ description: 'No such board' }),
    forbidden,
  );

/**
 * The `:boardId` board for a user (read or write access, as `@BoardAccess`) or an agent
 * (`X-Agent-Token`, the agent board guard): upstream's `get_board_for_actor_read|write`.
 */
export const BoardActorAccess = (level: BoardAccessLevel) =>
  applyDecorators(
    RequireBoardAccess(level),
    UseGuards(ActorGuard, BoardActorGuard),
    ApiBearerAuth(USER_BEARER),
    ApiSecurity(AGENT_TOKEN),
    unauthorized,
    ApiNotFoundResponse({ description: 'No such board' }),
    forbidden,
  );

/**
 * An agent, by `X-Agent-Token` or `Authorization: Bearer <agent token>`. `touchPresence: false`
 * for a route that records the agent's presence itself (the heartbeat).
 */
export const AgentAuth = (options: AgentAuthOptions = {}) =>
  applyDecorators(
    AgentAuthOptionsMetadata(options),
    UseGuards(AgentAuthGuard),
    ApiSecurity(AGENT_TOKEN),
    ApiBearerAuth(AGENT_BEARER),
    unauthorized,
  );

/** An agent acting on the `:boardId` board: its own board, or a board of its gateway (main agent). */
export const AgentBoardAccess = () =>
  applyDecorators(
    UseGuards(AgentBoardGuard),
    ApiSecurity(AGENT_TOKEN),
    ApiBearerAuth(AGENT_BEARER),
    ApiNotFoundResponse({ description: 'No such board' }),
    unauthorized,
    forbidden,
  );

/** Either a user (bearer token) or an agent (`X-Agent-Token`). */
export const UserOrAgent = () =>
  applyDecorators(
    UseGuards(ActorGuard),
    ApiBearerAuth(USER_BEARER),
    ApiSecurity(AGENT_TOKEN),
    unauthorized,
  );

export const SECURITY_SCHEMES = { USER_BEARER, AGENT_TOKEN, AGENT_BEARER } as const;
