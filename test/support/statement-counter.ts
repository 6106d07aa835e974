/**
 * Counts the SQL statements each HTTP request of a test app sends, attributed to the request
 * that sent them: the server's `request` event enters an AsyncLocalStorage context, and every
 * `pg` Client query made inside it (whatever pool connection it runs on) is recorded there.
 * Background work (sweepers, the change-log listener, ticks) runs outside any request context,
 * so it is not counted and cannot make a count flaky.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Server } from 'node:http';
import { Client } from 'pg';

interface RequestStatements {
  method: string;
  url: string;
  statements: string[];
}

export interface StatementCounter {
  /** The statements of each request `run` made, in the order the requests arrived. */
  during(run: () => Promise<unknown>): Promise<RequestStatements[]>;
  /** Stops counting (restores `pg`). */
  uninstall(): void;
}

export function countStatementsPerRequest(server: Server): StatementCounter {
  const context = new AsyncLocalStorage<RequestStatements>();
  let recording: RequestStatements[] | null = null;

  const onRequest = (req: { method?: string; url?: string }) => {
    const entry: RequestStatements = {
      method: req.method ?? '',
      url: req.url ?? '',
      statements: [],
    };
    recording?.push(entry);
    // The request's handlers run synchronously after this listener and carry the context on.
    context.enterWith(entry);
  };
  server.prependListener('request', onRequest);

  // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound in the wrapper
  const original = Client.prototype.query;
  const counting = function (this: Client, ...args: unknown[]) {
    const [first] = args;
    const text =
      typeof first === 'string' ? first : String((first as { text?: string })?.text ?? first);
    context.getStore()?.statements.push(text.replace(/\s+/g, ' ').trim());
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
  Client.prototype.query = counting as typeof original;

  return {
    async during(run) {
      const entries: RequestStatements[] = [];
      recording = entries;
      try {
        await run();
      } finally {
        recording = null;
      }
      return entries;
    },
    uninstall() {
      Client.prototype.query = original;
      server.removeListener('request', onRequest);
    },
  };
}
