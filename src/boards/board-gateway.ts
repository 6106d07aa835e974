import type { DataSource, EntityManager } from 'typeorm';
import { InvalidRequestError } from '../common/errors/app-error';
import { Gateway } from '../gateways/entities/gateway.entity';
import type { Board } from './entities/board.entity';

/**
 * The gateway a board-scoped gateway operation (coordination, a board's lead, onboarding) talks
 * to, or 422 with the contract's texts (§5.2 `require_gateway_config_for_board`): the board has
 * no gateway; its gateway row (in the board's organization) is missing or has no URL.
 */
export async function requireBoardGateway(
  db: DataSource | EntityManager,
  board: Pick<Board, 'gatewayId' | 'organizationId'>,
): Promise<Gateway> {
  if (!board.gatewayId) throw new InvalidRequestError('Board is not attached to a gateway');
  const gateway = await db
    .getRepository(Gateway)
    .findOneBy({ id: board.gatewayId, organizationId: board.organizationId });
  if (!gateway || !gateway.url.trim()) {
    throw new InvalidRequestError('Gateway is not configured for this board');
  }
  return gateway;
}
