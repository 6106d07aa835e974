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

/**
 * Whether retrying the same unit later may succeed, decided by error class and the gateway's
 * error code, never by words in a message (an `INVALID_REQUEST` about
 * `heartbeat.timeoutSeconds` is not a timeout). Auth, pairing, protocol and configuration
 * problems never heal by waiting; `UNAVAILABLE` and the gateway's `retryable` flag do; our own
 * unavailable/timeout errors carry `retryable` (false for a TLS refusal, a dial-policy refusal,
 * or a non-idempotent request whose answer was lost and may have been applied).
 */
export function isTransientGatewayError(error: unknown): boolean {
  if (!(error instanceof GatewayError)) return false;
  if (
    error instanceof GatewayAuthError ||
    error instanceof GatewayPairingRequiredError ||
    error instanceof GatewayProtocolError ||
    error instanceof GatewayNotConfiguredError
  ) {
    return false;
  }
  if (error instanceof GatewayRpcError && error.gatewayCode === 'UNAVAILABLE') return true;
  return error.retryable;
}

/** "45 seconds", or "10 minutes" from two minutes up, as upstream words it. */
export function describeTimeout(timeoutMs: number): string {
  const seconds = Math.floor(timeoutMs / 1000);
  return seconds >= 120 ? `${Math.floor(seconds / 60)} minutes` : `${seconds} seconds`;
}

/** "Gateway unreachable after N seconds ({context} timeout). Last error: …" (not retryable). */
export function retryBudgetSpent(profile: RetryProfile, lastError: unknown): GatewayTimeoutError {
  return new GatewayTimeoutError(
    `Gateway unreachable after ${describeTimeout(profile.timeoutMs)} ` +
      `(${profile.context} timeout). Last error: ${(lastError as Error).message}`,
    { cause: lastError, retryable: false },
  );
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

export interface RetryRunOptions {
  /** Which failures to retry (default: {@link isTransientGatewayError}). */
  retryIf?: (error: unknown) => boolean;
  /**
   * A wait the failure itself asks for (a gateway's `retryAfterMs`), used instead of the
   * backoff step; never shorter than the profile's base delay, so `0` cannot spin.
   */
  delayFor?: (error: unknown) => number | null;
  /** At most this many attempts (default: as many as the budget allows). */
  maxAttempts?: number;
  /**
   * When the budget or the attempts run out: `'timeout'` (default) throws a GatewayTimeoutError
   * naming the profile and the last error; `'last'` rethrows the last error as it was, and
   * does not sleep when the wait would end past the budget.
   */
  exhausted?: 'timeout' | 'last';
}

/**
 * One backoff state, the one retry mechanism of the gateway code. Share an instance across a
 * run (template sync) so delays keep growing while the gateway stays down; each `run()` has
 * its own deadline; success resets the delay.
 */
export class GatewayBackoff {
  private delayMs: number;

  constructor(
    readonly profile: RetryProfile,
    private readonly clock: RetryClock = systemClock,
  ) {
    this.delayMs = profile.baseDelayMs;
  }

  async run<T>(unit: (attempt: number) => Promise<T>, options: RetryRunOptions = {}): Promise<T> {
    const retryIf = options.retryIf ?? isTransientGatewayError;
    const maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
    const rethrowLast = options.exhausted === 'last';
    const deadline = this.clock.now() + this.profile.timeoutMs;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const result = await unit(attempt);
        this.delayMs = this.profile.baseDelayMs;
        return result;
      } catch (error) {
        if (!retryIf(error) || attempt >= maxAttempts) throw error;
        const remaining = deadline - this.clock.now();
        const hinted = options.delayFor?.(error) ?? null;
        const step =
          hinted !== null
            ? Math.max(hinted, this.profile.baseDelayMs)
            : Math.min(this.delayMs, Math.max(0, remaining)) *
              (1 + (this.clock.random() * 2 - 1) * this.profile.jitter);
        if (rethrowLast && step >= remaining) throw error;
        if (remaining <= 0) throw retryBudgetSpent(this.profile, error);
        await this.clock.sleep(Math.min(remaining, Math.max(0, step)));
        if (hinted === null) this.delayMs = Math.min(this.delayMs * 2, this.profile.maxDelayMs);
      }
    }
  }
}

/** Runs one unit under a fresh backoff of the given profile. */
export function withGatewayRetry<T>(
  profile: RetryProfile,
  unit: (attempt: number) => Promise<T>,
  clock?: RetryClock,
  options?: RetryRunOptions,
): Promise<T> {
  return new GatewayBackoff(profile, clock).run(unit, options);
}
