import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { Agent } from '../agents/entities/agent.entity';
import { agentTokenDigest, promotePendingAgentToken } from './agent-token';
import { AgentTokenLookup } from './agent-token-lookup';

/** An agent's presence is refreshed at most this often (contract §2.2). */
export const PRESENCE_TOUCH_INTERVAL_SECONDS = 30;

@Injectable()
export class AgentAuthService {
  private readonly tokens: AgentTokenLookup;

  constructor(@InjectRepository(Agent) private readonly agents: Repository<Agent>) {
    this.tokens = new AgentTokenLookup(agents.manager.dataSource);
  }

  /**
   * The agent holding this token: one query on the unique digest indexes (the token in force on
   * `agents`, unconfirmed ones in `agent_pending_tokens`), shared with the lookups of concurrent
   * requests (AgentTokenLookup). An unconfirmed token (a (re)provision
   * issued it but could not confirm the write) authenticates too: presenting it proves it reached
   * the workspace, so it is promoted to the agent's token, retiring only older ones. Then the
   * presence touch, unless the caller records presence itself (`touchPresence: false`).
   */
  async authenticate(
    token: string | null,
    { touchPresence = true }: { touchPresence?: boolean } = {},
  ): Promise<Agent | null> {
    if (!token) return null;
    const digest = agentTokenDigest(token);
    const agent = await this.tokens.find(digest);
    if (!agent) return null;
    if (agent.agentTokenHash !== digest) {
      // Not promoted: a concurrent request promoted it first (fine), or a newer token was
      // confirmed in the workspace meanwhile and retired this one (no longer valid).
      const promoted = await promotePendingAgentToken(this.agents.manager, agent.id, digest);
      if (!promoted) {
        const current = await this.agents.findOneBy({ id: agent.id, agentTokenHash: digest });
        if (!current) return null;
      }
      agent.agentTokenHash = digest;
    }
    if (touchPresence) await this.touchPresence(agent);
    return agent;
  }

  /**
   * Marks the agent seen (and online, unless it is being updated or deleted) when it was last
   * seen over 30 s ago. One conditional UPDATE, so concurrent requests cannot undo each other.
   */
  async touchPresence(agent: Agent): Promise<void> {
    // Most requests come well within the interval: skip the round trip the row already answers.
    const seenMsAgo = agent.lastSeenAt ? Date.now() - agent.lastSeenAt.getTime() : Infinity;
    if (seenMsAgo < PRESENCE_TOUCH_INTERVAL_SECONDS * 1000) return;
    const result = await this.agents
      .createQueryBuilder()
      .update(Agent)
      .set({
        lastSeenAt: () => 'now()',
        updatedAt: () => 'now()',
        status: () => "CASE WHEN status IN ('updating', 'deleting') THEN status ELSE 'online' END",
      })
      .where('id = :id', { id: agent.id })
      .andWhere(
        `(last_seen_at IS NULL OR last_seen_at < now() - make_interval(secs => :interval))`,
        { interval: PRESENCE_TOUCH_INTERVAL_SECONDS },
      )
      .returning(['last_seen_at', 'updated_at', 'status'])
      .execute();
    const row = (result.raw as { last_seen_at: Date; updated_at: Date; status: string }[])[0];
    if (row) {
      agent.lastSeenAt = row.last_seen_at;
      agent.updatedAt = row.updated_at;
      agent.status = row.status;
    }
  }
}
