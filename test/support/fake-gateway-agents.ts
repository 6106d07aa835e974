/**
 * Just enough of openclaw@2026.9.6's agents/files/config/sessions behaviour, in memory, on the
 * in-process fake gateway: for provisioning tests that need failures (or slowness) a real
 * gateway cannot be made to produce on demand.
 */
import { createHash } from 'node:crypto';
import { FakeGateway, FakeRpcError } from './fake-gateway';

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

/** Just enough of openclaw@2026.9.6's agents/files/config/sessions behaviour, in memory. */
export function serveAgents(fake: FakeGateway, options: { gate?: Gate } = {}) {
  const agents = new Map<string, { name: string; workspace: string }>();
  const files = new Map<string, Map<string, string>>();
  let config: Record<string, unknown> = { agents: { entries: {} } };
  const hash = () => createHash('sha256').update(JSON.stringify(config)).digest('hex');
  const failures = new Map<string, (params: Record<string, unknown>) => boolean>();
  /** Writes whose answer is lost: the file is written, then the socket drops (no answer). */
  const loseAnswer = new Set<string>();
  /** Methods held (not answered) until the gate opens: a gateway as slow as a test needs. */
  const gate = options.gate ?? new Gate();
  const maybeFail = (method: string, params: Record<string, unknown>) => {
    if (failures.get(method)?.(params)) {
      throw new FakeRpcError({ code: 'UNAVAILABLE', message: `${method} injected failure` });
    }
  };
  const merge = (target: Record<string, unknown>, patch: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete target[key];
      else if (typeof value === 'object' && !Array.isArray(value)) {
        const current = target[key];
        target[key] = merge(
          typeof current === 'object' && current !== null ? { ...current } : {},
          value as Record<string, unknown>,
        );
      } else target[key] = value;
    }
    return target;
  };
  Object.assign(fake.methods, {
    'agents.list': (p: Record<string, unknown>) => {
      maybeFail('agents.list', p);
      return { agents: [...agents].map(([id, a]) => ({ id, ...a })) };
    },
    'agents.create': (p: Record<string, unknown>) => {
      const id = String(p.name);
      agents.set(id, { name: id, workspace: String(p.workspace) });
      files.set(
        id,
        new Map([
          ['AGENTS.md', 'stock'],
          ['USER.md', 'stock'],
        ]),
      );
      return { ok: true, agentId: id, name: id };
    },
    'agents.update': (p: Record<string, unknown>) => {
      const agent = agents.get(String(p.agentId));
      if (!agent)
        throw new FakeRpcError({
          code: 'INVALID_REQUEST',
          message: `agent "${String(p.agentId)}" not found`,
        });
      agent.name = typeof p.name === 'string' ? p.name : agent.name;
      return { ok: true, agentId: p.agentId };
    },
    'agents.delete': (p: Record<string, unknown>) => {
      const id = String(p.agentId);
      if (!agents.delete(id)) {
        throw new FakeRpcError({ code: 'INVALID_REQUEST', message: `agent "${id}" not found` });
      }
      files.delete(id);
      return { ok: true, agentId: id };
    },
    'sessions.delete': (p: Record<string, unknown>) => ({ ok: true, key: p.key }),
    'agents.files.list': (p: Record<string, unknown>) => ({
      agentId: p.agentId,
      files: [...(files.get(String(p.agentId)) ?? new Map<string, string>()).keys()].map(
        (name) => ({ name, missing: false }),
      ),
    }),
    'agents.files.set': (p: Record<string, unknown>) => {
      maybeFail('agents.files.set', p);
      files.get(String(p.agentId))?.set(String(p.name), String(p.content));
      if (loseAnswer.has(String(p.name))) return { close: 1012, reason: 'service restart' };
      return { agentId: p.agentId, file: { name: p.name, missing: false } };
    },
    'agents.files.get': (p: Record<string, unknown>) => {
      const content = files.get(String(p.agentId))?.get(String(p.name));
      return {
        agentId: p.agentId,
        file: { name: p.name, missing: content === undefined, content: content ?? '' },
      };
    },
    'config.get': () => ({ hash: hash(), config }),
    'config.patch': (p: Record<string, unknown>) => {
      if (p.baseHash !== hash())
        throw new FakeRpcError({
          code: 'INVALID_REQUEST',
          message: 'config changed since last load',
        });
      config = merge({ ...config }, JSON.parse(String(p.raw)) as Record<string, unknown>);
      return { ok: true, hash: hash() };
    },
    'sessions.patch': (p: Record<string, unknown>) => {
      maybeFail('sessions.patch', p);
      return { ok: true, key: p.key };
    },
    'sessions.reset': (p: Record<string, unknown>) => ({ ok: true, key: p.key }),
    'chat.send': () => ({ runId: 'r1', status: 'started' }),
  });
  for (const [method, handler] of Object.entries(fake.methods)) {
    fake.methods[method] = async (params, socket) => {
      if (gate.holds(method)) await gate.passage();
      return handler(params, socket);
    };
  }
  return { agents, files, failures, loseAnswer, gate };
}
