/**
 * A real gateway restarting under a subscribed client: the `shutdown` event and the 1012 close
 * arrive, the client reconnects in the background through the refused-connection and
 * `startup-sidecars` window, and calls work again on the new connection.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { GatewayConnectionState } from '../../src/openclaw/gateway-client';
import {
  OpenClawGatewayService,
  type GatewayRecord,
} from '../../src/openclaw/openclaw-gateway.service';
import type { EventFrame } from '../../src/openclaw/protocol';
import { waitUntil } from '../support/eventually';
import { createTestApp, type TestApp } from '../support/test-app';
import { RESTART_TIMEOUT_MS } from './support/gateway-script';

const run = promisify(execFile);
const SCRIPT = join(__dirname, '..', '..', 'scripts', 'openclaw-gateway.sh');
const gateway: GatewayRecord = {
  url: process.env.MC_IT_GATEWAY_URL ?? '',
  token: process.env.MC_IT_GATEWAY_TOKEN ?? null,
};

let testApp: TestApp;
let service: OpenClawGatewayService;

beforeAll(async () => {
  testApp = await createTestApp();
  service = testApp.app.get(OpenClawGatewayService);
});

afterAll(async () => {
  await testApp?.close();
});

it('reconnects a subscribed client after the gateway restarts', async () => {
  const client = service.client(gateway);
  const events: EventFrame[] = [];
  const states: { state: GatewayConnectionState; error?: string }[] = [];
  const unsubscribe = client.subscribe({
    onEvent: (event) => events.push(event),
    onState: (state, error) => states.push({ state, error: error?.message }),
  });
  try {
    const before = await client.connect();

    // Bounded by the script: stop grace, leases a killed gateway left, a start and one retry.
    await run('bash', [SCRIPT, 'restart', process.env.MC_IT_GATEWAY_RUN_DIR ?? ''], {
      timeout: RESTART_TIMEOUT_MS,
    });

    await waitUntil(() => client.state === 'open' && client.server?.connId !== before.connId, {
      timeoutMs: 60_000,
      what: () => `no reconnect; states: ${JSON.stringify(states)}`,
    });

    expect(events.find((event) => event.event === 'shutdown')?.payload).toMatchObject({
      reason: expect.any(String) as unknown,
    });
    expect(states).toContainEqual({
      state: 'reconnecting',
      error: expect.stringContaining('received 1012') as unknown,
    });
    // While the gateway was down the background reconnect kept trying (with backoff).
    expect(states.some((entry) => entry.error?.includes('ECONNREFUSED'))).toBe(true);
    await expect(service.methods(gateway).health()).resolves.toMatchObject({ ok: true });
  } finally {
    unsubscribe();
  }
  // RESTART_TIMEOUT_MS and the 60 s reconnect wait.
}, 540_000);
