/**
 * The GatewayError family: everything that can go wrong talking to an OpenClaw gateway,
 * as domain errors with codes. The gateway client throws the specific subclasses; feature
 * services wrap them in a {@link GatewayOperationError} naming what they were doing, and the
 * gateway exception filter maps the family to HTTP 502 (gateway failures) or 500 (our own
 * unexpected provisioning/runtime failures).
 */
export enum GatewayErrorCode {
  /** Refused, closed, reset, DNS failure: the gateway could not be reached. */
  Unavailable = 'GATEWAY_UNAVAILABLE',
  /** Connect, handshake or request deadline passed. */
  Timeout = 'GATEWAY_TIMEOUT',
  /** The gateway speaks a protocol version we do not, or sent frames we cannot parse. */
  ProtocolMismatch = 'GATEWAY_PROTOCOL_MISMATCH',
  /** Token mismatch or a missing operator scope. */
  AuthFailed = 'GATEWAY_AUTH_FAILED',
  /** The gateway holds a device pairing request that an operator must approve. */
  PairingRequired = 'GATEWAY_PAIRING_REQUIRED',
  /** The gateway answered the request with an error. */
  RpcError = 'GATEWAY_RPC_ERROR',
  /** The board or gateway record lacks what a call needs (url, workspace root). */
  NotConfigured = 'GATEWAY_NOT_CONFIGURED',
  /** The gateway URL resolves to an address the dial policy forbids (SSRF). */
  DialRefused = 'GATEWAY_DIAL_REFUSED',
  /** The gateway's stored token does not decrypt with the configured SECRETS_KEY. */
  TokenUnreadable = 'GATEWAY_TOKEN_UNREADABLE',
}

export interface GatewayErrorOptions {
  cause?: unknown;
  /** Whether repeating the same call later may succeed. */
  retryable?: boolean;
}

export class GatewayError extends Error {
  readonly retryable: boolean;

  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    options: GatewayErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

export class GatewayUnavailableError extends GatewayError {
  constructor(message: string, options: GatewayErrorOptions = {}) {
    super(GatewayErrorCode.Unavailable, message, { retryable: true, ...options });
  }
}

export class GatewayTimeoutError extends GatewayError {
  constructor(message: string, options: GatewayErrorOptions = {}) {
    super(GatewayErrorCode.Timeout, message, { retryable: true, ...options });
  }
}

export class GatewayProtocolError extends GatewayError {
  constructor(message: string, options: GatewayErrorOptions = {}) {
    super(GatewayErrorCode.ProtocolMismatch, message, options);
  }
}

export type GatewayAuthReason = 'token_mismatch' | 'missing_scope' | 'unauthorized';

export class GatewayAuthError extends GatewayError {
  constructor(
    readonly reason: GatewayAuthReason,
    message: string,
    options: GatewayErrorOptions = {},
  ) {
    super(GatewayErrorCode.AuthFailed, message, options);
  }
}

export class GatewayPairingRequiredError extends GatewayError {
  constructor(message: string, options: GatewayErrorOptions = {}) {
    super(GatewayErrorCode.PairingRequired, message, options);
  }
}

export interface GatewayRpcErrorOptions extends GatewayErrorOptions {
  /** The gateway's hint for when to retry (sent with `UNAVAILABLE`). */
  retryAfterMs?: number;
}

/** The gateway rejected a request: carries its own error code, message and details. */
export class GatewayRpcError extends GatewayError {
  readonly retryAfterMs?: number;

  constructor(
    readonly method: string,
    readonly gatewayCode: string,
    message: string,
    readonly details?: unknown,
    options: GatewayRpcErrorOptions = {},
  ) {
    super(GatewayErrorCode.RpcError, message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

export class GatewayNotConfiguredError extends GatewayError {
  constructor(message: string) {
    super(GatewayErrorCode.NotConfigured, message);
  }
}

/**
 * The dial policy forbids the gateway's address (link-local, cloud metadata, unspecified, or
 * outside GATEWAY_ALLOWED_NETWORKS). Never transient: the same URL is refused next time too.
 */
export class GatewayDialRefusedError extends GatewayError {
  constructor(message: string) {
    super(GatewayErrorCode.DialRefused, message, { retryable: false });
  }
}

/**
 * The gateway row's token does not decrypt (SECRETS_KEY changed): no call is made, since any
 * token sent would be the wrong one. Never transient; the message names the gateway and the fix.
 */
export class GatewayTokenUnreadableError extends GatewayError {
  constructor(message: string) {
    super(GatewayErrorCode.TokenUnreadable, message, { retryable: false });
  }
}

/**
 * What a feature was doing when the gateway failed. The HTTP detail is
 * `"<prefix>: <gateway error text>"`, with the prefixes of the upstream contract (§5.3).
 */
export const GATEWAY_OPERATION_PREFIX = {
  nudge: 'Gateway nudge failed',
  soulRead: 'Gateway SOUL read failed',
  soulUpdate: 'Gateway SOUL update failed',
  askUser: 'Gateway ask-user dispatch failed',
  leadMessage: 'Gateway lead message dispatch failed',
  leadBroadcast: 'Gateway lead broadcast dispatch failed',
  onboardingStart: 'Gateway onboarding start dispatch failed',
  onboardingAnswer: 'Gateway onboarding answer dispatch failed',
  sessionsList: 'Gateway sessions list failed',
  sessionHistory: 'Gateway session history failed',
  commands: 'Gateway connect failed',
  cleanup: 'Gateway cleanup failed',
  provision: 'Gateway provision failed',
  update: 'Gateway update failed',
  templateSync: 'Gateway template sync failed',
  sessionMessage: 'Gateway session message failed',
} as const;

export type GatewayOperation = keyof typeof GATEWAY_OPERATION_PREFIX;

export class GatewayOperationError extends Error {
  constructor(
    readonly operation: GatewayOperation,
    readonly gatewayError: Error,
  ) {
    super(`${GATEWAY_OPERATION_PREFIX[operation]}: ${gatewayError.message}`, {
      cause: gatewayError,
    });
    this.name = 'GatewayOperationError';
  }
}

export type ProvisioningAction = 'provision' | 'update' | 'delete';

const PROVISIONING_VERB: Record<ProvisioningAction, string> = {
  provision: 'provisioning',
  update: 'updating',
  delete: 'deleting',
};

/**
 * An unexpected failure of our own while provisioning (template rendering, bad state):
 * HTTP 500 with a stable text and no internals. The cause is logged, not returned.
 */
export class ProvisioningError extends Error {
  constructor(
    readonly action: ProvisioningAction,
    cause?: unknown,
  ) {
    super(`Unexpected error ${PROVISIONING_VERB[action]} agent provisioning.`, { cause });
    this.name = 'ProvisioningError';
  }
}
