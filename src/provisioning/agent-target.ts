import type { EntityManager, QueryDeepPartialEntity } from 'typeorm';
import { Agent } from '../agents/entities/agent.entity';
import type { Board } from '../boards/entities/board.entity';
import { NotFoundError } from '../common/errors/app-error';
import type { Gateway } from '../gateways/entities/gateway.entity';
import type { TenantAgentRef } from './provisioning.types';

export interface AgentTarget {
  agent: Agent;
  gateway: Gateway;
  board: Board | null;
}

/** The agent with its gateway and board, in one query scoped to the organization. */
export async function loadAgentTarget(
  manager: EntityManager,
  ref: TenantAgentRef,
): Promise<AgentTarget> {
  const agent = await manager
    .getRepository(Agent)
    .createQueryBuilder('agent')
    .innerJoinAndSelect('agent.gateway', 'gateway')
    .leftJoinAndSelect('agent.board', 'board', 'board.organization_id = gateway.organization_id')
    .where('agent.id = :agentId', { agentId: ref.agentId })
    .andWhere('gateway.organization_id = :organizationId', { organizationId: ref.organizationId })
    .getOne();
  // A board agent whose board is not in the gateway's organization is not found either.
  if (!agent?.gateway || (agent.boardId !== null && !agent.board)) throw new NotFoundError();
  return { agent, gateway: agent.gateway, board: agent.board ?? null };
}

/** TypeORM's update typing cannot express jsonb columns typed as plain records. */
export function agentPatch(fields: Partial<Agent>): QueryDeepPartialEntity<Agent> {
  return fields as QueryDeepPartialEntity<Agent>;
}
