import { Injectable } from '@nestjs/common';
import type { Board } from '../../boards/entities/board.entity';
import { ForbiddenError, UnauthorizedError } from '../../common/errors/app-error';
import type { RequestAuthContext } from '../auth-context';
import { agentMayActOnBoard } from './agent-auth.guard';
import { BoardAccessGuard, type BoardAccessLevel } from './board-access.guard';

/**
 * Upstream's `get_board_for_actor_read|write` (contract §2.3), after ActorGuard (so 401 comes
 * first): the `:boardId` board (404), then for an agent the agent board guard (403), for a user
 * the membership in the board's organization and its read/write grant (403, §3.5).
 */
@Injectable()
export class BoardActorGuard extends BoardAccessGuard {
  protected override requireCaller(auth: RequestAuthContext): void {
    if (!auth.user && !auth.agent) throw new UnauthorizedError();
  }

  protected override async authorize(
    auth: RequestAuthContext,
    board: Board,
    level: BoardAccessLevel,
  ): Promise<void> {
    if (auth.agent) {
      if (!agentMayActOnBoard(auth.agent, board)) throw new ForbiddenError();
      return;
    }
    await super.authorize(auth, board, level);
  }
}
