import { IsNull, type EntityManager } from 'typeorm';
import type { Gateway } from '../gateways/entities/gateway.entity';
import { Agent } from './entities/agent.entity';

/**
 * The gateway's main agent row (no board), if any: the one lookup every caller uses (sessions,
 * coordination, onboarding, the provisioning engine), scoped by the gateway's organization.
 * Oldest first, should an older installation hold more than one.
 */
export function findGatewayMainAgent(
  manager: EntityManager,
  gateway: Pick<Gateway, 'id' | 'organizationId'>,
): Promise<Agent | null> {
  return manager.getRepository(Agent).findOne({
    where: { gatewayId: gateway.id, organizationId: gateway.organizationId, boardId: IsNull() },
    order: { createdAt: 'ASC' },
  });
}
