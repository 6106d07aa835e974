import { verify, createPublicKey } from 'node:crypto';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { deviceAuthPayload } from '../../src/openclaw/device-identity';
import { DeviceIdentityStore } from '../../src/openclaw/device-identity.store';
import { OpenClawDeviceIdentity } from '../../src/openclaw/entities/openclaw-device-identity.entity';
import { createTestDatabase, dropTestDatabase } from '../support/test-app';

/** Two app instances on one database must present the same device to gateways. */
describe('gateway device identity (real PostgreSQL)', () => {
  let databaseUrl: string;
  const sources: DataSource[] = [];

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
  });

  afterAll(async () => {
    await Promise.all(sources.map((source) => source.destroy()));
    await dropTestDatabase(databaseUrl);
  });

  async function instance(): Promise<DeviceIdentityStore> {
    const source = await new DataSource(dataSourceOptions({ url: databaseUrl })).initialize();
    sources.push(source);
    return new DeviceIdentityStore(source);
  }

  it('is created once, even when instances race, and persists across restarts', async () => {
    const [a, b, c] = await Promise.all([instance(), instance(), instance()]);
    const identities = await Promise.all([a.get(), b.get(), c.get(), a.get()]);
    const ids = new Set(identities.map((identity) => identity.deviceId));
    expect(ids.size).toBe(1);

    const rows = await sources[0].getRepository(OpenClawDeviceIdentity).find();
    expect(rows).toHaveLength(1);
    expect(rows[0].deviceId).toBe(identities[0].deviceId);
    expect(rows[0].privateKeyPem).toContain('BEGIN PRIVATE KEY');

    const restarted = await (await instance()).get();
    expect(restarted.deviceId).toBe(identities[0].deviceId);
    expect(restarted.publicKey).toBe(identities[0].publicKey);
  });

  it('signs with the stored key: the signature verifies against the advertised public key', async () => {
    const identity = await (await instance()).get();
    const input = {
      clientId: 'gateway-client',
      clientMode: 'backend',
      role: 'operator',
      scopes: ['operator.read', 'operator.admin'],
      token: 'tok',
      nonce: 'n-1',
      signedAt: 1_795_000_000_000,
    };
    const block = identity.signConnect(input);
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: block.publicKey },
      format: 'jwk',
    });
    const payload = Buffer.from(deviceAuthPayload(identity.deviceId, input));
    expect(verify(null, payload, key, Buffer.from(block.signature, 'base64url'))).toBe(true);
    const tampered = Buffer.from(deviceAuthPayload(identity.deviceId, { ...input, nonce: 'n-2' }));
    expect(verify(null, tampered, key, Buffer.from(block.signature, 'base64url'))).toBe(false);
  });
});
