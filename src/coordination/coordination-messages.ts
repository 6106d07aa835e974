/**
 * The texts coordination sends to agents, line by line as upstream writes them (contract
 * §1.4.3, §1.4.4). JSON inside them is Python `json.dumps` style (`", "` between items).
 */

export const DEFAULT_ASK_USER_REPLY_TAGS = ['gateway_main', 'user_reply'];
export const DEFAULT_ASK_USER_REPLY_SOURCE = 'user_via_gateway_main';
export const DEFAULT_LEAD_REPLY_TAGS = ['gateway_main', 'lead_reply'];
export const DEFAULT_LEAD_REPLY_SOURCE = 'lead_to_gateway_main';

export type LeadMessageKind = 'question' | 'handoff';
export const LEAD_MESSAGE_KINDS: readonly LeadMessageKind[] = ['question', 'handoff'];

/** `json.dumps` of a list of strings: `["a", "b"]`. */
export function pythonJsonList(items: readonly string[]): string {
  return `[${items.map((item) => JSON.stringify(item)).join(', ')}]`;
}

interface BoardRef {
  id: string;
  name: string;
}

/** The line, or nothing when the trimmed value is blank. */
function optionalLine(label: string, value: string | null | undefined): string[] {
  const text = (value ?? '').trim();
  return text ? [`${label}: ${text}`] : [];
}

export interface AskUserMessage {
  baseUrl: string;
  board: BoardRef;
  leadName: string;
  content: string;
  correlationId?: string | null;
  preferredChannel?: string | null;
  replyTags?: readonly string[] | null;
  replySource?: string | null;
}

/** C7: a lead asks the gateway agent to reach the human. */
export function askUserMessage(input: AskUserMessage): string {
  const tags = input.replyTags?.length ? input.replyTags : DEFAULT_ASK_USER_REPLY_TAGS;
  const source = input.replySource || DEFAULT_ASK_USER_REPLY_SOURCE;
  return [
    'LEAD REQUEST: ASK USER',
    `Board: ${input.board.name}`,
    `Board ID: ${input.board.id}`,
    `From lead: ${input.leadName}`,
    ...optionalLine('Correlation ID', input.correlationId),
    ...optionalLine('Preferred channel', input.preferredChannel),
    '',
    input.content.trim(),
    '',
    'Please reach the user via your configured OpenClaw channel(s) (Slack/SMS/etc).',
    'If you cannot reach them there, post the question in Mission Control board chat as a fallback.',
    '',
    'When you receive the answer, reply in Mission Control by writing a NON-chat memory item on this board:',
    `POST ${input.baseUrl}/api/v1/agent/boards/${input.board.id}/memory`,
    `Body: {"content":"<answer>","tags":${pythonJsonList(tags)},"source":"${source}"}`,
    'Do NOT reply in OpenClaw chat.',
  ].join('\n');
}

export interface LeadMessage {
  baseUrl: string;
  board: BoardRef;
  fromAgentName: string;
  kind: LeadMessageKind;
  content: string;
  correlationId?: string | null;
  replyTags?: readonly string[] | null;
  replySource?: string | null;
}

/** C8/C9: the gateway agent writes to a board lead. */
export function leadMessage(input: LeadMessage): string {
  const tags = input.replyTags?.length ? input.replyTags : DEFAULT_LEAD_REPLY_TAGS;
  const source = input.replySource || DEFAULT_LEAD_REPLY_SOURCE;
  return [
    input.kind === 'question' ? 'GATEWAY MAIN QUESTION' : 'GATEWAY MAIN HANDOFF',
    `Board: ${input.board.name}`,
    `Board ID: ${input.board.id}`,
    `From agent: ${input.fromAgentName}`,
    ...optionalLine('Correlation ID', input.correlationId),
    '',
    input.content.trim(),
    '',
    'Reply to the gateway agent by writing a NON-chat memory item on this board:',
    `POST ${input.baseUrl}/api/v1/agent/boards/${input.board.id}/memory`,
    `Body: {"content":"...","tags":${pythonJsonList(tags)},"source":"${source}"}`,
    'Do NOT reply in OpenClaw chat.',
  ].join('\n');
}

/** C6 activity text. */
export function soulUpdatedNote(
  targetName: string,
  reason?: string | null,
  sourceUrl?: string | null,
): string {
  let note = `SOUL.md updated for ${targetName}.`;
  const reasonText = (reason ?? '').trim();
  const sourceText = (sourceUrl ?? '').trim();
  if (reasonText) note = `${note} Reason: ${reasonText}`;
  if (sourceText) note = `${note} Source: ${sourceText}`;
  return note;
}

/**
 * The SOUL.md text of an `agents.files.get` answer (C5): the payload itself when a string,
 * else `payload.content`, else `payload.file.content` (today's gateway); null otherwise.
 */
export function gatewayFileContent(payload: unknown): string | null {
  if (typeof payload === 'string') return payload;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null;
  const record = payload as Record<string, unknown>;
  if (typeof record.content === 'string') return record.content;
  const file = record.file;
  if (typeof file === 'object' && file !== null && !Array.isArray(file)) {
    const nested = (file as Record<string, unknown>).content;
    if (typeof nested === 'string') return nested;
  }
  return null;
}
