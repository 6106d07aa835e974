/**
 * Enough of openclaw@2026.9.6's agents / files / config / sessions / chat behaviour, in memory,
 * on the in-process fake gateway (./fake-gateway.ts): for provisioning tests that need
 * failures, slowness or config races a real gateway cannot be made to produce on demand.
 */
import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Gateway } from '../../src/gateways/entities/gateway.entity';
import { buildBoardOnGateway } from './builders';
import { FakeGateway, FakeRpcError, type FakeWireError } from './fake-gateway';

/** The token the fake gateways of these tests require. */
export const FAKE_GATEWAY_TOKEN = 'fake-token';

/** Holds calls of chosen methods until opened; counts the calls it holds. */
export class Gate {
  private readonly methods = new Set<string>();
  private release: (() => void) | null = null;
  private opened: Promise<void> = Promise.resolve();
  /** Calls that reached a closed gate. */
  held = 0;

  /** Holds every later call of these methods until {@link open}. */
  close(...methods: string[]): void {
    for (const method of methods) this.methods.add(method);
    if (!this.release) {
      this.opened = new Promise((resolve) => {
        this.release = resolve;
      });
    }
  }

  open(): void {
    this.methods.clear();
    this.release?.();
    this.release = null;
  }

  holds(method: string): boolean {
    return this.methods.has(method);
  }

  passage(): Promise<void> {
    this.held += 1;
    return this.opened;
  }
}

type Params = Record<string, unknown>;

/** A JSON merge patch (RFC 7396) applied to a copy of `target`'s nested objects. */
function mergePatch(target: Params, patch: Params): Params {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete target[key];
    else if (typeof value === 'object' && !Array.isArray(value)) {
      const current = target[key];
      target[key] = mergePatch(
        typeof current === 'object' && current !== null && !Array.isArray(current)
          ? { ...(current as Params) }
          : {},
        value as Params,
      );
    } else target[key] = value;
  }
  return target;
}

/**
 * Serves the agents / files / config / sessions / chat methods on `fake` from one in-memory
 * model, and returns it. As the real gateway does (reference/openclaw-gateway.md §4):
 * `agents.create` seeds stock files and writes the agent into the config; `config.patch`
 * requires `baseHash` when the patch touches agents, refuses a hash that is not the current one
 * with "config changed since last load", and answers `{noop: true}` when nothing changed;
 * `chat.send` answers with the idempotency key as run id.
 *
 * For faults: `failures` makes a method answer an UNAVAILABLE error when its predicate holds,
 * `rejections` a non-transient error of the test's choosing; a write of a file named in
 * `loseAnswer`, and the next `dropAnswers` calls of a method, are applied and then the socket
 * drops (no answer); `chats` keeps the admitted messages per session (deduplicated by key);
 * the `gate` holds calls of chosen methods until opened (pass one gate to several gateways to
 * hold them all). Every call is recorded in `fake.requests`.
 */
export function serveOpenClawState(fake: FakeGateway, options: { gate?: Gate } = {}) {
  const agents = new Map<string, { name: string; workspace: string }>();
  const files = new Map<string, Map<string, string>>();
  const state = {
    agents,
    files,
    /**
     * Messages admitted per session key, as the real gateway keeps them: a `chat.send` whose
     * idempotency key was already admitted answers `in_flight` and adds nothing.
     */
    chats: new Map<string, { message: string; deliver: boolean; idempotencyKey: string }[]>(),
    config: { agents: { entries: {} } } as Params,
    /** `config.patch` calls refused for a stale base hash. */
    staleRefusals: 0,
    failures: new Map<string, (params: Params) => boolean>(),
    /** Non-transient refusals: a method answers this error when the function returns one. */
    rejections: new Map<string, (params: Params) => FakeWireError | null>(),
    loseAnswer: new Set<string>(),
    /**
     * The next N calls of a method are applied and then lose their answer (the socket drops),
     * as a gateway restarting right after admitting a request.
     */
    dropAnswers: new Map<string, number>(),
    gate: options.gate ?? new Gate(),
    hash(): string {
      return createHash('sha256').update(JSON.stringify(state.config)).digest('hex');
    },
  };
  const notFound = (agentId: unknown) =>
    new FakeRpcError({ code: 'INVALID_REQUEST', message: `agent "${String(agentId)}" not found` });
  Object.assign(fake.methods, {
    'agents.list': () => ({ agents: [...agents].map(([id, a]) => ({ id, ...a })) }),
    'agents.create': (p: Params) => {
      const id = String(p.name);
      agents.set(id, { name: id, workspace: String(p.workspace) });
      files.set(
        id,
        new Map([
          ['AGENTS.md', 'stock'],
          ['USER.md', 'stock'],
        ]),
      );
      state.config = mergePatch(structuredClone(state.config), {
        agents: { entries: { [id]: { workspace: String(p.workspace) } } },
      });
      return { ok: true, agentId: id, name: id };
    },
    'agents.update': (p: Params) => {
      const agent = agents.get(String(p.agentId));
      if (!agent) throw notFound(p.agentId);
      if (typeof p.name === 'string') agent.name = p.name;
      return { ok: true, agentId: p.agentId };
    },
    'agents.delete': (p: Params) => {
      const id = String(p.agentId);
      if (!agents.delete(id)) throw notFound(id);
      files.delete(id);
      return { ok: true, agentId: id };
    },
    'agents.files.list': (p: Params) => ({
      agentId: p.agentId,
      files: [...(files.get(String(p.agentId))?.keys() ?? [])].map((name) => ({
        name,
        missing: false,
      })),
    }),
    'agents.files.set': (p: Params) => {
      files.get(String(p.agentId))?.set(String(p.name), String(p.content));
      if (state.loseAnswer.has(String(p.name))) return { close: 1012, reason: 'service restart' };
      return { agentId: p.agentId, file: { name: p.name, missing: false } };
    },
    'agents.files.get': (p: Params) => {
      const content = files.get(String(p.agentId))?.get(String(p.name));
      return {
        agentId: p.agentId,
        file: { name: p.name, missing: content === undefined, content: content ?? '' },
      };
    },
    'config.get': () => ({ hash: state.hash(), config: structuredClone(state.config) }),
    'config.patch': (p: Params) => {
      const patch = JSON.parse(String(p.raw)) as Params;
      if (p.baseHash === undefined && 'agents' in patch) {
        throw new FakeRpcError({
          code: 'INVALID_REQUEST',
          message:
            'config base hash required for agents.list; re-run config.get and retry with baseHash',
        });
      }
      if (p.baseHash !== undefined && p.baseHash !== state.hash()) {
        state.staleRefusals += 1;
        throw new FakeRpcError({
          code: 'INVALID_REQUEST',
          message: 'config changed since last load; re-run config.get and retry',
        });
      }
      const before = state.hash();
      state.config = mergePatch(structuredClone(state.config), patch);
      if (state.hash() === before) return { noop: true };
      return { ok: true, hash: state.hash(), config: state.config };
    },
    'sessions.patch': (p: Params) => ({ ok: true, key: p.key }),
    'sessions.reset': (p: Params) => ({ ok: true, key: p.key }),
    'sessions.delete': (p: Params) => ({ ok: true, key: p.key }),
    'chat.send': (p: Params) => {
      const key = String(p.sessionKey);
      const idempotencyKey = String(p.idempotencyKey);
      const history = state.chats.get(key) ?? [];
      state.chats.set(key, history);
      if (
        [...state.chats.values()].some((h) => h.some((m) => m.idempotencyKey === idempotencyKey))
      ) {
        return { runId: idempotencyKey, status: 'in_flight' };
      }
      history.push({ message: String(p.message), deliver: p.deliver === true, idempotencyKey });
      return { runId: idempotencyKey, status: 'started' };
    },
  });
  for (const [method, handler] of Object.entries(fake.methods)) {
    fake.methods[method] = async (params, socket) => {
      if (state.gate.holds(method)) await state.gate.passage();
      if (state.failures.get(method)?.(params)) {
        throw new FakeRpcError({ code: 'UNAVAILABLE', message: `${method} injected failure` });
      }
      const rejection = state.rejections.get(method)?.(params);
      if (rejection) throw new FakeRpcError(rejection);
      const answer = await handler(params, socket);
      const drops = state.dropAnswers.get(method) ?? 0;
      if (drops > 0) {
        state.dropAnswers.set(method, drops - 1);
        return { close: 1012, reason: 'service restart' };
      }
      return answer;
    };
  }
  return state;
}

/** A fake gateway (requiring {@link FAKE_GATEWAY_TOKEN}) serving {@link serveOpenClawState}. */
export async function startOpenClawFake(options: { gate?: Gate } = {}) {
  const fake = await FakeGateway.start({ token: FAKE_GATEWAY_TOKEN });
  return { fake, state: serveOpenClawState(fake, options) };
}

/** The gateway-row fields that point the app at `fake`. */
export function gatewayFieldsFor(fake: FakeGateway): Partial<Gateway> {
  return {
    url: fake.url,
    token: FAKE_GATEWAY_TOKEN,
    workspaceRoot: '/srv/openclaw',
    disableDevicePairing: true,
  };
}

/**
 * A fake gateway serving {@link serveOpenClawState}, and an organization with a gateway row
 * pointing at it and a board on that gateway: what a provisioning test starts from.
 */
export async function boardOnOpenClawFake(dataSource: DataSource, options: { gate?: Gate } = {}) {
  const { fake, state } = await startOpenClawFake(options);
  const { organizationId, gateway, board } = await buildBoardOnGateway(
    dataSource,
    gatewayFieldsFor(fake),
  );
  return { fake, state, organizationId, gatewayId: gateway.id, boardId: board.id };
}
