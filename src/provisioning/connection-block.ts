/**
 * The machine-readable connection block of a workspace: what Mission Control reads back from an
 * agent's files (template sync recovers the agent token from it). Today it is a fenced code block
 * in AGENTS.md:
 *
 *     ```env mission-control
 *     BASE_URL=http://127.0.0.1:8000
 *     AUTH_TOKEN=…
 *     ```
 *
 * Older gateways kept it in TOOLS.md as bare `KEY=VALUE` lines (upstream style).
 */

export const CONNECTION_BLOCK_INFO = 'env mission-control';

const OPENING_FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*env[ \t]+mission-control[ \t]*$/;
const ENTRY = /^([A-Z0-9_]+)=(.*)$/;

/**
 * Reads the `env mission-control` fenced block of AGENTS.md (or a TOOLS.md from an older
 * gateway, which may hold bare KEY=VALUE lines, upstream style: lines matching
 * `^[A-Z0-9_]+=value$`, blanks and # comments ignored). Returns the KEY→VALUE map (empty if
 * none). When the content has a fenced block, only the lines of the last one count, so prose
 * around it cannot inject keys.
 */
export function parseConnectionBlock(content: string): Record<string, string> {
  const lines = content.split(/\r\n|\r|\n/);
  const fenced = fencedBlockLines(lines);
  return parseEntries(fenced ?? lines);
}

/**
 * The lines of the LAST `env mission-control` block (to the end if unclosed), else null. No value
 * the engine renders can open a fence (template-context.ts neutraliseFences), so its block is
 * the only one it writes; anchoring on the last one also ignores a block planted earlier in the
 * file (above the engine's, where the free text sits).
 */
function fencedBlockLines(lines: string[]): string[] | null {
  for (let start = lines.length - 1; start >= 0; start--) {
    const opening = OPENING_FENCE.exec(lines[start]);
    if (!opening) continue;
    const fence = opening[1];
    const closing = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}[ \\t]*$`);
    const body: string[] = [];
    for (let index = start + 1; index < lines.length && !closing.test(lines[index]); index++) {
      body.push(lines[index]);
    }
    return body;
  }
  return null;
}

function parseEntries(lines: string[]): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = ENTRY.exec(line);
    if (match) entries[match[1]] = match[2].trim();
  }
  return entries;
}
