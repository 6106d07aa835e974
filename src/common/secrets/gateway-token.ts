/**
 * Gateway tokens at rest. The column holds `v1:…` ciphertext (see secret-box.ts); rows written
 * before encryption hold the plaintext, which is still accepted on read and sealed at the
 * gateway's next write (a migration cannot do it: it has no key). The key is process-wide
 * because `gatewayTarget()`, the one place a token is turned into a dial target, is a plain
 * function; the app installs it at start-up from the validated config (SECRETS_KEY).
 */
import { isSealed, SecretBox, SecretOpenError } from './secret-box';

let box: SecretBox | null = null;

/** Installs the key the app was configured with (config.module.ts, at start-up). */
export function installGatewayTokenKey(key: Buffer): void {
  box = new SecretBox(key);
}

/** The column value for a token (null stays null). */
export function sealGatewayToken(token: string | null): string | null {
  if (token === null) return null;
  if (!box) throw new Error('no SECRETS_KEY installed: the app config installs it at start-up');
  return box.seal(token);
}

export interface OpenedGatewayToken {
  /** The plaintext token, or null (none, or unreadable). */
  token: string | null;
  /** The column holds ciphertext that the configured key does not open (key changed). */
  unreadable: boolean;
  /** The column holds a plaintext token from before encryption (sealed at the next write). */
  legacyPlaintext: boolean;
}

/** The token a column value holds. Never throws: an unreadable value is flagged. */
export function openGatewayToken(stored: string | null): OpenedGatewayToken {
  if (stored === null) return { token: null, unreadable: false, legacyPlaintext: false };
  if (!isSealed(stored)) return { token: stored, unreadable: false, legacyPlaintext: true };
  if (!box) return { token: null, unreadable: true, legacyPlaintext: false };
  try {
    return { token: box.open(stored), unreadable: false, legacyPlaintext: false };
  } catch (error) {
    if (error instanceof SecretOpenError) {
      return { token: null, unreadable: true, legacyPlaintext: false };
    }
    throw error;
  }
}

/** What an admin reads and does about a token that no longer decrypts. */
export function unreadableTokenMessage(gateway: {
  id?: string;
  name?: string;
  url: string;
}): string {
  const named = gateway.name !== undefined ? `Gateway "${gateway.name}"` : 'The gateway';
  const id = gateway.id !== undefined ? ` (${gateway.id})` : ` at ${gateway.url}`;
  const fix =
    gateway.id !== undefined
      ? `PATCH /api/v1/gateways/${gateway.id} with its "token"`
      : 'update the gateway with its token';
  return (
    `${named}${id}: its stored token cannot be decrypted with the configured SECRETS_KEY ` +
    `(the key changed, or the value is damaged). Restore the SECRETS_KEY it was saved with, ` +
    `or set the gateway token again (${fix}).`
  );
}
