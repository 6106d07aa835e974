/**
 * Secrets at rest (gateway tokens): AES-256-GCM with a 32-byte key from SECRETS_KEY. The stored
 * form is versioned, `v1:<iv>:<tag>:<ciphertext>` (base64 each, 12-byte IV, 16-byte tag), so a
 * later scheme or key rotation can tell the formats apart.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Binds the ciphertext to its use: a value sealed for something else does not open here. */
const ASSOCIATED_DATA = Buffer.from('mission-control/gateway-token/v1');
/**
 * Exactly what {@link SecretBox.seal} writes: a 12-byte IV (16 base64 characters), a 16-byte tag
 * (22 characters and `==`), canonical base64 ciphertext. Strict, so that a plaintext token from
 * before encryption that merely looks like `v1:a:b:c` is still read as plaintext.
 */
const SEALED =
  /^v1:([A-Za-z0-9+/]{16}):([A-Za-z0-9+/]{22}==):((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$/;

/**
 * The key from its SECRETS_KEY text: 64 hex characters, or base64 (standard or url-safe) of
 * exactly 32 bytes. A string naming the problem (never the value) when it is neither.
 */
export function parseSecretsKey(text: string): Buffer | string {
  const value = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) {
    const bytes = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === 32) return bytes;
  }
  return 'SECRETS_KEY must be 32 bytes, given as 64 hex characters or as base64';
}

/** Whether a stored value is in the sealed format (anything else is legacy plaintext). */
export function isSealed(stored: string): boolean {
  return SEALED.test(stored);
}

export class SecretOpenError extends Error {
  constructor() {
    super('the value does not decrypt with the configured SECRETS_KEY');
    this.name = 'SecretOpenError';
  }
}

export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('SecretBox needs a 32-byte key');
  }

  seal(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(ASSOCIATED_DATA);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [VERSION, iv, tag, ciphertext]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64')))
      .join(':');
  }

  /** The plaintext of a sealed value; throws {@link SecretOpenError} when it does not open. */
  open(sealed: string): string {
    const match = SEALED.exec(sealed);
    if (!match) throw new SecretOpenError();
    const [iv, tag, ciphertext] = match.slice(1).map((part) => Buffer.from(part, 'base64'));
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretOpenError();
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(ASSOCIATED_DATA);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretOpenError();
    }
  }
}
