import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { CHAT_SEND_RETRY, type GatewayMethods } from '../openclaw/gateway-methods';
import { OpenClawGatewayService, type GatewayRecord } from '../openclaw/openclaw-gateway.service';
import {
  COORDINATION_RETRY,
  isTransientGatewayError,
  retryBudgetSpent,
  withGatewayRetry,
  type RetryProfile,
} from '../openclaw/retry';
import { uniqueSessionLabel } from '../openclaw/session-label';

/** A retry is not started with less than this left of the dispatch budget. */
const MIN_ATTEMPT_MS = 250;

/** One message for one gateway session. */
export interface DispatchRequest {
  sessionKey: string;
  /** The session's agent, named in its label (made unique with the key). */
  agentName: string;
  message: string;
  /** Whether the gateway also delivers the message to the agent's channels. */
  deliver: boolean;
}

/** Options of one unit of work under the coordination profile. */
export interface DispatchOptions {
  /**
   * Epoch ms after which no retry starts: work that shares one budget (a broadcast's boards, of
   * which those queued behind the concurrency bound start late) gets its first attempt, and
   * retries only while that budget lasts; without it every unit would have a whole budget of
   * its own, so a broadcast to a gateway that stays down would last a budget per round.
   */
  retryUntil?: number;
}

/** What a unit of gateway work run under {@link GatewayDispatchService.withRetry} is given. */
export interface DispatchBudget {
  /** Milliseconds left in which a retry (or an inner resend) may start (at least 1). */
  remainingMs(): number;
  /** A per-call timeout: the client's request timeout, cut to what is left of the budget. */
  callTimeoutMs(): number;
}

/**
 * The one way coordination (and, next, onboarding) sends a message to a gateway session: ensure
 * the session (`sessions.patch` with its label), then `chat.send`, as ONE unit under the
 * coordination retry profile (contract §5.3): transient failures re-run the whole unit with
 * backoff until the budget (COORDINATION_RETRY_TIMEOUT_MS, upstream 45 s) is spent, then fail
 * with "Gateway unreachable after N seconds (gateway coordination timeout). Last error: …";
 * anything else fails at once. Callers map failures to their 502 text.
 *
 * One idempotency key per dispatch, reused by every attempt: the gateway de-duplicates a
 * `chat.send` it already admitted (`in_flight`), so a retry after a lost answer never delivers
 * the message twice (upstream drew a fresh key per attempt).
 */
@Injectable()
export class GatewayDispatchService {
  private readonly profile: RetryProfile;
  private readonly requestTimeoutMs: number;

  constructor(
    private readonly gateways: OpenClawGatewayService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.profile = { ...COORDINATION_RETRY, timeoutMs: config.coordination.retryTimeoutMs };
    this.requestTimeoutMs = config.openclaw.requestTimeoutMs;
  }

  /** The profile every coordination call runs under (its budget from config). */
  get retryProfile(): RetryProfile {
    return this.profile;
  }

  /** Typed gateway methods for a gateway row. */
  methods(gateway: GatewayRecord): GatewayMethods {
    return this.gateways.methods(gateway);
  }

  /**
   * Runs `unit` under the coordination profile. The unit gets the budget that is left, so no
   * single call (or inner retry) runs past the dispatch deadline: the backoff checks its
   * deadline only between attempts, and an attempt started just before it would otherwise add
   * a whole request timeout on top. With `options.retryUntil` (a budget shared with other
   * units) no retry starts past it; the first attempt always runs, with its own call timeout.
   */
  withRetry<T>(
    unit: (budget: DispatchBudget) => Promise<T>,
    options: DispatchOptions = {},
  ): Promise<T> {
    const deadline = Date.now() + this.profile.timeoutMs;
    const retryDeadline = Math.min(deadline, options.retryUntil ?? deadline);
    const budget: DispatchBudget = {
      remainingMs: () => Math.max(1, retryDeadline - Date.now()),
      // An attempt (the first one of a late unit too) gets its own time, within its budget.
      callTimeoutMs: () => Math.max(1, Math.min(this.requestTimeoutMs, deadline - Date.now())),
    };
    let lastError: Error | null = null;
    return withGatewayRetry(this.profile, async () => {
      if (lastError !== null && retryDeadline - Date.now() < MIN_ATTEMPT_MS) {
        // The shared budget is spent: this unit's failure is final, with the profile's text.
        if (retryDeadline < deadline) throw retryBudgetSpent(this.profile, lastError);
        // A retry with (almost) nothing left of the budget could only time itself out, and its
        // "did not answer within 1 ms" would replace the real last error in the timeout text.
        throw lastError;
      }
      try {
        return await unit(budget);
      } catch (error) {
        lastError = error instanceof Error ? error : new Error(String(error));
        // Once a shared budget is spent, a transient failure is final at once (no backoff first).
        const sharedBudgetSpent =
          retryDeadline < deadline && retryDeadline - Date.now() < MIN_ATTEMPT_MS;
        if (sharedBudgetSpent && isTransientGatewayError(error)) {
          throw retryBudgetSpent(this.profile, error);
        }
        throw error;
      }
    });
  }

  /**
   * Ensure session + `chat.send` under the coordination profile, with one idempotency key.
   *
   * Retry nesting: `GatewayMethods.chatSend` has its own inner budget (CHAT_SEND_RETRY, 15 s)
   * in which it resends a send whose answer was lost, with the same key. Here that inner budget
   * is cut to what is left of the dispatch budget, and every call's timeout too, so the outer
   * loop (45 s) bounds the total: an attempt never outlives the dispatch deadline, and once it
   * has passed the outer loop stops with the timeout error naming the last failure. Both loops
   * reuse the one key, so however many resends happen the gateway admits the message once.
   * `sessions.patch` with the same key and label is idempotent, so its lost answer is retried
   * too.
   */
  async dispatch(
    gateway: GatewayRecord,
    request: DispatchRequest,
    options: DispatchOptions = {},
  ): Promise<void> {
    const methods = this.gateways.methods(gateway);
    const idempotencyKey = randomUUID();
    const label = uniqueSessionLabel(request.agentName, request.sessionKey);
    await this.withRetry(async (budget) => {
      await methods.sessionsPatch(
        { key: request.sessionKey, label },
        { timeoutMs: budget.callTimeoutMs(), idempotent: true },
      );
      await methods.chatSend(
        {
          sessionKey: request.sessionKey,
          message: request.message,
          deliver: request.deliver,
          idempotencyKey,
        },
        {
          timeoutMs: budget.callTimeoutMs(),
          retry: {
            ...CHAT_SEND_RETRY,
            timeoutMs: Math.min(CHAT_SEND_RETRY.timeoutMs, budget.remainingMs()),
          },
        },
      );
    }, options);
  }
}
