// A tiny OpenAI-compatible model server for gateway integration tests.
//
// A real OpenClaw gateway pointed at it (scripts/openclaw-gateway.sh start with
// OPENCLAW_MODEL_BASE_URL=<baseUrl>) completes chat.send round trips offline: the gateway's
// "openai-completions" provider streams from POST /v1/chat/completions, and every assistant turn
// gets the same fixed reply. The reply is fixed on purpose: the last user message the gateway sends
// carries injected context blocks, so echoing it back would make assertions brittle.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const FAKE_MODEL_ID = 'fake-model';
export const DEFAULT_FAKE_REPLY = 'Hello from the fake model.';

export interface FakeModelServerOptions {
  /** Assistant text returned for every completion. */
  reply?: string;
}

export interface FakeModelServer {
  /** OpenAI-style base URL including `/v1`, e.g. `http://127.0.0.1:41234/v1`. */
  baseUrl: string;
  /** Parsed JSON bodies of the chat completion requests received, oldest first. */
  requests: unknown[];
  close(): Promise<void>;
}

// Far above any test prompt; keeps a misbehaving client from growing memory without bound.
const MAX_BODY_BYTES = 10 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string, type: string): void {
  sendJson(res, status, { error: { message, type, param: null, code: null } });
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

/** Splits the reply into a few pieces so clients see several content deltas. */
function splitIntoChunks(text: string, parts = 3): string[] {
  const size = Math.max(1, Math.ceil(text.length / parts));
  const chunks: string[] = [];
  for (let start = 0; start < text.length; start += size) {
    chunks.push(text.slice(start, start + size));
  }
  return chunks;
}

/** A rough token count; good enough for usage fields nobody bills. */
function countTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function promptTokens(body: Record<string, unknown>): number {
  return Array.isArray(body.messages) ? countTokens(JSON.stringify(body.messages)) : 1;
}

function writeChatCompletion(
  res: ServerResponse,
  body: Record<string, unknown>,
  reply: string,
): void {
  const id = `chatcmpl-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = typeof body.model === 'string' ? body.model : FAKE_MODEL_ID;
  const usage = {
    prompt_tokens: promptTokens(body),
    completion_tokens: countTokens(reply),
    total_tokens: promptTokens(body) + countTokens(reply),
  };

  if (body.stream !== true) {
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: reply, refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage,
    });
    return;
  }

  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): void => {
    const event = { id, object: 'chat.completion.chunk', created, model, choices, ...extra };
    res.write(`data: ${JSON.stringify(event)}\n\n`);
  };
  const choice = (delta: Record<string, unknown>, finishReason: string | null = null) => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finishReason,
  });

  chunk([choice({ role: 'assistant', content: '' })]);
  for (const piece of splitIntoChunks(reply)) chunk([choice({ content: piece })]);
  chunk([choice({}, 'stop')]);
  // OpenAI sends usage in a final chunk with no choices (stream_options.include_usage).
  chunk([], { usage });
  res.end('data: [DONE]\n\n');
}

export async function startFakeModelServer(
  options: FakeModelServerOptions = {},
): Promise<FakeModelServer> {
  const reply = options.reply ?? DEFAULT_FAKE_REPLY;
  const requests: unknown[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname.replace(/\/+$/, '');

    if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, {
        object: 'list',
        data: [{ id: FAKE_MODEL_ID, object: 'model', created: 0, owned_by: 'fake' }],
      });
      return;
    }

    if (req.method === 'POST' && path === '/v1/chat/completions') {
      const body = await readJsonBody(req);
      requests.push(body);
      if (!isRecord(body)) throw new HttpError(400, 'request body must be a JSON object');
      writeChatCompletion(res, body, reply);
      return;
    }

    sendError(res, 404, `no route for ${req.method ?? 'GET'} ${path || '/'}`, 'not_found_error');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof Error ? error.message : String(error);
      sendError(res, status, message, 'invalid_request_error');
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    // Idempotent, so both a test and its afterAll may call it.
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // The gateway keeps pooled keep-alive sockets open; without this close() would wait
        // for them to idle out.
        server.closeAllConnections();
      })),
  };
}
