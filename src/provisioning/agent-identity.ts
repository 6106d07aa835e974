/**
 * Who an agent is on its gateway. Today's gateway routes a session key `agent:<agentId>:<rest>`
 * to the gateway agent `<agentId>`, and a key naming an agent that does not exist is accepted by
 * `sessions.patch` but fails every `chat.send`. So every key we hand out names a gateway agent we
 * create, and the gateway agent id is always read back from the stored key.
 */
import type { Agent } from '../agents/entities/agent.entity';
import type { Gateway } from '../gateways/entities/gateway.entity';
import type { AgentKind } from './template-context';

export const SESSION_KEY_PREFIX = 'agent';

export const mainAgentId = (gatewayId: string): string => `mc-gateway-${gatewayId}`;
export const leadAgentId = (boardId: string): string => `lead-${boardId}`;
/** Board agents are keyed by their row id: names can be non-ASCII, collide or change. */
export const boardAgentId = (agentId: string): string => `mc-${agentId}`;

/** The main session of a gateway agent: `agent:<gateway agent id>:main`. */
export const sessionKeyFor = (gatewayAgentId: string): string =>
  `${SESSION_KEY_PREFIX}:${gatewayAgentId}:main`;
export const mainSessionKey = (gatewayId: string): string => sessionKeyFor(mainAgentId(gatewayId));
export const leadSessionKey = (boardId: string): string => sessionKeyFor(leadAgentId(boardId));
export const boardAgentSessionKey = (agentId: string): string =>
  sessionKeyFor(boardAgentId(agentId));

/** Lowercase; each run of characters outside `[a-z0-9]` becomes `-`; no leading/trailing `-`. */
export function slugify(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * The gateway agent a session key routes to (the contract's `_agent_key`): the second
 * `:`-segment of an `agent:<id>:…` key, or null when the key has none.
 */
export function gatewayAgentIdFromSessionKey(sessionKey: string | null | undefined): string | null {
  if (!sessionKey) return null;
  const [prefix, agentId] = sessionKey.split(':');
  if (prefix !== SESSION_KEY_PREFIX || !agentId?.trim()) return null;
  return agentId.trim();
}

type IdentitySource = Pick<Agent, 'id' | 'boardId' | 'gatewayId' | 'isBoardLead'> & {
  openclawSessionId: string | null;
};

export function agentKind(agent: Pick<Agent, 'boardId' | 'isBoardLead'>): AgentKind {
  if (agent.boardId === null) return 'main';
  return agent.isBoardLead ? 'lead' : 'board';
}

/** The gateway agent a new agent of this kind gets. */
function defaultGatewayAgentId(agent: Omit<IdentitySource, 'openclawSessionId'>): string {
  switch (agentKind(agent)) {
    case 'main':
      return mainAgentId(agent.gatewayId);
    case 'lead':
      return leadAgentId(agent.boardId as string);
    case 'board':
      return boardAgentId(agent.id);
  }
}

export interface AgentGatewayIdentity {
  kind: AgentKind;
  /** The agent's id on the gateway (`agents.*` methods, `agentId`). */
  gatewayAgentId: string;
  sessionKey: string;
  workspacePath: string;
}

/**
 * The gateway identity of an agent row. Rows holding an older key (`agent:<name-slug>:main`,
 * `agent:gateway-<id>:main`) keep working: the gateway agent id comes from the stored key.
 */
export function agentGatewayIdentity(
  agent: IdentitySource,
  gateway: Pick<Gateway, 'workspaceRoot'>,
): AgentGatewayIdentity {
  const fallbackId = defaultGatewayAgentId(agent);
  const sessionKey = agent.openclawSessionId?.trim() || sessionKeyFor(fallbackId);
  const gatewayAgentId = gatewayAgentIdFromSessionKey(sessionKey) ?? fallbackId;
  return {
    kind: agentKind(agent),
    gatewayAgentId,
    sessionKey,
    workspacePath: workspacePath(gateway.workspaceRoot, gatewayAgentId),
  };
}

/** `<workspace_root>/workspace-<gateway agent id>`. */
export function workspacePath(workspaceRoot: string, gatewayAgentId: string): string {
  return `${workspaceRoot.replace(/\/+$/, '')}/workspace-${slugify(gatewayAgentId)}`;
}
