import type { Response } from 'express';

/**
 * One server-sent event response. Counts events written but not yet taken by the socket
 * (`pending`: the write callback has not run), so a client that stops reading can be found and
 * closed instead of buffering without bound. Writes after close are dropped; nothing throws.
 */
export class SseConnection {
  private pendingEvents = 0;
  private closedFlag = false;
  private keepAlive: NodeJS.Timeout | null = null;

  constructor(private readonly res: Response) {}

  get pending(): number {
    return this.pendingEvents;
  }

  get closed(): boolean {
    return this.closedFlag || this.res.destroyed || this.res.writableEnded;
  }

  /** Sends the headers and starts the keep-alive comment. */
  open(keepAliveMs: number): void {
    this.res.status(200);
    this.res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    this.res.setHeader('Cache-Control', 'no-cache, no-transform');
    this.res.setHeader('Connection', 'keep-alive');
    // Reverse proxies (nginx) must not buffer the stream.
    this.res.setHeader('X-Accel-Buffering', 'no');
    this.res.flushHeaders();
    this.res.socket?.setNoDelay(true);
    this.write(': connected\n\n', false);
    this.keepAlive = setInterval(
      () => this.write(`: ping - ${new Date().toISOString()}\n\n`, false),
      keepAliveMs,
    );
    this.keepAlive.unref();
  }

  /** `data` is one line of JSON; `id` is omitted for events that carry no resume position. */
  event(name: string, data: string, id?: string): void {
    this.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${name}\ndata: ${data}\n\n`, true);
  }

  private write(chunk: string, counted: boolean): void {
    if (this.closed) return;
    if (counted) this.pendingEvents++;
    try {
      this.res.write(chunk, () => {
        if (counted) this.pendingEvents--;
      });
    } catch {
      this.close(true);
    }
  }

  /**
   * Ends the stream cleanly with a reconnect hint: the SSE `retry:` field (EventSource waits
   * that long before it reconnects, with its Last-Event-ID) and a comment saying why. For a
   * server going away (shutdown): the client resumes on another instance, nothing lost.
   */
  drain(retryMs: number, reason: string): void {
    if (this.closed) return;
    this.write(`retry: ${Math.max(0, Math.round(retryMs))}\n: ${reason}\n\n`, false);
    this.close();
  }

  /** Stops the stream; `abort` drops the connection without flushing (a client that fell behind). */
  close(abort = false): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = null;
    if (this.closedFlag) return;
    this.closedFlag = true;
    try {
      if (abort) this.res.destroy();
      else this.res.end();
    } catch {
      // Already gone.
    }
  }
}
