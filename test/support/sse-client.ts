import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { eventually } from './eventually';

export interface SseEvent {
  id?: string;
  event: string;
  data: unknown;
}

/**
 * A real server-sent events client over HTTP (node `http`), parsing the stream as a browser's
 * EventSource does: `id:`, `event:`, `data:` lines, blank line ends an event, `:` comments.
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  status = 0;
  body = '';
  ended = false;
  /** The server ended the response properly (the final chunk arrived), not a dropped socket. */
  completed = false;
  lastEventId: string | undefined;
  comments = 0;
  /** The last `retry:` field (the server's reconnect delay hint, ms). */
  retry: number | undefined;
  /** The text of every comment line, in order. */
  readonly commentTexts: string[] = [];
  private request: http.ClientRequest | null = null;
  private response: http.IncomingMessage | null = null;
  private buffer = '';
  private pending: { id?: string; event?: string; data: string[] } = { data: [] };

  static async open(
    baseUrl: string,
    path: string,
    headers: Record<string, string> = {},
    options: { paused?: boolean } = {},
  ): Promise<SseClient> {
    const client = new SseClient();
    await client.connect(baseUrl, path, headers, options.paused ?? false);
    return client;
  }

  private connect(
    baseUrl: string,
    path: string,
    headers: Record<string, string>,
    paused: boolean,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const request = http.get(
        new URL(path, baseUrl),
        // A connection of its own, as EventSource has: never a pooled keep-alive socket.
        { headers: { Accept: 'text/event-stream', ...headers }, agent: false },
        (res) => {
          this.response = res;
          this.status = res.statusCode ?? 0;
          res.setEncoding('utf8');
          if (paused) res.pause();
          res.on('data', (chunk: string) => {
            if (this.status !== 200) this.body += chunk;
            else this.feed(chunk);
          });
          const end = () => {
            this.ended = true;
          };
          res.on('end', () => {
            this.completed = true;
            end();
          });
          res.on('close', end);
          res.on('error', end);
          if (this.status === 200) resolve();
          else res.on('end', () => resolve());
        },
      );
      request.on('error', (error) => {
        this.ended = true;
        reject(error);
      });
      this.request = request;
    });
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') {
        if (this.pending.data.length > 0 || this.pending.event) {
          const data = this.pending.data.join('\n');
          this.events.push({
            id: this.pending.id,
            event: this.pending.event ?? 'message',
            data: data ? (JSON.parse(data) as unknown) : null,
          });
        }
        if (this.pending.id !== undefined) this.lastEventId = this.pending.id;
        this.pending = { data: [] };
      } else if (line.startsWith(':')) {
        this.comments++;
        this.commentTexts.push(line.slice(1).trim());
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') this.pending.id = value;
        else if (field === 'event') this.pending.event = value;
        else if (field === 'data') this.pending.data.push(value);
        else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
      }
    }
  }

  /** Stops reading (the server's writes back up). */
  pause(): void {
    this.response?.pause();
  }

  /** Agent ids of the `agent` events, in order. */
  agentIds(): string[] {
    return this.events
      .filter((e) => e.event === 'agent')
      .map((e) => (e.data as { agent: { id: string } }).agent.id);
  }

  async waitForEvents(count: number, timeoutMs = 10_000): Promise<SseEvent[]> {
    await eventually(() => (this.events.length >= count ? true : undefined), {
      timeoutMs,
      what: () => `${this.events.length}/${count} events: ${JSON.stringify(this.events)}`,
    });
    return this.events;
  }

  async waitForEnd(timeoutMs = 10_000): Promise<void> {
    await eventually(() => (this.ended ? true : undefined), {
      timeoutMs,
      what: () => 'stream end',
    });
  }

  close(): void {
    this.request?.destroy();
    this.ended = true;
  }
}

/** Listens on an ephemeral loopback port; returns the base URL. */
export async function listen(app: NestExpressApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as AddressInfo;
  return `http://127.0.0.1:${address.port}`;
}
