/**
 * The gateway client pool inside the real application (real DI, real PostgreSQL for the device
 * key), against in-process fake gateways: sharing, keying, idle close and shutdown.
 */
import { OpenClawDeviceIdentity } from '../../src/openclaw/entities/openclaw-device-identity.entity';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { waitUntil } from '../support/eventually';
import { FakeGateway, NEVER } from '../support/fake-gateway';
import { createTestApp, type TestApp } from '../support/test-app';

const TOKEN = 'pool-token';

describe('OpenClawGatewayService pool', () => {
  let gateway: FakeGateway;
  let testApp: TestApp | null = null;

  beforeEach(async () => {
    gateway = await FakeGateway.start({ token: TOKEN });
  });

  afterEach(async () => {
    await testApp?.close();
    testApp = null;
    await gateway.stop();
  });

  async function start(env: Record<string, string> = {}): Promise<OpenClawGatewayService> {
    testApp = await createTestApp(env);
    return testApp.app.get(OpenClawGatewayService);
  }

  it('shares one socket per gateway and signs with the stored device key', async () => {
    const service = await start();
    const record = { url: gateway.url, token: TOKEN };
    await Promise.all([
      service.methods(record).sessionsList(),
      service.methods({ ...record }).sessionsList(),
      service.methods(record).sessionsList(),
    ]);
    expect(gateway.upgrades).toBe(1);
    expect(service.openClients).toBe(1);

    const [row] = await testApp!.dataSource.getRepository(OpenClawDeviceIdentity).find();
    expect((gateway.connects[0].params.device as { id: string }).id).toBe(row.deviceId);

    // Different credentials or flags are a different client (and socket).
    await service.methods({ ...record, disableDevicePairing: true }).sessionsList();
    expect(gateway.upgrades).toBe(2);
    expect(gateway.connects[1].params.device).toBeUndefined();
    expect(service.openClients).toBe(2);
  });

  it('closes idle sockets, and a held methods object simply redials', async () => {
    const service = await start({ OPENCLAW_IDLE_CLOSE_MS: '1000' });
    const methods = service.methods({ url: gateway.url, token: TOKEN });
    await methods.sessionsList();
    expect(gateway.sockets.size).toBe(1);
    await waitUntil(() => gateway.sockets.size === 0);
    expect(gateway.sockets.size).toBe(0);
    expect(service.openClients).toBe(0);
    await methods.sessionsList();
    expect(gateway.upgrades).toBe(2);
  });

  it('forgets clients whose socket dropped or whose dial failed, so the pool shrinks back', async () => {
    const service = await start({ OPENCLAW_IDLE_CLOSE_MS: '1000' });
    const down = await FakeGateway.start({ token: TOKEN });
    const downUrl = down.url;
    await down.stop();

    await service.methods({ url: gateway.url, token: TOKEN }).sessionsList();
    await expect(service.methods({ url: downUrl, token: TOKEN }).sessionsList()).rejects.toThrow(
      'cannot reach gateway',
    );
    expect(service.openClients).toBe(2);
    gateway.dropAll();

    await waitUntil(() => service.openClients === 0, {
      timeoutMs: 4_000,
      what: () => `${service.openClients} clients still pooled`,
    });
  });

  it('closes every socket on application shutdown, failing what is in flight', async () => {
    gateway.methods.hang = () => NEVER;
    const service = await start();
    const client = service.client({ url: gateway.url, token: TOKEN });
    const pending = client.call('hang', {}).catch((error: unknown) => error);
    await waitUntil(() => gateway.requests.some((request) => request.method === 'hang'));
    await testApp!.close();
    testApp = null;
    expect(await pending).toMatchObject({ message: 'application shutting down' });
    await waitUntil(() => gateway.sockets.size === 0);
    expect(gateway.sockets.size).toBe(0);
  });
});
