/**
 * Gateway URLs are user input (every user administers their own organization's gateways), so
 * the client must not become a port scanner or a way into cloud metadata: the resolved address
 * is checked before dialling, GATEWAY_ALLOWED_NETWORKS narrows it further, frames are capped,
 * and what callers see names the operation and a short cause, never a remote server's body.
 */
import { createServer, type Server } from 'node:http';
import net, { isIP, type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { type WebSocket, WebSocketServer } from 'ws';
import { GatewayDialRefusedError } from '../../src/common/errors/gateway-errors';
import { DeviceIdentity } from '../../src/openclaw/device-identity';
import { DialPolicy } from '../../src/openclaw/dial-policy';
import { GatewayClient } from '../../src/openclaw/gateway-client';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { isTransientGatewayError } from '../../src/openclaw/retry';
import { FakeGateway } from '../support/fake-gateway';
import { failureOf } from '../support/gateway-failure';
import { createTestApp, type TestApp } from '../support/test-app';

const TOKEN = 'dial-token';
const SECRET_BODY = 'internal-admin-console-secret-7f3a';

/**
 * Runs `use` against a WebSocket server on loopback that is no gateway: `greet` is what it does
 * with each socket. `use` gets its ws:// URL.
 */
async function withPlainWebSocketServer(
  greet: (socket: WebSocket) => void,
  use: (url: string) => Promise<void>,
): Promise<void> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', greet);
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    await use(`ws://127.0.0.1:${port}`);
  } finally {
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * No test in this file may send a packet off this machine, even if the dial policy regressed:
 * every outgoing TCP/TLS connect is checked, and one to anything but loopback is refused
 * before a socket exists and recorded, which fails the test.
 */
const offLoopback: string[] = [];
const loopbackConnects: string[] = [];
function guardedConnect<F extends (...args: never[]) => unknown>(original: F): F {
  return ((...args: unknown[]) => {
    const [first, second] = args;
    const options = typeof first === 'object' && first !== null ? first : {};
    const named = (options as { host?: unknown }).host ?? second;
    const host = (typeof named === 'string' ? named : 'localhost').replace(/^\[(.*)\]$/, '$1');
    const loopback = LOOPBACK_HOSTS.has(host) || (isIP(host) === 4 && host.startsWith('127.'));
    if (!loopback) {
      offLoopback.push(host);
      throw new Error(`test guard: refused to connect to non-loopback ${host}`);
    }
    loopbackConnects.push(host);
    return (original as unknown as (...a: unknown[]) => unknown)(...args);
  }) as unknown as F;
}

describe('gateway dial policy', () => {
  let gateway: FakeGateway;
  let testApp: TestApp | null = null;

  beforeAll(async () => {
    // The originals are taken before any spy replaces them (net.connect is createConnection).
    const originals = { net: net.connect, tls: tls.connect };
    jest.spyOn(net, 'connect').mockImplementation(guardedConnect(originals.net));
    jest.spyOn(net, 'createConnection').mockImplementation(guardedConnect(originals.net));
    jest.spyOn(tls, 'connect').mockImplementation(guardedConnect(originals.tls));
    gateway = await FakeGateway.start({ token: TOKEN });
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await gateway.stop();
  });
  afterEach(async () => {
    await testApp?.close();
    testApp = null;
    expect(offLoopback.splice(0)).toEqual([]);
  });

  it("the connect guard sees the client's dials (so it would catch one off loopback)", async () => {
    const gateways = await service();
    const before = loopbackConnects.length;
    await gateways.methods({ url: gateway.url, token: TOKEN }).sessionsList();
    expect(loopbackConnects.length).toBeGreaterThan(before);
    expect(() => net.connect({ host: '192.0.2.1', port: 9 })).toThrow('test guard');
    offLoopback.length = 0;
  });

  it.each([
    ['metadata.test', ['169.254.169.254'], '169.254.169.254 is a link-local address'],
    ['alibaba.test', ['100.100.100.200'], '100.100.100.200 is a cloud metadata address'],
    ['azure.test', ['168.63.129.16'], '168.63.129.16 is a cloud metadata address'],
    ['rebind.test', ['127.0.0.1', 'fd00:ec2::254'], 'fd00:ec2::254 is a cloud metadata address'],
  ])(
    'refuses the name %s resolving to %j before any socket exists',
    async (host, addresses, reason) => {
      const lookups: string[] = [];
      const policy = new DialPolicy([], {
        lookup: (name) => {
          lookups.push(name);
          return Promise.resolve(addresses);
        },
      });
      const client = new GatewayClient(
        {
          url: `ws://${host}:${gateway.port}`,
          token: TOKEN,
          disableDevicePairing: true,
          allowInsecureTls: false,
        },
        {
          connectTimeoutMs: 1_000,
          requestTimeoutMs: 1_000,
          idleCloseMs: 60_000,
          clientVersion: 'test',
          reconnectBaseMs: 50,
          reconnectMaxMs: 100,
          dialPolicy: policy,
        },
        () => Promise.resolve(DeviceIdentity.generate().identity),
      );
      try {
        const error = await failureOf(client.call('sessions.list', {}));
        expect(error).toBeInstanceOf(GatewayDialRefusedError);
        expect(error.message).toBe(
          `gateway ws://${host}:${gateway.port}/ refused by the dial policy: ${reason}`,
        );
        expect(lookups).toEqual([host]);
      } finally {
        client.close();
      }
    },
  );

  async function service(env: Record<string, string> = {}): Promise<OpenClawGatewayService> {
    testApp = await createTestApp({ OPENCLAW_CONNECT_TIMEOUT_MS: '1000', ...env });
    return testApp.app.get(OpenClawGatewayService);
  }

  it.each([
    ['ws://169.254.169.254/', '169.254.169.254 is a link-local address'],
    ['ws://[::ffff:169.254.169.254]:80/', '::ffff:a9fe:a9fe is a link-local address'],
    ['ws://100.100.100.200/', '100.100.100.200 is a cloud metadata address'],
    ['ws://[fd00:ec2::254]/', 'fd00:ec2::254 is a cloud metadata address'],
  ])('refuses the literal %s before dialling, saying why', async (url, reason) => {
    const gateways = await service();
    const error = await failureOf(gateways.methods({ url, token: TOKEN }).sessionsList());
    expect(error.message).toBe(
      `gateway ${new URL(url).toString()} refused by the dial policy: ${reason}`,
    );
    expect(isTransientGatewayError(error)).toBe(false);
  });

  it('refuses the unspecified address, which Linux would route to this host', async () => {
    const gateways = await service();
    const upgrades = gateway.upgrades;
    const url = `ws://0.0.0.0:${gateway.port}`;
    const error = await failureOf(gateways.methods({ url, token: TOKEN }).sessionsList());
    expect(error.message).toContain('0.0.0.0 is an unspecified address');
    expect(gateway.upgrades).toBe(upgrades);
  });

  it('allows only GATEWAY_ALLOWED_NETWORKS when set, by network or by host name', async () => {
    const narrow = await service({ GATEWAY_ALLOWED_NETWORKS: '10.0.0.0/8, gw.internal' });
    const error = await failureOf(
      narrow.methods({ url: gateway.url, token: TOKEN }).sessionsList(),
    );
    expect(error.message).toBe(
      `gateway ${gateway.url}/ refused by the dial policy: 127.0.0.1 is outside GATEWAY_ALLOWED_NETWORKS`,
    );
    await testApp!.close();
    testApp = null;

    const byNetwork = await service({ GATEWAY_ALLOWED_NETWORKS: '127.0.0.0/8' });
    await expect(
      byNetwork.methods({ url: gateway.url, token: TOKEN }).sessionsList(),
    ).resolves.toBeDefined();
    await testApp!.close();
    testApp = null;

    // A name is dialled at the address that was checked, with the name kept for Host.
    const byName = await service({ GATEWAY_ALLOWED_NETWORKS: 'localhost' });
    const before = gateway.connects.length;
    await expect(
      byName.methods({ url: `ws://localhost:${gateway.port}`, token: TOKEN }).sessionsList(),
    ).resolves.toBeDefined();
    expect(gateway.connects[before].headers.host).toBe(`localhost:${gateway.port}`);
  });

  it('says "unexpected HTTP <status>" for a non-gateway HTTP server, never its body', async () => {
    const server: Server = createServer((_req, res) => res.writeHead(500).end(SECRET_BODY));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const gateways = await service();
      const { port } = server.address() as AddressInfo;
      const error = await failureOf(
        gateways.methods({ url: `ws://127.0.0.1:${port}`, token: TOKEN }).sessionsList(),
      );
      expect(error.message).toBe(
        `gateway ws://127.0.0.1:${port}/: unexpected HTTP 500 to the WebSocket upgrade`,
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('never repeats what a non-gateway WebSocket server sent', async () => {
    await withPlainWebSocketServer(
      (socket) => socket.send(`<html>${SECRET_BODY}</html>`),
      async (url) => {
        const gateways = await service();
        const error = await failureOf(gateways.methods({ url, token: TOKEN }).sessionsList());
        expect(error.message).toContain('not JSON');
        expect(error.message).not.toContain(SECRET_BODY);
      },
    );
  });

  it('closes a socket that receives a frame over OPENCLAW_MAX_PAYLOAD_BYTES, cleanly', async () => {
    const gateways = await service({ OPENCLAW_MAX_PAYLOAD_BYTES: '1048576' });
    gateway.methods.huge = () => ({ blob: 'x'.repeat(2 * 1024 * 1024) });
    const client = gateways.client({ url: gateway.url, token: TOKEN });
    const error = await failureOf(client.call('huge', {}));
    expect(error.message).toBe(
      'gateway sent a frame larger than 1048576 bytes (OPENCLAW_MAX_PAYLOAD_BYTES)',
    );
    await expect(client.call('sessions.list', {})).resolves.toBeDefined();
  });

  it('never repeats the close reason of a non-gateway WebSocket server, only its code', async () => {
    await withPlainWebSocketServer(
      (socket) => socket.close(4001, 'internal-secret-reason-xyz'),
      async (url) => {
        const gateways = await service();
        const error = await failureOf(gateways.methods({ url, token: TOKEN }).sessionsList());
        expect(error.message).toBe(
          'gateway connection closed during the handshake (received 4001)',
        );
      },
    );
  });

  it('moves a ?token= of a stored URL into auth.token, off the request URL', async () => {
    const gateways = await service();
    const before = gateway.connects.length;
    await gateways.methods({ url: `${gateway.url}/?token=${TOKEN}`, token: null }).sessionsList();
    const record = gateway.connects[before];
    expect(record.url).toBe('/');
    expect(record.params.auth).toEqual({ token: TOKEN });
  });
});
