import type { DataSource, EntityManager } from 'typeorm';
import { InvalidRequestError } from '../common/errors/app-error';
import { Gateway } from '../gateways/entities/gateway.entity';
import type { Board } from './entities/board.entity';

type BoardGatewayRef = Pick<Board, 'gatewayId' | 'organizationId'>;

/**
 * The board's gateway when a gateway operation can use it (contract §5.2
 * `optional_gateway_config_for_board`): attached, its row in the board's organization, with a
 * URL. Null otherwise (best-effort senders such as the board chat notifier skip the board).
 */
export async function findBoardGateway(
  db: DataSource | EntityManager,
  board: BoardGatewayRef,
): Promise<Gateway | null> {
  if (!board.gatewayId) return null;
  const gateway = await db
    .getRepository(Gateway)
    .findOneBy({ id: board.gatewayId, organizationId: board.organizationId });
  return gateway && gateway.url.trim() ? gateway : null;
}

/**
 * The gateway a board-scoped gateway operation (coordination, a board's lead, onboarding) talks
 * to, or 422 with the contract's texts (§5.2 `require_gateway_config_for_board`): the board has
 * no gateway; its gateway row (in the board's organization) is missing or has no URL.
 */
export async function requireBoardGateway(
  db: DataSource | EntityManager,
  board: BoardGatewayRef,
): Promise<Gateway> {
  if (!board.gatewayId) throw new InvalidRequestError('Board is not attached to a gateway');
  const gateway = await findBoardGateway(db, board);
  if (!gateway) throw new InvalidRequestError('Gateway is not configured for this board');
  return gateway;
}
