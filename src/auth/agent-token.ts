import { createHash, randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { ConflictError, InvalidRequestError } from '../common/errors/app-error';

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

/** What token statements need: an EntityManager, a transaction's manager or a lock session. */
export interface SqlSession {
  query<T = unknown>(sql: string, params?: unknown[]): Promise<T>;
}

/**
 * How many unconfirmed tokens an agent may have (a bound on the table). Each one needs a run
 * that sent its token-carrying write without seeing it confirmed (a write the gateway refused,
 * or one never sent, withdraws its token). None is dropped blindly to make room (any of them may
 * be what the workspace holds): at the cap a run reads the workspace back (agent-tokens.ts
 * makeRoom) and confirms the token it holds, or, when it holds none of them, retires them all.
 */
export const MAX_PENDING_AGENT_TOKENS = 8;

/**
 * Records a token a run is about to write into the agent's workspace. Until the write is
 * confirmed (or the agent presents it), it authenticates alongside the token in force and any
 * other unconfirmed ones: any of them may be what the workspace holds. Registering a token
 * again makes it the newest (a run is writing it now). A token that is already the agent's
 * token in force is not recorded. Throws, recording nothing, when the agent already has
 * MAX_PENDING_AGENT_TOKENS unconfirmed tokens (ConflictError) or the token is another agent's
 * (InvalidRequestError).
 */
export async function registerPendingAgentToken(
  db: SqlSession,
  agent: { id: string; organizationId: string },
  digest: string,
): Promise<void> {
  const registered = await db.query<unknown[]>(
    `INSERT INTO agent_pending_tokens (organization_id, agent_id, token_hash)
     SELECT $1, a.id, $3::varchar FROM agents a
     WHERE a.id = $2 AND a.agent_token_hash IS DISTINCT FROM $3::varchar
       AND NOT EXISTS (SELECT 1 FROM agents other
                       WHERE other.agent_token_hash = $3::varchar AND other.id <> a.id)
       AND (SELECT count(*) FROM agent_pending_tokens pending
            WHERE pending.agent_id = a.id AND pending.token_hash <> $3::varchar) < $4
     ON CONFLICT (token_hash) DO UPDATE SET created_at = clock_timestamp()
       WHERE agent_pending_tokens.agent_id = EXCLUDED.agent_id
     RETURNING token_hash`,
    [agent.organizationId, agent.id, digest, MAX_PENDING_AGENT_TOKENS],
  );
  if (registered.length > 0) return;
  // Not recorded: already the token in force (nothing to do), another agent's, or at the cap.
  const [found] = await db.query<{ current: boolean; foreign: boolean }[]>(
    `SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 AND agent_token_hash = $2) AS current,
            EXISTS (SELECT 1 FROM agents WHERE agent_token_hash = $2 AND id <> $1)
              OR EXISTS (SELECT 1 FROM agent_pending_tokens
                         WHERE token_hash = $2 AND agent_id <> $1) AS foreign`,
    [agent.id, digest],
  );
  if (found?.current) return;
  if (found?.foreign) throw new InvalidRequestError('This token belongs to another agent');
  throw new ConflictError(
    `Agent ${agent.id} already has ${MAX_PENDING_AGENT_TOKENS} unconfirmed tokens; ` +
      'it must present one (or a run must confirm one) before another is issued',
  );
}

/**
 * Drops one unconfirmed token that is known NOT to be in the workspace (its run stopped before
 * sending the write, or the gateway refused the write outright). Returns whether one was dropped.
 */
export async function withdrawPendingAgentToken(
  db: SqlSession,
  agentId: string,
  digest: string,
): Promise<boolean> {
  const dropped = await db.query<unknown[]>(
    'DELETE FROM agent_pending_tokens WHERE agent_id = $1 AND token_hash = $2 RETURNING 1',
    [agentId, digest],
  );
  return dropped.length > 0;
}

/**
 * Drops every unconfirmed token of the agent: only when the workspace was read back and holds
 * none of them (it holds the token in force, or no token the agent has).
 */
export async function retirePendingAgentTokens(
  db: SqlSession,
  agentId: string,
  except: string | null = null,
): Promise<void> {
  await db.query(
    'DELETE FROM agent_pending_tokens WHERE agent_id = $1 AND token_hash IS DISTINCT FROM $2::varchar',
    [agentId, except],
  );
}

/** How many unconfirmed tokens the agent has (besides `except`, a run's own token). */
export async function pendingAgentTokenCount(
  db: SqlSession,
  agentId: string,
  except: string | null = null,
): Promise<number> {
  const [row] = await db.query<{ count: number }[]>(
    `SELECT count(*)::int AS count FROM agent_pending_tokens
     WHERE agent_id = $1 AND token_hash IS DISTINCT FROM $2::varchar`,
    [agentId, except],
  );
  return row?.count ?? 0;
}

/** Whether the digest is the agent's token in force or one of its unconfirmed tokens. */
export async function isAgentsToken(
  db: SqlSession,
  agentId: string,
  digest: string,
): Promise<'current' | 'pending' | 'none'> {
  const [row] = await db.query<{ current: boolean; pending: boolean }[]>(
    `SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 AND agent_token_hash = $2) AS current,
            EXISTS (SELECT 1 FROM agent_pending_tokens
                    WHERE agent_id = $1 AND token_hash = $2) AS pending`,
    [agentId, digest],
  );
  if (row?.current) return 'current';
  return row?.pending ? 'pending' : 'none';
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
  return manager.transaction((tx) => promotePendingAgentTokenIn(tx, agentId, digest));
}

/** {@link promotePendingAgentToken} inside a transaction the caller holds open on `tx`. */
export async function promotePendingAgentTokenIn(
  tx: SqlSession,
  agentId: string,
  digest: string,
): Promise<boolean> {
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
}
