/**
 * The batching rules of heartbeat group commit, without I/O (see HeartbeatBatcher): which waiting
 * heartbeats the next batch takes, and when a caller must wait for room.
 */

/** One heartbeat waiting to be written: the agent and the status it claims (null: none). */
export interface QueuedHeartbeat<T> {
  readonly agentId: string;
  readonly status: string | null;
  readonly waiter: T;
}

export class HeartbeatQueue<T> {
  private waiting: QueuedHeartbeat<T>[] = [];
  /** Agents with a heartbeat in a batch being written now. */
  private readonly inFlight = new Set<string>();

  constructor(
    /** Most heartbeats one batch writes. */
    readonly maxBatch: number,
    /** Most heartbeats waiting for a batch; beyond it callers wait for room (backpressure). */
    readonly maxWaiting: number,
  ) {
    if (maxBatch < 1 || maxWaiting < 1) throw new RangeError('batch and queue sizes must be >= 1');
  }

  get size(): number {
    return this.waiting.length;
  }

  hasRoom(): boolean {
    return this.waiting.length < this.maxWaiting;
  }

  push(entry: QueuedHeartbeat<T>): void {
    this.waiting.push(entry);
  }

  /**
   * The next batch, in arrival order: at most `maxBatch` heartbeats of distinct agents none of
   * which is being written by another batch. A second heartbeat of the same agent stays queued,
   * in order, for a later batch, so each one is applied (and answered) after the one before it.
   * The batch's agents count as in flight until {@link settle}.
   */
  take(): QueuedHeartbeat<T>[] {
    const batch: QueuedHeartbeat<T>[] = [];
    const kept: QueuedHeartbeat<T>[] = [];
    const taken = new Set<string>();
    for (const entry of this.waiting) {
      if (
        batch.length < this.maxBatch &&
        !taken.has(entry.agentId) &&
        !this.inFlight.has(entry.agentId)
      ) {
        batch.push(entry);
        taken.add(entry.agentId);
      } else {
        // Later heartbeats of a skipped agent must not overtake it: block the agent for this batch.
        taken.add(entry.agentId);
        kept.push(entry);
      }
    }
    this.waiting = kept;
    for (const entry of batch) this.inFlight.add(entry.agentId);
    return batch;
  }

  /** The batch is written (or failed): its agents may be taken again. */
  settle(batch: readonly QueuedHeartbeat<T>[]): void {
    for (const entry of batch) this.inFlight.delete(entry.agentId);
  }
}
