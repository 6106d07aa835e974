/**
 * The heartbeat an agent's gateway config should carry: the agent's own `heartbeat_config`
 * over the default. Which keys survive is the gateway's business (compat.ts).
 */
export const DEFAULT_HEARTBEAT_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  every: '10m',
  target: 'last',
});

/** A fresh copy of the default, for new rows. */
export function defaultHeartbeatConfig(): Record<string, unknown> {
  return { ...DEFAULT_HEARTBEAT_CONFIG };
}

/** Default merged with the agent's config; null or undefined values mean "not set". */
export function effectiveHeartbeat(
  config: Record<string, unknown> | null | undefined,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...DEFAULT_HEARTBEAT_CONFIG };
  for (const [key, value] of Object.entries(config ?? {})) {
    if (value === null || value === undefined) continue;
    merged[key] = value;
  }
  return merged;
}
