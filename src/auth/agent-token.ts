import { createHash, randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';

/** 256 bits of randomness, URL-safe base64 without padding (43 characters). */
export function generateAgentToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The stored form of an agent token: `sha256:<hex>`.
 *
 * Upstream stored PBKDF2 hashes with random salts, so authenticating meant running 200k-iteration
 * PBKDF2 against every agent row (O(n) slow hashes per request). Slow, salted hashes exist to
 * protect low-entropy secrets such as passwords from offline guessing. An agent token is 256 random
 * bits: no dictionary applies and brute-forcing 2^256 preimages of SHA-256 is infeasible, so an
 * unsalted SHA-256 digest is as safe here and turns authentication into one unique-index lookup.
 */
export function agentTokenDigest(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/**
 * How many unconfirmed tokens an agent may have (a bound on the table). Each one needs a run
 * that reached its token-carrying write without seeing it confirmed; past this many the oldest
 * is dropped: a workspace holds one AGENTS.md, so the oldest is the least likely to be in it.
 */
export const MAX_PENDING_AGENT_TOKENS = 8;

/**
 * Records a token a run is about to write into the agent's workspace. Until the write is
 * confirmed (or the agent presents it), it authenticates alongside the token in force and any
 * other unconfirmed ones: any of them may be what the workspace holds. Idempotent; a token that
 * is already the agent's token in force is not recorded.
 */
export async function registerPendingAgentToken(
  manager: EntityManager,
  agent: { id: string; organizationId: string },
  digest: string,
): Promise<void> {
  await manager.query(
    `INSERT INTO agent_pending_tokens (organization_id, agent_id, token_hash)
     SELECT $1, a.id, $3::varchar FROM agents a
     WHERE a.id = $2 AND a.agent_token_hash IS DISTINCT FROM $3::varchar
     ON CONFLICT (token_hash) DO NOTHING`,
    [agent.organizationId, agent.id, digest],
  );
  await manager.query(
    `DELETE FROM agent_pending_tokens WHERE id IN (
       SELECT id FROM agent_pending_tokens WHERE agent_id = $1
       ORDER BY created_at DESC OFFSET $2)`,
    [agent.id, MAX_PENDING_AGENT_TOKENS],
  );
}

/**
 * Makes an unconfirmed token the agent's token in force, once it is known to be in the
 * workspace (its write was confirmed, or the agent presented it), and retires the previous token
 * and every unconfirmed token OLDER than it; newer unconfirmed tokens stay valid (a later run may
 * have written one). Returns whether this call promoted it: false when the token is no longer
 * pending (already promoted, or retired because a newer token was confirmed first).
 * Promotions of one agent are serialised on its row, so a concurrent promotion can never retire
 * the token another one just proved.
 */
export async function promotePendingAgentToken(
  manager: EntityManager,
  agentId: string,
  digest: string,
): Promise<boolean> {
  return manager.transaction(async (tx) => {
    await tx.query('SELECT 1 FROM agents WHERE id = $1 FOR UPDATE', [agentId]);
    // The proven token and every older unconfirmed one go, in one statement (timestamps stay in
    // the database: microseconds would not survive a round trip through a JS Date).
    const retired = await tx.query<{ token_hash: string }[]>(
      `WITH proven AS (
         SELECT created_at FROM agent_pending_tokens WHERE agent_id = $1 AND token_hash = $2
       ), retired AS (
         DELETE FROM agent_pending_tokens pending USING proven
         WHERE pending.agent_id = $1 AND pending.created_at <= proven.created_at
         RETURNING pending.token_hash
       )
       SELECT token_hash FROM retired`,
      [agentId, digest],
    );
    if (!retired.some((row) => row.token_hash === digest)) return false;
    await tx.query('UPDATE agents SET agent_token_hash = $2, updated_at = now() WHERE id = $1', [
      agentId,
      digest,
    ]);
    return true;
  });
}
