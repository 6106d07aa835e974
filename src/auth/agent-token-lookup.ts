import type { DataSource } from 'typeorm';
import { agentFromRow } from '../agents/agent-row';
import type { Agent } from '../agents/entities/agent.entity';
import { CoalescedFlush } from '../common/async/coalesced-flush';

/** Most digests one lookup statement resolves. */
const MAX_LOOKUP_BATCH = 256;
/** Lookup statements in flight at once; later lookups join the next statement. */
const MAX_LOOKUPS_IN_FLIGHT = 2;
/** Beyond this many digests waiting, a lookup runs on its own instead of queueing. */
const MAX_WAITING_DIGESTS = 4096;

/*
 * The agent holding each digest: the token in force on `agents`, or an unconfirmed one in
 * `agent_pending_tokens` (both unique indexes). Two index joins, not one OR, so each side keeps
 * its index.
 */
const LOOKUP_SQL = `
SELECT lookup.digest AS mc_lookup_digest, agent.*
  FROM unnest($1::text[]) AS lookup(digest)
  JOIN agents agent ON agent.agent_token_hash = lookup.digest
UNION ALL
SELECT lookup.digest, agent.*
  FROM unnest($1::text[]) AS lookup(digest)
  JOIN agent_pending_tokens pending ON pending.token_hash = lookup.digest
  JOIN agents agent ON agent.id = pending.agent_id`;

interface LookupWaiter {
  resolve(agent: Agent | null): void;
  reject(error: unknown): void;
}

/**
 * Token digests → agents, coalesced: the lookups of requests arriving while earlier lookups are
 * in flight are answered by one statement (every agent request authenticates, so this is a
 * statement and a round trip saved per request under load). Holds nothing beyond the lookups
 * waiting or in flight.
 */
export class AgentTokenLookup {
  private waiting = new Map<string, LookupWaiter[]>();
  private inFlight = 0;
  private readonly flushSoon = new CoalescedFlush(() => this.flush());

  constructor(private readonly dataSource: DataSource) {}

  /** The agent whose current or pending token has this digest (each caller its own copy). */
  find(digest: string): Promise<Agent | null> {
    if (this.waiting.size >= MAX_WAITING_DIGESTS && !this.waiting.has(digest)) {
      return this.run([digest]).then((found) => found.get(digest) ?? null);
    }
    return new Promise<Agent | null>((resolve, reject) => {
      const waiters = this.waiting.get(digest);
      if (waiters) waiters.push({ resolve, reject });
      else this.waiting.set(digest, [{ resolve, reject }]);
      this.flushSoon.request();
    });
  }

  private flush(): void {
    while (this.inFlight < MAX_LOOKUPS_IN_FLIGHT && this.waiting.size > 0) {
      const batch = new Map<string, LookupWaiter[]>();
      for (const [digest, waiters] of this.waiting) {
        if (batch.size >= MAX_LOOKUP_BATCH) break;
        batch.set(digest, waiters);
      }
      for (const digest of batch.keys()) this.waiting.delete(digest);
      this.inFlight += 1;
      void this.answer(batch).finally(() => {
        this.inFlight -= 1;
        if (this.waiting.size > 0) this.flushSoon.request();
      });
    }
  }

  /** Never rejects: every outcome goes to the waiters. */
  private async answer(batch: Map<string, LookupWaiter[]>): Promise<void> {
    let found: Map<string, Record<string, unknown>>;
    try {
      found = await this.rows([...batch.keys()]);
    } catch (error) {
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
      return;
    }
    for (const [digest, waiters] of batch) {
      const row = found.get(digest);
      for (const waiter of waiters) {
        waiter.resolve(row ? agentFromRow(this.dataSource, row) : null);
      }
    }
  }

  private async run(digests: string[]): Promise<Map<string, Agent>> {
    const rows = await this.rows(digests);
    return new Map([...rows].map(([digest, row]) => [digest, agentFromRow(this.dataSource, row)]));
  }

  /** Per digest its row; the agent whose token in force it is wins over a pending match. */
  private async rows(digests: string[]): Promise<Map<string, Record<string, unknown>>> {
    const rows = await this.dataSource.query<Record<string, unknown>[]>(LOOKUP_SQL, [digests]);
    const byDigest = new Map<string, Record<string, unknown>>();
    for (const row of rows) {
      const digest = row.mc_lookup_digest as string;
      if (!byDigest.has(digest) || row.agent_token_hash === digest) byDigest.set(digest, row);
    }
    return byDigest;
  }
}
