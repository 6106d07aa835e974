/**
 * Parallel provisioning runs on ONE gateway all patch its config (one heartbeat entry per
 * agent) against a base hash. They must not fail each other with "config changed since last
 * load": patches take turns per gateway in this process and a stale hash is re-read and
 * re-applied. The in-process gateway enforces baseHash as the real one does.
 */
import { GatewayError, GatewayTimeoutError } from '../../src/common/errors/gateway-errors';
import { CONFIG_WRITE_QUEUE_LIMIT } from '../../src/openclaw/gateway-methods';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { isTransientGatewayError } from '../../src/openclaw/retry';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { buildAgent, buildBoardOnGateway } from '../support/builders';
import { FakeGateway, NEVER } from '../support/fake-gateway';
import {
  FAKE_GATEWAY_TOKEN,
  gatewayFieldsFor,
  serveOpenClawState,
} from '../support/fake-openclaw-state';
import { waitUntil } from '../support/eventually';
import { createTestApp, type TestApp } from '../support/test-app';

const RUNS = 8;

/** The outcome of `promise`, or 'still pending' if it has not settled within `boundMs`. */
async function settledWithin<T>(promise: Promise<T>, boundMs: number) {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still pending'>((resolve) => {
    timer = setTimeout(() => resolve('still pending'), boundMs);
  });
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
      bound,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('config patches on one gateway', () => {
  let t: TestApp;
  let fake: FakeGateway;

  beforeAll(async () => {
    t = await createTestApp();
    fake = await FakeGateway.start({ token: FAKE_GATEWAY_TOKEN });
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });

  it(`re-reads and re-applies when another writer (another instance) changed the config`, async () => {
    const state = serveOpenClawState(fake);
    const methods = t.app
      .get(OpenClawGatewayService)
      .methods({ url: fake.url, token: FAKE_GATEWAY_TOKEN, disableDevicePairing: true });
    let interfered = 0;
    const result = await methods.configPatch((config) => {
      // Another instance writes between our read and our patch, twice.
      if (interfered < 2) {
        interfered += 1;
        state.config = { ...state.config, [`other-${interfered}`]: true };
      }
      return { mine: Object.keys(config).length };
    });
    expect(result).toMatchObject({ ok: true });
    expect(state.staleRefusals).toBe(2);
    expect(state.config).toMatchObject({ 'other-1': true, 'other-2': true, mine: 3 });
  });

  it(`${RUNS} parallel provisions of different agents all succeed and all heartbeats land`, async () => {
    const state = serveOpenClawState(fake);
    const { organizationId, gateway, board } = await buildBoardOnGateway(
      t.dataSource,
      gatewayFieldsFor(fake),
    );
    const agents = await Promise.all(
      Array.from({ length: RUNS }, () => buildAgent(t.dataSource, gateway.id, board.id)),
    );
    const provisioning = t.app.get(ProvisioningService);

    const outcomes = await Promise.all(
      agents.map(({ agent }) =>
        provisioning.provisionAgent({ organizationId, agentId: agent.id }, { action: 'provision' }),
      ),
    );

    expect(outcomes.map((outcome) => [outcome.status, outcome.error])).toEqual(
      agents.map(() => ['provisioned', null]),
    );
    const entries = (state.config.agents as { entries: Record<string, { heartbeat?: unknown }> })
      .entries;
    // In one process the writers took turns: no patch was even sent against a stale hash.
    expect(state.staleRefusals).toBe(0);
    for (const { agent } of agents) {
      expect(entries[`mc-${agent.id}`]?.heartbeat).toEqual(
        expect.objectContaining({ every: expect.any(String) }),
      );
    }
  });

  describe('turns are bounded', () => {
    jest.setTimeout(20_000);

    const methodsFor = (url = fake.url) =>
      t.app
        .get(OpenClawGatewayService)
        .methods({ url, token: FAKE_GATEWAY_TOKEN, disableDevicePairing: true });

    it('10 writers on a gateway that never answers each settle within about their own timeout', async () => {
      serveOpenClawState(fake);
      fake.methods['config.get'] = () => NEVER;
      const methods = methodsFor();
      // Waiting in line without a bound, the 10th writer would settle after 10 s; each has 1 s. The
      // 5 s bound leaves room for a loaded machine while still telling the two apart.
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, () =>
          settledWithin(
            methods.configPatch(() => ({ x: 1 }), { timeoutMs: 1_000 }),
            5_000,
          ),
        ),
      );
      for (const outcome of outcomes) {
        expect(outcome).not.toBe('still pending');
        if (outcome === 'still pending' || outcome.ok) throw new Error('expected a failure');
        expect(outcome.error).toBeInstanceOf(GatewayTimeoutError);
        expect(isTransientGatewayError(outcome.error)).toBe(true);
      }
      // The ones that waited say whose turn they waited for. The first in line may instead get
      // the turn: the holder's call and its own wait both end after 1 s, and which timer fires
      // first is a matter of the millisecond (CI saw both). It then fails on its own call, as
      // the holder did. Everyone behind it waited for its turn, which lasts another second.
      const messages = outcomes.map((o) => (o as { error: Error }).error.message);
      const callTimeout = /did not answer config\.get within/;
      expect(messages[0]).toMatch(callTimeout);
      expect(messages[1].includes(`${fake.url}/`) || callTimeout.test(messages[1])).toBe(true);
      for (const message of messages.slice(2)) expect(message).toContain(`${fake.url}/`);
    });

    it(`a writer beyond ${CONFIG_WRITE_QUEUE_LIMIT} waiting ones fails at once, retryable`, async () => {
      serveOpenClawState(fake);
      fake.methods['config.get'] = () => NEVER;
      const methods = methodsFor();
      const order: number[] = [];
      const calls = Array.from({ length: CONFIG_WRITE_QUEUE_LIMIT + 2 }, (_, index) =>
        methods
          .configPatch(() => ({ x: 1 }), { timeoutMs: 1_000 })
          .then(
            () => null,
            (error: unknown) => {
              order.push(index);
              return error;
            },
          ),
      );
      const errors = await Promise.all(calls);
      const overflow = errors.at(-1) as GatewayError;
      expect(overflow.message).toContain(
        `busy: ${CONFIG_WRITE_QUEUE_LIMIT} config writes already waiting`,
      );
      expect(overflow.message).toContain(`${fake.url}/`);
      expect(isTransientGatewayError(overflow)).toBe(true);
      // It did not wait for the holder: it settled first.
      expect(order[0]).toBe(CONFIG_WRITE_QUEUE_LIMIT + 1);
      expect(errors.filter((e) => (e as Error).message.includes('already waiting'))).toHaveLength(
        1,
      );
    });

    it('a config write inside a config write on the same gateway fails at once, not deadlocks', async () => {
      serveOpenClawState(fake);
      const methods = methodsFor();
      const outcome = await settledWithin(
        methods.configPatch(
          async () => {
            await methods.agentsCreate({ name: 'nested' }, { timeoutMs: 1_000 });
            return null;
          },
          { timeoutMs: 1_000 },
        ),
        3_000,
      );
      expect(outcome).toMatchObject({ ok: false });
      expect((outcome as { error: Error }).error.message).toContain('re-entered');
    });

    it('two spellings of one gateway URL take turns on one config', async () => {
      const state = serveOpenClawState(fake);
      // Each config.get answers only once two are waiting (or after 500 ms): writers that do
      // not take turns both read the same hash.
      const waiting: (() => void)[] = [];
      const serve = state.hash.bind(state);
      fake.methods['config.get'] = () =>
        new Promise((resolve) => {
          const answer = () => resolve({ hash: serve(), config: structuredClone(state.config) });
          waiting.push(answer);
          if (waiting.length >= 2) for (const release of waiting.splice(0)) release();
          else {
            setTimeout(() => {
              const index = waiting.indexOf(answer);
              if (index < 0) return;
              waiting.splice(index, 1);
              answer();
            }, 500);
          }
        });
      const port = fake.port;
      const [first, second] = await Promise.allSettled([
        methodsFor(`ws://127.0.0.1:${port}`).configPatch(() => ({ one: 1 }), {
          conflictTimeoutMs: 0,
        }),
        methodsFor(`WS://127.0.0.1:${port}/`).configPatch(() => ({ two: 2 }), {
          conflictTimeoutMs: 0,
        }),
      ]);
      expect([first.status, second.status]).toEqual(['fulfilled', 'fulfilled']);
      expect(state.staleRefusals).toBe(0);
      expect(state.config).toMatchObject({ one: 1, two: 2 });
    });

    it('an event subscriber may write the config while a write that dialled the socket runs', async () => {
      const state = serveOpenClawState(fake);
      // A spelling no other test used: this write dials a fresh socket inside its turn.
      const record = {
        url: `ws://localhost:${fake.port}`,
        token: FAKE_GATEWAY_TOKEN,
        disableDevicePairing: true,
      };
      const gateways = t.app.get(OpenClawGatewayService);
      const methods = gateways.methods(record);
      let nested: Promise<unknown> | null = null;
      let unsubscribe = (): void => undefined;
      await methods.configPatch(async () => {
        unsubscribe = gateways.subscribe(record, {
          onEvent: (event) => {
            if (event.event !== 'poke' || nested) return;
            nested = methods.configPatch(() => ({ nested: true }), { timeoutMs: 5_000 });
            nested.catch(() => undefined);
          },
        });
        fake.broadcast('poke', {});
        await waitUntil(() => nested !== null);
        return { outer: true };
      });
      try {
        await expect(nested).resolves.toMatchObject({ ok: true });
        expect(state.config).toMatchObject({ outer: true, nested: true });
      } finally {
        unsubscribe();
      }
    });
  });
});

describe('config writes to one gateway leave its hot reload time to settle', () => {
  const SETTLE_MS = 400;
  let t: TestApp;
  let fake: FakeGateway;

  beforeAll(async () => {
    t = await createTestApp({ OPENCLAW_CONFIG_SETTLE_MS: String(SETTLE_MS) });
    fake = await FakeGateway.start({ token: FAKE_GATEWAY_TOKEN });
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });

  it('sends the next config write OPENCLAW_CONFIG_SETTLE_MS after the previous one; reads do not wait', async () => {
    serveOpenClawState(fake);
    fake.requests.length = 0;
    const methods = t.app
      .get(OpenClawGatewayService)
      .methods({ url: fake.url, token: FAKE_GATEWAY_TOKEN, disableDevicePairing: true });
    const results = await Promise.all(
      ['first', 'second', 'third'].map((name) => methods.configPatch(() => ({ [name]: true }))),
    );
    expect(results.every((result) => result.ok === true)).toBe(true);
    const sent = (method: string) =>
      fake.requests.flatMap((request) =>
        request.method === method ? [fake.arrivedAt.get(request) ?? NaN] : [],
      );
    const patches = sent('config.patch');
    expect(patches).toHaveLength(3);
    // Each write is sent no sooner than SETTLE_MS after the previous one was answered (which is
    // after it was sent).
    expect(patches[1] - patches[0]).toBeGreaterThanOrEqual(SETTLE_MS);
    expect(patches[2] - patches[1]).toBeGreaterThanOrEqual(SETTLE_MS);
    // The reads of the second and third writes did not wait for the gap: each came before its
    // write, not SETTLE_MS after the previous write.
    const reads = sent('config.get');
    expect(reads).toHaveLength(3);
    expect(reads[1]).toBeLessThan(patches[1]);
    expect(reads[2]).toBeLessThan(patches[2]);
    expect(reads[1] - patches[0]).toBeLessThan(SETTLE_MS);
  });
});
