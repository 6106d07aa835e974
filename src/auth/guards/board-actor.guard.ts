import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { ForbiddenError, UnauthorizedError } from '../../common/errors/app-error';
import { authContextOf } from '../auth-context';
import { MembershipService } from '../membership.service';
import { agentMayActOnBoard } from './agent-auth.guard';
import { BOARD_ACCESS_KEY, BoardAccessLevel } from './board-access.guard';
import { loadRouteBoard } from './board-loader';

/**
 * Upstream's `get_board_for_actor_read|write` (contract §2.3), after ActorGuard (so 401 comes
 * first): the `:boardId` board (404), then for an agent the agent board guard (403), for a user
 * the membership in the board's organization and its read/write grant (403, §3.5).
 */
@Injectable()
export class BoardActorGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly membership: MembershipService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const level =
      this.reflector.getAllAndOverride<BoardAccessLevel | undefined>(BOARD_ACCESS_KEY, [
        context.getHandler(),
        context.getClass(),
      ]) ?? 'read';
    const req = context.switchToHttp().getRequest<Request>();
    const auth = authContextOf(req);
    const { user, agent } = auth;
    if (!user && !agent) throw new UnauthorizedError();
    const board = await loadRouteBoard(req, this.dataSource.manager);
    if (agent) {
      if (!agentMayActOnBoard(agent, board)) throw new ForbiddenError();
    } else if (user) {
      auth.boardMember = await this.membership.requireBoardAccess(user, board, level === 'write');
    }
    auth.board = board;
    return true;
  }
}
