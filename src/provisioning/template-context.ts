/**
 * The variables a workspace template sees (contract §5.6.1). Every value is a string, so a
 * template never has to care about null, dates or JSON: absent optional values are `""`.
 * Main agents get no board_* keys and no workspace_path (their templates must not use them).
 */
import type { Agent } from '../agents/entities/agent.entity';
import type { Board } from '../boards/entities/board.entity';
import type { User } from '../users/entities/user.entity';

export type AgentKind = 'board' | 'lead' | 'main';

export interface TemplateContextInput {
  kind: AgentKind;
  agent: Pick<Agent, 'id' | 'name' | 'identityProfile'>;
  /** The agent's id on the gateway: `mc-<uuid>`, `lead-<board uuid>`, `mc-gateway-<gateway uuid>`. */
  gatewayAgentId: string;
  /** e.g. `agent:mc-<uuid>:main`. */
  sessionKey: string;
  /** `<workspace_root>/workspace-<gatewayAgentId>`. */
  workspacePath: string;
  workspaceRoot: string;
  /** The gateway main agent's session key. */
  mainSessionKey: string;
  /** The raw agent token; it is written into the workspace files. */
  authToken: string;
  /** e.g. `http://127.0.0.1:8000` (a trailing slash is dropped). */
  baseUrl: string;
  /** Null for kind `main`. */
  board: Pick<
    Board,
    'id' | 'name' | 'boardType' | 'objective' | 'successMetrics' | 'targetDate' | 'goalConfirmed'
  > | null;
  user: Pick<User, 'name' | 'preferredName' | 'pronouns' | 'timezone' | 'notes' | 'context'> | null;
  /** The effective heartbeat config, e.g. `{every: '10m', target: 'last'}`. */
  heartbeat: Record<string, unknown>;
}

export const DEFAULT_HEARTBEAT_EVERY = '10m';
export const DEFAULT_COMMUNICATION_STYLE = 'direct, concise, practical';

const DEFAULT_ROLE: Readonly<Record<AgentKind, string>> = {
  board: 'Generalist',
  lead: 'Board Lead',
  main: 'Gateway Agent',
};
const DEFAULT_EMOJI: Readonly<Record<AgentKind, string>> = {
  board: ':gear:',
  lead: ':gear:',
  main: ':compass:',
};

/**
 * The identity_profile a new lead or main agent row gets (contract §5.4, §5.8): the same
 * defaults the template context falls back to.
 */
export function defaultIdentityProfile(kind: AgentKind): Record<string, string> {
  return {
    role: DEFAULT_ROLE[kind],
    communication_style: DEFAULT_COMMUNICATION_STYLE,
    emoji: DEFAULT_EMOJI[kind],
  };
}

/** identity_* context key → identity_profile key (snake_case as stored upstream). */
const IDENTITY_FIELDS = [
  'role',
  'communication_style',
  'emoji',
  'autonomy_level',
  'verbosity',
  'output_format',
  'update_cadence',
  'purpose',
  'personality',
  'custom_instructions',
] as const;
type IdentityField = (typeof IDENTITY_FIELDS)[number];

const BOARD_KEYS = [
  'board_id',
  'board_name',
  'board_type',
  'board_objective',
  'board_success_metrics',
  'board_target_date',
  'board_goal_confirmed',
  'workspace_path',
] as const;

const COMMON_KEYS = [
  'agent_name',
  'agent_id',
  'gateway_agent_id',
  'agent_kind',
  'is_board_lead',
  'session_key',
  'main_session_key',
  'workspace_root',
  'base_url',
  'api_base',
  'auth_token',
  'heartbeat_every',
  'user_name',
  'user_preferred_name',
  'user_pronouns',
  'user_timezone',
  'user_notes',
  'user_context',
  ...IDENTITY_FIELDS.map((field) => `identity_${field}` as const),
] as const;

/** The keys {@link buildTemplateContext} produces for this kind, sorted. */
export function templateContextKeys(kind: AgentKind): readonly string[] {
  const keys: string[] = [...COMMON_KEYS];
  if (kind !== 'main') keys.push(...BOARD_KEYS);
  return keys.sort();
}

const camelCase = (snake: string): string =>
  snake.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase());

/** A trimmed, non-blank string (numbers and booleans are stringified), else null. */
function text(value: unknown): string | null {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
}

/** identity_profile value for a field, accepting `communication_style` and `communicationStyle`. */
function identityValue(
  profile: Record<string, unknown> | null | undefined,
  field: IdentityField,
): string | null {
  if (!profile || typeof profile !== 'object') return null;
  return text(profile[field]) ?? text(profile[camelCase(field)]);
}

function isoDate(value: Date | string | null | undefined): string {
  if (value === null || value === undefined) return '';
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

export function buildTemplateContext(input: TemplateContextInput): Record<string, string> {
  const { kind, agent, board, user } = input;
  const baseUrl = input.baseUrl.replace(/\/+$/, '');
  const profile = agent.identityProfile as Record<string, unknown> | null;
  const identity = (field: IdentityField): string => identityValue(profile, field) ?? '';

  const context: Record<string, string> = {
    agent_name: agent.name,
    agent_id: agent.id,
    gateway_agent_id: input.gatewayAgentId,
    agent_kind: kind,
    is_board_lead: String(kind === 'lead'),
    session_key: input.sessionKey,
    main_session_key: input.mainSessionKey,
    workspace_root: input.workspaceRoot,
    base_url: baseUrl,
    api_base: `${baseUrl}/api/v1`,
    auth_token: input.authToken,
    heartbeat_every: text(input.heartbeat?.every) ?? DEFAULT_HEARTBEAT_EVERY,
    user_name: text(user?.name) ?? '',
    user_preferred_name: text(user?.preferredName)?.split(/\s+/)[0] ?? '',
    user_pronouns: text(user?.pronouns) ?? '',
    user_timezone: text(user?.timezone) ?? '',
    user_notes: text(user?.notes) ?? '',
    user_context: text(user?.context) ?? '',
  };
  for (const field of IDENTITY_FIELDS) context[`identity_${field}`] = identity(field);
  context.identity_role ||= DEFAULT_ROLE[kind];
  context.identity_communication_style ||= DEFAULT_COMMUNICATION_STYLE;
  context.identity_emoji ||= DEFAULT_EMOJI[kind];

  if (kind !== 'main') {
    if (!board) throw new Error(`A ${kind} agent's template context needs its board`);
    Object.assign(context, {
      board_id: board.id,
      board_name: board.name,
      board_type: board.boardType,
      board_objective: board.objective ?? '',
      board_success_metrics: JSON.stringify(board.successMetrics ?? {}),
      board_target_date: isoDate(board.targetDate),
      board_goal_confirmed: String(board.goalConfirmed === true),
      workspace_path: input.workspacePath,
    });
  }
  for (const [key, value] of Object.entries(context)) context[key] = neutraliseFences(value);
  return context;
}

const FENCE_RUN = /`{3,}|~{3,}/g;

/**
 * A value with every run of three or more backticks or tildes broken up (`` ` ` ` ``), so no
 * free text rendered into a workspace file (a board name or objective, identity fields, the
 * user's profile, ...) can open or close a fenced block: the only fenced blocks in a file are
 * the ones the template itself writes, among them the connection block Mission Control reads
 * back (connection-block.ts).
 */
export function neutraliseFences(value: string): string {
  return value.replace(FENCE_RUN, (run) => run.split('').join(' '));
}

/**
 * Context keys a user-supplied template (identity_template / soul_template) may not use: the
 * token must only ever be written where the engine puts it.
 */
export const USER_TEMPLATE_HIDDEN_KEYS: readonly string[] = ['auth_token'];

/** The context a user-supplied template sees: the template context without hidden keys. */
export function userTemplateContext(context: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(context).filter(([key]) => !USER_TEMPLATE_HIDDEN_KEYS.includes(key)),
  );
}
