/**
 * Which workspace files a (re)provision writes. Pure rules, so they are unit-tested without a
 * gateway; the engine feeds them the gateway's `agents.files.list` answer.
 */
import { WRITABLE_AGENT_FILES_V4 } from '../openclaw/compat';
import type { AgentFileEntry } from '../openclaw/gateway-methods';

/** Files the agent edits itself: written only when missing (or when the agent is brand new). */
export const AGENT_EDITABLE_FILES: readonly string[] = [
  'USER.md',
  'MEMORY.md',
  'SELF.md',
  'TASK_SOUL.md',
];

/**
 * Files holding the agent token (their connection block); the stored digest moves only once
 * these are written. The templates write the literal token nowhere else (other files point to
 * AGENTS.md's `AUTH_TOKEN`); {@link tokenCarriers} still treats any file whose content holds it
 * as a carrier, so a template that reintroduces it cannot let a token be retired too early.
 */
export const TOKEN_CARRIER_FILES: readonly string[] = ['AGENTS.md', 'TOOLS.md'];

/**
 * The planned writes in carrier-first order, and which of them carry the token: the named
 * carriers plus any file whose rendered content contains the token. The run promotes its token
 * only after the last carrier write, so every file that holds it was written by then.
 */
export function tokenCarriers(
  write: readonly string[],
  rendered: ReadonlyMap<string, string>,
  token: string,
): { ordered: string[]; carriers: string[] } {
  const carries = (name: string) =>
    TOKEN_CARRIER_FILES.includes(name) || (rendered.get(name) ?? '').includes(token);
  const carriers = write.filter(carries);
  return { ordered: [...carriers, ...write.filter((name) => !carries(name))], carriers };
}

export type SkipReason = 'unsupported' | 'agent-edited' | 'bootstrap-done';

export interface WorkspaceFilePlanInput {
  /** Files we have templates for, for this kind of agent. */
  templated: readonly string[];
  /** The agent's files as the gateway lists them (entries may be `missing`). */
  listed: readonly AgentFileEntry[];
  action: 'provision' | 'update';
  forceBootstrap: boolean;
  /** The gateway agent was created by this run: its files are the gateway's stock ones. */
  createdNow: boolean;
  /** Rewrite the agent-editable files even when the agent has them (template sync overwrite). */
  overwriteAgentEdited?: boolean;
}

export interface WorkspaceFilePlan {
  /** In write order: token carriers first, then the rest by name. */
  write: string[];
  skip: { name: string; reason: SkipReason }[];
}

/**
 * Today's gateway writes exactly the six protocol-4 files and lists only some of them (not
 * IDENTITY.md); an older gateway lists the others it supports (TOOLS.md, HEARTBEAT.md, …). So a
 * file is supported when it is one of the six or the gateway lists it.
 */
export function planWorkspaceFiles(input: WorkspaceFilePlanInput): WorkspaceFilePlan {
  const listed = new Map(input.listed.map((entry) => [entry.name, entry]));
  const supported = new Set([...WRITABLE_AGENT_FILES_V4, ...listed.keys()]);
  const write: string[] = [];
  const skip: WorkspaceFilePlan['skip'] = [];

  for (const name of [...input.templated].sort()) {
    const entry = listed.get(name);
    if (!supported.has(name)) skip.push({ name, reason: 'unsupported' });
    else if (name === 'BOOTSTRAP.md' && !includeBootstrap(input, entry))
      skip.push({ name, reason: 'bootstrap-done' });
    else if (
      AGENT_EDITABLE_FILES.includes(name) &&
      !input.createdNow &&
      input.overwriteAgentEdited !== true &&
      entry !== undefined &&
      entry.missing !== true
    )
      skip.push({ name, reason: 'agent-edited' });
    else write.push(name);
  }
  const carriersFirst = (name: string) => (TOKEN_CARRIER_FILES.includes(name) ? 0 : 1);
  write.sort((a, b) => carriersFirst(a) - carriersFirst(b));
  return { write, skip };
}

/**
 * BOOTSTRAP.md (contract §5.6 step 8): always on a first provision or a forced one; on an update
 * only while the agent has not consumed it. Upstream read "consumed" as an entry listed with
 * `missing: true`; today's gateway deletes the file itself at the first run and then stops
 * listing it, so an update rewrites it only while it is listed and present.
 */
function includeBootstrap(
  input: WorkspaceFilePlanInput,
  entry: AgentFileEntry | undefined,
): boolean {
  if (input.action !== 'update' || input.forceBootstrap) return true;
  return entry !== undefined && entry.missing !== true;
}
