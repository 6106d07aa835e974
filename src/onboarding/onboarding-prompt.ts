import { CONNECTION_BLOCK_INFO } from '../provisioning/connection-block';
import {
  AUTONOMY_LEVELS,
  ONBOARDING_BOARD_TYPES,
  OUTPUT_FORMATS,
  UPDATE_CADENCES,
  VERBOSITY_LEVELS,
} from './dto/board-onboarding-read.dto';

/** The closing question every onboarding ends with, and its free-text option. */
export const CLOSING_QUESTION = 'Anything else we should know?';
export const CLOSING_FREE_TEXT_OPTION = "Yes (I'll type it)";
export const FREE_TEXT_OPTION_SUFFIX = "I'll type it";

/** The agent route the gateway agent posts its questions and completion to. */
export function onboardingAgentEndpoint(baseUrl: string, boardId: string): string {
  return `${baseUrl}/api/v1/agent/boards/${boardId}/onboarding`;
}

/** A board name on one line (it is quoted in the prompt, never able to start a new instruction). */
function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

const QUESTION_EXAMPLE = JSON.stringify({
  question: 'What should this board achieve?',
  options: [
    { id: '1', label: 'Ship a product launch' },
    { id: '2', label: "Something else (I'll type it)" },
  ],
});

const COMPLETION_EXAMPLE = JSON.stringify({
  status: 'complete',
  board_type: 'goal',
  objective: '...',
  success_metrics: { metric: '...', target: '...' },
  target_date: 'YYYY-MM-DD',
  user_profile: {
    preferred_name: '...',
    pronouns: '...',
    timezone: '...',
    notes: '...',
    context: '...',
  },
  lead_agent: {
    name: 'Ava',
    identity_profile: {
      role: 'Board Lead',
      communication_style: 'direct, concise, practical',
      emoji: ':gear:',
    },
    autonomy_level: 'balanced',
    verbosity: 'concise',
    output_format: 'bullets',
    update_cadence: 'daily',
    custom_instructions: '...',
  },
});

const enumLine = (name: string, values: readonly string[]) => `- ${name}: ${values.join(' | ')}`;

/**
 * The message that opens a board's onboarding in the gateway main agent's session (pure). Our
 * own wording of upstream's instructions: the question budget, the closing "anything else"
 * question, where the answers go (the agent route, `X-Agent-Token`), the JSON shapes and enums,
 * and no answering in chat. Our agents find the base URL and their token in the
 * `env mission-control` block of their AGENTS.md, so that is where the prompt sends them.
 */
export function onboardingStartPrompt(input: {
  baseUrl: string;
  boardId: string;
  boardName: string;
}): string {
  const endpoint = onboardingAgentEndpoint(input.baseUrl, input.boardId);
  // The body is single-quoted for the shell: an apostrophe in it (the "I'll type it" label) is
  // written as its JSON escape, or the example would not run as given.
  const curl = (body: string) =>
    `curl -s -X POST "${endpoint}" -H "X-Agent-Token: $AUTH_TOKEN" ` +
    `-H "Content-Type: application/json" -d '${body.replace(/'/g, '\\u0027')}'`;
  const lines = [
    'BOARD ONBOARDING REQUEST',
    '',
    `Board name: ${oneLine(input.boardName)}`,
    `Board id: ${input.boardId}`,
    '',
    'You are the gateway main agent. Interview the user to set up this board: ask 6 to 10 short questions in total, one at a time:',
    '- 3 to 6 questions that pin down the board goal (what, how success is measured, by when);',
    '- 1 question to choose a unique first-name style name for the board lead agent;',
    '- 2 to 4 questions about how the lead should work: communication style, autonomy, update cadence and output format.',
    `Always finish with exactly one last question "${CLOSING_QUESTION}" that offers the option "${CLOSING_FREE_TEXT_OPTION}".`,
    `Offer a free-text option elsewhere only when it is really needed, and label it with "${FREE_TEXT_OPTION_SUFFIX}".`,
    'If the user later sends "Additional context", fold it in and send the completion (status=complete) again.',
    '',
    'Do NOT respond in OpenClaw chat: the user does not read it. Every question and the completion MUST be sent to Mission Control through its API:',
    `- Mission Control base URL: ${input.baseUrl}`,
    `- Your token: AUTH_TOKEN in the \`${CONNECTION_BLOCK_INFO}\` block of your AGENTS.md (BASE_URL there is the same base URL). Send it in the X-Agent-Token header.`,
    `- Endpoint: POST ${endpoint}`,
    '',
    'QUESTION (send this JSON body shape exactly):',
    curl(QUESTION_EXAMPLE),
    '',
    'COMPLETION (send this JSON body shape exactly):',
    curl(COMPLETION_EXAMPLE),
    '',
    'ENUMS:',
    enumLine('board_type', ONBOARDING_BOARD_TYPES),
    enumLine('lead_agent.autonomy_level', AUTONOMY_LEVELS),
    enumLine('lead_agent.verbosity', VERBOSITY_LEVELS),
    enumLine('lead_agent.output_format', OUTPUT_FORMATS),
    enumLine('lead_agent.update_cadence', UPDATE_CADENCES),
    '',
    'QUESTION RULES: one question per request; a JSON object, never a list; no markdown and no commentary around it; at least one option, each with a non-empty id and label.',
    'COMPLETION RULES: when you know enough, send one final request with status=complete. board_type is required; with board_type=goal, objective and success_metrics are required too. Include user_profile and lead_agent so the board lead is set up the way the user wants. target_date is YYYY-MM-DD or a full ISO date-time.',
  ];
  return `${lines.join('\n')}\n`;
}
