/**
 * Runs `work` on every item, at most `concurrency` at a time, in order of the items (each
 * worker takes the next item when it is done with one). Resolves when all are done; `work`
 * must not reject (a rejection rejects the whole run, leaving the other workers running).
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  const workers = Math.max(1, Math.min(concurrency, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
}
