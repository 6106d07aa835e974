import { createHash, randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { Agent } from '../agents/entities/agent.entity';

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
 * Makes a pending token (issued by a (re)provision, see Agent.pendingAgentTokenHash) the
 * agent's token, if it is still the pending one. Conditional, so a newer provision's pending
 * token is never replaced by an older one.
 */
export async function promotePendingAgentToken(
  manager: EntityManager,
  agentId: string,
  digest: string,
): Promise<void> {
  await manager
    .createQueryBuilder()
    .update(Agent)
    .set({ agentTokenHash: () => 'pending_agent_token_hash', pendingAgentTokenHash: null })
    .where('id = :agentId AND pending_agent_token_hash = :digest', { agentId, digest })
    .execute();
}
