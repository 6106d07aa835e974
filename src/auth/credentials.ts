import type { Request } from 'express';

export const AGENT_TOKEN_HEADER = 'X-Agent-Token';

/** The token of `Authorization: Bearer <token>` (scheme case-insensitive), or null. */
export function bearerTokenOf(req: Request): string | null {
  const header = req.header('authorization');
  if (!header) return null;
  const match = /^\s*bearer\s+(.+)$/i.exec(header);
  const token = match?.[1]?.trim();
  return token ? token : null;
}

export function agentTokenHeaderOf(req: Request): string | null {
  const token = req.header(AGENT_TOKEN_HEADER)?.trim();
  return token ? token : null;
}
