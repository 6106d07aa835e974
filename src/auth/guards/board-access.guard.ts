import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import type { Board } from '../../boards/entities/board.entity';
import { UnauthorizedError } from '../../common/errors/app-error';
import { authContextOf, type RequestAuthContext } from '../auth-context';
import { MembershipService } from '../membership.service';
import { loadRouteBoard } from './board-loader';

export type BoardAccessLevel = 'read' | 'write';
export const BOARD_ACCESS_KEY = 'mc:board-access';
export const RequireBoardAccess = (level: BoardAccessLevel) => SetMetadata(BOARD_ACCESS_KEY, level);

/**
 * Runs after UserAuthGuard (so 401 comes first), then: the board (404), then the caller's
 * membership in the board's organization and its read/write grant (403, contract §3.5).
 * Subclasses change who may call ({@link requireCaller}) and what lets them at the board
 * ({@link authorize}); the order of the checks stays this one.
 */
@Injectable()
export class BoardAccessGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    protected readonly membership: MembershipService,
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
    this.requireCaller(auth);
    const board = await loadRouteBoard(req, this.dataSource.manager);
    await this.authorize(auth, board, level);
    auth.board = board;
    return true;
  }

  /** 401 unless a user authenticated. */
  protected requireCaller(auth: RequestAuthContext): void {
    if (!auth.user) throw new UnauthorizedError();
  }

  /** The user's membership in the board's organization and its grant (403 otherwise). */
  protected async authorize(
    auth: RequestAuthContext,
    board: Board,
    level: BoardAccessLevel,
  ): Promise<void> {
    if (!auth.user) throw new UnauthorizedError();
    auth.boardMember = await this.membership.requireBoardAccess(
      auth.user,
      board,
      level === 'write',
      auth.member,
    );
  }
}
