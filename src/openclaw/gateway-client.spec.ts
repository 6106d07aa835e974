import { Logger } from '@nestjs/common';
import { verify, createPublicKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import {
  GatewayAuthError,
  GatewayDialRefusedError,
  GatewayError,
  GatewayPairingRequiredError,
  GatewayProtocolError,
  GatewayRpcError,
  GatewayTimeoutError,
  GatewayUnavailableError,
} from '../common/errors/gateway-errors';
import { waitUntil } from '../../test/support/eventually';
import { FakeGateway, FakeRpcError, NEVER } from '../../test/support/fake-gateway';
import { failureOf } from '../../test/support/gateway-failure';
import { DeviceIdentity, deviceAuthPayload } from './device-identity';
import { DialPolicy } from './dial-policy';
import {
  GatewayClient,
  type GatewayClientSettings,
  type GatewayConnectionState,
  type GatewayTarget,
} from './gateway-client';
import { GatewayMethods } from './gateway-methods';
import type { EventFrame } from './protocol';
import { isTransientGatewayError } from './retry';

const TOKEN = 'fake-gateway-token';
const device = DeviceIdentity.generate().identity;

const SETTINGS: GatewayClientSettings = {
  connectTimeoutMs: 2_000,
  requestTimeoutMs: 2_000,
  idleCloseMs: 60_000,
  clientVersion: '9.9.9-test',
  reconnectBaseMs: 20,
  reconnectMaxMs: 200,
};

const gateways: FakeGateway[] = [];

beforeAll(() => Logger.overrideLogger(['error']));
afterAll(() => Logger.overrideLogger(['error', 'warn', 'log']));
const clients: GatewayClient[] = [];

async function fake(options: Parameters<typeof FakeGateway.start>[0] = {}): Promise<FakeGateway> {
  const gateway = await FakeGateway.start({ token: TOKEN, ...options });
  gateways.push(gateway);
  return gateway;
}

function clientFor(
  gateway: { url: string },
  overrides: Partial<GatewayTarget> = {},
  settings: Partial<GatewayClientSettings> = {},
  onIdle?: (client: GatewayClient) => void,
): GatewayClient {
  const client = new GatewayClient(
    {
      url: gateway.url,
      token: TOKEN,
      disableDevicePairing: false,
      allowInsecureTls: false,
      ...overrides,
    },
    { ...SETTINGS, ...settings },
    () => Promise.resolve(device),
    onIdle,
  );
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(gateways.splice(0).map((gateway) => gateway.stop()));
});

describe('GatewayClient handshake', () => {
  it('answers the challenge with a protocol 3..4 backend operator connect, signed, without Origin', async () => {
    const gateway = await fake();
    const client = clientFor(gateway);

    const server = await client.connect();

    expect(server).toMatchObject({ protocol: 4, version: '2026.9.6-fake', tickIntervalMs: 30_000 });
    const [connect] = gateway.connects;
    expect(connect.params).toMatchObject({
      minProtocol: 3,
      maxProtocol: 4,
      client: {
        id: 'gateway-client',
        mode: 'backend',
        version: '9.9.9-test',
        platform: process.platform,
      },
      role: 'operator',
      auth: { token: TOKEN },
    });
    expect(connect.params.scopes).toEqual(
      expect.arrayContaining(['operator.read', 'operator.write', 'operator.admin']),
    );
    expect(connect.headers.origin).toBeUndefined();
    expect(connect.headers['x-forwarded-for']).toBeUndefined();
    expect(gateway.url).not.toContain('token');

    // The device block signs this connection's nonce, role and scopes with the device key.
    const block = connect.params.device as Record<string, unknown>;
    expect(block).toMatchObject({
      id: device.deviceId,
      nonce: connect.nonce,
      signedAt: connect.challengeTs,
    });
    const payload = deviceAuthPayload(device.deviceId, {
      clientId: 'gateway-client',
      clientMode: 'backend',
      role: 'operator',
      scopes: connect.params.scopes as string[],
      token: TOKEN,
      nonce: connect.nonce,
      signedAt: connect.challengeTs,
    });
    const publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: block.publicKey as string },
      format: 'jwk',
    });
    expect(
      verify(
        null,
        Buffer.from(payload),
        publicKey,
        Buffer.from(block.signature as string, 'base64url'),
      ),
    ).toBe(true);
  });

  it('sends no device block when device pairing is disabled for the gateway', async () => {
    const gateway = await fake();
    await clientFor(gateway, { disableDevicePairing: true }).connect();
    expect(gateway.connects[0].params.device).toBeUndefined();
  });

  it('maps a token mismatch to a non-transient auth error', async () => {
    const gateway = await fake();
    const error = await failureOf(clientFor(gateway, { token: 'wrong' }).call('sessions.list', {}));
    expect(error).toBeInstanceOf(GatewayAuthError);
    expect((error as GatewayAuthError).reason).toBe('token_mismatch');
    expect(error.message).toContain('gateway token mismatch');
    expect(isTransientGatewayError(error)).toBe(false);
  });

  it('maps a protocol mismatch to a protocol error', async () => {
    const gateway = await fake();
    gateway.handshake = () => ({
      accept: false,
      error: {
        code: 'INVALID_REQUEST',
        message: 'protocol mismatch',
        details: { code: 'PROTOCOL_MISMATCH', expectedProtocol: 5 },
      },
      closeCode: 1002,
    });
    const error = await failureOf(clientFor(gateway).connect());
    expect(error).toBeInstanceOf(GatewayProtocolError);
    expect(error.message).toContain('expects protocol 5');
    expect(isTransientGatewayError(error)).toBe(false);
  });

  it('refuses a hello-ok with a protocol outside 3..4', async () => {
    const gateway = await fake({ protocol: 7 });
    const error = await failureOf(clientFor(gateway).connect());
    expect(error).toBeInstanceOf(GatewayProtocolError);
    expect(error.message).toContain('negotiated protocol 7');
  });

  it('surfaces a pending pairing request with what the operator must do', async () => {
    const gateway = await fake();
    gateway.handshake = () => ({
      accept: false,
      error: {
        code: 'NOT_PAIRED',
        message: 'pairing required',
        details: { code: 'PAIRING_REQUIRED', requestId: 'req-42' },
      },
    });
    const error = await failureOf(clientFor(gateway).connect());
    expect(error).toBeInstanceOf(GatewayPairingRequiredError);
    expect(error.message).toContain('pairing required');
    expect(error.message).toContain('openclaw devices approve req-42');
    expect(error.message).toContain(device.deviceId);
    expect(isTransientGatewayError(error)).toBe(false);
  });

  it('refuses a connection the gateway accepted with no operator scopes, naming the fix', async () => {
    const gateway = await fake();
    gateway.grantedScopes = [];
    const error = await failureOf(
      clientFor(gateway, { disableDevicePairing: true }).call('sessions.list', {}),
    );
    expect(error).toBeInstanceOf(GatewayAuthError);
    expect((error as GatewayAuthError).reason).toBe('missing_scope');
    expect(error.message).toContain('granted no operator scopes (granted: none)');
    expect(error.message).toContain('clear disable_device_pairing');
    expect(gateway.requests).toEqual([]);
  });

  it('accepts an older gateway whose hello-ok does not report scopes', async () => {
    const gateway = await fake({ protocol: 3 });
    gateway.grantedScopes = 'omit';
    const server = await clientFor(gateway).connect();
    expect(server).toMatchObject({ protocol: 3, grantedScopes: null });
  });

  it('times out a handshake whose challenge never comes in time', async () => {
    const gateway = await fake({ challengeDelayMs: 1_000 });
    const started = Date.now();
    const error = await failureOf(
      clientFor(gateway, {}, { connectTimeoutMs: 200 }).call('sessions.list', {}),
    );
    expect(error).toBeInstanceOf(GatewayTimeoutError);
    expect(Date.now() - started).toBeLessThan(900);
    expect(isTransientGatewayError(error)).toBe(true);
  });

  it('waits out UNAVAILABLE startup-sidecars as told and then connects', async () => {
    const gateway = await fake();
    let refusals = 2;
    gateway.handshake = () =>
      refusals-- > 0
        ? {
            accept: false,
            error: {
              code: 'UNAVAILABLE',
              message: 'gateway starting',
              details: { reason: 'startup-sidecars' },
              retryable: true,
              retryAfterMs: 100,
            },
            closeCode: 1013,
          }
        : { accept: true };
    const client = clientFor(gateway);
    const started = Date.now();
    await expect(client.call('sessions.list', {})).resolves.toEqual({ count: 0, sessions: [] });
    expect(client.dialCount).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('reports a refused connection as transient unavailability', async () => {
    const gateway = await fake();
    const url = gateway.url;
    await gateway.stop();
    gateways.pop();
    const error = await failureOf(clientFor({ url }).call('sessions.list', {}));
    expect(error).toBeInstanceOf(GatewayUnavailableError);
    expect(error.message).toMatch(/ECONNREFUSED/);
    expect(isTransientGatewayError(error)).toBe(true);
  });

  it('refuses a self-signed wss:// certificate unless allow_insecure_tls is set', async () => {
    const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], { keyType: 'ec' });
    const gateway = await fake({ tls: { cert: pems.cert, key: pems.private } });
    expect(gateway.url).toMatch(/^wss:/);

    const error = await failureOf(clientFor(gateway).connect());
    expect(error).toBeInstanceOf(GatewayUnavailableError);
    expect(error.message).toContain('TLS certificate we do not trust');
    expect(error.message).toContain('allow_insecure_tls');
    expect(isTransientGatewayError(error)).toBe(false);
    expect(gateway.connects).toHaveLength(0);

    await expect(clientFor(gateway, { allowInsecureTls: true }).connect()).resolves.toMatchObject({
      protocol: 4,
    });
  });

  it('never repeats a token carried in a stored URL in its messages', async () => {
    const gateway = await fake();
    const url = gateway.url;
    await gateway.stop();
    gateways.pop();
    const error = await failureOf(
      clientFor({ url: `${url}/?token=s3cret-in-url` }).call('sessions.list', {}),
    );
    expect(error.message).toContain('token=***');
    expect(error.message).not.toContain('s3cret');
    const invalid = await failureOf(clientFor({ url: 'not a url?token=s3cret' }).connect());
    expect(invalid.message).toContain('invalid gateway URL');
    expect(invalid.message).not.toContain('s3cret');
  });

  it('reports an HTTP refusal of the upgrade with its status', async () => {
    const server: Server = createServer((_req, res) => {
      res.writeHead(403).end('unattributable proxy-shaped traffic');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const error = await failureOf(clientFor({ url: `ws://127.0.0.1:${port}` }).connect());
      expect(error).toBeInstanceOf(GatewayUnavailableError);
      expect(error.message).toContain('HTTP 403');
      expect(isTransientGatewayError(error)).toBe(false);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('GatewayClient hostile frames in the handshake read', () => {
  // ws parses both frames of one TCP read synchronously, so the second one reaches the
  // connection before the client has bound it; nothing may throw out of a socket callback.
  it.each([
    ['a garbage text frame', { data: 'garbage{', binary: false }, 'not JSON'],
    ['a binary frame', { data: Buffer.from([0, 1, 2, 255]), binary: true }, 'binary frame'],
  ])(
    'survives hello-ok and %s in one TCP write: a protocol error, no crash, no leaked socket',
    async (_what, trailer, expected) => {
      const uncaught: unknown[] = [];
      const record = (error: unknown): void => {
        uncaught.push(error);
      };
      process.on('uncaughtException', record);
      try {
        const gateway = await fake();
        gateway.helloTrailer = trailer;
        const client = clientFor(gateway);
        const error = await failureOf(client.connect());
        expect(error).toBeInstanceOf(GatewayProtocolError);
        expect(error.message).toContain(expected);
        await waitUntil(() => gateway.sockets.size === 0, {
          what: () => 'the client never closed its socket',
        });
        expect(client.state).not.toBe('open');
        gateway.helloTrailer = null;
        await expect(client.call('sessions.list', {})).resolves.toBeDefined();
        expect(uncaught).toEqual([]);
      } finally {
        process.off('uncaughtException', record);
      }
    },
  );
});

describe('GatewayClient requests', () => {
  it('multiplexes concurrent requests on one socket and matches answers by id', async () => {
    const gateway = await fake();
    gateway.methods.echo = async (params) => {
      await new Promise((resolve) => setTimeout(resolve, Number(params.delay)));
      return { n: params.n };
    };
    const client = clientFor(gateway);
    const answers = await Promise.all(
      [50, 10, 30, 0, 20].map((delay, n) => client.call('echo', { n, delay })),
    );
    expect(answers).toEqual([0, 1, 2, 3, 4].map((n) => ({ n })));
    expect(gateway.upgrades).toBe(1);
  });

  it('keeps the gateway error code, message, details and retry hint of a failed method', async () => {
    const gateway = await fake();
    gateway.methods['agents.files.set'] = () => {
      throw new FakeRpcError({
        code: 'INVALID_REQUEST',
        message: 'unsupported file "TOOLS.md"',
        details: { name: 'TOOLS.md' },
      });
    };
    const client = clientFor(gateway);
    const error = await failureOf(client.call('agents.files.set', {}));
    expect(error).toBeInstanceOf(GatewayRpcError);
    expect(error).toMatchObject({
      method: 'agents.files.set',
      gatewayCode: 'INVALID_REQUEST',
      message: 'unsupported file "TOOLS.md"',
      details: { name: 'TOOLS.md' },
      retryable: false,
    });
    expect(isTransientGatewayError(error)).toBe(false);
    // A method error leaves the socket open.
    await client.call('sessions.list', {});
    expect(gateway.upgrades).toBe(1);
  });

  it('maps a missing scope to an auth error', async () => {
    const gateway = await fake();
    gateway.methods['sessions.list'] = () => {
      throw new FakeRpcError({
        code: 'FORBIDDEN',
        message: 'missing scope: operator.read',
        details: { code: 'MISSING_SCOPE', missingScope: 'operator.read' },
      });
    };
    const error = await failureOf(clientFor(gateway).call('sessions.list', {}));
    expect(error).toBeInstanceOf(GatewayAuthError);
    expect((error as GatewayAuthError).reason).toBe('missing_scope');
  });

  it('retries a method answered UNAVAILABLE with retryAfterMs', async () => {
    const gateway = await fake();
    let busy = 1;
    gateway.methods.status = () => {
      if (busy-- > 0) {
        throw new FakeRpcError({
          code: 'UNAVAILABLE',
          message: 'busy',
          retryable: true,
          retryAfterMs: 50,
        });
      }
      return { ok: true };
    };
    await expect(clientFor(gateway).call('status', {})).resolves.toEqual({ ok: true });
    expect(gateway.requests.filter((r) => r.method === 'status')).toHaveLength(2);
  });

  it('times out a request the gateway never answers, and the socket stays usable', async () => {
    const gateway = await fake();
    gateway.methods.hang = () => NEVER;
    const client = clientFor(gateway);
    const started = Date.now();
    const error = await failureOf(client.call('hang', {}, { timeoutMs: 150 }));
    expect(error).toBeInstanceOf(GatewayTimeoutError);
    expect(error.message).toBe(
      'gateway did not answer hang within 150 ms; hang may have been applied',
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect(client.call('sessions.list', {})).resolves.toBeDefined();
    expect(gateway.upgrades).toBe(1);
  });

  it('fails in-flight requests on a garbage frame, then redials for the next call', async () => {
    const gateway = await fake();
    gateway.methods.garbage = () => ({ raw: 'this is not json{' });
    const client = clientFor(gateway);
    const error = await failureOf(client.call('garbage', {}));
    expect(error).toBeInstanceOf(GatewayProtocolError);
    expect(error.message).toContain('not JSON');
    await expect(client.call('sessions.list', {})).resolves.toBeDefined();
    expect(gateway.upgrades).toBe(2);
  });

  it('fails a read whose socket closes mid-request as transient', async () => {
    const gateway = await fake();
    gateway.methods['sessions.list'] = () => ({ close: 1012, reason: 'service restart' });
    const client = clientFor(gateway);
    const error = await failureOf(client.call('sessions.list', {}));
    expect(error).toBeInstanceOf(GatewayUnavailableError);
    expect(error.message).toContain('received 1012 service restart');
    expect(isTransientGatewayError(error)).toBe(true);
  });

  it('retries after a timeout or a lost answer only what is safe to repeat', async () => {
    const gateway = await fake();
    for (const method of ['agents.create', 'sessions.list', 'chat.send']) {
      gateway.methods[method] = () => NEVER;
    }
    gateway.methods['agents.delete'] = () => ({ close: 1012, reason: 'service restart' });
    const client = clientFor(gateway);
    const timedOut = async (method: string, params: object = {}) =>
      isTransientGatewayError(await failureOf(client.call(method, params, { timeoutMs: 100 })));
    // The gateway may have applied a request it did not answer: repeating a create could
    // create twice; a read, or a send carrying an idempotency key, is safe to repeat.
    expect(await timedOut('agents.create', { name: 'a' })).toBe(false);
    expect(await timedOut('sessions.list')).toBe(true);
    expect(
      await timedOut('chat.send', { sessionKey: 'k', message: 'm', idempotencyKey: 'i' }),
    ).toBe(true);
    const dropped = await failureOf(client.call('agents.delete', { agentId: 'a' }));
    expect(dropped).toBeInstanceOf(GatewayUnavailableError);
    expect(dropped.message).toContain('agents.delete may have been applied');
    expect(isTransientGatewayError(dropped)).toBe(false);
  });

  it('bounds the retries of an UNAVAILABLE answer with retryAfterMs 0', async () => {
    const gateway = await fake();
    gateway.methods.busy = () => {
      throw new FakeRpcError({ code: 'UNAVAILABLE', message: 'busy', retryAfterMs: 0 });
    };
    const client = clientFor(gateway);
    const error = await failureOf(client.call('busy', {}, { timeoutMs: 1_000 }));
    expect(error).toMatchObject({ gatewayCode: 'UNAVAILABLE', message: 'busy' });
    const attempts = gateway.requests.filter((request) => request.method === 'busy').length;
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThanOrEqual(5);
  });

  it('declares a silent gateway dead after two tick intervals', async () => {
    const gateway = await fake({ tickIntervalMs: 100, ticks: false });
    gateway.methods.hang = () => NEVER;
    const client = clientFor(gateway);
    const error = await failureOf(client.call('hang', {}, { timeoutMs: 5_000 }));
    expect(error).toBeInstanceOf(GatewayUnavailableError);
    expect(error.message).toContain('no frame from the gateway in 200 ms');
  });

  it('stays connected while ticks arrive', async () => {
    const gateway = await fake({ tickIntervalMs: 50 });
    const client = clientFor(gateway);
    await client.connect();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(client.state).toBe('open');
    await client.call('sessions.list', {});
    expect(gateway.upgrades).toBe(1);
  });
});

describe('GatewayClient connection sharing and recovery', () => {
  it('makes many concurrent callers during a reconnect wait for one dial', async () => {
    const gateway = await fake();
    const client = clientFor(gateway);
    await client.connect();
    gateway.challengeDelayMs = 100; // keep the redial in flight while callers pile up
    gateway.dropAll();
    await waitUntil(() => client.state !== 'open');

    const answers = await Promise.all(
      Array.from({ length: 50 }, () => client.call('sessions.list', {})),
    );

    expect(answers).toHaveLength(50);
    expect(gateway.upgrades).toBe(2);
    expect(client.dialCount).toBe(2);
  });

  it('redials lazily after the gateway restarts', async () => {
    const gateway = await fake();
    const client = clientFor(gateway);
    await client.call('sessions.list', {});
    await gateway.restart();
    await waitUntil(() => client.state !== 'open');
    await expect(client.call('sessions.list', {})).resolves.toBeDefined();
    expect(client.dialCount).toBe(2);
  });

  it('reconnects a subscribed client in the background with backoff and resumes events', async () => {
    const gateway = await fake();
    const client = clientFor(gateway);
    const events: EventFrame[] = [];
    const states: GatewayConnectionState[] = [];
    client.subscribe({
      onEvent: (event) => events.push(event),
      onState: (state) => states.push(state),
    });
    await waitUntil(() => client.state === 'open');

    gateway.broadcast('chat', { state: 'final', runId: 'r1' });
    gateway.broadcast('sessions.changed', { key: 'agent:main:main' });
    await waitUntil(() => events.length >= 2);

    await gateway.restart(300); // down long enough for several failed attempts
    await waitUntil(() => client.state === 'open', { timeoutMs: 5_000 });
    expect(client.dialCount).toBeGreaterThanOrEqual(3);
    expect(states).toEqual(expect.arrayContaining(['reconnecting', 'connecting', 'open']));

    gateway.broadcast('agent', { stream: 'lifecycle' });
    gateway.broadcast('shutdown', { reason: 'restart' });
    await waitUntil(() => events.length >= 4);
    expect(events.map((event) => event.event)).toEqual(
      expect.arrayContaining(['chat', 'sessions.changed', 'agent', 'shutdown']),
    );
    expect(events.find((event) => event.event === 'chat')?.payload).toEqual({
      state: 'final',
      runId: 'r1',
    });
  });

  it('reconnects a subscriber that joined while a dial was failing, once the gateway is back', async () => {
    const down = await fake();
    const port = down.port;
    await down.stop();
    const client = clientFor({ url: `ws://127.0.0.1:${port}` });
    const dialing = failureOf(client.connect());
    const events: EventFrame[] = [];
    const states: GatewayConnectionState[] = [];
    client.subscribe({
      onEvent: (event) => events.push(event),
      onState: (state) => states.push(state),
    });
    expect(await dialing).toBeInstanceOf(GatewayUnavailableError);

    const gateway = await fake({ port });
    await waitUntil(() => client.state === 'open', {
      timeoutMs: 3_000,
      what: () => `client stayed ${client.state} (states: ${states.join(', ')})`,
    });
    expect(states).toContain('reconnecting');
    gateway.broadcast('chat', { state: 'final', runId: 'after-recovery' });
    await waitUntil(() => events.some((event) => event.event === 'chat'));
  });

  it('closes an idle socket and tells its owner', async () => {
    const gateway = await fake();
    const idled: GatewayClient[] = [];
    const client = clientFor(gateway, {}, { idleCloseMs: 100 }, (idle) => idled.push(idle));
    await client.call('sessions.list', {});
    expect(gateway.sockets.size).toBe(1);
    await waitUntil(() => gateway.sockets.size === 0);
    expect(idled).toEqual([client]);
    expect(client.state).toBe('closed');
  });

  it('with idleCloseMs 0 closes the socket once its last call answered, and dials per call', async () => {
    const gateway = await fake();
    const idled: GatewayClient[] = [];
    const client = clientFor(gateway, {}, { idleCloseMs: 0 }, (idle) => idled.push(idle));
    // Concurrent calls share the one socket while any is in flight.
    await Promise.all([client.call('sessions.list', {}), client.call('sessions.list', {})]);
    expect(client.dialCount).toBe(1);
    await waitUntil(() => gateway.sockets.size === 0);
    expect(idled).toEqual([client]);
    expect(client.state).toBe('closed');
  });

  it('fails pending requests when closed for shutdown, and refuses later calls', async () => {
    const gateway = await fake();
    gateway.methods.hang = () => NEVER;
    const client = clientFor(gateway);
    const pending = failureOf(client.call('hang', {}));
    await waitUntil(() => gateway.requests.some((request) => request.method === 'hang'));
    client.close('application shutting down');
    const error = await pending;
    expect(error).toBeInstanceOf(GatewayUnavailableError);
    expect(error.message).toBe('application shutting down');
    await expect(client.call('sessions.list', {})).rejects.toThrow('shut down');
    await waitUntil(() => gateway.sockets.size === 0);
  });
});

describe('GatewayMethods on the wire', () => {
  it('sends closed parameter objects and a fresh idempotency key per chat.send', async () => {
    const gateway = await fake();
    gateway.methods['chat.send'] = (params) => ({
      runId: params.idempotencyKey,
      status: 'started',
    });
    gateway.methods['sessions.patch'] = (params) => ({ ok: true, key: params.key });
    const methods = new GatewayMethods(clientFor(gateway));
    const wide = { key: 'agent:a:main', label: 'A (agent:a:main)', extra: 'leak' };
    await methods.sessionsPatch(wide);
    const first = await methods.chatSend({ sessionKey: 'agent:a:main', message: 'hi' });
    const second = await methods.chatSend({
      sessionKey: 'agent:a:main',
      message: 'hi',
      deliver: true,
    });

    const [patch, send1, send2] = gateway.requests;
    expect(patch).toEqual({
      method: 'sessions.patch',
      params: { key: 'agent:a:main', label: 'A (agent:a:main)' },
    });
    expect(Object.keys(send1.params).sort()).toEqual(
      ['deliver', 'idempotencyKey', 'message', 'sessionKey'].sort(),
    );
    expect(send1.params.deliver).toBe(false);
    expect(send2.params.deliver).toBe(true);
    expect(first.runId).not.toEqual(second.runId);
  });

  it('retries a chat.send whose answer was lost with the same idempotency key', async () => {
    const gateway = await fake();
    const delivered = new Map<string, string>();
    let sends = 0;
    gateway.methods['chat.send'] = (params) => {
      sends += 1;
      const key = String(params.idempotencyKey);
      const status = delivered.has(key) ? 'in_flight' : 'started';
      delivered.set(key, String(params.message));
      // The first send is applied, then its answer is lost with the socket.
      if (sends === 1) return { close: 1012, reason: 'service restart' };
      return { runId: key, status };
    };
    const methods = new GatewayMethods(clientFor(gateway));
    const result = await methods.chatSend({ sessionKey: 'agent:a:main', message: 'once' });
    const sent = gateway.requests.filter((request) => request.method === 'chat.send');
    expect(sent).toHaveLength(2);
    expect(sent[1].params.idempotencyKey).toBe(sent[0].params.idempotencyKey);
    expect(delivered.size).toBe(1);
    expect(result).toEqual({ runId: sent[0].params.idempotencyKey, status: 'in_flight' });

    await methods.chatSend({ sessionKey: 'agent:a:main', message: 'x', idempotencyKey: 'mine' });
    expect(gateway.requests.at(-1)?.params.idempotencyKey).toBe('mine');
  });
});

/**
 * chat.send on `gateway` leaves its first send unanswered and answers later ones "in flight";
 * returns a reader of how many sends arrived.
 */
function answerChatSendFromTheSecond(gateway: FakeGateway): () => number {
  let sends = 0;
  gateway.methods['chat.send'] = (params) => {
    sends += 1;
    // The first send is never answered (applied or not, the key de-duplicates it).
    if (sends === 1) return NEVER;
    return { runId: params.idempotencyKey, status: 'in_flight' };
  };
  return () => sends;
}

describe('review findings: bounded waits, no echo, no endless redial', () => {
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('retries a chat.send that timed out, with the same key, before its budget is spent', async () => {
    const gateway = await fake();
    answerChatSendFromTheSecond(gateway);
    // The request timeout (2 s) is longer than the dispatch budget, as 30 s vs 15 s by default.
    const methods = new GatewayMethods(clientFor(gateway, {}, { requestTimeoutMs: 2_000 }));
    const result = await methods.chatSend(
      { sessionKey: 'agent:a:main', message: 'once' },
      {
        retry: {
          timeoutMs: 1_500,
          baseDelayMs: 50,
          maxDelayMs: 100,
          jitter: 0,
          context: 'chat send',
        },
      },
    );
    const sent = gateway.requests.filter((request) => request.method === 'chat.send');
    expect(sent).toHaveLength(2);
    expect(sent[1].params.idempotencyKey).toBe(sent[0].params.idempotencyKey);
    expect(result.status).toBe('in_flight');
  });

  it('with the default budget, resends an unanswered chat.send even when requests may take 30 s', async () => {
    const gateway = await fake();
    const sends = answerChatSendFromTheSecond(gateway);
    const methods = new GatewayMethods(clientFor(gateway, {}, { requestTimeoutMs: 30_000 }));
    let bound: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      methods.chatSend({ sessionKey: 'agent:a:main', message: 'default budget' }),
      new Promise<'still pending'>((resolve) => {
        bound = setTimeout(() => resolve('still pending'), 12_000);
      }),
    ]).finally(() => clearTimeout(bound));
    expect(outcome).toMatchObject({ status: 'in_flight' });
    expect(sends()).toBe(2);
  }, 20_000);

  it('idle-closes a client whose dial outlasted the idle timer (never pooled forever)', async () => {
    // A server that accepts TCP and never answers the WebSocket upgrade.
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const idled: GatewayClient[] = [];
      const client = clientFor(
        { url: `ws://127.0.0.1:${port}` },
        {},
        { idleCloseMs: 200, connectTimeoutMs: 800 },
        (idle) => idled.push(idle),
      );
      const error = await failureOf(client.call('sessions.list', {}, { timeoutMs: 100 }));
      expect(error).toBeInstanceOf(GatewayTimeoutError);
      await waitUntil(() => client.state === 'closed', {
        timeoutMs: 4_000,
        what: () => `client stayed ${client.state}`,
      });
      expect(idled).toEqual([client]);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('bounds a cold device-key load by the dial deadline', async () => {
    const gateway = await fake();
    const client = new GatewayClient(
      { url: gateway.url, token: TOKEN, disableDevicePairing: false, allowInsecureTls: false },
      { ...SETTINGS, connectTimeoutMs: 300, idleCloseMs: 100 },
      () => new Promise<DeviceIdentity>(() => undefined),
    );
    clients.push(client);
    const error = await failureOf(client.connect(3_000));
    expect(error).toBeInstanceOf(GatewayTimeoutError);
    expect(error.message).toContain('device identity');
    await waitUntil(() => client.state === 'closed', {
      timeoutMs: 2_000,
      what: () => `client stayed ${client.state}`,
    });
  });

  it('stops redialling for subscribers on a failure waiting cannot heal; a call restarts it', async () => {
    const gateway = await fake();
    const client = clientFor(gateway, { token: 'wrong-token' });
    const states: { state: GatewayConnectionState; error?: GatewayError }[] = [];
    const events: EventFrame[] = [];
    client.subscribe({
      onEvent: (event) => events.push(event),
      onState: (state, error) => states.push({ state, error }),
    });
    await waitUntil(() => states.some(({ state }) => state === 'failed'), {
      what: () => `states: ${states.map(({ state }) => state).join(', ')}`,
    });
    expect(states.find(({ state }) => state === 'failed')?.error).toBeInstanceOf(GatewayAuthError);
    // Backoff is 20..200 ms here: a client still redialling would have dialled again by now.
    await pause(600);
    expect(gateway.connects).toHaveLength(1);
    expect(client.state).toBe('failed');

    gateway.handshake = () => ({ accept: true });
    await expect(client.call('sessions.list', {})).resolves.toBeDefined();
    gateway.broadcast('chat', { state: 'final', runId: 'after-fix' });
    await waitUntil(() => events.some((event) => event.event === 'chat'));
  });

  it('stops redialling for subscribers when the dial policy refuses the gateway', async () => {
    const gateway = await fake();
    const client = clientFor(gateway, {}, { dialPolicy: new DialPolicy(['10.0.0.0/8']) });
    const states: { state: GatewayConnectionState; error?: GatewayError }[] = [];
    client.subscribe({
      onEvent: () => undefined,
      onState: (state, error) => states.push({ state, error }),
    });
    await waitUntil(() => client.state === 'failed', { what: () => `state ${client.state}` });
    expect(states.at(-1)?.error).toBeInstanceOf(GatewayDialRefusedError);
    await pause(600);
    expect(client.dialCount).toBe(1);
    expect(gateway.upgrades).toBe(0);
  });

  it('never repeats the close reason a peer sent, only its code', async () => {
    const gateway = await fake();
    gateway.methods['sessions.list'] = () => ({ close: 4001, reason: 'internal-secret-xyz' });
    const client = clientFor(gateway);
    const error = await failureOf(client.call('sessions.list', {}));
    expect(error.message).toContain('received 4001');
    expect(error.message).not.toContain('internal-secret-xyz');
  });

  it('clamps an absurd tickIntervalMs, so the liveness timer cannot overflow and fire at once', async () => {
    const gateway = await fake({ tickIntervalMs: 2 ** 31, ticks: false });
    const client = clientFor(gateway);
    await client.connect();
    await pause(300);
    expect(client.state).toBe('open');
    await client.call('sessions.list', {});
    expect(gateway.upgrades).toBe(1);
  });
});
