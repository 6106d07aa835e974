import type { Request } from 'express';
import type { EntityManager } from 'typeorm';
import { Board } from '../../boards/entities/board.entity';
import { NotFoundError } from '../../common/errors/app-error';
import { normalizeUuid, uuidIssue } from '../../common/validation/parse-uuid.pipe';

export const BOARD_ID_PARAM = 'boardId';

/** The board named by the `:boardId` route parameter: 422 for a non-UUID, 404 when missing. */
export async function loadRouteBoard(req: Request, manager: EntityManager): Promise<Board> {
  const raw = req.params[BOARD_ID_PARAM];
  const boardId = normalizeUuid(raw);
  if (!boardId) throw uuidIssue('path', 'board_id', raw);
  const board = await manager.findOne(Board, { where: { id: boardId } });
  if (!board) throw new NotFoundError();
  return board;
}
