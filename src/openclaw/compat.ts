/**
 * Everything that differs between gateway versions, in one place. The upstream service was
 * written for protocol-3 gateways; openclaw@2026.9.6 (protocol 4) changed the config shape,
 * the heartbeat keys and which workspace files can be written.
 */
import { GatewayRpcError } from '../common/errors/gateway-errors';
import { isRecord, type GatewayServerInfo } from './protocol';

/** How agents are kept in the gateway config. */
export type AgentConfigShape =
  /** protocol 4: `agents.entries.<id>` is a map (a merge patch touches one agent). */
  | 'entries'
  /** older gateways: `agents.list` is an array that is replaced whole. */
  | 'list';

/** Reads the shape from the config itself, falling back to the negotiated protocol. */
export function agentConfigShape(
  config: Record<string, unknown>,
  server: Pick<GatewayServerInfo, 'protocol'> | null,
): AgentConfigShape {
  const agents = config.agents;
  if (isRecord(agents)) {
    if (isRecord(agents.entries)) return 'entries';
    if (Array.isArray(agents.list)) return 'list';
  }
  return (server?.protocol ?? 4) >= 4 ? 'entries' : 'list';
}

/** Heartbeat keys a protocol-4 gateway accepts; anything else fails the whole config patch. */
export const HEARTBEAT_KEYS_ENTRIES: readonly string[] = [
  'every',
  'activeHours',
  'model',
  'session',
  'target',
  'directPolicy',
  'to',
  'accountId',
  'prompt',
  'timeoutSeconds',
  'lightContext',
  'isolatedSession',
];

/** Older gateways also took `includeReasoning` (upstream's default heartbeat sends it). */
export const HEARTBEAT_KEYS_LIST: readonly string[] = [
  ...HEARTBEAT_KEYS_ENTRIES,
  'includeReasoning',
];

export interface HeartbeatForGateway {
  heartbeat: Record<string, unknown>;
  /** Keys we dropped because this gateway would reject them. */
  dropped: string[];
}

/** Keeps only the heartbeat keys the gateway accepts for its config shape. */
export function heartbeatForGateway(
  heartbeat: Record<string, unknown>,
  shape: AgentConfigShape,
): HeartbeatForGateway {
  const allowed = new Set(shape === 'entries' ? HEARTBEAT_KEYS_ENTRIES : HEARTBEAT_KEYS_LIST);
  const kept: Record<string, unknown> = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(heartbeat)) {
    if (value === undefined) continue;
    if (allowed.has(key)) kept[key] = value;
    else dropped.push(key);
  }
  return { heartbeat: kept, dropped };
}

export interface AgentHeartbeatTarget {
  agentId: string;
  workspace: string;
  heartbeat: Record<string, unknown>;
}

/** Channel heartbeat display defaults the upstream service always ensured. */
const CHANNEL_HEARTBEAT_DEFAULTS = { showOk: false, showAlerts: true, useIndicator: true };

/**
 * Where they live: protocol 4 renamed `channels.defaults.heartbeat` to `heartbeatVisibility`
 * (the old key fails the whole patch with `Unrecognized key: "heartbeat"`).
 */
const CHANNEL_HEARTBEAT_KEY: Record<AgentConfigShape, string> = {
  entries: 'heartbeatVisibility',
  list: 'heartbeat',
};

/**
 * The merge patch that sets each target agent's workspace and heartbeat, for either config
 * shape, plus any missing `channels.defaults.heartbeat` display keys. Returns null when the
 * config already says all of it.
 */
export function agentHeartbeatPatch(
  config: Record<string, unknown>,
  targets: readonly AgentHeartbeatTarget[],
  shape: AgentConfigShape,
): Record<string, unknown> | null {
  const patch: Record<string, unknown> = {};
  const agents = isRecord(config.agents) ? config.agents : {};

  if (shape === 'entries') {
    const current = isRecord(agents.entries) ? agents.entries : {};
    const entries: Record<string, unknown> = {};
    for (const target of targets) {
      const found = current[target.agentId];
      const existing: Record<string, unknown> = isRecord(found) ? found : {};
      const { heartbeat } = heartbeatForGateway(target.heartbeat, shape);
      const wanted = { workspace: target.workspace, heartbeat };
      if (!sameJson(pick(existing, ['workspace', 'heartbeat']), wanted)) {
        // A merge patch merges nested objects, so null out heartbeat keys we no longer want.
        const previous = isRecord(existing.heartbeat) ? existing.heartbeat : {};
        const removed = Object.fromEntries(
          Object.keys(previous)
            .filter((key) => !(key in heartbeat))
            .map((key) => [key, null]),
        );
        entries[target.agentId] = {
          workspace: target.workspace,
          heartbeat: { ...removed, ...heartbeat },
        };
      }
    }
    if (Object.keys(entries).length > 0) patch.agents = { entries };
  } else {
    const list: unknown[] = Array.isArray(agents.list) ? [...(agents.list as unknown[])] : [];
    let changed = false;
    for (const target of targets) {
      const { heartbeat } = heartbeatForGateway(target.heartbeat, shape);
      const index = list.findIndex((entry) => isRecord(entry) && entry.id === target.agentId);
      if (index === -1) {
        list.push({ id: target.agentId, workspace: target.workspace, heartbeat });
        changed = true;
        continue;
      }
      const entry = list[index] as Record<string, unknown>;
      if (
        !sameJson(pick(entry, ['workspace', 'heartbeat']), {
          workspace: target.workspace,
          heartbeat,
        })
      ) {
        list[index] = { ...entry, workspace: target.workspace, heartbeat };
        changed = true;
      }
    }
    if (changed) patch.agents = { list };
  }

  const visibilityKey = CHANNEL_HEARTBEAT_KEY[shape];
  const channels = isRecord(config.channels) ? config.channels : {};
  const defaults = isRecord(channels.defaults) ? channels.defaults : {};
  const visibility = isRecord(defaults[visibilityKey]) ? defaults[visibilityKey] : {};
  const missing = Object.fromEntries(
    Object.entries(CHANNEL_HEARTBEAT_DEFAULTS).filter(([key]) => !(key in visibility)),
  );
  if (Object.keys(missing).length > 0) {
    patch.channels = { defaults: { [visibilityKey]: missing } };
  }
  return Object.keys(patch).length > 0 ? patch : null;
}

/**
 * Workspace files `agents.files.set` accepts. Protocol 4 allows exactly these six; TOOLS.md
 * and HEARTBEAT.md are rejected with `unsupported file`. Older gateways took upstream's set.
 */
export const WRITABLE_AGENT_FILES_V4: readonly string[] = [
  'AGENTS.md',
  'SOUL.md',
  'IDENTITY.md',
  'USER.md',
  'BOOTSTRAP.md',
  'MEMORY.md',
];

export const WRITABLE_AGENT_FILES_LEGACY: readonly string[] = [
  'AGENTS.md',
  'SOUL.md',
  'TASK_SOUL.md',
  'SELF.md',
  'AUTONOMY.md',
  'TOOLS.md',
  'IDENTITY.md',
  'USER.md',
  'HEARTBEAT.md',
  'BOOT.md',
  'BOOTSTRAP.md',
  'MEMORY.md',
];

export function writableAgentFiles(
  server: Pick<GatewayServerInfo, 'protocol'> | null,
): readonly string[] {
  return (server?.protocol ?? 4) >= 4 ? WRITABLE_AGENT_FILES_V4 : WRITABLE_AGENT_FILES_LEGACY;
}

/** `agents.files.delete` is gone in protocol 4; ask the gateway's method list. */
export function canDeleteAgentFiles(server: Pick<GatewayServerInfo, 'methods'> | null): boolean {
  return server?.methods.has('agents.files.delete') ?? false;
}

/** The gateway refused a file name (not an error to retry, and not fatal to provisioning). */
export function isUnsupportedFileError(error: unknown): boolean {
  return error instanceof Error && /unsupported file/i.test(error.message);
}

/** `agents.update` right after `agents.create` can race the config hot-reload. */
export function isAgentNotFoundError(error: unknown): boolean {
  return error instanceof GatewayRpcError && /agent .* not found/i.test(error.message);
}

export function isAgentExistsError(error: unknown): boolean {
  return error instanceof GatewayRpcError && /already exist/i.test(error.message);
}

/** `config.patch` against a hash someone else has moved on from. */
export function isStaleConfigHashError(error: GatewayRpcError): boolean {
  return /config changed since last load/i.test(error.message);
}

function pick(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((key) => key in source).map((key) => [key, source[key]]));
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (isRecord(value)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical(value[key])]),
    );
  }
  return value;
}
