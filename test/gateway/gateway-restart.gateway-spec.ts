/**
 * A real gateway restarting under a subscribed client: the `shutdown` event and the 1012 close
 * arrive, the client reconnects in the background through the refused-connection and
 * `startup-sidecars` window, and calls work again on the new connection.
 *
 * A gateway that does not stop within the script's SIGTERM grace is killed (the script logs
 * "sending SIGKILL"): then neither the `shutdown` event nor the 1012 close can arrive, the
 * client sees the socket drop and must reconnect all the same. Either way a failure carries the
 * timeline (states, events, the script's log, the old gateway's shutdown lines) so a slow CI
 * machine's run can be read afterwards.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
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
const RUN_DIR = process.env.MC_IT_GATEWAY_RUN_DIR ?? '';
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

/** The stopped gateway's log lines about signals and shutdown (the script keeps that log). */
async function oldGatewayShutdownLines(): Promise<string> {
  const log = await readFile(join(RUN_DIR, 'gateway.previous.log'), 'utf8').catch(
    (error: Error) => `(no gateway.previous.log: ${error.message})`,
  );
  return log
    .split('\n')
    .filter((line) => /signal|shutdown|SIGTERM|restart|clos/i.test(line))
    .slice(-40)
    .join('\n');
}

it('reconnects a subscribed client after the gateway restarts', async () => {
  const client = service.client(gateway);
  const started = Date.now();
  const at = () => Date.now() - started;
  const events: { ms: number; event: string; payload: unknown }[] = [];
  const states: { ms: number; state: GatewayConnectionState; error?: string }[] = [];
  const unsubscribe = client.subscribe({
    onEvent: (event: EventFrame) => {
      if (event.event !== 'tick' && event.event !== 'health') {
        events.push({ ms: at(), event: event.event, payload: event.payload });
      }
    },
    onState: (state, error) => states.push({ ms: at(), state, error: error?.message }),
  });
  let scriptLog = '';
  const timeline = async () =>
    `\nscript log:\n${scriptLog}\nstates: ${JSON.stringify(states)}\nevents: ` +
    `${JSON.stringify(events)}\nold gateway:\n${await oldGatewayShutdownLines()}`;
  try {
    const before = await client.connect();
    const signalledAt = at();

    // Bounded by the script: stop grace, leases a killed gateway left, a start and one retry.
    const output = await run('bash', [SCRIPT, 'restart', RUN_DIR], {
      timeout: RESTART_TIMEOUT_MS,
    });
    scriptLog = output.stderr;

    await waitUntil(() => client.state === 'open' && client.server?.connId !== before.connId, {
      timeoutMs: 60_000,
      what: () => `no reconnect; states: ${JSON.stringify(states)}`,
    });

    const closes = states.filter(
      (entry) => entry.state === 'reconnecting' && entry.ms >= signalledAt,
    );
    const killed = scriptLog.includes('sending SIGKILL');
    if (killed) {
      // No orderly close: the socket simply dropped. The reconnect above is what counts.
      expect(closes.length).toBeGreaterThan(0);
    } else {
      const shutdown = events.find((event) => event.event === 'shutdown');
      const serviceRestart = closes.find((entry) => entry.error?.includes('received 1012'));
      if (!shutdown || !serviceRestart) {
        throw new Error(
          `the gateway stopped on SIGTERM, yet the client saw ` +
            `${shutdown ? '' : 'no shutdown event '}${serviceRestart ? '' : 'no 1012 close'}` +
            (await timeline()),
        );
      }
      expect(shutdown.payload).toMatchObject({ reason: expect.any(String) as unknown });
    }
    // While the gateway was down the background reconnect kept trying (with backoff).
    expect(states.some((entry) => entry.error?.includes('ECONNREFUSED'))).toBe(true);
    await expect(service.methods(gateway).health()).resolves.toMatchObject({ ok: true });
    if (process.env.MC_IT_PRINT_TIMELINE) console.log(await timeline());
  } finally {
    unsubscribe();
  }
  // RESTART_TIMEOUT_MS and the 60 s reconnect wait.
}, 540_000);
