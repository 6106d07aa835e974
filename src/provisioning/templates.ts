/**
 * Workspace file rendering. Our own templates (repo-root `templates/`) are Nunjucks, loaded and
 * compiled once at construction so a missing or broken template fails start-up, and rendered
 * strictly: a variable the context lacks is an error, never an empty string.
 *
 * User-supplied templates (an agent's identity_template / soul_template) are NOT Nunjucks:
 * Nunjucks is no sandbox (`{{ range.constructor("return process")() }}` reaches the host), so
 * they get a logic-free renderer that only replaces `{{ name }}` placeholders.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import nunjucks from 'nunjucks';
import {
  templateContextKeys,
  USER_TEMPLATE_HIDDEN_KEYS,
  userTemplateContext,
  type AgentKind,
} from './template-context';

export const TEMPLATE_DIR: string = path.resolve(__dirname, '..', '..', 'templates');

/** A workspace file name as the gateway knows it, e.g. `AGENTS.md`. */
export type WorkspaceFileName = string;

const SHARED: Readonly<Record<WorkspaceFileName, string>> = {
  'BOOTSTRAP.md': 'BOOTSTRAP.md.njk',
  'HEARTBEAT.md': 'HEARTBEAT.md.njk',
  'IDENTITY.md': 'IDENTITY.md.njk',
  'MEMORY.md': 'MEMORY.md.njk',
  'SOUL.md': 'SOUL.md.njk',
  'TOOLS.md': 'TOOLS.md.njk',
  'USER.md': 'USER.md.njk',
};

/** Workspace file → template, per kind of agent. TOOLS.md/HEARTBEAT.md: older gateways only. */
const TEMPLATES: Readonly<Record<AgentKind, Readonly<Record<WorkspaceFileName, string>>>> = {
  board: { ...SHARED, 'AGENTS.md': 'AGENTS.md.njk' },
  lead: { ...SHARED, 'AGENTS.md': 'LEAD_AGENTS.md.njk' },
  main: { ...SHARED, 'AGENTS.md': 'MAIN_AGENTS.md.njk', 'BOOTSTRAP.md': 'MAIN_BOOTSTRAP.md.njk' },
};

/** Files we have templates for, for this kind (AGENTS.md, SOUL.md, …, TOOLS.md, HEARTBEAT.md). */
export function templatedFiles(kind: AgentKind): readonly string[] {
  return Object.keys(TEMPLATES[kind]).sort();
}

/** A workspace file (or user template) that could not be rendered. */
export class WorkspaceTemplateError extends Error {
  constructor(
    /** The file or template the problem is in, e.g. `AGENTS.md` or `identity_template`. */
    readonly fileName: string,
    /** The problem alone, without the file name. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${fileName}: ${problem}`, options);
    this.name = 'WorkspaceTemplateError';
  }
}

const LINE_BREAKS = /[\r\n\v\f\u0085\u2028\u2029]+/g;

/**
 * `{{ value | oneline }}`: the value on one line (line breaks become spaces), for the connection
 * block and headings, where a name holding a newline must not break the layout. Strict like
 * plain output: an undefined value throws.
 */
function oneline(value: unknown): string {
  if (value === undefined || value === null) {
    throw new Error('attempted to output null or undefined value');
  }
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    throw new Error(`oneline expects a string, got ${typeof value}`);
  }
  return String(value).replace(LINE_BREAKS, ' ').trim();
}

export interface TemplateOverrides {
  identityTemplate?: string | null;
  soulTemplate?: string | null;
}

export class WorkspaceTemplates {
  private readonly env: nunjucks.Environment;

  constructor(private readonly dir: string = TEMPLATE_DIR) {
    this.env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dir), {
      autoescape: false,
      throwOnUndefined: true,
      trimBlocks: true,
      lstripBlocks: true,
    });
    this.env.addFilter('oneline', oneline);
    // Compile everything now (templates and partials): a missing file or a syntax error fails
    // at boot, not on the first provision.
    const needed = new Set(Object.values(TEMPLATES).flatMap((files) => Object.values(files)));
    for (const name of new Set([...needed, ...templateFilesIn(dir)])) {
      try {
        this.env.getTemplate(name, true);
      } catch (error) {
        throw new WorkspaceTemplateError(name, this.describe(error), { cause: error });
      }
    }
  }

  /**
   * Renders one workspace file; returns trimmed content + '\n'. identityTemplate/soulTemplate
   * (user-supplied, may be null) override IDENTITY.md/SOUL.md. Throws a WorkspaceTemplateError
   * naming the file on any render failure.
   */
  render(
    fileName: string,
    kind: AgentKind,
    context: Record<string, string>,
    overrides: TemplateOverrides = {},
  ): string {
    const override =
      fileName === 'IDENTITY.md'
        ? overrides.identityTemplate
        : fileName === 'SOUL.md'
          ? overrides.soulTemplate
          : null;
    if (override?.trim()) {
      const label = fileName === 'IDENTITY.md' ? 'identity_template' : 'soul_template';
      try {
        return finish(renderUserTemplate(override, userTemplateContext(context), label));
      } catch (error) {
        const problem = error instanceof WorkspaceTemplateError ? error.message : String(error);
        throw new WorkspaceTemplateError(fileName, problem, { cause: error });
      }
    }

    const files = TEMPLATES[kind];
    const template = files && Object.hasOwn(files, fileName) ? files[fileName] : undefined;
    if (!template) {
      throw new WorkspaceTemplateError(fileName, `no template for a ${kind} agent`);
    }
    checkContext(fileName, kind, context);
    let output: string;
    try {
      output = this.env.render(template, context);
    } catch (error) {
      throw new WorkspaceTemplateError(fileName, `template ${template}: ${this.describe(error)}`, {
        cause: error,
      });
    }
    // Conditionals can leave runs of blank lines behind; one is enough.
    return finish(output.replace(/\n[ \t]*\n(?:[ \t]*\n)+/g, '\n\n'));
  }

  /** A Nunjucks error on one line, without the server's template directory in it. */
  private describe(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    return message
      .split(`${this.dir}${path.sep}`)
      .join('')
      .replace(/^Template render error:\s*/, '')
      .replace(/\s*\n\s*/g, ' ')
      .trim();
  }
}

const finish = (content: string): string => `${content.trim()}\n`;

/** Every `.njk` file under the directory, as loader names (`partials/x.njk`). */
function templateFilesIn(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.njk'))
    .map((entry) =>
      path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'),
    )
    .sort();
}

/** The context must be a complete one for the kind (as built by buildTemplateContext). */
function checkContext(fileName: string, kind: AgentKind, context: Record<string, string>): void {
  const missing = templateContextKeys(kind).filter((key) => typeof context[key] !== 'string');
  if (missing.length > 0) {
    throw new WorkspaceTemplateError(
      fileName,
      `template context for a ${kind} agent lacks ${missing.join(', ')}`,
    );
  }
}

const PLACEHOLDER = /\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}/y;
const TEMPLATE_SYNTAX = /\{[{%#]/g;

/**
 * Renders a user-supplied template (identity_template / soul_template) safely: only
 * `{{ name }}` placeholders (an identifier, optional spaces) are replaced with context values.
 * An unknown variable or any other `{{ … }}` / `{% … %}` / `{# … #}` syntax throws a
 * WorkspaceTemplateError with a clear message. Values are inserted as they are, never re-read
 * as template text.
 */
export function renderUserTemplate(
  source: string,
  context: Record<string, string>,
  label: string,
): string {
  let output = '';
  let copied = 0;
  for (const match of source.matchAll(TEMPLATE_SYNTAX)) {
    const at = match.index;
    if (at < copied) continue;
    const where = `line ${lineOf(source, at)}`;
    PLACEHOLDER.lastIndex = at;
    const placeholder = PLACEHOLDER.exec(source);
    if (!placeholder) {
      const snippet = source.slice(at, at + 40).split(/\r?\n/)[0];
      throw new WorkspaceTemplateError(
        label,
        `unsupported template syntax at ${where}: "${snippet}". Only {{ variable_name }} ` +
          'placeholders are allowed (no expressions, filters, tags or comments).',
      );
    }
    const name = placeholder[1];
    if (!Object.hasOwn(context, name) || typeof context[name] !== 'string') {
      throw new WorkspaceTemplateError(label, `unknown variable "${name}" at ${where}`);
    }
    output += source.slice(copied, at) + context[name];
    copied = at + placeholder[0].length;
  }
  return output + source.slice(copied);
}

function lineOf(source: string, index: number): number {
  let line = 1;
  for (let at = source.indexOf('\n'); at !== -1 && at < index; at = source.indexOf('\n', at + 1)) {
    line++;
  }
  return line;
}

/** The variables user templates may use: a board agent's context keys, less the hidden ones. */
let userTemplateVariables: Record<string, string> | null = null;

/**
 * Null when the user template is acceptable, else the problem (for DTO validation): unknown
 * variable names are checked against the variables a board agent's context has.
 */
export function checkUserTemplate(source: string): string | null {
  try {
    userTemplateVariables ??= Object.fromEntries(
      templateContextKeys('board')
        .filter((key) => !USER_TEMPLATE_HIDDEN_KEYS.includes(key))
        .map((key) => [key, '']),
    );
    renderUserTemplate(source, userTemplateVariables, 'template');
    return null;
  } catch (error) {
    if (error instanceof WorkspaceTemplateError) return error.problem;
    throw error;
  }
}
