import { HeartbeatQueue } from './heartbeat-queue';

const entry = (agentId: string, waiter: number, status: string | null = null) => ({
  agentId,
  status,
  waiter,
});
const waiters = (batch: { waiter: number }[]) => batch.map((e) => e.waiter);

describe('HeartbeatQueue (group commit batching rules)', () => {
  it('takes heartbeats in arrival order, at most maxBatch per batch', () => {
    const queue = new HeartbeatQueue<number>(3, 100);
    for (let i = 0; i < 5; i++) queue.push(entry(`a${i}`, i));
    expect(waiters(queue.take())).toEqual([0, 1, 2]);
    expect(queue.size).toBe(2);
  });

  it('keeps a second heartbeat of the same agent, and every later one, for a later batch, in order', () => {
    const queue = new HeartbeatQueue<number>(10, 100);
    queue.push(entry('a', 1, 'busy'));
    queue.push(entry('b', 2));
    queue.push(entry('a', 3, 'online'));
    queue.push(entry('a', 4));
    queue.push(entry('c', 5));
    const first = queue.take();
    expect(waiters(first)).toEqual([1, 2, 5]);
    // 'a' is in flight: its next heartbeat waits until the first batch is settled.
    expect(queue.take()).toEqual([]);
    queue.settle(first);
    const second = queue.take();
    expect(waiters(second)).toEqual([3]);
    queue.settle(second);
    expect(waiters(queue.take())).toEqual([4]);
  });

  it('does not let a later heartbeat overtake one left out of a full batch', () => {
    const queue = new HeartbeatQueue<number>(1, 100);
    queue.push(entry('a', 1));
    queue.push(entry('b', 2));
    queue.push(entry('b', 3));
    const first = queue.take();
    expect(waiters(first)).toEqual([1]);
    queue.settle(first);
    const second = queue.take();
    expect(waiters(second)).toEqual([2]);
    expect(queue.take()).toEqual([]);
    queue.settle(second);
    expect(waiters(queue.take())).toEqual([3]);
  });

  it('lets concurrent batches take only agents not already in flight', () => {
    const queue = new HeartbeatQueue<number>(10, 100);
    queue.push(entry('a', 1));
    const first = queue.take();
    queue.push(entry('a', 2));
    queue.push(entry('b', 3));
    expect(waiters(queue.take())).toEqual([3]);
    queue.settle(first);
    expect(waiters(queue.take())).toEqual([2]);
  });

  it('has room only below maxWaiting (callers beyond it wait: the queue never grows past it)', () => {
    const queue = new HeartbeatQueue<number>(2, 3);
    for (let i = 0; i < 3; i++) queue.push(entry(`a${i}`, i));
    expect(queue.hasRoom()).toBe(false);
    queue.take();
    expect(queue.hasRoom()).toBe(true);
    expect(() => new HeartbeatQueue<number>(0, 1)).toThrow(RangeError);
  });
});
