/**
 * Natural batching's trigger: `request()` runs `flush` once on the next turn of the event loop,
 * however many times it was called before then, so everything that arrived in the same turn
 * (or while earlier batches were in flight) goes out together. No timer, so no added latency.
 * `flush` must not throw (it runs from setImmediate).
 */
export class CoalescedFlush {
  private scheduled = false;

  constructor(private readonly flush: () => void) {}

  request(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }
}
