/**
 * An in-process gateway speaking the OpenClaw frame protocol, for what a real gateway cannot
 * be made to do on demand: garbage frames, dropping mid-request, never answering, slow or
 * refused handshakes, restarts. Behaviour is set per test through hooks.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

export interface FakeWireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
  retryable?: boolean;
  retryAfterMs?: number;
}

/** Thrown by a method handler to answer `ok: false`. */
export class FakeRpcError extends Error {
  constructor(readonly wire: FakeWireError) {
    super(wire.message);
  }
}

/** Special answers a method handler can return. */
export const NEVER = Symbol('never answer');
export interface SendRaw {
  raw: string;
}
export interface CloseSocket {
  close: number;
  reason?: string;
}

export type MethodHandler = (params: Record<string, unknown>, socket: WebSocket) => unknown;

export type HandshakeVerdict =
  { accept: true } | { accept: false; error: FakeWireError; closeCode?: number };

export interface ConnectRecord {
  params: Record<string, unknown>;
  /** The upgrade request's path and query. */
  url: string;
  headers: IncomingHttpHeaders;
  nonce: string;
  challengeTs: number;
}

export interface FakeGatewayOptions {
  port?: number;
  token?: string;
  protocol?: number;
  tickIntervalMs?: number;
  /** Send `tick` events at tickIntervalMs (default true). */
  ticks?: boolean;
  challengeDelayMs?: number;
  /** Serve wss:// with this certificate. */
  tls?: { cert: string; key: string };
}

export class FakeGateway {
  /** WebSocket upgrades accepted, in total. */
  upgrades = 0;
  readonly connects: ConnectRecord[] = [];
  readonly requests: { method: string; params: Record<string, unknown> }[] = [];
  /** When each of `requests` arrived (Date.now()). */
  readonly arrivedAt = new WeakMap<object, number>();
  readonly sockets = new Set<WebSocket>();
  methods: Record<string, MethodHandler> = {};
  /** Decides each `connect`; the default checks the token. */
  handshake: (record: ConnectRecord) => HandshakeVerdict | Promise<HandshakeVerdict>;
  challengeDelayMs: number;
  ticks: boolean;
  /** Scopes granted in hello-ok; null grants what was asked; 'omit' sends no `auth` block. */
  grantedScopes: string[] | null | 'omit' = null;
  /**
   * A frame written in the SAME TCP write as `hello-ok` (raw WebSocket framing on the
   * underlying socket), so the client's `ws` parses both in one read, synchronously.
   */
  helloTrailer: { data: string | Buffer; binary: boolean } | null = null;
  private server!: WebSocketServer;
  private https: HttpsServer | null = null;
  private readonly tickTimers = new Set<NodeJS.Timeout>();

  private constructor(private readonly options: FakeGatewayOptions) {
    this.challengeDelayMs = options.challengeDelayMs ?? 0;
    this.ticks = options.ticks ?? true;
    this.handshake = (record) => {
      const auth = record.params.auth as { token?: string } | undefined;
      if (options.token !== undefined && auth?.token !== options.token) {
        return {
          accept: false,
          error: {
            code: 'INVALID_REQUEST',
            message: 'unauthorized: gateway token mismatch (provide gateway auth token)',
            details: { code: 'AUTH_TOKEN_MISMATCH', authReason: 'token_mismatch' },
          },
          closeCode: 1008,
        };
      }
      return { accept: true };
    };
    this.methods = {
      'sessions.list': () => ({ count: 0, sessions: [] }),
    };
  }

  static async start(options: FakeGatewayOptions = {}): Promise<FakeGateway> {
    const gateway = new FakeGateway(options);
    await gateway.listen(options.port ?? 0);
    return gateway;
  }

  get port(): number {
    return ((this.https ?? this.server).address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.options.tls ? 'wss' : 'ws'}://127.0.0.1:${this.port}`;
  }

  get tickIntervalMs(): number {
    return this.options.tickIntervalMs ?? 30_000;
  }

  /** Sends an event to every connected client. */
  broadcast(event: string, payload: unknown): void {
    const frame = JSON.stringify({ type: 'event', event, payload });
    for (const socket of this.sockets) socket.send(frame);
  }

  /** Drops every connection (as a crashing gateway would). */
  dropAll(code = 1012, reason = 'service restart'): void {
    for (const socket of this.sockets) socket.close(code, reason);
  }

  async stop(): Promise<void> {
    for (const timer of this.tickTimers) clearInterval(timer);
    this.tickTimers.clear();
    for (const socket of this.sockets) socket.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.https) {
      const https = this.https;
      this.https = null;
      https.closeAllConnections();
      await new Promise<void>((resolve) => https.close(() => resolve()));
    }
  }

  /** Stops, stays down for `downMs`, and listens again on the same port. */
  async restart(downMs = 0): Promise<void> {
    const port = this.port;
    await this.stop();
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.listen(port);
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const tls = this.options.tls;
      if (tls) {
        const https = createHttpsServer({ cert: tls.cert, key: tls.key });
        const server = new WebSocketServer({ server: https });
        server.on('connection', (socket, request) =>
          this.accept(socket, request.headers, request.url ?? ''),
        );
        https.once('error', reject);
        https.listen(port, '127.0.0.1', () => {
          this.server = server;
          this.https = https;
          resolve();
        });
        return;
      }
      const server = new WebSocketServer({ host: '127.0.0.1', port });
      server.once('error', reject);
      server.once('listening', () => {
        this.server = server;
        resolve();
      });
      server.on('connection', (socket, request) =>
        this.accept(socket, request.headers, request.url ?? ''),
      );
    });
  }

  private accept(socket: WebSocket, headers: IncomingHttpHeaders, url: string): void {
    this.upgrades += 1;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const nonce = `nonce-${this.upgrades}-${Math.random().toString(36).slice(2)}`;
    const challengeTs = Date.now();
    let connected = false;
    const sendChallenge = (): void => {
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(
        JSON.stringify({
          type: 'event',
          event: 'connect.challenge',
          payload: { nonce, ts: challengeTs },
        }),
      );
    };
    if (this.challengeDelayMs > 0) setTimeout(sendChallenge, this.challengeDelayMs);
    else sendChallenge();

    socket.on('message', (data) => {
      void (async () => {
        let frame: { type?: string; id?: string; method?: string; params?: unknown };
        try {
          frame = JSON.parse(Buffer.from(data as Buffer).toString('utf8')) as typeof frame;
        } catch {
          socket.close(1000);
          return;
        }
        const id = frame.id ?? '';
        const params = (frame.params ?? {}) as Record<string, unknown>;
        if (!connected) {
          if (frame.method !== 'connect') {
            socket.close(1008, 'invalid handshake: first request must be connect');
            return;
          }
          const record: ConnectRecord = { params, url, headers, nonce, challengeTs };
          this.connects.push(record);
          const verdict = await this.handshake(record);
          if (!verdict.accept) {
            socket.send(JSON.stringify({ type: 'res', id, ok: false, error: verdict.error }));
            socket.close(verdict.closeCode ?? 1008, verdict.error.message.slice(0, 100));
            return;
          }
          connected = true;
          const hello = JSON.stringify({ type: 'res', id, ok: true, payload: this.hello(params) });
          if (this.helloTrailer) {
            const trailer = this.helloTrailer;
            rawSocket(socket).write(
              Buffer.concat([
                wsFrame(Buffer.from(hello), false),
                wsFrame(Buffer.from(trailer.data), trailer.binary),
              ]),
            );
            return;
          }
          socket.send(hello);
          if (this.ticks) {
            const timer = setInterval(() => {
              if (socket.readyState === WebSocket.OPEN && this.ticks) {
                socket.send(
                  JSON.stringify({ type: 'event', event: 'tick', payload: { ts: Date.now() } }),
                );
              }
            }, this.tickIntervalMs);
            timer.unref();
            this.tickTimers.add(timer);
            socket.on('close', () => {
              clearInterval(timer);
              this.tickTimers.delete(timer);
            });
          }
          return;
        }
        const method = frame.method ?? '';
        const request = { method, params };
        this.arrivedAt.set(request, Date.now());
        this.requests.push(request);
        const handler = this.methods[method];
        if (!handler) {
          this.reply(
            socket,
            id,
            new FakeRpcError({ code: 'INVALID_REQUEST', message: `unknown method: ${method}` }),
          );
          return;
        }
        try {
          this.reply(socket, id, await handler(params, socket));
        } catch (error) {
          this.reply(socket, id, error);
        }
      })();
    });
  }

  private reply(socket: WebSocket, id: string, answer: unknown): void {
    if (socket.readyState !== WebSocket.OPEN || answer === NEVER) return;
    if (answer instanceof FakeRpcError) {
      socket.send(JSON.stringify({ type: 'res', id, ok: false, error: answer.wire }));
    } else if (isRaw(answer)) {
      socket.send(answer.raw);
    } else if (isClose(answer)) {
      socket.close(answer.close, answer.reason);
    } else if (answer instanceof Error) {
      socket.send(
        JSON.stringify({
          type: 'res',
          id,
          ok: false,
          error: { code: 'UNAVAILABLE', message: answer.message },
        }),
      );
    } else {
      socket.send(JSON.stringify({ type: 'res', id, ok: true, payload: answer }));
    }
  }

  private hello(params: Record<string, unknown>): Record<string, unknown> {
    const auth =
      this.grantedScopes === 'omit'
        ? undefined
        : { method: 'token', role: 'operator', scopes: this.grantedScopes ?? params.scopes ?? [] };
    return {
      type: 'hello-ok',
      protocol: this.options.protocol ?? 4,
      server: { version: '2026.9.6-fake', connId: `conn-${this.upgrades}` },
      features: { methods: Object.keys(this.methods), events: ['tick', 'chat'] },
      auth,
      policy: { tickIntervalMs: this.tickIntervalMs, maxPayload: 26214400 },
      snapshot: { sessionDefaults: { defaultAgentId: 'main', mainSessionKey: 'agent:main:main' } },
    };
  }
}

function isRaw(value: unknown): value is SendRaw {
  return typeof value === 'object' && value !== null && 'raw' in value;
}

function isClose(value: unknown): value is CloseSocket {
  return typeof value === 'object' && value !== null && 'close' in value;
}

/** The TCP socket under a server-side `ws` socket (a private field of `ws`). */
function rawSocket(socket: WebSocket): Socket {
  return (socket as unknown as { _socket: Socket })._socket;
}

/** One unmasked, unfragmented server-to-client WebSocket frame. */
export function wsFrame(payload: Buffer, binary: boolean): Buffer {
  const opcode = binary ? 0x2 : 0x1;
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([0x80 | opcode, payload.length]);
  } else if (payload.length < 65_536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([header, payload]);
}
