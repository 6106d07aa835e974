import 'reflect-metadata';
import { plainToInstance, Transform, Type } from 'class-transformer';
import { randomBytes } from 'node:crypto';
import { parseSecretsKey } from '../common/secrets/secret-box';
import { parseAllowedNetworks } from '../openclaw/dial-policy';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Max,
  Min,
  MinLength,
  validateSync,
} from 'class-validator';

export const AUTH_MODES = ['local', 'jwt'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** Local tokens that look like a value someone forgot to replace. Compared case-insensitively. */
const PLACEHOLDER_TOKENS = new Set([
  'change-me',
  'changeme',
  'replace-me',
  'replace-with-strong-random-token',
]);

const trimmedOrUndefined = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
};

/**
 * The raw environment, validated with class-validator. Only this file reads `process.env`
 * for application settings; everything else receives the typed {@link AppConfig}.
 */
class EnvironmentVariables {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT: number = 8000;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsString()
  HOST: string = '0.0.0.0';

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsString()
  DATABASE_URL?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  DATABASE_POOL_SIZE: number = 10;

  /** Longest a request waits for a pool connection (pool busy, or the database unreachable). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(600_000)
  DATABASE_CONNECT_TIMEOUT_MS: number = 10_000;

  /** Longest one statement of the app may run (lock waits included); 0: no limit. */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(3_600_000)
  DATABASE_STATEMENT_TIMEOUT_MS: number = 30_000;

  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' ? value.trim().toLowerCase() || undefined : value,
  )
  @IsIn(AUTH_MODES)
  AUTH_MODE: AuthMode = 'local';

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsString()
  LOCAL_AUTH_TOKEN?: string;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsString()
  @MinLength(32, { message: 'AUTH_JWT_SECRET must be at least 32 characters' })
  AUTH_JWT_SECRET?: string;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsUrl({ require_tld: false, protocols: ['http', 'https'] })
  AUTH_JWKS_URL?: string;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsString()
  AUTH_JWT_ISSUER?: string;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsString()
  AUTH_JWT_AUDIENCE?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(300)
  AUTH_JWT_CLOCK_TOLERANCE_SECONDS: number = 10;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsIn(['true', 'false'])
  AUTH_JWT_TRUST_EMAIL: 'true' | 'false' = 'false';

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsString()
  CORS_ORIGINS?: string;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  // Absolute: agents are told to call it verbatim (coordination messages, workspace files).
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  BASE_URL?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(120_000)
  OPENCLAW_CONNECT_TIMEOUT_MS: number = 10_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(600_000)
  OPENCLAW_REQUEST_TIMEOUT_MS: number = 30_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  // 0: no pooling, a socket closes as soon as its last call answered (connect per call; the
  // gateway-api bench compares it with the pool). Any other value keeps idle sockets that long.
  @Min(0)
  @Max(3_600_000)
  OPENCLAW_IDLE_CLOSE_MS: number = 120_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(30_000)
  OPENCLAW_CONFIG_SETTLE_MS: number = 2_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(65_536)
  @Max(268_435_456)
  OPENCLAW_MAX_PAYLOAD_BYTES: number = 4 * 1024 * 1024;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  GATEWAY_ALLOWED_NETWORKS?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1_000)
  @Max(3_600_000)
  PROVISION_RUN_TIMEOUT_MS: number = 300_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(50)
  PROVISION_CONCURRENCY: number = 4;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(600_000)
  PROVISION_LOCK_STATEMENT_TIMEOUT_MS: number = 10_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(32)
  TEMPLATE_SYNC_CONCURRENCY: number = 4;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1_000)
  @Max(600_000)
  COORDINATION_RETRY_TIMEOUT_MS: number = 45_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(32)
  COORDINATION_BROADCAST_CONCURRENCY: number = 4;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(64)
  BOARD_CHAT_NOTIFY_CONCURRENCY: number = 8;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(100_000)
  BOARD_CHAT_NOTIFY_QUEUE: number = 1_000;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsString()
  SECRETS_KEY?: string;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsString()
  NODE_ENV?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(60)
  @Max(30 * 24 * 3600)
  CHANGE_LOG_RETENTION_SECONDS: number = 24 * 3600;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1_000)
  @Max(600_000)
  PRESENCE_SWEEP_INTERVAL_MS: number = 30_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(600_000)
  CHANGE_LOG_READ_TIMEOUT_MS: number = 30_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(600_000)
  CHANGE_LOG_LISTENER_PING_MS: number = 30_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100_000)
  STREAM_MAX_PENDING_EVENTS: number = 1_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(300_000)
  STREAM_KEEPALIVE_MS: number = 15_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(600_000)
  SHUTDOWN_GRACE_MS: number = 20_000;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(600_000)
  SHUTDOWN_STREAM_RETRY_MS: number = 1_000;

  @IsOptional()
  @Transform(trimmedOrUndefined)
  @IsIn(['error', 'warn', 'log', 'debug', 'verbose'])
  LOG_LEVEL: 'error' | 'warn' | 'log' | 'debug' | 'verbose' = 'log';
}

export interface AppConfig {
  readonly port: number;
  readonly host: string;
  readonly database: {
    readonly url: string;
    readonly poolSize: number;
    readonly connectTimeoutMs: number;
    readonly statementTimeoutMs: number;
  };
  readonly auth:
    | { readonly mode: 'local'; readonly localToken: string }
    | {
        readonly mode: 'jwt';
        readonly jwtSecret?: string;
        readonly jwksUrl?: string;
        readonly issuer?: string;
        readonly audience?: string;
        readonly clockToleranceSeconds: number;
        /**
         * Treat every `email` claim as verified (AUTH_JWT_TRUST_EMAIL=true), for identity
         * providers that only issue verified emails and do not send `email_verified`.
         */
        readonly trustEmail: boolean;
      };
  readonly corsOrigins: readonly string[];
  /** Public base URL of this service; agents are told to call it. */
  readonly baseUrl: string;
  readonly logLevel: 'error' | 'warn' | 'log' | 'debug' | 'verbose';
  /** Gateway client timeouts (milliseconds), frame cap and dial policy. */
  readonly openclaw: {
    readonly connectTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly idleCloseMs: number;
    /** Gap this instance leaves between config writes to one gateway (its hot reload). */
    readonly configSettleMs: number;
    readonly maxPayloadBytes: number;
    /** GATEWAY_ALLOWED_NETWORKS entries (CIDRs, addresses, host names); empty: no allow-list. */
    readonly allowedNetworks: readonly string[];
  };
  /** Provisioning runs (src/provisioning). */
  readonly provisioning: {
    /** A run gives up past this; a run older than this (its instance died) is swept. */
    readonly runTimeoutMs: number;
    /** Runs one instance executes at once (each holds one lock connection of its own). */
    readonly concurrency: number;
    /** Bound on every statement of a run-lock session (the lock pool). */
    readonly lockStatementTimeoutMs: number;
  };
  /** Gateway template sync: agents synced at once. */
  readonly templateSync: { readonly concurrency: number };
  /** Coordination dispatches (src/coordination). */
  readonly coordination: {
    /** Budget of one dispatch under the coordination retry profile (upstream: 45 s). */
    readonly retryTimeoutMs: number;
    /** Boards one lead broadcast dispatches to at once. */
    readonly broadcastConcurrency: number;
  };
  /** Board chat notifications (src/board-memory/board-chat-notifier.ts), per instance. */
  readonly boardChat: {
    /** Boards whose agents are being messaged at once (a board's items go one at a time). */
    readonly notifyConcurrency: number;
    /** Chat items waiting for a slot; past it a notification is dropped (logged). */
    readonly notifyQueue: number;
  };
  /**
   * The 32-byte key that encrypts gateway tokens at rest (SECRETS_KEY). Required in production;
   * elsewhere a missing key is replaced by a random one for this process (`ephemeral`), so
   * tokens saved meanwhile stop decrypting at the next start (`npm start` generates a kept one).
   */
  readonly secrets: { readonly key: Buffer; readonly ephemeral: boolean };
  /** The durable change log (src/change-log). */
  readonly changeLog: {
    /** Rows older than this are pruned; a stream resuming from before it gets a snapshot. */
    readonly retentionSeconds: number;
    /** How often one instance logs the agents that went offline without a row change. */
    readonly presenceSweepIntervalMs: number;
    /**
     * Deadline of the database reads of one stream batch or stream start: a read that stalls
     * (a lock, a dead connection) ends the streams it was for (they resume by id) instead of
     * holding every stream of the instance.
     */
    readonly readTimeoutMs: number;
    /**
     * The listening connection is probed this often (and must answer within as long): one that
     * went silent without closing (a dead peer, a dropped NAT entry) delivers no notifications.
     */
    readonly listenerPingMs: number;
  };
  /** Server-sent event streams (GET /agents/stream). */
  readonly stream: {
    /** A client this many events behind (written, not yet taken by its socket) is closed. */
    readonly maxPendingEvents: number;
    /** Keep-alive comment interval. */
    readonly keepAliveMs: number;
  };
  /** SIGTERM/SIGINT (src/shutdown.ts). */
  readonly shutdown: {
    /** In-flight requests get this long to finish once the listener stopped accepting. */
    readonly graceMs: number;
    /** The `retry:` hint (reconnect delay) sent to every stream ended by the shutdown. */
    readonly streamRetryMs: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Reasons a local auth token is refused, or null when it is acceptable. */
export function localTokenProblem(token: string | undefined): string | null {
  if (!token) return 'LOCAL_AUTH_TOKEN is required when AUTH_MODE=local';
  if (PLACEHOLDER_TOKENS.has(token.toLowerCase())) {
    return 'LOCAL_AUTH_TOKEN is a placeholder value; generate a random one';
  }
  if (token.length < 50) return 'LOCAL_AUTH_TOKEN must be at least 50 characters';
  return null;
}

/**
 * Validates the environment once and returns the typed configuration.
 * Throws {@link ConfigError} listing every problem; secret values are never echoed.
 */
/**
 * Agents are told `${BASE_URL}/api/v1/…` verbatim (coordination messages, workspace files), so
 * BASE_URL is an origin with an optional path: a query or fragment would swallow the appended
 * path, and credentials would be handed to every agent. A URL that does not parse is left to
 * the absolute-URL check.
 */
function baseUrlShapeProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (value.includes('?') || value.includes('#')) return 'must not have a query or a fragment';
  if (url.username || url.password) return 'must not carry credentials';
  return null;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const raw = plainToInstance(EnvironmentVariables, { ...env }, { exposeDefaultValues: true });
  const problems = validateSync(raw, { whitelist: false }).flatMap((error) =>
    Object.values(error.constraints ?? {}).map((message) => `${error.property}: ${message}`),
  );

  if (!raw.DATABASE_URL) problems.push('DATABASE_URL is required');
  const baseUrlProblem = raw.BASE_URL === undefined ? null : baseUrlShapeProblem(raw.BASE_URL);
  if (baseUrlProblem) problems.push(`BASE_URL: ${baseUrlProblem}`);

  let auth: AppConfig['auth'];
  if (raw.AUTH_MODE === 'jwt') {
    if (!raw.AUTH_JWT_SECRET && !raw.AUTH_JWKS_URL) {
      problems.push('AUTH_MODE=jwt needs AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL (RS256/ES256)');
    }
    auth = {
      mode: 'jwt',
      jwtSecret: raw.AUTH_JWT_SECRET,
      jwksUrl: raw.AUTH_JWKS_URL,
      issuer: raw.AUTH_JWT_ISSUER,
      audience: raw.AUTH_JWT_AUDIENCE,
      clockToleranceSeconds: raw.AUTH_JWT_CLOCK_TOLERANCE_SECONDS,
      trustEmail: raw.AUTH_JWT_TRUST_EMAIL === 'true',
    };
  } else {
    const problem = localTokenProblem(raw.LOCAL_AUTH_TOKEN);
    if (problem) problems.push(problem);
    auth = { mode: 'local', localToken: raw.LOCAL_AUTH_TOKEN ?? '' };
  }

  const allowedNetworks = (raw.GATEWAY_ALLOWED_NETWORKS ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  for (const problem of parseAllowedNetworks(allowedNetworks).problems) {
    problems.push(`GATEWAY_ALLOWED_NETWORKS: ${problem}`);
  }

  let secretsKey: Buffer | null = null;
  if (raw.SECRETS_KEY) {
    const parsed = parseSecretsKey(raw.SECRETS_KEY);
    if (typeof parsed === 'string') problems.push(parsed);
    else secretsKey = parsed;
  } else if (raw.NODE_ENV === 'production') {
    problems.push(
      'SECRETS_KEY is required in production (32 bytes as 64 hex characters or base64; ' +
        'e.g. `openssl rand -hex 32`): it encrypts gateway tokens at rest',
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);

  const port = raw.PORT;
  return {
    port,
    host: raw.HOST,
    database: {
      url: raw.DATABASE_URL as string,
      poolSize: raw.DATABASE_POOL_SIZE,
      connectTimeoutMs: raw.DATABASE_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: raw.DATABASE_STATEMENT_TIMEOUT_MS,
    },
    auth,
    corsOrigins: (raw.CORS_ORIGINS ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin.length > 0),
    baseUrl: (raw.BASE_URL ?? `http://127.0.0.1:${port}`).replace(/\/+$/, ''),
    logLevel: raw.LOG_LEVEL,
    openclaw: {
      connectTimeoutMs: raw.OPENCLAW_CONNECT_TIMEOUT_MS,
      requestTimeoutMs: raw.OPENCLAW_REQUEST_TIMEOUT_MS,
      idleCloseMs: raw.OPENCLAW_IDLE_CLOSE_MS,
      configSettleMs: raw.OPENCLAW_CONFIG_SETTLE_MS,
      maxPayloadBytes: raw.OPENCLAW_MAX_PAYLOAD_BYTES,
      allowedNetworks,
    },
    provisioning: {
      runTimeoutMs: raw.PROVISION_RUN_TIMEOUT_MS,
      concurrency: raw.PROVISION_CONCURRENCY,
      lockStatementTimeoutMs: raw.PROVISION_LOCK_STATEMENT_TIMEOUT_MS,
    },
    templateSync: { concurrency: raw.TEMPLATE_SYNC_CONCURRENCY },
    coordination: {
      retryTimeoutMs: raw.COORDINATION_RETRY_TIMEOUT_MS,
      broadcastConcurrency: raw.COORDINATION_BROADCAST_CONCURRENCY,
    },
    boardChat: {
      notifyConcurrency: raw.BOARD_CHAT_NOTIFY_CONCURRENCY,
      notifyQueue: raw.BOARD_CHAT_NOTIFY_QUEUE,
    },
    secrets: secretsKey
      ? { key: secretsKey, ephemeral: false }
      : { key: randomBytes(32), ephemeral: true },
    changeLog: {
      retentionSeconds: raw.CHANGE_LOG_RETENTION_SECONDS,
      presenceSweepIntervalMs: raw.PRESENCE_SWEEP_INTERVAL_MS,
      readTimeoutMs: raw.CHANGE_LOG_READ_TIMEOUT_MS,
      listenerPingMs: raw.CHANGE_LOG_LISTENER_PING_MS,
    },
    stream: {
      maxPendingEvents: raw.STREAM_MAX_PENDING_EVENTS,
      keepAliveMs: raw.STREAM_KEEPALIVE_MS,
    },
    shutdown: {
      graceMs: raw.SHUTDOWN_GRACE_MS,
      streamRetryMs: raw.SHUTDOWN_STREAM_RETRY_MS,
    },
  };
}

/** Injection token for the validated {@link AppConfig}. */
export const APP_CONFIG = Symbol('APP_CONFIG');
