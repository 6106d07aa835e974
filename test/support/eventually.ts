/**
 * Polling for tests: things that happen asynchronously (a socket closing, a gateway applying a
 * hot reload) are waited for with a deadline, never a fixed sleep.
 */

/** Resolves with the first value `check` returns that is not undefined. */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  options: { timeoutMs?: number; intervalMs?: number; what?: () => string } = {},
): Promise<T> {
  const { timeoutMs = 5_000, intervalMs = 50, what } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`condition not met in ${timeoutMs} ms${what ? `: ${what()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Waits until `check` is true. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; what?: () => string } = {},
): Promise<void> {
  await eventually(async () => ((await check()) ? true : undefined), options);
}

/**
 * Retries `assertion` (jest expectations) until it passes; at the deadline the last failure is
 * thrown, so the test reports what was still wrong.
 */
export async function eventuallyExpect(
  assertion: () => void | Promise<void>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 5_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
