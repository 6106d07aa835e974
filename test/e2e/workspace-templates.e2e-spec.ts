import type { Agent } from '../../src/agents/entities/agent.entity';
import type { Board } from '../../src/boards/entities/board.entity';
import { buildTemplateContext, type AgentKind } from '../../src/provisioning/template-context';
import { templatedFiles, WorkspaceTemplates } from '../../src/provisioning/templates';
import { buildAgent, buildBoard, buildGateway, buildOrganization } from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';

/**
 * The workspace files tell agents which Mission Control endpoints to call. Every path they name
 * must be a route this application really serves (with the method the text gives), so a template
 * can never send an agent to an endpoint that does not exist.
 */

const BASE_URL = 'https://mc.example.test:8443';
const KINDS: AgentKind[] = ['board', 'lead', 'main'];
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface Route {
  method: string;
  path: string;
}

interface Mention {
  /** Null when the text names the path without a method. */
  method: Method | null;
  path: string;
  /** The line it was found on, for failure messages. */
  line: string;
}

/** The routes registered on the Express instance, as `GET /api/v1/agent/boards/:boardId`. */
function registeredRoutes(t: TestApp): Route[] {
  const express = t.app.getHttpAdapter().getInstance();
  const router = express.router ?? express._router;
  const routes: Route[] = [];
  for (const layer of router.stack as {
    route?: { path: string | string[]; methods: Record<string, boolean> };
  }[]) {
    if (!layer.route) continue;
    const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
    for (const path of paths) {
      for (const [method, enabled] of Object.entries(layer.route.methods)) {
        if (enabled) routes.push({ method: method.toUpperCase(), path });
      }
    }
  }
  return routes;
}

const isPlaceholder = (segment: string) => /^\{[^}]+\}$/.test(segment);
const isRouteParameter = (segment: string) => segment.startsWith(':');
/** A concrete value in rendered text (an id), as opposed to a word of a path. */
const isValue = (segment: string) =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(segment);

/**
 * Exact matching, segment by segment: a route parameter (`:boardId`) takes a placeholder in the
 * text (`{board_id}`) or a concrete id; a route literal takes only the same literal. So neither
 * `/agent/{what}` (a placeholder where the route has a literal) nor `/agent/boards/heartbeat` (a
 * word where the route has a parameter) passes.
 */
function pathMatches(route: string, mentioned: string): boolean {
  const routeSegments = route.split('/').filter(Boolean);
  const segments = mentioned.split('/').filter(Boolean);
  return (
    routeSegments.length === segments.length &&
    routeSegments.every((segment, index) =>
      isRouteParameter(segment)
        ? isPlaceholder(segments[index]) || isValue(segments[index])
        : segment === segments[index],
    )
  );
}

function served(routes: Route[], mention: Pick<Mention, 'method' | 'path'>): boolean {
  return routes.some(
    (route) =>
      (mention.method === null || route.method === mention.method) &&
      pathMatches(route.path, mention.path),
  );
}

const API_PATH = /(\/api\/v1\/[A-Za-z0-9_\-{}:/]*)/g;

/**
 * Every `/api/v1/...` path in a rendered file, with its method where the text gives one: a
 * method word right before it (`POST /api/v1/agent/heartbeat`, `GET <base>/api/v1/...`), or the
 * curl command it is part of (`-X POST`, else POST with a body, else GET).
 */
function mentionedPaths(content: string): Mention[] {
  const mentions: Mention[] = [];
  // A curl command continued with backslashes is one line.
  for (const line of content.replace(/\\\r?\n\s*/g, ' ').split('\n')) {
    for (const match of line.matchAll(API_PATH)) {
      const path = match[1].replace(/\/+$/, '');
      const before = line.slice(0, match.index).replace(/[a-z]+:\/\/[^\s"'`]*$/i, '');
      const word = /\b(GET|POST|PUT|PATCH|DELETE)[\s`"']*$/.exec(before)?.[1] as Method | undefined;
      let method: Method | null = word ?? null;
      if (!method && /\bcurl\b/.test(before)) {
        const explicit = /(?:-X|--request)\s+([A-Z]+)/.exec(line)?.[1] as Method | undefined;
        method = explicit ?? (/\s(?:-d|--data\S*)\s/.test(line) ? 'POST' : 'GET');
      }
      mentions.push({ method, path, line: line.trim() });
    }
  }
  return mentions;
}

describe('workspace templates name only routes the app serves', () => {
  let t: TestApp;
  let routes: Route[];
  const templates = new WorkspaceTemplates();

  beforeAll(async () => {
    t = await createTestApp();
    routes = registeredRoutes(t);
  });
  afterAll(async () => {
    await t.close();
  });

  const BOARD: Pick<
    Board,
    'id' | 'name' | 'boardType' | 'objective' | 'successMetrics' | 'targetDate' | 'goalConfirmed'
  > = {
    id: '7d1e2c3b-4a59-4f68-8e77-1a2b3c4d5e6f',
    name: 'Route Check',
    boardType: 'goal',
    objective: 'Check every documented path.',
    successMetrics: { routes_checked: 'all' },
    targetDate: new Date('2026-12-31T00:00:00.000Z'),
    goalConfirmed: false,
  };

  function render(
    kind: AgentKind,
    agent: Pick<Agent, 'id' | 'name' | 'identityProfile'>,
    token: string,
    board: typeof BOARD | null,
  ): Map<string, string> {
    const gatewayAgentId =
      kind === 'main' ? 'mc-gateway-g' : kind === 'lead' ? `lead-${board!.id}` : `mc-${agent.id}`;
    const context = buildTemplateContext({
      kind,
      agent,
      gatewayAgentId,
      sessionKey: `agent:${gatewayAgentId}:main`,
      workspacePath: `/srv/openclaw/workspace-${gatewayAgentId}`,
      workspaceRoot: '/srv/openclaw',
      mainSessionKey: 'agent:mc-gateway-g:main',
      authToken: token,
      baseUrl: BASE_URL,
      board: kind === 'main' ? null : board,
      user: null,
      heartbeat: { every: '10m' },
    });
    return new Map(
      templatedFiles(kind).map((file) => [file, templates.render(file, kind, context)]),
    );
  }

  it('reads the real route table (and the matcher tells served from unserved)', () => {
    expect(routes).toContainEqual({ method: 'GET', path: '/api/v1/agent/boards' });
    expect(routes).toContainEqual({ method: 'GET', path: '/api/v1/agent/boards/:boardId' });
    expect(served(routes, { method: 'GET', path: '/api/v1/agent/boards/{board_id}' })).toBe(true);
    expect(served(routes, { method: 'GET', path: `/api/v1/agent/boards/${BOARD.id}` })).toBe(true);
    expect(served(routes, { method: null, path: '/api/v1/agent/boards' })).toBe(true);
    expect(served(routes, { method: 'DELETE', path: '/api/v1/agent/boards' })).toBe(false);
    expect(served(routes, { method: 'POST', path: '/api/v1/agent/nudge' })).toBe(false);
    expect(served(routes, { method: null, path: '/api/v1/agent/boards/{id}/tasks' })).toBe(false);
  });

  it('matches exactly: a placeholder only a route parameter, a literal only that literal', () => {
    // A placeholder in the text is not a route's literal segment...
    expect(served(routes, { method: 'GET', path: '/api/v1/agent/{what}' })).toBe(false);
    expect(served(routes, { method: 'POST', path: '/api/v1/agent/{what}' })).toBe(false);
    // ... and a word in the text is not a value for a route's parameter; an id is.
    expect(served(routes, { method: 'GET', path: '/api/v1/agent/boards/heartbeat' })).toBe(false);
    expect(served(routes, { method: 'GET', path: '/api/v1/agent/boards/board_id' })).toBe(false);
    expect(served(routes, { method: 'GET', path: `/api/v1/agent/boards/${BOARD.id}` })).toBe(true);
    expect(served(routes, { method: 'GET', path: '/api/v1/agent/boards/{board_id}' })).toBe(true);
  });

  it('extracts methods from prose and curl commands', () => {
    const text = [
      '- `POST /api/v1/agent/heartbeat`: check in.',
      `curl -sS -X POST "${BASE_URL}/api/v1/agent/heartbeat" \\`,
      '  -H "X-Agent-Token: t" -d \'{}\'',
      `curl -sS "${BASE_URL}/api/v1/agent/boards/abc" -H "X-Agent-Token: t"`,
      'See (`GET /api/v1/agent/boards/{board_id}`).',
      'Also /api/v1/agent/boards.',
    ].join('\n');
    expect(mentionedPaths(text).map(({ method, path }) => [method, path])).toEqual([
      ['POST', '/api/v1/agent/heartbeat'],
      ['POST', '/api/v1/agent/heartbeat'],
      ['GET', '/api/v1/agent/boards/abc'],
      ['GET', '/api/v1/agent/boards/{board_id}'],
      [null, '/api/v1/agent/boards'],
    ]);
  });

  describe.each(KINDS)('every file of a %s agent', (kind) => {
    const files = () =>
      render(
        kind,
        {
          id: '6f1c0b7e-2d3a-4e5f-8a9b-0c1d2e3f4a5b',
          name: 'Route Checker',
          identityProfile: null,
        },
        'token-value',
        BOARD,
      );

    it('names only served routes, with the method the route takes', () => {
      const unserved: string[] = [];
      let count = 0;
      for (const [file, content] of files()) {
        for (const mention of mentionedPaths(content)) {
          count++;
          if (!served(routes, mention)) {
            unserved.push(
              `${file}: ${mention.method ?? '(any)'} ${mention.path}  <- ${mention.line}`,
            );
          }
        }
        // Nothing outside /api/v1 is linked on our host.
        const otherPaths = [...content.matchAll(new RegExp(`${BASE_URL}(/[^\\s"'\`)]*)`, 'g'))]
          .map((match) => match[1])
          .filter((path) => !path.startsWith('/api/v1/'));
        expect({ file, otherPaths }).toEqual({ file, otherPaths: [] });
      }
      expect(unserved).toEqual([]);
      expect(count).toBeGreaterThan(0);
    });

    it('documents the heartbeat and the board reads in AGENTS.md', () => {
      const mentions = mentionedPaths(files().get('AGENTS.md')!);
      const named = new Set(mentions.map(({ method, path }) => `${method} ${path}`));
      expect(named).toContain('POST /api/v1/agent/heartbeat');
      expect(named).toContain('GET /api/v1/agent/boards');
      expect(named).toContain('GET /api/v1/agent/boards/{board_id}');
    });
  });

  it('gives requests that work for the agent the files were rendered for', async () => {
    const org = await buildOrganization(t.dataSource);
    const gateway = await buildGateway(t.dataSource, org.id);
    const board = await buildBoard(t.dataSource, org.id, gateway.id, { name: 'Live Board' });
    const agents = {
      board: await buildAgent(t.dataSource, gateway.id, board.id),
      lead: await buildAgent(t.dataSource, gateway.id, board.id, { isBoardLead: true }),
      main: await buildAgent(t.dataSource, gateway.id, null),
    };
    const failures: string[] = [];
    for (const kind of KINDS) {
      const { agent, token } = agents[kind];
      for (const [file, content] of render(kind, agent, token, { ...BOARD, id: board.id })) {
        for (const mention of mentionedPaths(content)) {
          const path = mention.path.replace('{board_id}', board.id);
          const method = mention.method ?? 'GET';
          const req =
            method === 'POST' ? t.http.post(path).send({ status: 'online' }) : t.http.get(path);
          const res = await req.set('X-Agent-Token', token);
          if (res.status !== 200) {
            failures.push(`${kind} ${file}: ${method} ${path} -> ${res.status}`);
          }
        }
      }
    }
    expect(failures).toEqual([]);
  });
});
