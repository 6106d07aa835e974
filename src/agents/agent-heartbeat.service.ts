import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { InvalidRequestError } from '../common/errors/app-error';
import { AGENT_CLAIMABLE_STATUSES } from './dto/agent.dto';
import { Agent } from './entities/agent.entity';

/**
 * The claimed status, unless the engine holds the agent in `updating` or `deleting` (a run or a
 * deletion is under way): a heartbeat marks the agent seen but never ends those; the engine's
 * outcome does.
 */
const CLAIMED_STATUS_SQL =
  "CASE WHEN status IN ('updating', 'deleting') THEN status ELSE :status END";

@Injectable()
export class AgentHeartbeatService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Records a heartbeat (contract §7.3): the given status if non-blank, else `online` when the
   * agent was still `provisioning`; marks it seen. One UPDATE … RETURNING plus the activity row,
   * in one transaction. Only the statuses an agent may claim are stored (the engine owns the
   * others); the request DTO already refuses the rest with a 422 list.
   */
  async commitHeartbeat(agent: Agent, status?: string | null): Promise<Agent> {
    const wanted = status?.trim().toLowerCase() || null;
    if (wanted !== null && !(AGENT_CLAIMABLE_STATUSES as readonly string[]).includes(wanted)) {
      throw new InvalidRequestError(`An agent cannot claim the status ${JSON.stringify(wanted)}`);
    }
    return this.dataSource.transaction(async (manager) => {
      const result = await manager
        .createQueryBuilder()
        .update(Agent)
        .set({
          status: () =>
            wanted === null
              ? "CASE WHEN status = 'provisioning' THEN 'online' ELSE status END"
              : CLAIMED_STATUS_SQL,
          lastSeenAt: () => 'now()',
          updatedAt: () => 'now()',
        })
        .setParameters(wanted === null ? {} : { status: wanted })
        .where('id = :id', { id: agent.id })
        .execute();
      const row = await manager.getRepository(Agent).findOneByOrFail({ id: agent.id });
      if ((result.affected ?? 0) === 0) return row;
      await manager.getRepository(ActivityEvent).insert({
        organizationId: row.organizationId,
        eventType: 'agent.heartbeat',
        message: `Heartbeat received from ${row.name}.`,
        agentId: row.id,
        boardId: row.boardId,
      });
      return row;
    });
  }
}
