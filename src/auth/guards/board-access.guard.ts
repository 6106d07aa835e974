import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { UnauthorizedError } from '../../common/errors/app-error';
import { authContextOf } from '../auth-context';
import { MembershipService } from '../membership.service';
import { loadRouteBoard } from './board-loader';

export type BoardAccessLevel = 'read' | 'write';
export const BOARD_ACCESS_KEY = 'mc:board-access';
export const RequireBoardAccess = (level: BoardAccessLevel) => SetMetadata(BOARD_ACCESS_KEY, level);

/**
 * Runs after UserAuthGuard (so 401 comes first), then: the board (404), then the caller's
 * membership in the board's organization and its read/write grant (403, contract §3.5).
 */
@Injectable()
export class BoardAccessGuard implements CanActivate {
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
    if (!auth.user) throw new UnauthorizedError();
    const board = await loadRouteBoard(req, this.dataSource.manager);
    auth.boardMember = await this.membership.requireBoardAccess(
      auth.user,
      board,
      level === 'write',
    );
    auth.board = board;
    return true;
  }
}
