import { AsyncLocalStorage } from 'node:async_hooks';

/** The wait for a turn ran past its deadline. */
export class LockWaitTimeoutError extends Error {
  constructor(
    readonly key: string,
    readonly waitedMs: number,
  ) {
    super(`no turn on ${key} within ${waitedMs} ms`);
    this.name = 'LockWaitTimeoutError';
  }
}

/** As many callers as allowed already wait for the key. */
export class LockQueueFullError extends Error {
  constructor(
    readonly key: string,
    readonly limit: number,
  ) {
    super(`${limit} callers already wait for ${key}`);
    this.name = 'LockQueueFullError';
  }
}

/** Work holding a key asked for the same key again (it would wait for itself forever). */
export class LockReentryError extends Error {
  constructor(readonly key: string) {
    super(`${key} re-entered by the work holding it`);
    this.name = 'LockReentryError';
  }
}

export interface TurnOptions {
  /** Give up waiting after this long (default: wait as long as it takes). */
  waitMs?: number;
}

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout | null;
}

interface KeyState {
  waiters: Waiter[];
}

/** One caller's turn on a key; over once its work settled. */
interface Turn {
  mutex: KeyedMutex;
  key: string;
  over: boolean;
}

/**
 * The turns held along the current async call chain. Module-wide, so that anything started
 * inside a turn but living past it (a socket dialled during a config write, whose callbacks
 * inherit this context) can be started outside with {@link outsideTurns}; a turn that is over
 * never counts anyway.
 */
const holding = new AsyncLocalStorage<readonly Turn[]>();

/** Runs `start` outside every turn (for long-lived work started from inside one). */
export function outsideTurns<T>(start: () => T): T {
  return holding.exit(start);
}

/**
 * In-process mutual exclusion by key: work for one key runs one at a time, in arrival order;
 * different keys never wait for each other. Every wait is bounded: by the caller's `waitMs`,
 * and by `maxWaiters` callers queued per key (one more is refused at once). Work that already
 * holds a key and asks for it again fails at once instead of waiting for itself (the holders
 * are tracked along the async call chain).
 */
export class KeyedMutex {
  /** A key is present while its work runs; its waiters queue behind it. */
  private readonly held = new Map<string, KeyState>();

  constructor(readonly maxWaiters = Number.POSITIVE_INFINITY) {}

  async run<T>(key: string, work: () => Promise<T>, options: TurnOptions = {}): Promise<T> {
    const mine = (holding.getStore() ?? []).filter((turn) => !turn.over);
    if (mine.some((turn) => turn.mutex === this && turn.key === key)) {
      throw new LockReentryError(key);
    }
    await this.acquire(key, options.waitMs);
    const turn: Turn = { mutex: this, key, over: false };
    try {
      return await holding.run([...mine, turn], work);
    } finally {
      turn.over = true;
      this.release(key);
    }
  }

  /** Keys with work running or queued. */
  get size(): number {
    return this.held.size;
  }

  private acquire(key: string, waitMs: number | undefined): Promise<void> {
    const state = this.held.get(key);
    if (!state) {
      this.held.set(key, { waiters: [] });
      return Promise.resolve();
    }
    if (state.waiters.length >= this.maxWaiters) {
      return Promise.reject(new LockQueueFullError(key, this.maxWaiters));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          if (waiter.timer) clearTimeout(waiter.timer);
          resolve();
        },
        timer: null,
      };
      if (waitMs !== undefined) {
        waiter.timer = setTimeout(
          () => {
            const index = state.waiters.indexOf(waiter);
            if (index < 0) return; // granted meanwhile
            state.waiters.splice(index, 1);
            reject(new LockWaitTimeoutError(key, waitMs));
          },
          Math.max(0, waitMs),
        );
        waiter.timer.unref();
      }
      state.waiters.push(waiter);
    });
  }

  /** Hands the key to the next waiter, or forgets it. */
  private release(key: string): void {
    const state = this.held.get(key);
    const next = state?.waiters.shift();
    if (next) next.grant();
    else this.held.delete(key);
  }
}
