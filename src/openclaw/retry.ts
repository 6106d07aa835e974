/**
 * Retrying whole units of gateway work (e.g. ensure session + send) while the gateway is
 * briefly unreachable, with the two upstream profiles (contract §5.3). Only transient
 * failures are retried; a wrong token or an unsupported file fails at once.
 */
import {
  GatewayAuthError,
  GatewayError,
  GatewayNotConfiguredError,
  GatewayPairingRequiredError,
  GatewayProtocolError,
  GatewayRpcError,
  GatewayTimeoutError,
} from '../common/errors/gateway-errors';

export interface RetryProfile {
  /** Budget for one `run()`, from its start. */
  timeoutMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Fraction: each sleep is scaled by 1 ± uniform(jitter). */
  jitter: number;
  /** Named in the timeout message. */
  context: string;
}

export const COORDINATION_RETRY: RetryProfile = {
  timeoutMs: 45_000,
  baseDelayMs: 500,
  maxDelayMs: 5_000,
  jitter: 0.15,
  context: 'gateway coordination',
};

export const TEMPLATE_SYNC_RETRY: RetryProfile = {
  timeoutMs: 600_000,
  baseDelayMs: 750,
  maxDelayMs: 30_000,
  jitter: 0.2,
  context: 'template sync',
};

/** Message fragments that mean "the gateway was not reachable just now" (contract §5.3). */
const TRANSIENT_MARKERS = [
  'connect call failed',
  'connection refused',
  'errno 111',
  'econnrefused',
  'did not receive a valid http response',
  'no route to host',
  'network is unreachable',
  'host is down',
  'name or service not known',
  'received 1012',
  'service restart',
  'http 503',
  'http 502',
  'http 504',
  'temporar',
  'timeout',
  'timed out',
  'connection closed',
  'connection reset',
];

/**
 * Whether retrying the same unit later may succeed. Our own error classes decide first
 * (auth, pairing, protocol and configuration problems never heal by waiting); the gateway's
 * `retryable` flag and `UNAVAILABLE` count; otherwise the upstream message rule applies.
 */
export function isTransientGatewayError(error: unknown): boolean {
  if (!(error instanceof GatewayError)) return false;
  const message = error.message.toLowerCase();
  if (message.includes('unsupported file')) return false;
  if (
    error instanceof GatewayAuthError ||
    error instanceof GatewayPairingRequiredError ||
    error instanceof GatewayProtocolError ||
    error instanceof GatewayNotConfiguredError
  ) {
    return false;
  }
  if (error.retryable) return true;
  if (error instanceof GatewayRpcError) {
    if (error.gatewayCode === 'UNAVAILABLE') return true;
    if (message.includes('503') && message.includes('websocket')) return true;
    return TRANSIENT_MARKERS.some((marker) => message.includes(marker));
  }
  return false;
}

/** "45 seconds", or "10 minutes" from two minutes up, as upstream words it. */
export function describeTimeout(timeoutMs: number): string {
  const seconds = Math.floor(timeoutMs / 1000);
  return seconds >= 120 ? `${Math.floor(seconds / 60)} minutes` : `${seconds} seconds`;
}

export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
  random(): number;
}

/** The one sleep: an unref'd timer, so a pending wait never keeps the process alive. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref());

export const systemClock: RetryClock = {
  now: () => Date.now(),
  sleep,
  random: () => Math.random(),
};

/**
 * One backoff state. Share an instance across a run (template sync) so delays keep growing
 * while the gateway stays down; each `run()` has its own deadline; success resets the delay.
 */
export class GatewayBackoff {
  private delayMs: number;

  constructor(
    readonly profile: RetryProfile,
    private readonly clock: RetryClock = systemClock,
  ) {
    this.delayMs = profile.baseDelayMs;
  }

  async run<T>(unit: () => Promise<T>): Promise<T> {
    const deadline = this.clock.now() + this.profile.timeoutMs;
    for (;;) {
      try {
        const result = await unit();
        this.delayMs = this.profile.baseDelayMs;
        return result;
      } catch (error) {
        if (!isTransientGatewayError(error)) throw error;
        const remaining = deadline - this.clock.now();
        if (remaining <= 0) {
          throw new GatewayTimeoutError(
            `Gateway unreachable after ${describeTimeout(this.profile.timeoutMs)} ` +
              `(${this.profile.context} timeout). Last error: ${(error as Error).message}`,
            { cause: error, retryable: false },
          );
        }
        const base = Math.min(this.delayMs, remaining);
        const jitter = 1 + (this.clock.random() * 2 - 1) * this.profile.jitter;
        await this.clock.sleep(Math.min(remaining, Math.max(0, base * jitter)));
        this.delayMs = Math.min(this.delayMs * 2, this.profile.maxDelayMs);
      }
    }
  }
}

/** Runs one unit under a fresh backoff of the given profile. */
export function withGatewayRetry<T>(
  profile: RetryProfile,
  unit: () => Promise<T>,
  clock?: RetryClock,
): Promise<T> {
  return new GatewayBackoff(profile, clock).run(unit);
}
