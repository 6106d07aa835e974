/**
 * Device pairing against a real gateway. Through this machine's non-loopback address the
 * gateway treats Mission Control as a remote client: scopes only for a paired device.
 */
import {
  GatewayAuthError,
  GatewayPairingRequiredError,
} from '../../src/common/errors/gateway-errors';
import { DeviceIdentityStore } from '../../src/openclaw/device-identity.store';
import {
  OpenClawGatewayService,
  type GatewayRecord,
} from '../../src/openclaw/openclaw-gateway.service';
import { createTestApp, type TestApp } from '../support/test-app';

const token = process.env.MC_IT_GATEWAY_TOKEN ?? null;
const loopback: GatewayRecord = { url: process.env.MC_IT_GATEWAY_URL ?? '', token };
const lanUrl = process.env.MC_IT_GATEWAY_LAN_URL;

interface PairRequest {
  requestId: string;
  deviceId: string;
}

if (!lanUrl) {
  process.stderr.write(
    'device pairing tests skipped: this machine has no non-loopback IPv4 address\n',
  );
}
const describeRemote = lanUrl ? describe : describe.skip;

describeRemote('a remote gateway', () => {
  const remote: GatewayRecord = { url: lanUrl ?? '', token };
  let testApp: TestApp;
  let service: OpenClawGatewayService;

  beforeAll(async () => {
    testApp = await createTestApp(); // a fresh database: a device the gateway has never seen
    service = testApp.app.get(OpenClawGatewayService);
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('says what to do when a token-only connection is granted no scopes', async () => {
    const error: unknown = await service
      .methods({ ...remote, disableDevicePairing: true })
      .health()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayAuthError);
    expect((error as GatewayAuthError).message).toContain('granted no operator scopes');
    expect((error as GatewayAuthError).message).toContain('clear disable_device_pairing');
  });

  it('surfaces the pending pairing request, and works once an operator approves it', async () => {
    const error: unknown = await service
      .methods(remote)
      .health()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayPairingRequiredError);

    const device = await testApp.app.get(DeviceIdentityStore).get();
    const admin = service.client(loopback); // loopback is trusted with the token alone
    const { pending } = await admin.call<{ pending: PairRequest[] }>('device.pair.list', {});
    const request = pending.find((entry) => entry.deviceId === device.deviceId);
    expect(request).toBeDefined();
    const message = (error as Error).message;
    expect(message).toContain(`openclaw devices approve ${request!.requestId}`);
    expect(message).toContain(device.deviceId);

    await admin.call('device.pair.approve', { requestId: request!.requestId });

    await expect(service.methods(remote).health()).resolves.toMatchObject({ ok: true });
    const server = await service.client(remote).connect();
    expect(server.grantedScopes).toEqual(
      expect.arrayContaining(['operator.read', 'operator.write', 'operator.admin']),
    );
  });
});
