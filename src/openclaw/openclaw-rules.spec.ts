import { randomBytes } from 'node:crypto';
import {
  GatewayAuthError,
  GatewayPairingRequiredError,
  GatewayProtocolError,
  GatewayRpcError,
  GatewayTimeoutError,
  GatewayTokenUnreadableError,
  GatewayUnavailableError,
} from '../common/errors/gateway-errors';
import {
  agentConfigShape,
  agentHeartbeatPatch,
  heartbeatForGateway,
  isUnsupportedFileError,
  writableAgentFiles,
} from './compat';
import { GatewayMethods, type GatewayTransport } from './gateway-methods';
import { parseFrame, parseHelloOk } from './protocol';
import {
  COORDINATION_RETRY,
  describeTimeout,
  GatewayBackoff,
  isTransientGatewayError,
  TEMPLATE_SYNC_RETRY,
  type RetryClock,
} from './retry';
import { SESSION_LABEL_MAX_LENGTH, uniqueSessionLabel } from './session-label';
import { gatewayIdentity, gatewayTarget, targetKey } from './openclaw-gateway.service';
import { installGatewayTokenKey, sealGatewayToken } from '../common/secrets/gateway-token';
import { SecretBox } from '../common/secrets/secret-box';

/** A clock whose sleeps advance time instantly, recording each sleep. */
function fakeClock(random = 0.5): RetryClock & { sleeps: number[]; time: number } {
  const clock = {
    time: 0,
    sleeps: [] as number[],
    now: () => clock.time,
    sleep: (ms: number) => {
      clock.sleeps.push(ms);
      clock.time += ms;
      return Promise.resolve();
    },
    random: () => random,
  };
  return clock;
}

describe('isTransientGatewayError', () => {
  it.each([
    [new GatewayUnavailableError('cannot reach gateway: connect ECONNREFUSED'), true],
    [new GatewayTimeoutError('gateway did not answer x within 5 ms'), true],
    [new GatewayRpcError('connect', 'UNAVAILABLE', 'starting'), true],
    // The gateway's code and retryable flag decide, never words in its message.
    [new GatewayRpcError('x', 'INVALID_REQUEST', 'busy', undefined, { retryable: true }), true],
    [
      new GatewayRpcError(
        'config.patch',
        'INVALID_REQUEST',
        'invalid config: agents.entries.a.heartbeat.timeoutSeconds: Expected number',
      ),
      false,
    ],
    [new GatewayRpcError('chat.send', 'INVALID_REQUEST', 'Connection reset by peer'), false],
    [new GatewayRpcError('x', 'INVALID_REQUEST', 'HTTP 503 from websocket upstream'), false],
    [new GatewayRpcError('x', 'INVALID_REQUEST', 'temporarily overloaded'), false],
    [new GatewayTimeoutError('gateway did not answer agents.create', { retryable: false }), false],
    [new GatewayRpcError('x', 'INVALID_REQUEST', 'agent "a" not found'), false],
    [new GatewayRpcError('x', 'INVALID_REQUEST', 'unsupported file "TOOLS.md" (timeout)'), false],
    [new GatewayAuthError('token_mismatch', 'token mismatch; connection closed'), false],
    [new GatewayPairingRequiredError('pairing required'), false],
    [new GatewayProtocolError('protocol mismatch'), false],
    [new GatewayUnavailableError('TLS certificate rejected', { retryable: false }), false],
    [new Error('connection refused'), false],
  ])('%s → %s', (error, transient) => {
    expect(isTransientGatewayError(error)).toBe(transient);
  });
});

describe('GatewayBackoff', () => {
  it('words the timeout as upstream does', () => {
    expect(describeTimeout(COORDINATION_RETRY.timeoutMs)).toBe('45 seconds');
    expect(describeTimeout(TEMPLATE_SYNC_RETRY.timeoutMs)).toBe('10 minutes');
    expect(describeTimeout(119_000)).toBe('119 seconds');
  });

  it('retries transient failures with doubling, capped delays until the unit succeeds', async () => {
    const clock = fakeClock(0.5); // jitter factor exactly 1
    let failures = 6;
    const backoff = new GatewayBackoff(COORDINATION_RETRY, clock);
    const result = await backoff.run(() =>
      failures-- > 0
        ? Promise.reject(new GatewayUnavailableError('connection refused'))
        : Promise.resolve('done'),
    );
    expect(result).toBe('done');
    expect(clock.sleeps).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
  });

  it('applies ± jitter within the profile fraction', async () => {
    for (const [random, expected] of [
      [0, 500 * 0.85],
      [1, 500 * 1.15],
    ] as const) {
      const clock = fakeClock(random);
      let failures = 1;
      await new GatewayBackoff(COORDINATION_RETRY, clock).run(() =>
        failures-- > 0 ? Promise.reject(new GatewayTimeoutError('timed out')) : Promise.resolve(1),
      );
      expect(clock.sleeps[0]).toBeCloseTo(expected);
    }
  });

  it('gives up after the budget with the contract text and the last error', async () => {
    const clock = fakeClock();
    const unit = () =>
      Promise.reject(new GatewayUnavailableError('connection closed (received 1006)'));
    const failure = new GatewayBackoff(COORDINATION_RETRY, clock).run(unit);
    await expect(failure).rejects.toThrow(GatewayTimeoutError);
    await expect(new GatewayBackoff(TEMPLATE_SYNC_RETRY, fakeClock()).run(unit)).rejects.toThrow(
      'Gateway unreachable after 10 minutes (template sync timeout). Last error: connection closed (received 1006)',
    );
    await expect(new GatewayBackoff(COORDINATION_RETRY, fakeClock()).run(unit)).rejects.toThrow(
      'Gateway unreachable after 45 seconds (gateway coordination timeout). Last error: connection closed (received 1006)',
    );
    expect(clock.time).toBe(45_000); // the last sleep is clamped to the time left
  });

  it('raises non-transient errors at once', async () => {
    const clock = fakeClock();
    const error = new GatewayAuthError('token_mismatch', 'token mismatch');
    await expect(
      new GatewayBackoff(COORDINATION_RETRY, clock).run(() => Promise.reject(error)),
    ).rejects.toBe(error);
    expect(clock.sleeps).toEqual([]);
  });

  it('resets the delay after a success when shared across a run', async () => {
    const clock = fakeClock();
    const backoff = new GatewayBackoff(TEMPLATE_SYNC_RETRY, clock);
    const flaky = (failures: number) => () =>
      failures-- > 0 ? Promise.reject(new GatewayTimeoutError('timed out')) : Promise.resolve(1);
    await backoff.run(flaky(2));
    await backoff.run(flaky(1));
    expect(clock.sleeps).toEqual([750, 1500, 750]);
  });

  it('retries what retryIf says, waits a hinted delay floored at the base, bounds attempts', async () => {
    const clock = fakeClock();
    const busy = new GatewayRpcError('x', 'UNAVAILABLE', 'busy', undefined, { retryAfterMs: 0 });
    let attempts = 0;
    const failure = new GatewayBackoff(COORDINATION_RETRY, clock).run(
      () => {
        attempts += 1;
        return Promise.reject(busy);
      },
      { retryIf: (error) => error === busy, delayFor: () => 0, maxAttempts: 4, exhausted: 'last' },
    );
    await expect(failure).rejects.toBe(busy);
    expect(attempts).toBe(4);
    expect(clock.sleeps).toEqual([500, 500, 500]);
  });

  it("with exhausted 'last' rethrows the last error instead of sleeping past the budget", async () => {
    const clock = fakeClock();
    const stale = new GatewayRpcError('config.patch', 'INVALID_REQUEST', 'config changed');
    const failure = new GatewayBackoff({ ...COORDINATION_RETRY, timeoutMs: 2_000 }, clock).run(
      () => Promise.reject(stale),
      { retryIf: () => true, exhausted: 'last' },
    );
    await expect(failure).rejects.toBe(stale);
    expect(clock.time).toBeLessThanOrEqual(2_000);
    expect(clock.sleeps.length).toBeGreaterThan(1);
  });
});

describe('frames', () => {
  it('parses responses, events and error shapes; ignores unknown frame types', () => {
    expect(parseFrame('{"type":"res","id":"1","ok":true,"payload":{"a":1}}')).toEqual({
      type: 'res',
      id: '1',
      ok: true,
      payload: { a: 1 },
    });
    expect(
      parseFrame(
        '{"type":"res","id":"2","ok":false,"error":{"code":"UNAVAILABLE","message":"wait","retryAfterMs":500,"details":{"reason":"startup-sidecars"}}}',
      ),
    ).toMatchObject({
      ok: false,
      error: { code: 'UNAVAILABLE', retryAfterMs: 500, details: { reason: 'startup-sidecars' } },
    });
    expect(parseFrame('{"type":"event","event":"tick","payload":{"ts":1}}')).toMatchObject({
      event: 'tick',
    });
    expect(parseFrame('{"type":"hello-future"}')).toBeNull();
  });

  it.each([
    'not json',
    '[1,2]',
    '{"no":"type"}',
    '{"type":"res","id":3,"ok":true}',
    '{"type":"event"}',
  ])('rejects %s as a protocol error', (text) => {
    expect(() => parseFrame(text)).toThrow(GatewayProtocolError);
  });

  it('keeps the negotiated protocol, version, methods and tick interval from hello-ok', () => {
    const info = parseHelloOk({
      type: 'hello-ok',
      protocol: 4,
      server: { version: '2026.9.6', connId: 'c1' },
      features: { methods: ['sessions.list'] },
      auth: { scopes: ['operator.read'] },
      policy: { tickIntervalMs: 30000, maxPayload: 100 },
    });
    expect(info).toMatchObject({ protocol: 4, version: '2026.9.6', tickIntervalMs: 30000 });
    expect(info.methods.has('sessions.list')).toBe(true);
    expect(() => parseHelloOk({ type: 'hello-ok' })).toThrow(GatewayProtocolError);
  });
});

describe('version compatibility', () => {
  const v4 = { protocol: 4 };
  const v3 = { protocol: 3 };

  it('reads the agents config shape from the config, else from the protocol', () => {
    expect(agentConfigShape({ agents: { entries: {} } }, v3)).toBe('entries');
    expect(agentConfigShape({ agents: { list: [] } }, v4)).toBe('list');
    expect(agentConfigShape({}, v4)).toBe('entries');
    expect(agentConfigShape({}, v3)).toBe('list');
  });

  it('drops heartbeat keys a protocol-4 gateway rejects', () => {
    expect(
      heartbeatForGateway({ every: '10m', target: 'none', includeReasoning: false }, 'entries'),
    ).toEqual({ heartbeat: { every: '10m', target: 'none' }, dropped: ['includeReasoning'] });
    expect(heartbeatForGateway({ every: '10m', includeReasoning: true }, 'list').dropped).toEqual(
      [],
    );
  });

  it('patches one agent entry (nulling removed heartbeat keys) plus channel heartbeat defaults', () => {
    const config = {
      agents: {
        entries: {
          a: { name: 'A', workspace: '/w/old', heartbeat: { every: '5m', prompt: 'x' } },
          b: { name: 'B' },
        },
      },
      channels: { defaults: { heartbeatVisibility: { showOk: true } } },
    };
    const patch = agentHeartbeatPatch(
      config,
      [{ agentId: 'a', workspace: '/w/a', heartbeat: { every: '10m', includeReasoning: false } }],
      'entries',
    );
    expect(patch).toEqual({
      agents: { entries: { a: { workspace: '/w/a', heartbeat: { prompt: null, every: '10m' } } } },
      channels: { defaults: { heartbeatVisibility: { showAlerts: true, useIndicator: true } } },
    });
  });

  it('returns null when the config already says it all', () => {
    const config = {
      agents: { entries: { a: { workspace: '/w/a', heartbeat: { every: '10m' } } } },
      channels: {
        defaults: { heartbeatVisibility: { showOk: false, showAlerts: true, useIndicator: true } },
      },
    };
    expect(
      agentHeartbeatPatch(
        config,
        [{ agentId: 'a', workspace: '/w/a', heartbeat: { every: '10m' } }],
        'entries',
      ),
    ).toBeNull();
  });

  it('replaces or appends list entries for older gateways, keeping other keys', () => {
    const config = { agents: { list: [{ id: 'a', name: 'A', workspace: '/old' }, { id: 'z' }] } };
    const patch = agentHeartbeatPatch(
      config,
      [
        { agentId: 'a', workspace: '/w/a', heartbeat: { every: '10m', includeReasoning: false } },
        { agentId: 'n', workspace: '/w/n', heartbeat: { every: '1h' } },
      ],
      'list',
    );
    expect(patch?.agents).toEqual({
      list: [
        {
          id: 'a',
          name: 'A',
          workspace: '/w/a',
          heartbeat: { every: '10m', includeReasoning: false },
        },
        { id: 'z' },
        { id: 'n', workspace: '/w/n', heartbeat: { every: '1h' } },
      ],
    });
  });

  it('knows which agent files a gateway accepts', () => {
    expect(writableAgentFiles(v4)).toEqual([
      'AGENTS.md',
      'SOUL.md',
      'IDENTITY.md',
      'USER.md',
      'BOOTSTRAP.md',
      'MEMORY.md',
    ]);
    expect(writableAgentFiles(v3)).toContain('TOOLS.md');
    expect(
      isUnsupportedFileError(
        new GatewayRpcError('agents.files.set', 'INVALID_REQUEST', 'unsupported file "TOOLS.md"'),
      ),
    ).toBe(true);
  });
});

describe('uniqueSessionLabel', () => {
  it('embeds the session key so equal names on different sessions never collide', () => {
    const a = uniqueSessionLabel('Lead Agent', 'agent:lead-1:main');
    const b = uniqueSessionLabel('Lead Agent', 'agent:lead-2:main');
    expect(a).toBe('Lead Agent (agent:lead-1:main)');
    expect(a).not.toBe(b);
    expect(uniqueSessionLabel('Lead Agent', 'agent:lead-1:main')).toBe(a);
  });

  it('stays within the length limit for long names and keys, still distinct', () => {
    const key1 = `agent:lead-${'1'.repeat(36)}:main`;
    const key2 = `agent:lead-${'2'.repeat(36)}:main`;
    const long = 'A very long agent name that goes on and on and on and on';
    const l1 = uniqueSessionLabel(long, key1, 64);
    const l2 = uniqueSessionLabel(long, key2, 64);
    expect(l1.length).toBeLessThanOrEqual(64);
    expect(l2.length).toBeLessThanOrEqual(64);
    const huge = uniqueSessionLabel('n'.repeat(2000), `agent:x:${'k'.repeat(2000)}`);
    expect(huge.length).toBeLessThanOrEqual(SESSION_LABEL_MAX_LENGTH);
    expect(l1).not.toBe(l2);
    expect(uniqueSessionLabel('  ', 'k')).toBe('Agent (k)');
  });
});

describe('GatewayMethods.configPatch', () => {
  function transport(script: (method: string, params: Record<string, unknown>) => unknown) {
    const calls: { method: string; params: Record<string, unknown> }[] = [];
    const t: GatewayTransport = {
      server: null,
      call: <T>(method: string, params: object) => {
        calls.push({ method, params: params as Record<string, unknown> });
        return new Promise<T>((resolve) => {
          resolve(script(method, params as Record<string, unknown>) as T);
        });
      },
    };
    return { t, calls };
  }

  it('re-reads and retries once on a stale base hash', async () => {
    let reads = 0;
    let patches = 0;
    const { t, calls } = transport((method) => {
      if (method === 'config.get') return { hash: `h${++reads}`, config: { n: reads } };
      if (++patches === 1) {
        throw new GatewayRpcError(
          'config.patch',
          'INVALID_REQUEST',
          'config changed since last load; re-run config.get and retry',
        );
      }
      return { ok: true };
    });
    const result = await new GatewayMethods(t).configPatch((config) => ({ seen: config.n }));
    expect(result).toEqual({ ok: true });
    expect(calls.map((c) => c.method)).toEqual([
      'config.get',
      'config.patch',
      'config.get',
      'config.patch',
    ]);
    expect(calls[3].params).toEqual({ raw: '{"seen":2}', baseHash: 'h2' });
  });

  it('gives up on a hash that stays stale past its budget, and skips the patch when nothing changes', async () => {
    const stale = new GatewayRpcError(
      'config.patch',
      'INVALID_REQUEST',
      'config changed since last load',
    );
    const { t, calls } = transport((method) => {
      if (method === 'config.get') return { hash: 'h', config: {} };
      throw stale;
    });
    await expect(
      new GatewayMethods(t).configPatch(() => ({ a: 1 }), { conflictTimeoutMs: 300 }),
    ).rejects.toBe(stale);
    expect(calls.filter((c) => c.method === 'config.patch').length).toBeGreaterThan(2);
    const quiet = transport(() => ({ hash: 'h', config: {} }));
    await expect(new GatewayMethods(quiet.t).configPatch(() => null)).resolves.toEqual({
      ok: true,
      noop: true,
    });
    expect(quiet.calls.map((c) => c.method)).toEqual(['config.get']);
  });

  it('does not retry a config error that is not a stale hash (heartbeat.timeoutSeconds)', async () => {
    const invalid = new GatewayRpcError(
      'config.patch',
      'INVALID_REQUEST',
      'invalid config: agents.entries.a.heartbeat.timeoutSeconds: Expected number',
    );
    const { t, calls } = transport((method) => {
      if (method === 'config.get') return { hash: 'h', config: {} };
      throw invalid;
    });
    await expect(new GatewayMethods(t).configPatch(() => ({ a: 1 }))).rejects.toBe(invalid);
    expect(calls.map((c) => c.method)).toEqual(['config.get', 'config.patch']);
  });

  it('normalises agents.list answers of older gateways', async () => {
    const bare = transport(() => [
      'alpha',
      { agentId: 'beta', name: 'B' },
      { agent_id: 'gamma' },
      {},
    ]);
    await expect(new GatewayMethods(bare.t).agentsList()).resolves.toEqual({
      agents: [
        { id: 'alpha' },
        { agentId: 'beta', name: 'B', id: 'beta' },
        { agent_id: 'gamma', id: 'gamma' },
      ],
    });
    const current = transport(() => ({
      defaultId: 'main',
      agents: [{ id: 'main', name: 'Main' }],
    }));
    await expect(new GatewayMethods(current.t).agentsList()).resolves.toEqual({
      defaultId: 'main',
      agents: [{ id: 'main', name: 'Main' }],
    });
  });

  it('rejects a payload without the expected shape as a protocol error', async () => {
    const { t } = transport(() => ['not', 'an', 'object']);
    await expect(new GatewayMethods(t).sessionsList()).rejects.toThrow(GatewayProtocolError);
  });
});

describe('gateway targets', () => {
  it('normalises the record and keys the pool by url + credentials + flags', () => {
    const base = {
      url: ' ws://g:1 ',
      token: ' t ',
      disableDevicePairing: null,
      allowInsecureTls: null,
    };
    const target = gatewayTarget(base);
    expect(target).toEqual({
      url: 'ws://g:1',
      token: 't',
      disableDevicePairing: false,
      allowInsecureTls: false,
    });
    expect(gatewayTarget({ ...base, token: '  ' }).token).toBeNull();
    const key = targetKey(target);
    expect(key).not.toContain('t');
    expect(targetKey(gatewayTarget({ ...base, token: 'other' }))).not.toBe(key);
    expect(targetKey(gatewayTarget({ ...base, allowInsecureTls: true }))).not.toBe(key);
    expect(targetKey(gatewayTarget({ ...base }))).toBe(key);
  });
});

describe('gateway targets from sealed tokens (SECRETS_KEY)', () => {
  const key = randomBytes(32);
  beforeAll(() => installGatewayTokenKey(key));

  it('opens a sealed token, accepts a legacy plaintext one', () => {
    const sealed = sealGatewayToken('secret-token');
    expect(sealed).not.toContain('secret-token');
    expect(gatewayTarget({ url: 'ws://g:1', token: sealed }).token).toBe('secret-token');
    expect(gatewayTarget({ url: 'ws://g:1', token: 'legacy-token' }).token).toBe('legacy-token');
  });

  it('refuses a token sealed under another key, naming the gateway and the fix', () => {
    const foreign = new SecretBox(randomBytes(32)).seal('secret-token');
    const record = { id: 'g-1', name: 'Edge', url: 'ws://g:1', token: foreign };
    expect(() => gatewayTarget(record)).toThrow(GatewayTokenUnreadableError);
    expect(() => gatewayTarget(record)).toThrow(
      /^Gateway "Edge" \(g-1\): its stored token cannot be decrypted with the configured SECRETS_KEY.*PATCH \/api\/v1\/gateways\/g-1/,
    );
    expect(isTransientGatewayError(new GatewayTokenUnreadableError('x'))).toBe(false);
  });
});

describe('gatewayIdentity (the key of config turns)', () => {
  it('is one key for every spelling of one gateway URL', () => {
    const key = gatewayIdentity('ws://gw:18789/');
    for (const spelling of ['ws://GW:18789', ' WS://gw:18789/ ', 'ws://gw:18789/?token=x#f']) {
      expect(gatewayIdentity(spelling)).toBe(key);
    }
    expect(gatewayIdentity('ws://gw:80')).toBe(gatewayIdentity('ws://gw/'));
    expect(gatewayIdentity('wss://gw:18789/')).not.toBe(key);
    expect(gatewayIdentity('ws://gw:18790/')).not.toBe(key);
    expect(gatewayIdentity('ws://gw:18789/other')).not.toBe(key);
  });
});
