import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { InvalidRequestError } from '../common/errors/app-error';
import { AGENT_CLAIMABLE_STATUSES } from './dto/agent.dto';
import { Agent } from './entities/agent.entity';
import { HeartbeatBatcher } from './heartbeat-batcher';

/**
 * The claimed status, unless the engine holds the agent in `updating` or `deleting` (a run or a
 * deletion is under way): a heartbeat marks the agent seen but never ends those; the engine's
 * outcome does.
 */
const CLAIMED_STATUS_SQL =
  "CASE WHEN status IN ('updating', 'deleting') THEN status ELSE :status END";

/** The status a heartbeat claims (null: none), or 422 for one an agent may not claim. */
function claimedStatus(status?: string | null): string | null {
  const wanted = status?.trim().toLowerCase() || null;
  if (wanted !== null && !(AGENT_CLAIMABLE_STATUSES as readonly string[]).includes(wanted)) {
    throw new InvalidRequestError(`An agent cannot claim the status ${JSON.stringify(wanted)}`);
  }
  return wanted;
}

@Injectable()
export class AgentHeartbeatService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly batcher: HeartbeatBatcher,
  ) {}

  /**
   * The agent's own heartbeat (`POST /agent/heartbeat`): the rules of {@link commitHeartbeat},
   * written by group commit with the heartbeats of other agents arriving at the same time
   * (HeartbeatBatcher); answered once that batch is committed.
   */
  async recordHeartbeat(agent: Agent, status?: string | null): Promise<Agent> {
    return this.batcher.record(agent.id, claimedStatus(status));
  }

  /**
   * Records a heartbeat (contract §7.3): the given status if non-blank, else `online` when the
   * agent was still `provisioning`; marks it seen. One UPDATE … RETURNING plus the activity row,
   * in one transaction. Only the statuses an agent may claim are stored (the engine owns the
   * others); the request DTO already refuses the rest with a 422 list.
   */
  async commitHeartbeat(agent: Agent, status?: string | null): Promise<Agent> {
    const wanted = claimedStatus(status);
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
