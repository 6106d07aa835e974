/**
 * The ed25519 device identity this installation presents to gateways. Remote gateways only
 * grant operator scopes to a signed, paired device; pairing is approved once per device, so
 * every app instance must present the same key (it lives in the database, not on a disk).
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import type { DeviceBlock } from './protocol';

export interface DeviceSignatureInput {
  clientId: string;
  clientMode: string;
  role: string;
  scopes: readonly string[];
  /** The shared gateway token, or null when none is configured. */
  token: string | null;
  nonce: string;
  /** Milliseconds; the challenge's `ts` so that our clock's skew does not matter. */
  signedAt: number;
}

export class DeviceIdentity {
  private constructor(
    /** sha256 hex of the raw public key: how the gateway names this device. */
    readonly deviceId: string,
    /** The raw 32-byte public key, base64url. */
    readonly publicKey: string,
    private readonly privateKey: KeyObject,
  ) {}

  static generate(): { identity: DeviceIdentity; privateKeyPem: string } {
    const { privateKey } = generateKeyPairSync('ed25519');
    const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    return { identity: DeviceIdentity.fromPrivateKeyPem(privateKeyPem), privateKeyPem };
  }

  static fromPrivateKeyPem(privateKeyPem: string): DeviceIdentity {
    const privateKey = createPrivateKey(privateKeyPem);
    if (privateKey.asymmetricKeyType !== 'ed25519') {
      throw new Error(`device key must be ed25519, found ${privateKey.asymmetricKeyType}`);
    }
    const jwk = privateKey.export({ format: 'jwk' });
    if (typeof jwk.x !== 'string') throw new Error('device key has no public part');
    const rawPublicKey = Buffer.from(jwk.x, 'base64url');
    const deviceId = createHash('sha256').update(rawPublicKey).digest('hex');
    return new DeviceIdentity(deviceId, rawPublicKey.toString('base64url'), privateKey);
  }

  /**
   * The `device` block of `connect`: a v2 signature over
   * `v2|deviceId|clientId|clientMode|role|scopes|signedAt|token|nonce`, binding the key to
   * this connection's challenge nonce, role and scopes.
   */
  signConnect(input: DeviceSignatureInput): DeviceBlock {
    const payload = deviceAuthPayload(this.deviceId, input);
    const signature = sign(null, Buffer.from(payload, 'utf8'), this.privateKey);
    return {
      id: this.deviceId,
      publicKey: this.publicKey,
      signature: signature.toString('base64url'),
      signedAt: input.signedAt,
      nonce: input.nonce,
    };
  }
}

export function deviceAuthPayload(deviceId: string, input: DeviceSignatureInput): string {
  return [
    'v2',
    deviceId,
    input.clientId,
    input.clientMode,
    input.role,
    input.scopes.join(','),
    String(input.signedAt),
    input.token ?? '',
    input.nonce,
  ].join('|');
}
