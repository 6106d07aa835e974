import { EntityManager, In } from 'typeorm';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { Approval } from '../approvals/entities/approval.entity';
import { Task } from '../tasks/entities/task.entity';
import { Agent } from './entities/agent.entity';

/**
 * Deletes agent rows of one organization and un-links everything that pointed at them (contract
 * §1.2 G6 and §7.8, with approvals un-linked as upstream later fixed): the agents' in-progress
 * tasks go back to the inbox, other tasks they held are unassigned, and activity events and
 * approvals keep their history without the agent. Their tokens (in force and pending) die with
 * the rows. Runs in the caller's transaction; removing the agents from the gateway is the
 * caller's job, before this.
 *
 * Returns the ids actually deleted (rows of another organization are never touched).
 */
export async function deleteAgentRows(
  manager: EntityManager,
  organizationId: string,
  agentIds: readonly string[],
): Promise<string[]> {
  if (agentIds.length === 0) return [];
  const owned = await manager.getRepository(Agent).find({
    select: { id: true },
    where: { organizationId, id: In([...agentIds]) },
    lock: { mode: 'pessimistic_write' },
  });
  const ids = owned.map((agent) => agent.id);
  if (ids.length === 0) return [];
  await manager
    .createQueryBuilder()
    .update(Task)
    .set({
      assignedAgentId: null,
      status: () => "CASE WHEN status = 'in_progress' THEN 'inbox' ELSE status END",
      inProgressAt: () => "CASE WHEN status = 'in_progress' THEN NULL ELSE in_progress_at END",
      updatedAt: () => 'now()',
    })
    .where('assigned_agent_id IN (:...ids)', { ids })
    .execute();
  await manager
    .createQueryBuilder()
    .update(ActivityEvent)
    .set({ agentId: null })
    .where('agent_id IN (:...ids)', { ids })
    .execute();
  await manager
    .createQueryBuilder()
    .update(Approval)
    .set({ agentId: null })
    .where('agent_id IN (:...ids)', { ids })
    .execute();
  await manager
    .createQueryBuilder()
    .delete()
    .from(Agent)
    .where('organization_id = :organizationId AND id IN (:...ids)', { organizationId, ids })
    .execute();
  return ids;
}
