import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConnectionBlock } from './connection-block';
import {
  buildTemplateContext,
  templateContextKeys,
  type AgentKind,
  type TemplateContextInput,
} from './template-context';
import {
  checkUserTemplate,
  renderUserTemplate,
  TEMPLATE_DIR,
  templatedFiles,
  WorkspaceTemplateError,
  WorkspaceTemplates,
} from './templates';
import { tokenCarriers } from './workspace-files';

const GATEWAY = '0b6f7f4e-8a11-4c7e-9f55-2f1a7d0c9e01';
const BOARD = '7d1e2c3b-4a59-4f68-8e77-1a2b3c4d5e6f';
const AGENT = 'c0ffee00-1234-4abc-8def-001122334455';
const TOKEN = 'q3Xv9kLr2mN8pT4wY6zA1bC5dE7fG0hJ-_sUoIiKaQe';
const KINDS: AgentKind[] = ['board', 'lead', 'main'];

const GATEWAY_AGENT_ID: Record<AgentKind, string> = {
  board: `mc-${AGENT}`,
  lead: `lead-${BOARD}`,
  main: `mc-gateway-${GATEWAY}`,
};

function input(
  kind: AgentKind,
  overrides: Partial<TemplateContextInput> = {},
): TemplateContextInput {
  const gatewayAgentId = GATEWAY_AGENT_ID[kind];
  return {
    kind,
    agent: { id: AGENT, name: 'Research Agent', identityProfile: null },
    gatewayAgentId,
    sessionKey: `agent:${gatewayAgentId}:main`,
    workspacePath: `/home/openclaw/.openclaw/workspace-${gatewayAgentId}`,
    workspaceRoot: '/home/openclaw/.openclaw',
    mainSessionKey: `agent:mc-gateway-${GATEWAY}:main`,
    authToken: TOKEN,
    baseUrl: 'https://mission-control.example.com',
    board:
      kind === 'main'
        ? null
        : {
            id: BOARD,
            name: 'Q4 Launch',
            boardType: 'goal',
            objective: 'Ship the self-serve onboarding flow to all new customers.',
            successMetrics: { activation_rate: '40%', time_to_first_value: '< 10 min' },
            targetDate: new Date('2026-12-15T00:00:00.000Z'),
            goalConfirmed: false,
          },
    user: {
      name: 'Ada Lovelace',
      preferredName: 'Ada King',
      pronouns: 'she/her',
      timezone: 'Europe/London',
      notes: 'Prefers bullet points.',
      context: 'Runs product for the onboarding team.',
    },
    heartbeat: { every: '15m', target: 'last' },
    ...overrides,
  };
}

const contextFor = (kind: AgentKind, overrides: Partial<TemplateContextInput> = {}) =>
  buildTemplateContext(input(kind, overrides));

const BOARD_ONLY = [
  'board_id',
  'board_name',
  'board_type',
  'board_objective',
  'board_success_metrics',
  'board_target_date',
  'board_goal_confirmed',
  'workspace_path',
];

describe('template context', () => {
  it.each(KINDS)('gives a %s agent only string values, exactly its kind of keys', (kind) => {
    const context = contextFor(kind);
    expect(Object.keys(context).sort()).toEqual(templateContextKeys(kind));
    for (const value of Object.values(context)) expect(typeof value).toBe('string');
  });

  it('fills board and agent values for board agents and leads', () => {
    const board = contextFor('board');
    expect(board).toMatchObject({
      agent_name: 'Research Agent',
      agent_id: AGENT,
      gateway_agent_id: `mc-${AGENT}`,
      agent_kind: 'board',
      is_board_lead: 'false',
      session_key: `agent:mc-${AGENT}:main`,
      main_session_key: `agent:mc-gateway-${GATEWAY}:main`,
      base_url: 'https://mission-control.example.com',
      api_base: 'https://mission-control.example.com/api/v1',
      auth_token: TOKEN,
      heartbeat_every: '15m',
      board_id: BOARD,
      board_name: 'Q4 Launch',
      board_type: 'goal',
      board_success_metrics: '{"activation_rate":"40%","time_to_first_value":"< 10 min"}',
      board_target_date: '2026-12-15T00:00:00.000Z',
      board_goal_confirmed: 'false',
      workspace_path: `/home/openclaw/.openclaw/workspace-mc-${AGENT}`,
      workspace_root: '/home/openclaw/.openclaw',
      user_name: 'Ada Lovelace',
      user_pronouns: 'she/her',
      user_timezone: 'Europe/London',
    });
    expect(contextFor('lead')).toMatchObject({ agent_kind: 'lead', is_board_lead: 'true' });
  });

  it('gives main agents no board_* keys and no workspace_path', () => {
    const main = contextFor('main');
    for (const key of BOARD_ONLY) expect(main).not.toHaveProperty(key);
    expect(Object.keys(main).filter((key) => key.startsWith('board_'))).toEqual([]);
    expect(main).toMatchObject({ agent_kind: 'main', is_board_lead: 'false' });
  });

  it('defaults absent values: identity per kind, heartbeat 10m, empty user and board fields', () => {
    const bare = (kind: AgentKind) =>
      contextFor(kind, {
        user: null,
        heartbeat: {},
        baseUrl: 'http://127.0.0.1:8000/',
        board:
          kind === 'main'
            ? null
            : {
                id: BOARD,
                name: 'Ops',
                boardType: 'general',
                objective: null,
                successMetrics: null,
                targetDate: null,
                goalConfirmed: true,
              },
      });
    expect(bare('board')).toMatchObject({
      identity_role: 'Generalist',
      identity_communication_style: 'direct, concise, practical',
      identity_emoji: ':gear:',
      identity_autonomy_level: '',
      identity_custom_instructions: '',
      heartbeat_every: '10m',
      user_name: '',
      user_preferred_name: '',
      user_notes: '',
      user_context: '',
      board_objective: '',
      board_success_metrics: '{}',
      board_target_date: '',
      board_goal_confirmed: 'true',
      base_url: 'http://127.0.0.1:8000',
      api_base: 'http://127.0.0.1:8000/api/v1',
    });
    expect(bare('lead')).toMatchObject({ identity_role: 'Board Lead', identity_emoji: ':gear:' });
    expect(bare('main')).toMatchObject({
      identity_role: 'Gateway Agent',
      identity_emoji: ':compass:',
      identity_communication_style: 'direct, concise, practical',
    });
  });

  it('normalises identity_profile values: trimmed, blanks ignored, snake_case or camelCase', () => {
    const context = contextFor('board', {
      agent: {
        id: AGENT,
        name: 'Research Agent',
        identityProfile: {
          role: '  Researcher ',
          communication_style: '   ',
          emoji: ':mag:',
          autonomyLevel: 'high',
          verbosity: 'terse',
          output_format: 'markdown tables',
          updateCadence: 'daily',
          purpose: ' Find evidence. ',
          personality: 'curious',
          customInstructions: 'Cite sources.',
        },
      },
    });
    expect(context).toMatchObject({
      identity_role: 'Researcher',
      identity_communication_style: 'direct, concise, practical',
      identity_emoji: ':mag:',
      identity_autonomy_level: 'high',
      identity_verbosity: 'terse',
      identity_output_format: 'markdown tables',
      identity_update_cadence: 'daily',
      identity_purpose: 'Find evidence.',
      identity_personality: 'curious',
      identity_custom_instructions: 'Cite sources.',
    });
    // The stored (snake_case) spelling wins when both are present.
    const both = contextFor('board', {
      agent: {
        id: AGENT,
        name: 'A',
        identityProfile: { communication_style: 'formal', communicationStyle: 'casual' },
      },
    });
    expect(both.identity_communication_style).toBe('formal');
  });

  it('takes the first word of the preferred name', () => {
    expect(contextFor('board').user_preferred_name).toBe('Ada');
    const spaced = contextFor('board', {
      user: { ...input('board').user!, preferredName: '  Grace\tBrewster Hopper ' },
    });
    expect(spaced.user_preferred_name).toBe('Grace');
  });
});

describe('workspace templates', () => {
  const templates = new WorkspaceTemplates();

  it('has templates for the v4 files plus TOOLS.md/HEARTBEAT.md for every kind', () => {
    for (const kind of KINDS) {
      expect(templatedFiles(kind)).toEqual([
        'AGENTS.md',
        'BOOTSTRAP.md',
        'HEARTBEAT.md',
        'IDENTITY.md',
        'MEMORY.md',
        'SOUL.md',
        'TOOLS.md',
        'USER.md',
      ]);
    }
    expect(path.basename(TEMPLATE_DIR)).toBe('templates');
  });

  describe.each(KINDS)('for a %s agent', (kind) => {
    const context = contextFor(kind);
    it.each(templatedFiles(kind))(
      'renders %s fully, trimmed, under 6 KB (the gateway puts AGENTS.md into every prompt)',
      (file) => {
        const content = templates.render(file, kind, context);
        expect(content).toMatch(/^# \S/);
        expect(content.endsWith('\n')).toBe(true);
        expect(content).toBe(`${content.trim()}\n`);
        expect(content).not.toMatch(/\{\{|\{%|\{#|undefined|\[object Object\]/);
        expect(content).not.toMatch(/\n\n\n/);
        expect(Buffer.byteLength(content)).toBeLessThan(6144);
      },
    );
  });

  it.each(KINDS)(
    'writes the literal token of a %s agent only in the connection block (AGENTS.md, TOOLS.md)',
    (kind) => {
      const context = contextFor(kind);
      for (const file of templatedFiles(kind)) {
        const content = templates.render(file, kind, context);
        const count = content.split(TOKEN).length - 1;
        expect({ file, count }).toEqual({
          file,
          count: ['AGENTS.md', 'TOOLS.md'].includes(file) ? 1 : 0,
        });
        if (count) expect(parseConnectionBlock(content).AUTH_TOKEN).toBe(TOKEN);
      }
    },
  );

  it('treats any planned file holding the token as a carrier, written before the others', () => {
    const rendered = new Map([
      ['AGENTS.md', `AUTH_TOKEN=${TOKEN}`],
      ['BOOTSTRAP.md', `curl -H "X-Agent-Token: ${TOKEN}"`],
      ['IDENTITY.md', 'no token'],
      ['SOUL.md', 'none either'],
    ]);
    expect(
      tokenCarriers(
        ['AGENTS.md', 'BOOTSTRAP.md', 'IDENTITY.md', 'SOUL.md'].reverse(),
        rendered,
        TOKEN,
      ),
    ).toEqual({
      ordered: ['BOOTSTRAP.md', 'AGENTS.md', 'SOUL.md', 'IDENTITY.md'],
      carriers: ['BOOTSTRAP.md', 'AGENTS.md'],
    });
  });

  it('carries identity, board goal, the human, the API and the heartbeat cadence', () => {
    const context = contextFor('board', {
      agent: {
        id: AGENT,
        name: 'Research Agent',
        identityProfile: { role: 'Researcher', autonomy_level: 'ask first' },
      },
    });
    const agents = templates.render('AGENTS.md', 'board', context);
    for (const text of [
      'Researcher',
      'Q4 Launch',
      'Ship the self-serve onboarding flow',
      'activation_rate',
      '2026-12-15T00:00:00.000Z',
      'Goal confirmed by the human: no',
      'about every 15m',
      'Base URL: `https://mission-control.example.com`',
      'curl -sS -X POST "https://mission-control.example.com/api/v1/agent/heartbeat"',
      '`POST /api/v1/agent/heartbeat`',
      '`GET /api/v1/agent/boards/{board_id}`',
      'X-Agent-Token: ${MC_TOKEN:?AUTH_TOKEN not found in AGENTS.md}',
      `AUTH_TOKEN=${TOKEN}`,
    ]) {
      expect(agents).toContain(text);
    }
    const identity = templates.render('IDENTITY.md', 'board', context);
    expect(identity).toContain('- Autonomy level: ask first');
    expect(identity).not.toContain('Verbosity'); // only the set ones
    const user = templates.render('USER.md', 'board', context);
    for (const text of [
      'Ada Lovelace',
      'Ada',
      'she/her',
      'Europe/London',
      'Prefers bullet points.',
    ])
      expect(user).toContain(text);
    expect(templates.render('BOOTSTRAP.md', 'board', context)).toContain('delete this file');
  });

  it('keeps main-agent files free of board values', () => {
    const context = contextFor('main');
    for (const file of templatedFiles('main')) {
      const content = templates.render(file, 'main', context);
      expect(content).not.toContain('Q4 Launch');
      expect(content).not.toContain('workspace-mc-gateway');
    }
    const bootstrap = templates.render('BOOTSTRAP.md', 'main', context);
    expect(bootstrap).toContain('https://mission-control.example.com/api/v1/agent/boards"');
  });

  it('throws a WorkspaceTemplateError naming the file when a context variable is missing', () => {
    const context = contextFor('board');
    delete context.auth_token;
    const attempt = () => templates.render('AGENTS.md', 'board', context);
    expect(attempt).toThrow(WorkspaceTemplateError);
    expect(attempt).toThrow(/^AGENTS\.md: .*auth_token/);
    // A main context lacks the board keys a board agent's files need.
    expect(() => templates.render('AGENTS.md', 'board', contextFor('main'))).toThrow(/board_id/);
    expect(() => templates.render('NOTES.md', 'board', contextFor('board'))).toThrow(
      /^NOTES\.md: no template/,
    );
    expect(() => templates.render('constructor', 'board', contextFor('board'))).toThrow(
      /^constructor: no template/,
    );
  });

  describe('with a template directory of our own', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'mc-templates-'));
      cpSync(TEMPLATE_DIR, dir, { recursive: true });
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('renders strictly: an undefined variable is an error, not an empty string', () => {
      writeFileSync(path.join(dir, 'SOUL.md.njk'), '# SOUL.md\n\n{{ not_in_the_context }}\n');
      const own = new WorkspaceTemplates(dir);
      expect(() => own.render('SOUL.md', 'board', contextFor('board'))).toThrow(
        /^SOUL\.md: template SOUL\.md\.njk: .*undefined/,
      );
      // The server's path stays out of the message (it may be shown to users).
      expect(() => own.render('SOUL.md', 'board', contextFor('board'))).not.toThrow(dir);
    });

    it('fails at construction on a syntax error or a missing template', () => {
      writeFileSync(path.join(dir, 'partials', 'api.njk'), '{% if %}');
      expect(() => new WorkspaceTemplates(dir)).toThrow(/^partials\/api\.njk: /);
      cpSync(TEMPLATE_DIR, dir, { recursive: true });
      rmSync(path.join(dir, 'MAIN_AGENTS.md.njk'));
      expect(() => new WorkspaceTemplates(dir)).toThrow(/^MAIN_AGENTS\.md\.njk: /);
    });
  });

  describe('lead goal note', () => {
    const NOTE = 'The goal still needs confirming with Ada.';
    const render = (kind: AgentKind, boardType: string, goalConfirmed: boolean) => {
      const base = input(kind);
      const context = buildTemplateContext({
        ...base,
        board: { ...base.board!, boardType, goalConfirmed },
      });
      return templates.render('AGENTS.md', kind, context);
    };

    it('appears only for a lead of a goal board whose goal is unconfirmed', () => {
      expect(render('lead', 'goal', false)).toContain(NOTE);
      expect(render('lead', 'goal', true)).not.toContain(NOTE);
      expect(render('lead', 'general', false)).not.toContain(NOTE);
      expect(render('board', 'goal', false)).not.toContain(NOTE);
      const heartbeat = templates.render('HEARTBEAT.md', 'lead', contextFor('lead'));
      expect(heartbeat).toContain('The goal is still unconfirmed');
    });
  });

  describe('identity and soul overrides', () => {
    const context = contextFor('board');

    it('replace IDENTITY.md and SOUL.md with the rendered user template', () => {
      const overrides = {
        identityTemplate: '# Me\n\nI am {{agent_name}} on {{ board_name }}.\n\n',
        soulTemplate: '  Serve {{ user_preferred_name }}.  ',
      };
      expect(templates.render('IDENTITY.md', 'board', context, overrides)).toBe(
        '# Me\n\nI am Research Agent on Q4 Launch.\n',
      );
      expect(templates.render('SOUL.md', 'board', context, overrides)).toBe('Serve Ada.\n');
      // Other files ignore them.
      expect(templates.render('USER.md', 'board', context, overrides)).toContain('# USER.md');
    });

    it('fall back to our templates when null or blank', () => {
      const ours = templates.render('SOUL.md', 'board', context);
      expect(templates.render('SOUL.md', 'board', context, { soulTemplate: null })).toBe(ours);
      expect(templates.render('SOUL.md', 'board', context, { soulTemplate: ' \n ' })).toBe(ours);
    });

    it('report a bad user template against the file', () => {
      const attempt = () =>
        templates.render('IDENTITY.md', 'main', contextFor('main'), {
          identityTemplate: 'Board: {{ board_name }}',
        });
      expect(attempt).toThrow(WorkspaceTemplateError);
      expect(attempt).toThrow(
        'IDENTITY.md: identity_template: unknown variable "board_name" at line 1',
      );
    });
  });
});

describe('user templates', () => {
  const context = contextFor('board');

  it('substitutes {{ name }} placeholders and nothing else', () => {
    expect(
      renderUserTemplate('{{agent_name}} / {{  board_name  }} / {{ user_name }}', context, 't'),
    ).toBe('Research Agent / Q4 Launch / Ada Lovelace');
    expect(renderUserTemplate('no placeholders } { }}', context, 't')).toBe(
      'no placeholders } { }}',
    );
    // Values are inserted as text, never rendered again.
    const tricky = { ...context, agent_name: '{{ auth_token }}' };
    expect(renderUserTemplate('Hi {{ agent_name }}', tricky, 't')).toBe('Hi {{ auth_token }}');
  });

  it.each([
    ['{{ range.constructor("return process")() }}', /unsupported template syntax at line 1/],
    ['ok\n{% if board_name %}x{% endif %}', /unsupported template syntax at line 2: "{% if/],
    ['{# comment #}', /unsupported template syntax/],
    ['{{ agent_name | upper }}', /unsupported template syntax/],
    ['{{ agent_name }', /unsupported template syntax/],
    ['{{{ agent_name }}}', /unsupported template syntax/],
    ['{{ process }}', /unknown variable "process"/],
    ['{{ constructor }}', /unknown variable "constructor"/],
  ])('refuses %j', (source, problem) => {
    const attempt = () => renderUserTemplate(source, context, 'soul_template');
    expect(attempt).toThrow(WorkspaceTemplateError);
    expect(attempt).toThrow(problem);
    expect(attempt).toThrow(/^soul_template: /);
  });

  it('checkUserTemplate accepts board-agent variables and explains problems', () => {
    expect(
      checkUserTemplate('I am {{ agent_name }} on {{ board_name }} ({{ identity_role }})'),
    ).toBe(null);
    expect(checkUserTemplate('plain text')).toBeNull();
    expect(checkUserTemplate('{{ agent_nam }}')).toBe('unknown variable "agent_nam" at line 1');
    expect(checkUserTemplate('{% raw %}')).toMatch(/^unsupported template syntax at line 1/);
  });
});

describe('connection block', () => {
  const templates = new WorkspaceTemplates();

  it.each(KINDS)('round-trips through AGENTS.md and TOOLS.md of a %s agent', (kind) => {
    const name = 'Ünïcode Agent ✓\nAUTH_TOKEN=stolen\r\nBOARD_ID=other';
    const base = input(kind);
    const context = buildTemplateContext({ ...base, agent: { ...base.agent, name } });
    for (const file of ['AGENTS.md', 'TOOLS.md']) {
      const block = parseConnectionBlock(templates.render(file, kind, context));
      const expected: Record<string, string> = {
        BASE_URL: 'https://mission-control.example.com',
        AUTH_TOKEN: TOKEN,
        AGENT_NAME: 'Ünïcode Agent ✓ AUTH_TOKEN=stolen BOARD_ID=other',
        AGENT_ID: AGENT,
        GATEWAY_AGENT_ID: GATEWAY_AGENT_ID[kind],
        SESSION_KEY: `agent:${GATEWAY_AGENT_ID[kind]}:main`,
        WORKSPACE_ROOT: '/home/openclaw/.openclaw',
      };
      if (kind !== 'main') {
        expected.BOARD_ID = BOARD;
        expected.WORKSPACE_PATH = `/home/openclaw/.openclaw/workspace-${GATEWAY_AGENT_ID[kind]}`;
      }
      expect(block).toEqual(expected);
    }
  });

  it('reads only the fenced block when there is one', () => {
    const content = [
      '# AGENTS.md',
      'AUTH_TOKEN=from-prose',
      '```env mission-control',
      '# a comment',
      '',
      'AUTH_TOKEN=the-real-one ',
      'not a pair',
      'lower=ignored',
      '```',
      'BOARD_ID=after-the-block',
    ].join('\r\n');
    expect(parseConnectionBlock(content)).toEqual({ AUTH_TOKEN: 'the-real-one' });
  });

  it('falls back to bare KEY=VALUE lines (a TOOLS.md from an older gateway)', () => {
    const legacy =
      '# TOOLS\n\n# BASE_URL=commented\nBASE_URL=http://x\nAUTH_TOKEN=abc=def\n- x=y\n';
    expect(parseConnectionBlock(legacy)).toEqual({ BASE_URL: 'http://x', AUTH_TOKEN: 'abc=def' });
    expect(parseConnectionBlock('')).toEqual({});
    expect(parseConnectionBlock('```bash\nAUTH_TOKEN=x\n```')).toEqual({ AUTH_TOKEN: 'x' });
  });
});
