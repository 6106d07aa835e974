/**
 * One WebSocket to one gateway: the protocol-4 handshake, request multiplexing by id with a
 * per-request deadline, and liveness from the gateway's `tick` events. It never reconnects;
 * {@link GatewayClient} owns that. Every failure is a GatewayError.
 */
import { randomUUID } from 'node:crypto';
import type { LookupFunction } from 'node:net';
import WebSocket from 'ws';
import { withDeadline } from '../common/async/deadline';
import {
  GatewayAuthError,
  GatewayDialRefusedError,
  GatewayError,
  GatewayProtocolError,
  GatewayTimeoutError,
  GatewayUnavailableError,
} from '../common/errors/gateway-errors';
import type { DeviceIdentity } from './device-identity';
import { DialPolicy, type DialTarget } from './dial-policy';
import {
  CLIENT_ID,
  CLIENT_MODE,
  CLIENT_ROLE,
  MAX_PROTOCOL,
  MIN_PROTOCOL,
  OPERATOR_SCOPES,
  parseChallenge,
  parseFrame,
  parseHelloOk,
  displayUrl,
  type ConnectParams,
  type EventFrame,
  type GatewayFrame,
  type GatewayServerInfo,
  type ResponseFrame,
} from './protocol';
import { handshakeError, methodError } from './wire-errors';

export interface ConnectionOptions {
  url: string;
  token: string | null;
  /** Signs the challenge when set; token-only when null. */
  device: DeviceIdentity | null;
  allowInsecureTls: boolean;
  connectTimeoutMs: number;
  clientVersion: string;
  /** Which addresses may be dialled (default: everything but link-local/metadata/unspecified). */
  dialPolicy?: DialPolicy;
  /** Largest frame accepted from the gateway; a bigger one closes the socket (1009). */
  maxPayloadBytes?: number;
  /** Receives every event frame except the handshake challenge. */
  onEvent?: (event: EventFrame) => void;
  /**
   * Called once when the socket is gone, with the error pending requests failed with and the
   * connection itself: it can close before `open()` has resolved (a frame batched with
   * `hello-ok` in one TCP read), so the caller must not rely on its own variable for it.
   */
  onClose?: (error: GatewayError, connection: GatewayConnection) => void;
}

interface Pending {
  method: string;
  /** Safe to repeat after its answer was lost (see CallOptions.idempotent). */
  idempotent: boolean;
  resolve: (payload: unknown) => void;
  reject: (error: GatewayError) => void;
  timer: NodeJS.Timeout;
}

/** Close codes the gateway uses that mean "come back later", as the transient rule reads them. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
const DEFAULT_DIAL_POLICY = new DialPolicy();

const CLOSE_REASONS: Record<number, string> = {
  1001: 'going away',
  1006: 'abnormal closure',
  1011: 'internal error',
  1012: 'service restart',
  1013: 'try again later',
};

/** The tick interval a gateway may announce is trusted within these bounds. */
export const MIN_TICK_INTERVAL_MS = 10;
export const MAX_TICK_INTERVAL_MS = 10 * 60_000;

export function clampTickInterval(tickIntervalMs: number): number {
  if (!Number.isFinite(tickIntervalMs)) return MAX_TICK_INTERVAL_MS;
  return Math.min(MAX_TICK_INTERVAL_MS, Math.max(MIN_TICK_INTERVAL_MS, tickIntervalMs));
}

export class GatewayConnection {
  private readonly pending = new Map<string, Pending>();
  private closedWith: GatewayError | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly socket: WebSocket,
    private readonly options: ConnectionOptions,
    readonly server: GatewayServerInfo,
  ) {}

  /**
   * Dials, answers the challenge and waits for `hello-ok`, all within `connectTimeoutMs`.
   * Rejects with the mapped handshake error (auth, pairing, protocol, `UNAVAILABLE`).
   */
  static async open(options: ConnectionOptions): Promise<GatewayConnection> {
    const started = Date.now();
    const targets = await checkedTargets(options);
    const connectTimeoutMs = Math.max(1, options.connectTimeoutMs - (Date.now() - started));
    return new Promise<GatewayConnection>((resolve, reject) => {
      let socket: WebSocket;
      try {
        socket = new WebSocket(options.url, {
          handshakeTimeout: connectTimeoutMs,
          rejectUnauthorized: !options.allowInsecureTls,
          perMessageDeflate: false,
          // No Origin / X-Forwarded-For: the gateway treats either as a browser or proxy.
          followRedirects: false,
          maxPayload: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
          // Connect to the addresses the dial policy checked, not to a second DNS answer
          // (rebinding); Host and TLS SNI keep the name from the URL.
          ...(targets ? { lookup: pinnedLookup(targets) } : {}),
        });
      } catch (error) {
        reject(
          new GatewayUnavailableError(`invalid gateway URL ${displayUrl(options.url)}`, {
            cause: error,
            retryable: false,
          }),
        );
        return;
      }

      const connectId = randomUUID();
      let settled = false;
      let lastError: GatewayError | null = null;
      const fail = (error: GatewayError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        socket.removeAllListeners('message');
        if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
          socket.terminate();
        }
        reject(error);
      };
      const deadline = setTimeout(() => {
        fail(
          new GatewayTimeoutError(
            `connect to gateway ${displayUrl(options.url)} timed out after ${options.connectTimeoutMs} ms`,
          ),
        );
      }, connectTimeoutMs);
      deadline.unref();

      socket.on('error', (error: NodeJS.ErrnoException) => {
        lastError = socketError(options, error);
        fail(lastError);
      });
      socket.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        // The status only: whatever answered may not be a gateway, and its body is not ours
        // to repeat.
        fail(
          new GatewayUnavailableError(
            `gateway ${displayUrl(options.url)}: unexpected HTTP ${status} to the WebSocket upgrade`,
            { retryable: status === 502 || status === 503 || status === 504 },
          ),
        );
        res.destroy();
      });
      socket.on('close', (code: number) => {
        fail(lastError ?? closeError(code, 'during the handshake'));
      });

      socket.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        if (settled) return;
        try {
          const frame = decodeFrame(data, isBinary);
          if (frame === null) return;
          if (frame.type === 'event') {
            if (frame.event !== 'connect.challenge') return;
            const challenge = parseChallenge(frame.payload);
            const params = connectParams(options, challenge.nonce, challenge.ts ?? Date.now());
            socket.send(JSON.stringify({ type: 'req', id: connectId, method: 'connect', params }));
            return;
          }
          if (frame.id !== connectId) return;
          if (!frame.ok) {
            // The gateway closes right after a failed connect; keep its reason, not the close.
            lastError = handshakeError(frame.error ?? unknownError(), {
              deviceId: options.device?.deviceId ?? null,
            });
            fail(lastError);
            return;
          }
          const server = parseHelloOk(frame.payload);
          const scopeProblem = missingScopes(server, options);
          if (scopeProblem) {
            fail(scopeProblem);
            return;
          }
          settled = true;
          clearTimeout(deadline);
          socket.removeAllListeners();
          resolve(new GatewayConnection(socket, options, server).attach());
        } catch (error) {
          fail(
            error instanceof GatewayError
              ? error
              : new GatewayProtocolError('gateway handshake failed', { cause: error }),
          );
        }
      });
    });
  }

  get isOpen(): boolean {
    return this.closedWith === null && this.socket.readyState === WebSocket.OPEN;
  }

  /** Why the connection closed (null while open). */
  get failure(): GatewayError | null {
    return this.closedWith;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Sends one request and resolves with its payload, or rejects with a GatewayError. */
  request<T = unknown>(
    method: string,
    params: object,
    timeoutMs: number,
    /** The caller's whole deadline, for the message (part of it may be spent dialling). */
    statedTimeoutMs = timeoutMs,
    /** Whether a lost answer may be retried: a timed-out request may have been applied. */
    idempotent = true,
  ): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = randomUUID();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new GatewayTimeoutError(
            `gateway did not answer ${method} within ${statedTimeoutMs} ms` +
              (idempotent ? '' : `; ${method} may have been applied`),
            { retryable: idempotent },
          ),
        );
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, {
        method,
        idempotent,
        resolve: resolve as (payload: unknown) => void,
        reject,
        timer,
      });
      const frame = JSON.stringify({ type: 'req', id, method, params });
      this.socket.send(frame, (error) => {
        if (error) this.settle(id, closeError(1006, `while sending ${method}`));
      });
    });
  }

  /** Closes the socket; pending requests fail with `error`. */
  close(error: GatewayError, code = 1000, reason = 'client closing'): void {
    if (this.closedWith) return;
    this.shutdown(error, true);
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(code, reason);
    else this.socket.terminate();
  }

  /**
   * Wires the socket to this connection. Every listener is guarded: an exception escaping a
   * socket or timer callback would be an uncaught exception and take the process down.
   */
  private attach(): this {
    const socket = this.socket;
    socket.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      this.livenessTimer?.refresh();
      this.guarded('gateway frame handling failed', () => {
        const frame = decodeFrame(data, isBinary);
        if (frame === null) return;
        if (frame.type === 'res') this.onResponse(frame);
        else this.options.onEvent?.(frame);
      });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.guarded('gateway socket error handling failed', () =>
        this.shutdown(socketError(this.options, error)),
      );
    });
    socket.on('close', (code: number) => {
      this.guarded('gateway close handling failed', () => this.shutdown(closeError(code, '')));
    });
    // The gateway ticks every tickIntervalMs; two silent intervals mean it is gone. Clamped:
    // a timer past 2^31-1 ms fires after 1 ms (constant reconnects), one near 0 at once.
    const silence = clampTickInterval(this.server.tickIntervalMs) * 2;
    this.livenessTimer = setTimeout(() => {
      this.guarded('gateway liveness check failed', () =>
        this.fail(
          new GatewayUnavailableError(
            `gateway connection timed out: no frame from the gateway in ${silence} ms`,
          ),
        ),
      );
    }, silence);
    this.livenessTimer.unref();
    return this;
  }

  /** Runs a socket/timer callback body; whatever it throws closes the connection instead. */
  private guarded(what: string, body: () => void): void {
    try {
      body();
    } catch (error) {
      try {
        this.fail(
          error instanceof GatewayError ? error : new GatewayProtocolError(what, { cause: error }),
        );
      } catch {
        // fail() only settles promises and terminates a socket; nothing left to do here.
      }
    }
  }

  /** Shuts down with `error` and drops the socket (terminate never throws). */
  private fail(error: GatewayError): void {
    try {
      this.shutdown(error);
    } finally {
      this.socket.terminate();
    }
  }

  private onResponse(frame: ResponseFrame): void {
    const pending = this.pending.get(frame.id);
    if (!pending) return; // answered after its deadline
    if (frame.ok) {
      this.pending.delete(frame.id);
      clearTimeout(pending.timer);
      pending.resolve(frame.payload);
      return;
    }
    this.settle(frame.id, methodError(pending.method, frame.error ?? unknownError()));
  }

  private settle(id: string, error: GatewayError): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  /** `byUs`: we closed it on purpose (shutdown, idle), so pending calls get `error` as is. */
  private shutdown(error: GatewayError, byUs = false): void {
    if (this.closedWith) return;
    this.closedWith = error;
    if (this.livenessTimer) clearTimeout(this.livenessTimer);
    for (const [id, pending] of [...this.pending.entries()]) {
      const lost = !byUs && !pending.idempotent;
      this.settle(id, lost ? answerLost(pending.method, error) : error);
    }
    try {
      this.options.onClose?.(error, this);
    } catch {
      // The owner's bookkeeping must not break the socket's close path.
    }
  }
}

function connectParams(options: ConnectionOptions, nonce: string, signedAt: number): ConnectParams {
  const scopes = [...OPERATOR_SCOPES];
  const params: ConnectParams = {
    minProtocol: MIN_PROTOCOL,
    maxProtocol: MAX_PROTOCOL,
    client: {
      id: CLIENT_ID,
      version: options.clientVersion,
      platform: process.platform,
      mode: CLIENT_MODE,
    },
    role: CLIENT_ROLE,
    scopes,
  };
  if (options.token) params.auth = { token: options.token };
  if (options.device) {
    params.device = options.device.signConnect({
      clientId: CLIENT_ID,
      clientMode: CLIENT_MODE,
      role: CLIENT_ROLE,
      scopes,
      token: options.token,
      nonce,
      signedAt,
    });
  }
  return params;
}

/**
 * A gateway that does not trust the connection still says hello, but with no scopes (a remote
 * client without a paired device, or one that looked like a browser); every call would then
 * fail with "missing scope". Say so once, at connect, with the fix.
 */
function missingScopes(
  server: GatewayServerInfo,
  options: ConnectionOptions,
): GatewayAuthError | null {
  if (server.grantedScopes === null) return null; // not reported: nothing to judge by
  const granted = new Set(server.grantedScopes);
  if (granted.has('operator.admin') || granted.has('operator.read')) return null;
  const fix = options.device
    ? 'check the gateway operator scope policy for this device'
    : 'remote gateways grant scopes only to a paired device: clear disable_device_pairing for this gateway and approve the pairing request';
  return new GatewayAuthError(
    'missing_scope',
    `gateway ${displayUrl(options.url)} accepted the connection but granted no operator scopes ` +
      `(granted: ${server.grantedScopes.join(', ') || 'none'}); ${fix}`,
  );
}

/** The gateway speaks JSON text frames only. */
function decodeFrame(data: WebSocket.RawData, isBinary: boolean): GatewayFrame | null {
  if (isBinary) throw new GatewayProtocolError('gateway sent a binary frame');
  if (Array.isArray(data)) return parseFrame(Buffer.concat(data).toString('utf8'));
  if (data instanceof ArrayBuffer) return parseFrame(Buffer.from(data).toString('utf8'));
  return parseFrame(data.toString('utf8'));
}

/** The socket went away after a non-idempotent request was sent: it may have been applied. */
function answerLost(method: string, error: GatewayError): GatewayError {
  if (!(error instanceof GatewayUnavailableError || error instanceof GatewayTimeoutError)) {
    return error;
  }
  return new GatewayUnavailableError(`${error.message}; ${method} may have been applied`, {
    cause: error,
    retryable: false,
  });
}

function unknownError(): { code: string; message: string } {
  return { code: 'UNKNOWN', message: 'Gateway error' };
}

/**
 * The close code and our own name for it, never the peer's close reason: whatever closed the
 * socket may not be a gateway, and its words are not ours to repeat (a close after a failed
 * `connect` keeps the gateway's error frame instead).
 */
function closeError(code: number, when: string): GatewayUnavailableError {
  const name = CLOSE_REASONS[code];
  return new GatewayUnavailableError(
    `gateway connection closed${when ? ` ${when}` : ''} (received ${code}${name ? ` ${name}` : ''})`,
  );
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

function socketError(options: ConnectionOptions, error: NodeJS.ErrnoException): GatewayError {
  const code = error.code ?? '';
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
    const limit = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    return new GatewayProtocolError(
      `gateway sent a frame larger than ${limit} bytes (OPENCLAW_MAX_PAYLOAD_BYTES)`,
      { cause: error },
    );
  }
  if (TLS_CODES.has(code)) {
    return new GatewayUnavailableError(
      `gateway ${displayUrl(options.url)} presented a TLS certificate we do not trust (${code}); ` +
        'install a trusted certificate or set allow_insecure_tls for this gateway',
      { cause: error, retryable: false },
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new GatewayUnavailableError(
      `gateway host not found for ${displayUrl(options.url)}: name or service not known (${code})`,
      { cause: error },
    );
  }
  // A short cause (the error code), not the socket library's text, which can quote the peer.
  return new GatewayUnavailableError(
    `cannot reach gateway at ${displayUrl(options.url)}: ${shortCause(error)}`,
    { cause: error },
  );
}

function shortCause(error: NodeJS.ErrnoException): string {
  if (error.code && /^E[A-Z0-9_]+$/.test(error.code)) return error.code;
  if (/handshake has timed out/i.test(error.message)) return 'opening handshake timed out';
  return error.code ? error.code.toLowerCase().replace(/_/g, ' ') : 'socket error';
}

/**
 * The addresses to connect to, checked by the dial policy; null for a URL that names no host
 * (the WebSocket constructor reports it). Refusals are GatewayDialRefusedError.
 */
async function checkedTargets(options: ConnectionOptions): Promise<DialTarget[] | null> {
  let host: string;
  try {
    host = new URL(options.url).hostname;
  } catch {
    return null;
  }
  if (!host) return null;
  const policy = options.dialPolicy ?? DEFAULT_DIAL_POLICY;
  let verdict;
  try {
    verdict = await withDeadline(
      policy.resolve(host),
      options.connectTimeoutMs,
      () =>
        new GatewayTimeoutError(
          `resolving the gateway host timed out after ${options.connectTimeoutMs} ms`,
        ),
    );
  } catch (error) {
    const failure = error as NodeJS.ErrnoException;
    if (failure.code === 'ENOTFOUND' || failure.code === 'EAI_AGAIN') {
      throw socketError(options, failure);
    }
    if (failure instanceof GatewayError) throw failure;
    throw new GatewayUnavailableError(
      `cannot resolve gateway host for ${displayUrl(options.url)}: ${shortCause(failure)}`,
      { cause: error },
    );
  }
  if (!verdict.allowed) {
    throw new GatewayDialRefusedError(
      `gateway ${displayUrl(options.url)} refused by the dial policy: ${verdict.reason}`,
    );
  }
  return verdict.targets;
}

/** A `lookup` answering with the checked addresses only, in both of Node's calling forms. */
function pinnedLookup(targets: DialTarget[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) {
      callback(
        null,
        targets.map((target) => ({ address: target.address, family: target.family })),
      );
      return;
    }
    const wanted = options.family === 4 || options.family === 6 ? options.family : null;
    const target = targets.find((candidate) => wanted === null || candidate.family === wanted);
    if (!target) {
      const error: NodeJS.ErrnoException = new Error('no checked address of the wanted family');
      error.code = 'ENOTFOUND';
      callback(error, '', 0);
      return;
    }
    callback(null, target.address, target.family);
  };
}
