import { createHash, randomBytes } from 'node:crypto';

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
