/**
 * `work`, or the error `onTimeout()` makes once `timeoutMs` has passed. The work is left to run
 * (a promise cannot be cancelled); the timer is unref'd and cleared either way, so a pending
 * deadline never keeps the process alive.
 */
export function withDeadline<T>(
  work: Promise<T>,
  timeoutMs: number,
  onTimeout: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(0, timeoutMs));
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
