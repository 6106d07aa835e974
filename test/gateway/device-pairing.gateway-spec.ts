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

/*
 * Pairing needs a connection the gateway sees as remote. A second loopback address does not
 * do: openclaw treats all of 127.0.0.0/8 (and ::1, IPv4-mapped forms) as local
 * (`isLoopbackIpAddress`, ipaddr.js range "loopback") and auto-approves a local device. So the
 * suite needs this machine's non-loopback address; without one the pairing tests are reported
 * as skipped, by name and reason, and MC_IT_REQUIRE_PAIRING=1 turns the skip into a failure.
 */
const SKIP_REASON =
  'device pairing NOT TESTED: this machine has no non-loopback IPv4 address, and the gateway ' +
  'treats every 127.0.0.0/8 address as local (pairing auto-approved)';
if (!lanUrl) {
  process.stderr.write(`\n${SKIP_REASON}\n`);
  if (process.env.MC_IT_REQUIRE_PAIRING === '1') {
    it('device pairing is required (MC_IT_REQUIRE_PAIRING=1) but cannot run here', () => {
      throw new Error(SKIP_REASON);
    });
  } else {
    it.skip(SKIP_REASON, () => undefined);
  }
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
