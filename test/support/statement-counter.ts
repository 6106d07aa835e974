/**
 * Counts the SQL statements each HTTP request of a test app sends, attributed to the request
 * that sent them: the server's `request` event enters an AsyncLocalStorage context, and every
 * `pg` Client query made inside it (whatever pool connection it runs on) is recorded there.
 * Background work (sweepers, the change-log listener, ticks) runs outside any request context,
 * so it is not counted and cannot make a count flaky.
 *
 * What the context cannot bound, this file does:
 * - `enterWith` leaves the request's store on the connection's async resource, and anything
 *   started inside the request (timers, sockets it opened) keeps it. A statement sent in that
 *   context after the response has finished is not part of the request's answer: it is kept
 *   apart (`late`) and reported, never appended to a list a test has already read.
 * - `during` waits for the server to finish each response (the client may see the last byte
 *   before the server's `finish`), then a few more turns of the event loop for late statements,
 *   and returns copies: a later statement cannot change a result that was already compared.
 * - statements sent in no request context during `during` are kept (`background`), to be
 *   printed when a count is off.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Client } from 'pg';

export interface RequestStatements {
  method: string;
  url: string;
  /** Sent while the request was being answered (until its response finished). */
  statements: string[];
  /** Sent in the request's context after its response had finished (should be none). */
  late: string[];
}

export interface Recording {
  /** Each request `run` made, in the order the requests arrived. */
  requests: RequestStatements[];
  /** Statements sent outside any request context while `run` ran (background work). */
  background: string[];
}

export interface StatementCounter {
  /** The statements of each request `run` made, in the order the requests arrived. */
  during(run: () => Promise<unknown>): Promise<Recording>;
  /** Stops counting (restores `pg` and the server's listeners). */
  uninstall(): void;
}

interface LiveEntry extends RequestStatements {
  finished: boolean;
  done: Promise<void>;
}

/** Turns of the event loop `during` waits after the last response for late statements. */
const LATE_STATEMENT_TURNS = 5;
/** How long `during` waits for the server to finish a response the client already has. */
const FINISH_WAIT_MS = 5_000;

function statementText(first: unknown): string {
  const text =
    typeof first === 'string' ? first : String((first as { text?: string })?.text ?? first);
  return text.replace(/\s+/g, ' ').trim();
}

export function countStatementsPerRequest(server: Server): StatementCounter {
  const context = new AsyncLocalStorage<LiveEntry>();
  let recording: { requests: LiveEntry[]; background: string[] } | null = null;

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    let markDone!: () => void;
    const entry: LiveEntry = {
      method: req.method ?? '',
      url: req.url ?? '',
      statements: [],
      late: [],
      finished: false,
      done: new Promise<void>((resolve) => (markDone = resolve)),
    };
    // 'close' follows 'finish', and also comes when the client goes away first.
    res.once('close', () => {
      entry.finished = true;
      markDone();
    });
    recording?.requests.push(entry);
    // The request's handlers run synchronously after this listener and carry the context on
    // (a request body's events come from the connection's resource, which now holds it too).
    context.enterWith(entry);
  };
  server.prependListener('request', onRequest);

  // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound in the wrapper
  const original = Client.prototype.query;
  const counting = function (this: Client, ...args: unknown[]) {
    const entry = context.getStore();
    if (entry) {
      (entry.finished ? entry.late : entry.statements).push(statementText(args[0]));
    } else {
      recording?.background.push(statementText(args[0]));
    }
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
  Client.prototype.query = counting as typeof original;

  return {
    async during(run) {
      const live = { requests: [] as LiveEntry[], background: [] as string[] };
      recording = live;
      try {
        await run();
        await Promise.race([
          Promise.all(live.requests.map((entry) => entry.done)),
          new Promise((resolve) => setTimeout(resolve, FINISH_WAIT_MS).unref()),
        ]);
        for (let turn = 0; turn < LATE_STATEMENT_TURNS; turn++) {
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        recording = null;
      }
      return {
        requests: live.requests.map(({ method, url, statements, late }) => ({
          method,
          url,
          statements: [...statements],
          late: [...late],
        })),
        background: [...live.background],
      };
    },
    uninstall() {
      Client.prototype.query = original;
      server.removeListener('request', onRequest);
    },
  };
}

/**
 * A line diff of two statement lists (longest common subsequence): `  ` both, `- ` only in
 * `expected`, `+ ` only in `actual`, each statement cut to `width` characters. Empty when equal.
 */
export function diffStatements(expected: string[], actual: string[], width = 160): string {
  if (expected.length === actual.length && expected.every((s, i) => s === actual[i])) return '';
  const n = expected.length;
  const m = actual.length;
  // lcs[i][j]: the longest common subsequence of expected[i..] and actual[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] =
        expected[i] === actual[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const cut = (s: string) => (s.length > width ? `${s.slice(0, width)}…` : s);
  const lines: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) {
      lines.push(`  ${cut(expected[i++])}`);
      j++;
    } else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      lines.push(`+ ${cut(actual[j++])}`);
    } else {
      lines.push(`- ${cut(expected[i++])}`);
    }
  }
  return lines.join('\n');
}
