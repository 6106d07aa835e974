/**
 * Typed gateway methods. Every parameter object is closed (the gateway rejects unknown keys),
 * so each method copies exactly the keys the gateway accepts and drops `undefined` ones; a
 * caller passing a wider object cannot leak extra keys onto the wire.
 */
import { randomUUID } from 'node:crypto';
import { GatewayProtocolError, GatewayRpcError } from '../common/errors/gateway-errors';
import { isAgentNotFoundError, isStaleConfigHashError } from './compat';
import type { CallOptions } from './gateway-client';
import { GatewayBackoff, type RetryProfile } from './retry';
import { isRecord, type GatewayServerInfo } from './protocol';

/** What the typed methods need from a client: one request/response call. */
export interface GatewayTransport {
  call<T>(method: string, params: object, options?: CallOptions): Promise<T>;
  readonly server: GatewayServerInfo | null;
  /**
   * Runs `work` while no other caller in this process runs exclusive work of the same name on
   * the same gateway (config get+patch). The wait for the turn is bounded by `timeoutMs`
   * (default: the request timeout) and by a queue limit, both failing retryably; asking again
   * from inside `work` fails at once. Without it, work runs as is.
   */
  exclusive?<T>(name: string, work: () => Promise<T>, options?: { timeoutMs?: number }): Promise<T>;
  /**
   * Wraps one call that rewrites the gateway's config (run inside the `config` turn): starts it
   * only once the gateway's previous config write has had time to hot-reload. Without it, the
   * call runs as is.
   */
  spacedConfigWrite?<T>(write: () => Promise<T>): Promise<T>;
}

// ---- sessions ---------------------------------------------------------------------------

export interface SessionsListParams {
  limit?: number;
  offset?: number;
  agentId?: string;
  search?: string;
}

export interface GatewaySession {
  key: string;
  label?: string;
  displayName?: string;
  agentId?: string;
  kind?: string;
  isMain?: boolean;
  sessionId?: string;
  updatedAt?: number | string | null;
  status?: string;
  lastRunError?: string | null;
  hasActiveRun?: boolean;
  [extra: string]: unknown;
}

export interface SessionsListResult {
  count?: number;
  totalCount?: number;
  hasMore?: boolean;
  nextOffset?: number | null;
  sessions: GatewaySession[];
  [extra: string]: unknown;
}

export interface SessionsPatchParams {
  key: string;
  label?: string;
}

export interface SessionEntryResult {
  ok: boolean;
  key: string;
  entry?: { sessionId?: string; label?: string; [extra: string]: unknown };
  [extra: string]: unknown;
}

export interface SessionsDeleteResult {
  ok: boolean;
  key: string;
  deleted: boolean;
  [extra: string]: unknown;
}

// ---- chat -------------------------------------------------------------------------------

export interface ChatSendParams {
  sessionKey: string;
  message: string;
  deliver?: boolean;
  /**
   * One key per logical dispatch: every retry of it reuses the key, so the gateway delivers
   * the message once. Generated when absent.
   */
  idempotencyKey?: string;
}

export interface ChatSendResult {
  runId: string;
  status: string;
  [extra: string]: unknown;
}

export interface ChatHistoryParams {
  sessionKey: string;
  limit?: number;
}

export interface ChatMessage {
  role: string;
  content?: unknown;
  timestamp?: number;
  [extra: string]: unknown;
}

export interface ChatHistoryResult {
  sessionKey: string;
  sessionId?: string;
  messages: ChatMessage[];
  hasMore?: boolean;
  [extra: string]: unknown;
}

// ---- agents -----------------------------------------------------------------------------

export interface GatewayAgent {
  id: string;
  name?: string;
  workspace?: string;
  [extra: string]: unknown;
}

export interface AgentsListResult {
  defaultId?: string;
  agents: GatewayAgent[];
  [extra: string]: unknown;
}

export interface AgentsCreateParams {
  name: string;
  workspace?: string;
  model?: string;
  emoji?: string;
  avatar?: string;
}

export interface AgentsCreateResult {
  ok: boolean;
  agentId: string;
  name?: string;
  workspace?: string;
  [extra: string]: unknown;
}

export interface AgentsUpdateParams {
  agentId: string;
  name?: string;
  workspace?: string;
  model?: string;
  emoji?: string;
  avatar?: string;
}

export interface AgentsDeleteParams {
  agentId: string;
  deleteFiles?: boolean;
}

export interface AgentFileEntry {
  name: string;
  path?: string;
  missing?: boolean;
  size?: number;
  updatedAtMs?: number;
  hash?: string;
  content?: string;
  [extra: string]: unknown;
}

export interface AgentFilesListResult {
  agentId: string;
  workspace?: string;
  files: AgentFileEntry[];
  [extra: string]: unknown;
}

export interface AgentFileResult {
  agentId: string;
  workspace?: string;
  file: AgentFileEntry;
  [extra: string]: unknown;
}

export interface AgentFilesSetParams {
  agentId: string;
  name: string;
  content: string;
  /** Optimistic concurrency: the sha256 the file must still have. */
  expectedHash?: string;
}

// ---- config -----------------------------------------------------------------------------

export interface ConfigSnapshot {
  hash?: string;
  config?: Record<string, unknown>;
  parsed?: Record<string, unknown>;
  valid?: boolean;
  [extra: string]: unknown;
}

export interface ConfigPatchResult {
  ok?: boolean;
  noop?: boolean;
  hash?: string;
  [extra: string]: unknown;
}

/** Builds a JSON merge patch from the current config; null means nothing to change. */
export type ConfigPatchBuilder = (
  config: Record<string, unknown>,
  snapshot: ConfigSnapshot,
) => Record<string, unknown> | null | Promise<Record<string, unknown> | null>;

/**
 * Config writers of this process waiting for their turn on one gateway, at most; one more is
 * refused at once as busy (retryable) rather than queued behind work it would time out on.
 */
export const CONFIG_WRITE_QUEUE_LIMIT = 32;

/** A create is applied through a config hot-reload: "not found" is polled for a while. */
const AFTER_CREATE_POLL: RetryProfile = {
  timeoutMs: 5_000,
  baseDelayMs: 250,
  maxDelayMs: 250,
  jitter: 0,
  context: 'agent create',
};

/**
 * Another writer changed the config between our read and patch ("config changed since last
 * load"): re-read and re-apply until this budget is spent. Jitter spreads competing writers.
 */
const CONFIG_CONFLICT_RETRY: RetryProfile = {
  timeoutMs: 30_000,
  baseDelayMs: 50,
  maxDelayMs: 1_000,
  jitter: 0.5,
  context: 'config patch',
};

/**
 * A chat.send whose answer was lost is resent (same key) within this budget. Each attempt
 * waits at most a third of it (see {@link chatSendAttemptMs}), so a send that is never answered
 * is resent before the budget is spent, whatever the client's request timeout.
 */
export const CHAT_SEND_RETRY: RetryProfile = {
  timeoutMs: 15_000,
  baseDelayMs: 250,
  maxDelayMs: 2_000,
  jitter: 0.2,
  context: 'chat send',
};

/** A chat.send is not resent with less than this left of its budget. */
const MIN_RESEND_MS = 250;

/** Admission is quick; one attempt may wait a third of the budget, never less than 1 s. */
function chatSendAttemptMs(budgetMs: number): number {
  return Math.max(1_000, Math.floor(budgetMs / 3));
}

/** Removes `undefined` values so optional keys are absent, not `null`. */
function closed<T extends object>(params: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(params).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

function expectObject<T>(method: string, payload: unknown, key?: string): T {
  const ok = isRecord(payload) && (key === undefined || key in payload);
  if (!ok) {
    throw new GatewayProtocolError(
      `gateway answered ${method} with an unexpected payload${key ? ` (no ${key})` : ''}`,
    );
  }
  return payload as T;
}

export class GatewayMethods {
  constructor(private readonly transport: GatewayTransport) {}

  /**
   * Runs a config write while no other config writer of this process works on the gateway:
   * `config.patch` (read + patch) and the agent methods, which the gateway applies by
   * rewriting its config too (they would make a concurrent patch's base hash stale).
   */
  private configWrite<T>(work: () => Promise<T>, options: CallOptions = {}): Promise<T> {
    return this.transport.exclusive
      ? this.transport.exclusive('config', work, { timeoutMs: options.timeoutMs })
      : work();
  }

  /** One call that rewrites the gateway's config, in its config-write turn. */
  private configWriteCall(method: string, params: object, options: CallOptions = {}) {
    return this.configWrite(
      () => this.spaced(() => this.transport.call(method, params, options)),
      options,
    );
  }

  /** The write itself, spaced from the gateway's previous config write (see the transport). */
  private spaced<T>(write: () => Promise<T>): Promise<T> {
    return this.transport.spacedConfigWrite ? this.transport.spacedConfigWrite(write) : write();
  }

  /** What the gateway said about itself at the last handshake (null before the first). */
  get server(): GatewayServerInfo | null {
    return this.transport.server;
  }

  async sessionsList(params: SessionsListParams = {}, options?: CallOptions) {
    const { limit, offset, agentId, search } = params;
    const payload = await this.transport.call(
      'sessions.list',
      closed({ limit, offset, agentId, search }),
      options,
    );
    return expectObject<SessionsListResult>('sessions.list', payload, 'sessions');
  }

  /** Creates the session when missing (idempotent for the same key and label). */
  async sessionsPatch(params: SessionsPatchParams, options?: CallOptions) {
    const payload = await this.transport.call(
      'sessions.patch',
      closed({ key: params.key, label: params.label || undefined }),
      options,
    );
    return expectObject<SessionEntryResult>('sessions.patch', payload);
  }

  async sessionsReset(key: string, options?: CallOptions) {
    const payload = await this.transport.call('sessions.reset', { key }, options);
    return expectObject<SessionEntryResult>('sessions.reset', payload);
  }

  async sessionsDelete(key: string, options?: CallOptions) {
    const payload = await this.transport.call('sessions.delete', { key }, options);
    return expectObject<SessionsDeleteResult>('sessions.delete', payload);
  }

  /**
   * Queues a message. Resolves on admission, not on a reply. One idempotency key per call
   * (the caller's, else a fresh one), reused by every retry: a send whose answer was lost
   * (timeout, dropped socket) is resent and the gateway de-duplicates it (`in_flight`).
   * One attempt waits at most a third of the retry budget (less if `timeoutMs` says so), so
   * a timed-out attempt leaves room for the resend.
   */
  async chatSend(params: ChatSendParams, options: CallOptions & { retry?: RetryProfile } = {}) {
    const body = {
      sessionKey: params.sessionKey,
      message: params.message,
      deliver: params.deliver ?? false,
      idempotencyKey: params.idempotencyKey || randomUUID(),
    };
    const { retry = CHAT_SEND_RETRY, ...callOptions } = options;
    const attemptMs = Math.min(
      callOptions.timeoutMs ?? Number.POSITIVE_INFINITY,
      chatSendAttemptMs(retry.timeoutMs),
    );
    const deadline = Date.now() + retry.timeoutMs;
    let lastError: Error | null = null;
    const payload = await new GatewayBackoff(retry).run(
      async (attempt) => {
        const left = deadline - Date.now();
        // A resend with (almost) nothing left of the budget could only time itself out, and
        // its "did not answer within 1 ms" would hide the real error from the caller.
        if (attempt > 1 && lastError !== null && left < MIN_RESEND_MS) throw lastError;
        try {
          return await this.transport.call('chat.send', body, {
            ...callOptions,
            // The first attempt gets its full time; a resend only what is left of the budget.
            timeoutMs: attempt === 1 ? attemptMs : Math.max(1, Math.min(attemptMs, left)),
          });
        } catch (error) {
          lastError = error instanceof Error ? error : new Error(String(error));
          throw error;
        }
      },
      { exhausted: 'last' },
    );
    return expectObject<ChatSendResult>('chat.send', payload);
  }

  async chatHistory(params: ChatHistoryParams, options?: CallOptions) {
    const payload = await this.transport.call(
      'chat.history',
      closed({ sessionKey: params.sessionKey, limit: params.limit }),
      options,
    );
    return expectObject<ChatHistoryResult>('chat.history', payload, 'messages');
  }

  /**
   * Normalised to `{agents: [{id, …}]}`: older gateways answered a bare list, and entries as
   * strings or objects keyed `id`, `agentId` or `agent_id`.
   */
  async agentsList(options?: CallOptions): Promise<AgentsListResult> {
    const payload = await this.transport.call('agents.list', {}, options);
    const result: Record<string, unknown> = Array.isArray(payload)
      ? { agents: payload }
      : expectObject<Record<string, unknown>>('agents.list', payload, 'agents');
    if (!Array.isArray(result.agents)) {
      throw new GatewayProtocolError('gateway answered agents.list without an agents list');
    }
    const agents = result.agents.flatMap((entry: unknown): GatewayAgent[] => {
      if (typeof entry === 'string') return entry.trim() ? [{ id: entry.trim() }] : [];
      if (!isRecord(entry)) return [];
      const id = [entry.id, entry.agentId, entry.agent_id].find(
        (value): value is string => typeof value === 'string' && value.trim() !== '',
      );
      return id ? [{ ...entry, id: id.trim() }] : [];
    });
    return { ...result, agents };
  }

  async agentsCreate(params: AgentsCreateParams, options?: CallOptions) {
    const { name, workspace, model, emoji, avatar } = params;
    const payload = await this.configWriteCall(
      'agents.create',
      closed({ name, workspace, model, emoji, avatar }),
      options,
    );
    return expectObject<AgentsCreateResult>('agents.create', payload, 'agentId');
  }

  /**
   * `afterCreate`: the agent was created moments ago; the gateway applies a create through a
   * config hot-reload, so "not found" is retried for a few seconds before it counts.
   */
  async agentsUpdate(
    params: AgentsUpdateParams,
    options: CallOptions & { afterCreate?: boolean } = {},
  ) {
    const { agentId, name, workspace, model, emoji, avatar } = params;
    const body = closed({ agentId, name, workspace, model, emoji, avatar });
    const payload = await new GatewayBackoff(AFTER_CREATE_POLL).run(
      () => this.configWriteCall('agents.update', body, options),
      {
        retryIf: isAgentNotFoundError,
        maxAttempts: options.afterCreate ? undefined : 1,
        exhausted: 'last',
      },
    );
    return expectObject<{ ok: boolean; agentId: string }>('agents.update', payload);
  }

  async agentsDelete(params: AgentsDeleteParams, options?: CallOptions) {
    const payload = await this.configWriteCall(
      'agents.delete',
      closed({ agentId: params.agentId, deleteFiles: params.deleteFiles }),
      options,
    );
    return expectObject<{ ok: boolean; agentId: string; [extra: string]: unknown }>(
      'agents.delete',
      payload,
    );
  }

  async agentFilesList(agentId: string, options?: CallOptions) {
    const payload = await this.transport.call('agents.files.list', { agentId }, options);
    return expectObject<AgentFilesListResult>('agents.files.list', payload, 'files');
  }

  async agentFilesGet(agentId: string, name: string, options?: CallOptions) {
    const payload = await this.transport.call('agents.files.get', { agentId, name }, options);
    return expectObject<AgentFileResult>('agents.files.get', payload, 'file');
  }

  /**
   * `agents.files.get` as the gateway answered it, unchecked: for callers that accept the older
   * payload shapes too (a bare string, `{content}`) besides today's `{file: {content}}`.
   */
  agentFilesGetPayload(agentId: string, name: string, options?: CallOptions): Promise<unknown> {
    return this.transport.call('agents.files.get', { agentId, name }, options);
  }

  async agentFilesSet(params: AgentFilesSetParams, options?: CallOptions) {
    const { agentId, name, content, expectedHash } = params;
    const payload = await this.transport.call(
      'agents.files.set',
      closed({ agentId, name, content, expectedHash }),
      options,
    );
    return expectObject<AgentFileResult>('agents.files.set', payload, 'file');
  }

  async configGet(options?: CallOptions) {
    const payload = await this.transport.call('config.get', {}, options);
    return expectObject<ConfigSnapshot>('config.get', payload);
  }

  /**
   * Reads the config, builds a merge patch from it and applies it against that read's hash.
   * Callers in this process take turns per gateway (the transport's `exclusive`; the wait for
   * the turn is bounded by `timeoutMs`), and a stale hash (another instance, or a human, wrote
   * in between) means read, build and patch again, within the turn, until `conflictTimeoutMs`
   * is spent, counted from the start of the turn. The builder must not write the gateway's
   * config itself (that fails at once: the turn is held).
   */
  async configPatch(
    build: ConfigPatchBuilder,
    options: CallOptions & { conflictTimeoutMs?: number } = {},
  ): Promise<ConfigPatchResult> {
    const { conflictTimeoutMs, ...callOptions } = options;
    const profile =
      conflictTimeoutMs === undefined
        ? CONFIG_CONFLICT_RETRY
        : { ...CONFIG_CONFLICT_RETRY, timeoutMs: conflictTimeoutMs };
    return this.configWrite(
      () =>
        new GatewayBackoff(profile).run(() => this.configPatchOnce(build, callOptions), {
          retryIf: (error) => error instanceof GatewayRpcError && isStaleConfigHashError(error),
          exhausted: 'last',
        }),
      callOptions,
    );
  }

  private async configPatchOnce(
    build: ConfigPatchBuilder,
    options: CallOptions,
  ): Promise<ConfigPatchResult> {
    const snapshot = await this.configGet(options);
    const config = configObject(snapshot);
    const patch = await build(config, snapshot);
    if (patch === null) return { ok: true, noop: true } satisfies ConfigPatchResult;
    const payload = await this.spaced(() =>
      this.transport.call(
        'config.patch',
        closed({ raw: JSON.stringify(patch), baseHash: snapshot.hash }),
        options,
      ),
    );
    return expectObject<ConfigPatchResult>('config.patch', payload);
  }

  async health(options?: CallOptions) {
    const payload = await this.transport.call('health', {}, options);
    return expectObject<{ ok?: boolean; [extra: string]: unknown }>('health', payload);
  }

  async status(options?: CallOptions) {
    const payload = await this.transport.call('status', {}, options);
    return expectObject<{ runtimeVersion?: string; [extra: string]: unknown }>('status', payload);
  }
}

/** The config object of a `config.get` answer (`config`, else `parsed`). */
export function configObject(snapshot: ConfigSnapshot): Record<string, unknown> {
  const candidate = snapshot.config ?? snapshot.parsed ?? {};
  if (typeof candidate !== 'object' || candidate === null || Array.isArray(candidate)) {
    throw new GatewayProtocolError('config.get returned invalid config');
  }
  return candidate;
}
