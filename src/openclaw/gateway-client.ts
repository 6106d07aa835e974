/**
 * The persistent client for one gateway (one url + credentials): at most one socket, shared
 * by every caller. Concurrent callers during a (re)connect wait for the same dial; a socket
 * that drops is redialled on the next call, or in the background with jittered exponential
 * backoff while someone is subscribed to events; an unused socket is closed after a while.
 */
import { Logger } from '@nestjs/common';
import { withDeadline } from '../common/async/deadline';
import {
  GatewayError,
  GatewayTimeoutError,
  GatewayUnavailableError,
} from '../common/errors/gateway-errors';
import type { DeviceIdentity } from './device-identity';
import type { DialPolicy } from './dial-policy';
import { GatewayConnection } from './gateway-connection';
import { outsideTurns } from './keyed-mutex';
import { displayUrl, type EventFrame, type GatewayServerInfo } from './protocol';
import { retryAfterOf } from './wire-errors';
import {
  GatewayBackoff,
  isTransientGatewayError,
  type RetryProfile,
  type RetryRunOptions,
} from './retry';

export interface GatewayTarget {
  url: string;
  token: string | null;
  /** Send no device identity (token-only; works on loopback, not for remote gateways). */
  disableDevicePairing: boolean;
  /** Accept a wss:// certificate that does not verify (self-signed). */
  allowInsecureTls: boolean;
}

export interface GatewayClientSettings {
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Close the socket after this long with no request in flight and no subscriber (0: at once). */
  idleCloseMs: number;
  clientVersion: string;
  /** Background reconnect backoff for subscribed clients. */
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /** Largest frame accepted (default 4 MiB). */
  maxPayloadBytes?: number;
  /** Which addresses may be dialled (default: all but link-local, metadata, unspecified). */
  dialPolicy?: DialPolicy;
}

/**
 * `failed`: the last dial failed in a way waiting cannot heal (auth, pairing, dial policy,
 * protocol); no background redial until a call or a new subscriber asks again.
 */
export type GatewayConnectionState =
  'idle' | 'connecting' | 'open' | 'reconnecting' | 'failed' | 'closed';

export interface GatewayEventSubscriber {
  onEvent(event: EventFrame): void;
  /** Connection state changes, so a subscriber can tell a gap in the event stream. */
  onState?(state: GatewayConnectionState, error?: GatewayError): void;
}

export interface CallOptions {
  timeoutMs?: number;
  /**
   * Whether the call may be repeated after its answer was lost (timeout, socket dropped after
   * sending): the gateway may have applied it. Default: reads, and any call carrying an
   * `idempotencyKey` (the gateway de-duplicates on it).
   */
  idempotent?: boolean;
}

/** Methods that change nothing on the gateway, so repeating one is always safe. */
const READ_METHODS = new Set([
  'health',
  'status',
  'sessions.list',
  'chat.history',
  'agents.list',
  'agents.files.list',
  'agents.files.get',
  'config.get',
]);

export function isIdempotentCall(method: string, params: object, options: CallOptions): boolean {
  if (options.idempotent !== undefined) return options.idempotent;
  if (READ_METHODS.has(method)) return true;
  const key = (params as { idempotencyKey?: unknown }).idempotencyKey;
  return typeof key === 'string' && key !== '';
}

/**
 * A gateway that answers `UNAVAILABLE` with `retryAfterMs` is waited out at most this many
 * times per call or dial, and never sooner than the floor (a `retryAfterMs: 0` cannot spin).
 */
/** How often an idle client whose dial is still running looks again (at least). */
const DIAL_RECHECK_MS = 100;
const RETRY_AFTER_ATTEMPTS = 5;
const RETRY_AFTER_FLOOR_MS = 100;

function retryAfterProfile(timeoutMs: number, context: string): RetryProfile {
  return {
    timeoutMs,
    baseDelayMs: RETRY_AFTER_FLOOR_MS,
    maxDelayMs: RETRY_AFTER_FLOOR_MS,
    jitter: 0,
    context,
  };
}

const RETRY_AFTER_ONLY: RetryRunOptions = {
  retryIf: (error) => retryAfterOf(error) !== null,
  delayFor: retryAfterOf,
  maxAttempts: RETRY_AFTER_ATTEMPTS,
  exhausted: 'last',
};

export type DeviceProvider = () => Promise<DeviceIdentity>;

export class GatewayClient {
  private readonly logger = new Logger('OpenClawGateway');
  private connection: GatewayConnection | null = null;
  private dialing: Promise<GatewayConnection> | null = null;
  private readonly subscribers = new Set<GatewayEventSubscriber>();
  private inFlight = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectAttempt = 0;
  /** Why background redials stopped (a failure waiting cannot heal), until asked again. */
  private halted: GatewayError | null = null;
  private closed = false;
  /** Dials made, for observability and tests. */
  dialCount = 0;

  constructor(
    readonly target: GatewayTarget,
    private readonly settings: GatewayClientSettings,
    private readonly device: DeviceProvider,
    /** Told when the client closed itself for idleness, so the pool can forget it. */
    private readonly onIdleClose: (client: GatewayClient) => void = () => undefined,
  ) {}

  get state(): GatewayConnectionState {
    if (this.closed) return 'closed';
    if (this.connection?.isOpen) return 'open';
    if (this.reconnectTimer) return 'reconnecting';
    if (this.dialing) return 'connecting';
    if (this.halted) return 'failed';
    return 'idle';
  }

  /** Protocol, version and methods of the gateway, once connected. */
  get server(): GatewayServerInfo | null {
    return this.connection?.server ?? null;
  }

  get isBusy(): boolean {
    return this.inFlight > 0 || this.subscribers.size > 0;
  }

  /**
   * Calls a method. Waits for the shared connection (dialling if needed), sends once, and
   * honours one `UNAVAILABLE` + `retryAfterMs` answer when the deadline allows.
   */
  async call<T>(method: string, params: object, options: CallOptions = {}): Promise<T> {
    if (this.closed) throw new GatewayUnavailableError('gateway client is shut down');
    const timeoutMs = options.timeoutMs ?? this.settings.requestTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    const idempotent = isIdempotentCall(method, params, options);
    return this.whileBusy(() =>
      new GatewayBackoff(retryAfterProfile(timeoutMs, method)).run(async () => {
        const connection = await this.connected(deadline, method);
        return connection.request<T>(method, params, remaining(deadline), timeoutMs, idempotent);
      }, RETRY_AFTER_ONLY),
    );
  }

  /** Ensures a live connection and returns what the gateway said about itself. */
  connect(timeoutMs = this.settings.connectTimeoutMs): Promise<GatewayServerInfo> {
    return this.whileBusy(
      async () => (await this.connected(Date.now() + timeoutMs, 'connect')).server,
    );
  }

  /** Keeps the socket from idling out while `work` runs. */
  private async whileBusy<T>(work: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    this.cancelIdleClose();
    try {
      return await work();
    } finally {
      this.inFlight -= 1;
      this.scheduleIdleClose();
    }
  }

  /** Receives gateway events until the returned function is called. Keeps the socket open. */
  subscribe(subscriber: GatewayEventSubscriber): () => void {
    this.subscribers.add(subscriber);
    this.cancelIdleClose();
    if (!this.connection?.isOpen && !this.dialing && !this.closed) {
      // A new subscriber asks again, also after a failure that stopped the redials.
      this.halted = null;
      this.scheduleReconnect(0);
    }
    return () => {
      this.subscribers.delete(subscriber);
      if (this.subscribers.size === 0) this.cancelReconnect();
      this.scheduleIdleClose();
    };
  }

  /** Closes the socket for good; pending and later calls fail. */
  close(reason = 'gateway client shutting down'): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelIdleClose();
    this.cancelReconnect();
    this.connection?.close(new GatewayUnavailableError(reason), 1000, 'client closing');
    this.connection = null;
    this.notify('closed');
    this.subscribers.clear();
  }

  private async connected(deadline: number, purpose: string): Promise<GatewayConnection> {
    if (this.connection?.isOpen) return this.connection;
    // The socket outlives the caller: its callbacks must not inherit the caller's turns (a
    // subscriber reacting to an event would look like it re-entered a config write).
    this.dialing ??= outsideTurns(() => this.dial()).then(
      (connection) => {
        this.dialing = null;
        return connection;
      },
      (error: unknown) => {
        this.dialing = null;
        this.onDialFailed(error);
        throw error;
      },
    );
    return withDeadline(
      this.dialing,
      remaining(deadline),
      () =>
        new GatewayTimeoutError(
          `connect to gateway ${displayUrl(this.target.url)} timed out before ${purpose} could be sent`,
        ),
    );
  }

  /**
   * One dial, shared by every waiting caller. A gateway that is still starting answers
   * `UNAVAILABLE` with `retryAfterMs` and closes; wait as told and try again until the
   * connect timeout is spent.
   */
  private async dial(): Promise<GatewayConnection> {
    const deadline = Date.now() + this.settings.connectTimeoutMs;
    // A cold start loads (or creates) the device key from the database: part of the dial,
    // bounded by its deadline like the rest of it.
    const device = this.target.disableDevicePairing
      ? null
      : await withDeadline(
          this.device(),
          this.settings.connectTimeoutMs,
          () =>
            new GatewayTimeoutError(
              `loading the device identity for gateway ${displayUrl(this.target.url)} timed out ` +
                `after ${this.settings.connectTimeoutMs} ms`,
            ),
        );
    const backoff = new GatewayBackoff(
      retryAfterProfile(this.settings.connectTimeoutMs, 'gateway connect'),
    );
    return backoff.run(async () => {
      if (this.closed) throw new GatewayUnavailableError('gateway client is shut down');
      this.dialCount += 1;
      this.notify('connecting');
      const connection = await GatewayConnection.open({
        url: this.target.url,
        token: this.target.token,
        device,
        allowInsecureTls: this.target.allowInsecureTls,
        connectTimeoutMs: Math.max(1, remaining(deadline)),
        clientVersion: this.settings.clientVersion,
        maxPayloadBytes: this.settings.maxPayloadBytes,
        dialPolicy: this.settings.dialPolicy,
        onEvent: (event) => this.dispatch(event),
        onClose: (error, closing) => this.onConnectionClosed(closing, error),
      });
      // A frame batched with hello-ok may already have closed it (garbage, binary).
      if (connection.failure) throw connection.failure;
      if (this.closed) {
        connection.close(new GatewayUnavailableError('gateway client is shut down'));
        throw new GatewayUnavailableError('gateway client is shut down');
      }
      this.connection = connection;
      this.reconnectAttempt = 0;
      this.halted = null;
      this.logger.debug(
        `connected to ${displayUrl(this.target.url)} (protocol ${connection.server.protocol}, ` +
          `gateway ${connection.server.version ?? 'unknown'})`,
      );
      this.notify('open');
      this.scheduleIdleClose();
      return connection;
    }, RETRY_AFTER_ONLY);
  }

  private onConnectionClosed(connection: GatewayConnection, error: GatewayError): void {
    if (this.connection !== connection) return;
    this.connection = null;
    if (this.closed) return;
    this.logger.debug(`connection to ${displayUrl(this.target.url)} lost: ${error.message}`);
    this.notify('reconnecting', error);
    if (this.subscribers.size > 0) this.scheduleReconnect(this.nextBackoff());
    else this.scheduleIdleClose();
  }

  /**
   * Every failed dial, whoever started it. Without subscribers the client may now idle out
   * (a dial can outlast the idle timer). Subscribers hear about it (one that joined while
   * this dial was in flight included) and get a background redial with backoff, unless
   * waiting cannot heal the failure (auth, pairing, dial policy, protocol): then the state is
   * `failed` and redials stop until a call or a new subscriber asks again.
   */
  private onDialFailed(error: unknown): void {
    if (this.closed) return;
    if (this.subscribers.size === 0) {
      this.scheduleIdleClose();
      return;
    }
    const failure =
      error instanceof GatewayError ? error : new GatewayUnavailableError(String(error));
    if (!isTransientGatewayError(failure)) {
      this.halted = failure;
      this.logger.warn(
        `stopped reconnecting to ${displayUrl(this.target.url)}: ${failure.message}`,
      );
      this.notify('failed', failure);
      return;
    }
    this.notify('reconnecting', failure);
    this.scheduleReconnect(this.nextBackoff());
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.reconnectTimer || this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed || this.subscribers.size === 0 || this.connection?.isOpen || this.halted) {
        return;
      }
      // A failed dial reschedules itself (onDialFailed); a wait that merely ran out leaves
      // the dial running, which ends in onDialFailed or an open connection.
      this.connected(Date.now() + this.settings.connectTimeoutMs, 'reconnect').catch(
        () => undefined,
      );
    }, delayMs);
    this.reconnectTimer.unref();
  }

  /** Full-jitter-free exponential backoff with ±20% jitter, capped. */
  private nextBackoff(): number {
    const { reconnectBaseMs, reconnectMaxMs } = this.settings;
    const delay = Math.min(reconnectMaxMs, reconnectBaseMs * 2 ** this.reconnectAttempt);
    this.reconnectAttempt += 1;
    return Math.round(delay * (0.8 + Math.random() * 0.4));
  }

  private cancelReconnect(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  /**
   * Closes an unused client after idleCloseMs, whether its socket is open, dropped or was
   * never made, so the pool forgets it (a dead client must not stay pooled forever).
   */
  private scheduleIdleClose(delayMs = this.settings.idleCloseMs): void {
    if (this.closed || this.isBusy) return;
    this.cancelIdleClose();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.closed || this.isBusy) return;
      try {
        // A dial still running (longer than the idle time) ends in onDialFailed or an open
        // socket; look again after it, so the client is never left pooled with no timer.
        if (this.dialing) {
          // Not a busy loop when idleCloseMs is 0 (no pooling): a dial takes milliseconds.
          this.scheduleIdleClose(Math.max(this.settings.idleCloseMs, DIAL_RECHECK_MS));
          return;
        }
        this.close('gateway connection closed (idle)');
        this.onIdleClose(this);
      } catch (error) {
        // A timer callback must never throw (it would take the process down).
        this.logger.error('closing an idle gateway client failed', (error as Error).stack);
      }
    }, delayMs);
    this.idleTimer.unref();
  }

  private cancelIdleClose(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private dispatch(event: EventFrame): void {
    for (const subscriber of this.subscribers) {
      try {
        subscriber.onEvent(event);
      } catch (error) {
        this.logger.error(`event subscriber failed on ${event.event}`, (error as Error).stack);
      }
    }
  }

  private notify(state: GatewayConnectionState, error?: GatewayError): void {
    for (const subscriber of this.subscribers) {
      try {
        subscriber.onState?.(state, error);
      } catch (failure) {
        this.logger.error('state subscriber failed', (failure as Error).stack);
      }
    }
  }
}

function remaining(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}
