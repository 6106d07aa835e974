import {
  KeyedMutex,
  LockQueueFullError,
  LockReentryError,
  LockWaitTimeoutError,
  outsideTurns,
} from './keyed-mutex';

/** A promise with its resolver, to hold a turn until the test lets it go. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe('KeyedMutex', () => {
  it('runs work for one key one at a time in arrival order; other keys do not wait', async () => {
    const mutex = new KeyedMutex();
    const first = gate();
    const log: string[] = [];
    const a1 = mutex.run('a', async () => {
      log.push('a1 start');
      await first.opened;
      log.push('a1 end');
    });
    const a2 = mutex.run('a', () => Promise.resolve(log.push('a2')));
    await mutex.run('b', () => Promise.resolve(log.push('b')));
    expect(log).toEqual(['a1 start', 'b']);
    first.open();
    await Promise.all([a1, a2]);
    expect(log).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
    expect(mutex.size).toBe(0);
  });

  it('gives up a wait after waitMs, and the queue moves on without it', async () => {
    const mutex = new KeyedMutex();
    const holder = gate();
    const held = mutex.run('k', () => holder.opened);
    const impatient = mutex.run('k', () => Promise.resolve('impatient'), { waitMs: 50 });
    const patient = mutex.run('k', () => Promise.resolve('patient'));
    await expect(impatient).rejects.toBeInstanceOf(LockWaitTimeoutError);
    holder.open();
    await held;
    await expect(patient).resolves.toBe('patient');
    expect(mutex.size).toBe(0);
  });

  it('refuses a caller beyond maxWaiters at once', async () => {
    const mutex = new KeyedMutex(2);
    const holder = gate();
    const held = mutex.run('k', () => holder.opened);
    const waiting = [1, 2].map((n) => mutex.run('k', () => Promise.resolve(n)));
    await expect(mutex.run('k', () => Promise.resolve(3))).rejects.toBeInstanceOf(
      LockQueueFullError,
    );
    holder.open();
    await held;
    await expect(Promise.all(waiting)).resolves.toEqual([1, 2]);
  });

  it('fails re-entry at once, but allows other keys and other mutexes inside a turn', async () => {
    const mutex = new KeyedMutex();
    const other = new KeyedMutex();
    const result = await mutex.run('k', async () => {
      await expect(mutex.run('k', () => Promise.resolve('inner'))).rejects.toBeInstanceOf(
        LockReentryError,
      );
      const nested = await mutex.run('j', () => other.run('k', () => Promise.resolve('nested')));
      return nested;
    });
    expect(result).toBe('nested');
  });

  it('lets work that outlives its turn, or runs outside turns, wait for the key normally', async () => {
    const mutex = new KeyedMutex();
    const later = gate();
    let fromTimer: Promise<string> | null = null;
    const holder = gate();
    let outside: Promise<string> | null = null;
    await mutex.run('k', () => {
      // Inherits this turn's context but runs after the turn is over.
      setTimeout(() => {
        fromTimer = mutex.run('k', () => Promise.resolve('timer'));
        later.open();
      }, 20);
      return Promise.resolve();
    });
    await later.opened;
    await expect(fromTimer).resolves.toBe('timer');

    const held = mutex.run('k', async () => {
      outside = outsideTurns(() => mutex.run('k', () => Promise.resolve('outside')));
      await holder.opened;
    });
    holder.open();
    await held;
    await expect(outside).resolves.toBe('outside');
  });
});
