import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import type { Agent } from '../../agents/entities/agent.entity';
import type { Board } from '../../boards/entities/board.entity';
import { ForbiddenError, UnauthorizedError } from '../../common/errors/app-error';
import { AgentAuthService } from '../agent-auth.service';
import { authContextOf } from '../auth-context';
import { agentTokenHeaderOf, bearerTokenOf } from '../credentials';
import { loadRouteBoard } from './board-loader';

/**
 * Resolves the agent behind `token` onto the request, or throws 401. Agent routes take
 * `X-Agent-Token`, or `Authorization: Bearer` (contract §2.2), the default here.
 */
export async function authenticateAgent(
  req: Request,
  agentAuth: AgentAuthService,
  token: string | null = agentTokenHeaderOf(req) ?? bearerTokenOf(req),
  options: AgentAuthOptions = {},
): Promise<Agent> {
  const auth = authContextOf(req);
  if (auth.agent) return auth.agent;
  const agent = await agentAuth.authenticate(token, options);
  if (!agent) throw new UnauthorizedError();
  auth.agent = agent;
  return agent;
}

/**
 * The board guard for agents: a board agent may act only on its own board. A gateway's main agent
 * (no board) may act on the boards attached to its gateway. Upstream let it pass for every board
 * of every tenant; scoping it to its gateway is a deliberate tenancy fix.
 */
export function agentMayActOnBoard(agent: Agent, board: Board): boolean {
  if (agent.boardId) return agent.boardId === board.id;
  return board.gatewayId === agent.gatewayId;
}

export interface AgentAuthOptions {
  /** Refresh the agent's presence (default true); false where the route records it itself. */
  touchPresence?: boolean;
}
export const AGENT_AUTH_OPTIONS_KEY = 'mc:agent-auth-options';
export const AgentAuthOptionsMetadata = (options: AgentAuthOptions) =>
  SetMetadata(AGENT_AUTH_OPTIONS_KEY, options);

@Injectable()
export class AgentAuthGuard implements CanActivate {
  constructor(
    private readonly agentAuth: AgentAuthService,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const options = this.reflector.get<AgentAuthOptions | undefined>(
      AGENT_AUTH_OPTIONS_KEY,
      context.getHandler(),
    );
    const req = context.switchToHttp().getRequest<Request>();
    await authenticateAgent(req, this.agentAuth, undefined, options);
    return true;
  }
}

/**
 * `/agent/boards/:boardId/...`: the board is looked up first (404 before 401, as upstream), then the
 * agent token (401), then the board guard (403).
 */
@Injectable()
export class AgentBoardGuard implements CanActivate {
  constructor(
    private readonly agentAuth: AgentAuthService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    const board = await loadRouteBoard(req, this.dataSource.manager);
    const agent = await authenticateAgent(req, this.agentAuth);
    if (!agentMayActOnBoard(agent, board)) throw new ForbiddenError();
    authContextOf(req).board = board;
    return true;
  }
}
