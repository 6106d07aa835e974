import { randomBytes } from 'node:crypto';
import { isSealed, parseSecretsKey, SecretBox, SecretOpenError } from './secret-box';

describe('SecretBox (gateway tokens at rest)', () => {
  const key = randomBytes(32);

  it('seals to a versioned AES-256-GCM value that opens only with the same key', () => {
    const box = new SecretBox(key);
    const sealed = box.seal('gateway-token');
    expect(sealed).toMatch(/^v1:[^:]+:[^:]+:[^:]+$/);
    expect(sealed).not.toContain('gateway-token');
    expect(isSealed(sealed)).toBe(true);
    expect(box.open(sealed)).toBe('gateway-token');
    // A fresh IV each time: equal tokens do not give equal column values.
    expect(box.seal('gateway-token')).not.toBe(sealed);
    expect(() => new SecretBox(randomBytes(32)).open(sealed)).toThrow(SecretOpenError);
  });

  it('refuses a tampered value', () => {
    const box = new SecretBox(key);
    const [version, iv, tag, ciphertext] = box.seal('gateway-token').split(':');
    const flipped = Buffer.from(ciphertext, 'base64');
    flipped[0] ^= 1;
    expect(() => box.open([version, iv, tag, flipped.toString('base64')].join(':'))).toThrow(
      SecretOpenError,
    );
    expect(() => box.open('v1:AAAA:AAAA:AAAA')).toThrow(SecretOpenError);
  });

  it('reads SECRETS_KEY as 64 hex characters or base64 of 32 bytes, nothing else', () => {
    expect(parseSecretsKey(key.toString('hex'))).toEqual(key);
    expect(parseSecretsKey(key.toString('base64'))).toEqual(key);
    expect(parseSecretsKey(key.toString('base64url'))).toEqual(key);
    for (const bad of [
      '',
      'short',
      key.toString('hex').slice(2),
      randomBytes(16).toString('base64'),
    ]) {
      expect(typeof parseSecretsKey(bad)).toBe('string');
    }
    expect(parseSecretsKey('zz')).not.toContain('zz');
  });

  it('treats anything not in the sealed format as legacy plaintext', () => {
    expect(isSealed('plain-token')).toBe(false);
    expect(isSealed('v1:only-two')).toBe(false);
  });

  it('does not mistake a plaintext token shaped like v1:a:b:c for ciphertext (IV and tag lengths)', () => {
    expect(isSealed('v1:abcd:efgh:ijkl')).toBe(false);
    expect(isSealed('v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAA:')).toBe(false);
    const sealed = new SecretBox(randomBytes(32)).seal('gateway-token');
    expect(isSealed(sealed)).toBe(true);
  });
});
