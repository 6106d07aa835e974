/**
 * The OpenClaw gateway WebSocket protocol as this service speaks it: frame shapes, the
 * connect handshake and the parts of `hello-ok` we use. Facts observed against
 * openclaw@2026.9.6 (protocol 4); see ../shared/reference/openclaw-gateway.md.
 */
import { GatewayProtocolError } from '../common/errors/gateway-errors';

/** We speak 3 and 4; today's gateway negotiates 4 and rejects a client whose range excludes it. */
export const MIN_PROTOCOL = 3;
export const MAX_PROTOCOL = 4;

/** The only client id/mode pair a token-only backend may use (custom ids are rejected). */
export const CLIENT_ID = 'gateway-client';
export const CLIENT_MODE = 'backend';
export const CLIENT_ROLE = 'operator';

/**
 * Scopes must be explicit: a connect without them is granted none and every method then fails
 * with `missing scope`. `operator.admin` covers `chat.send`, `config.patch` and deletes.
 */
export const OPERATOR_SCOPES: readonly string[] = [
  'operator.read',
  'operator.write',
  'operator.admin',
  'operator.approvals',
  'operator.pairing',
];

/**
 * The gateway methods this client calls (GatewayMethods) and the events it reads (the
 * handshake challenge, liveness ticks and what subscribers watch), for `GET /gateways/commands`
 * when no gateway is named. A connected gateway advertises its own, far longer lists.
 */
export const CLIENT_METHODS: readonly string[] = [
  'health',
  'status',
  'config.get',
  'config.patch',
  'agents.list',
  'agents.create',
  'agents.update',
  'agents.delete',
  'agents.files.list',
  'agents.files.get',
  'agents.files.set',
  'sessions.list',
  'sessions.patch',
  'sessions.reset',
  'sessions.delete',
  'chat.history',
  'chat.send',
];
export const CLIENT_EVENTS: readonly string[] = [
  'connect.challenge',
  'tick',
  'chat',
  'agent',
  'sessions.changed',
  'shutdown',
];

/** Gateway error codes we act on (the `error.code` of a failed response). */
export const GatewayWireCode = {
  InvalidRequest: 'INVALID_REQUEST',
  Forbidden: 'FORBIDDEN',
  Unavailable: 'UNAVAILABLE',
  NotPaired: 'NOT_PAIRED',
} as const;

export interface RequestFrame {
  type: 'req';
  id: string;
  method: string;
  params: Record<string, unknown>;
}

export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
  retryable?: boolean;
  retryAfterMs?: number;
}

export interface ResponseFrame {
  type: 'res';
  id: string;
  ok: boolean;
  payload?: unknown;
  error?: WireError;
}

export interface EventFrame {
  type: 'event';
  event: string;
  payload?: unknown;
  seq?: number;
  stateVersion?: unknown;
}

export type GatewayFrame = ResponseFrame | EventFrame;

/** The challenge the gateway sends unasked right after the upgrade. */
export interface ConnectChallenge {
  nonce: string;
  ts?: number;
}

export interface DeviceBlock {
  id: string;
  publicKey: string;
  signature: string;
  signedAt: number;
  nonce: string;
}

export interface ConnectParams {
  minProtocol: number;
  maxProtocol: number;
  client: { id: string; version: string; platform: string; mode: string };
  role: string;
  scopes: string[];
  auth?: { token: string };
  device?: DeviceBlock;
}

/** The parts of `hello-ok` this service reads. The full payload is 15–18 KB. */
export interface HelloOk {
  type: 'hello-ok';
  protocol: number;
  server?: { version?: string; buildId?: string; connId?: string };
  features?: { methods?: string[]; events?: string[] };
  auth?: { method?: string; role?: string; scopes?: string[]; deviceToken?: string };
  policy?: { tickIntervalMs?: number; maxPayload?: number };
  snapshot?: { sessionDefaults?: { defaultAgentId?: string; mainSessionKey?: string } };
}

/** What the client keeps from a successful handshake. */
export interface GatewayServerInfo {
  protocol: number;
  version: string | null;
  connId: string | null;
  methods: ReadonlySet<string>;
  /** The events the gateway advertises (`features.events`). */
  events: ReadonlySet<string>;
  /** Null when the gateway does not report them (older gateways' hello-ok has no `auth`). */
  grantedScopes: readonly string[] | null;
  tickIntervalMs: number;
  maxPayload: number | null;
  defaultAgentId: string | null;
}

export const DEFAULT_TICK_INTERVAL_MS = 30_000;

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Parses one text frame. Non-JSON or a JSON value that is not a frame object means the
 * stream cannot be trusted: that is a protocol error. Frame types we do not know
 * (a newer gateway) come back as null and are ignored by the caller.
 */
export function parseFrame(data: string): GatewayFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new GatewayProtocolError(`gateway sent a frame that is not JSON (${describeSize(data)})`);
  }
  if (!isRecord(value) || typeof value.type !== 'string') {
    throw new GatewayProtocolError(`gateway sent a malformed frame (${describeSize(data)})`);
  }
  if (value.type === 'res') {
    if (typeof value.id !== 'string' || typeof value.ok !== 'boolean') {
      throw new GatewayProtocolError(`gateway sent a malformed response (${describeSize(data)})`);
    }
    const frame: ResponseFrame = {
      type: 'res',
      id: value.id,
      ok: value.ok,
      payload: value.payload,
    };
    if (!value.ok) frame.error = parseWireError(value.error);
    return frame;
  }
  if (value.type === 'event') {
    if (typeof value.event !== 'string') {
      throw new GatewayProtocolError(`gateway sent a malformed event (${describeSize(data)})`);
    }
    return {
      type: 'event',
      event: value.event,
      payload: value.payload,
      seq: typeof value.seq === 'number' ? value.seq : undefined,
      stateVersion: value.stateVersion,
    };
  }
  return null;
}

function parseWireError(value: unknown): WireError {
  if (!isRecord(value)) return { code: 'UNKNOWN', message: 'Gateway error' };
  const error: WireError = {
    code: typeof value.code === 'string' ? value.code : 'UNKNOWN',
    message:
      typeof value.message === 'string' && value.message !== '' ? value.message : 'Gateway error',
  };
  if (isRecord(value.details)) error.details = value.details;
  if (typeof value.retryable === 'boolean') error.retryable = value.retryable;
  if (typeof value.retryAfterMs === 'number') error.retryAfterMs = value.retryAfterMs;
  return error;
}

export function parseChallenge(payload: unknown): ConnectChallenge {
  if (!isRecord(payload) || typeof payload.nonce !== 'string' || payload.nonce === '') {
    throw new GatewayProtocolError('gateway sent connect.challenge without a nonce');
  }
  return { nonce: payload.nonce, ts: typeof payload.ts === 'number' ? payload.ts : undefined };
}

/** Checks `hello-ok` and keeps what later calls need. */
export function parseHelloOk(payload: unknown): GatewayServerInfo {
  if (!isRecord(payload) || payload.type !== 'hello-ok' || typeof payload.protocol !== 'number') {
    throw new GatewayProtocolError('gateway answered connect without a hello-ok payload');
  }
  const hello = payload as unknown as HelloOk;
  if (hello.protocol < MIN_PROTOCOL || hello.protocol > MAX_PROTOCOL) {
    throw new GatewayProtocolError(
      `gateway negotiated protocol ${hello.protocol}; this client speaks ${MIN_PROTOCOL}..${MAX_PROTOCOL}`,
    );
  }
  const tick = hello.policy?.tickIntervalMs;
  return {
    protocol: hello.protocol,
    version: typeof hello.server?.version === 'string' ? hello.server.version : null,
    connId: typeof hello.server?.connId === 'string' ? hello.server.connId : null,
    methods: new Set(Array.isArray(hello.features?.methods) ? hello.features.methods : []),
    events: new Set(Array.isArray(hello.features?.events) ? hello.features.events : []),
    grantedScopes: Array.isArray(hello.auth?.scopes) ? hello.auth.scopes : null,
    tickIntervalMs: typeof tick === 'number' && tick > 0 ? tick : DEFAULT_TICK_INTERVAL_MS,
    maxPayload: typeof hello.policy?.maxPayload === 'number' ? hello.policy.maxPayload : null,
    defaultAgentId:
      typeof hello.snapshot?.sessionDefaults?.defaultAgentId === 'string'
        ? hello.snapshot.sessionDefaults.defaultAgentId
        : null,
  };
}

/**
 * What a refused frame looked like, without its content: the other side may not be a gateway
 * at all, and its words must not reach callers (SSRF reconnaissance).
 */
function describeSize(data: string): string {
  return `${Buffer.byteLength(data, 'utf8')} bytes`;
}

/**
 * A gateway URL fit for messages and logs: credentials in the userinfo or the query (upstream
 * put the token in `?token=`, so stored URLs may still carry one) are replaced by `***`.
 */
export function displayUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return JSON.stringify(url.length > 80 ? `${url.slice(0, 80)}…` : url).replace(
      /(token|password|secret|key)=[^&"]*/gi,
      '$1=***',
    );
  }
  if (parsed.username) parsed.username = '***';
  if (parsed.password) parsed.password = '***';
  for (const name of [...parsed.searchParams.keys()]) parsed.searchParams.set(name, '***');
  return parsed.toString().replace(/%2A%2A%2A/g, '***');
}
