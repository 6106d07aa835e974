/**
 * The access matrix (contract §7.6), GENERATED from the running application, not hand-listed:
 *
 * 1. Every route is read from Nest's router metadata (controllers in the ModulesContainer:
 *    path, method, guards, the role / board-level metadata the composite access decorators of
 *    src/auth/decorators/access.decorators.ts set). A route without one of those decorators
 *    fails the test (unless it is a probe listed in PUBLIC_ROUTES).
 * 2. Each route's expected outcome for each caller is derived from that access kind (see
 *    `guardOutcome`), then from the target's tenancy (`targetOutcome`: path parameters name
 *    fixtures of organization A; an agent target needs access to its board, §7.6), then from the
 *    few handler rules that narrow a coarse decorator (`HANDLER_RULES`, e.g. only a lead may
 *    create agents through a `@UserOrAgent()` / `@AgentAuth()` route).
 * 3. Path parameters are filled from fixtures BY NAME (`PARAM_FIXTURES`); a route with a
 *    parameter that has no fixture fails the test. Bodies are generated from the OpenAPI
 *    document (required fields; fields named like fixtures get them, e.g. `board_id`).
 *    Destructive routes (DELETE) get a fresh target per call; a DELETE of `/me` (the caller's
 *    own account or organization) gets a fresh caller standing where the caller stands.
 *    Routes that locate their board through `?board_id=` (a query DTO of QUERY_BOARD_TARGETS:
 *    the sessions routes) get board X there, and its tenancy and board access are checked.
 *
 * Adding routes: a new controller is picked up as it is. If it names a new path parameter
 * (as `:gatewayId`, `:sessionId` of the gateways / sessions modules did), add its fixture to
 * PARAM_FIXTURES (an entity of organization A, fresh when `destructive`: a DELETE destroys what
 * its last parameter names), and if its handler narrows access beyond its decorator (or a
 * generated call cannot succeed for a reason other than access), add a HANDLER_RULES
 * (respectively ALLOWED_NON_SUCCESS) entry saying why. Required query parameters are generated
 * like body fields.
 *
 * Callers: owner and admin of org A (the admin has no board flags), a member with the
 * all-boards read flag, members with read / write / no access to board X, the owner of another
 * organization (admin there: tenancy), a worker agent, the lead of board X and the main agent of
 * its gateway A, the lead of board Y (same gateway), the main agent of gateway B of org A (board
 * Z), and anonymous.
 *
 * 4. Bodies: every allowed answer's rows (the body and its top-level arrays) are checked
 *    against where the caller stands, read from the database by the rules (`crossingRows`): no
 *    row of another organization, of a board the caller may not read, of a gateway it may not
 *    see. So a list route returns only rows of allowed boards, without a hand list per route.
 */
import { RequestMethod } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { ModulesContainer } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { ActorGuard } from '../../src/auth/guards/actor.guard';
import { AgentAuthGuard, AgentBoardGuard } from '../../src/auth/guards/agent-auth.guard';
import { BoardActorGuard } from '../../src/auth/guards/board-actor.guard';
import { BOARD_ACCESS_KEY, BoardAccessGuard } from '../../src/auth/guards/board-access.guard';
import { ORG_ROLE_KEY, OrgAccessGuard } from '../../src/auth/guards/org-access.guard';
import { UserAuthGuard } from '../../src/auth/guards/user-auth.guard';
import { API_PREFIX, buildOpenApiDocument } from '../../src/bootstrap';
import { Agent } from '../../src/agents/entities/agent.entity';
import { Board } from '../../src/boards/entities/board.entity';
import { OrganizationInvite } from '../../src/organizations/entities/organization-invite.entity';
import { mainSessionKey } from '../../src/provisioning/agent-identity';
import { GatewayBoardQuery } from '../../src/sessions/dto/sessions.dto';
import { Organization } from '../../src/organizations/entities/organization.entity';
import { lastOwnerDetail } from '../../src/users/account-deletion.service';
import { User } from '../../src/users/entities/user.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  buildLead,
  buildMainAgent,
  buildMember,
  grantBoard,
  signIn,
  SignedInUser,
  signInMember,
} from '../support/builders';
import { FakeGateway } from '../support/fake-gateway';
import {
  FAKE_GATEWAY_TOKEN,
  gatewayFieldsFor,
  startOpenClawFake,
} from '../support/fake-openclaw-state';
import { untilStreamOpens } from '../support/hostile-input';
import { createTestApp, TestApp } from '../support/test-app';

const USERS = [
  'owner',
  'admin',
  'allBoardsReader',
  'reader',
  'writer',
  'noAccess',
  'otherOrgOwner',
] as const;
const AGENTS = ['worker', 'lead', 'main', 'otherLead', 'otherMain'] as const;
const CALLERS = [...USERS, ...AGENTS, 'anonymous'] as const;
type UserCaller = (typeof USERS)[number];
type AgentCaller = (typeof AGENTS)[number];
type Caller = (typeof CALLERS)[number];
/**
 * Agents of organization A that work elsewhere: the lead of board Y (same gateway as board X)
 * and the main agent of gateway B (board Z). Board X is none of theirs.
 */
const ELSEWHERE_AGENTS: ReadonlySet<Caller> = new Set(['otherLead', 'otherMain']);
const isUser = (c: Caller): c is UserCaller => (USERS as readonly string[]).includes(c);
const isAgent = (c: Caller): c is AgentCaller => (AGENTS as readonly string[]).includes(c);

/** Access to board X each user caller has (null: not a member of its organization). */
const BOARD_X_ACCESS: Record<UserCaller, 'write' | 'read' | 'none' | null> = {
  owner: 'write',
  admin: 'none',
  allBoardsReader: 'read',
  reader: 'read',
  writer: 'write',
  noAccess: 'none',
  otherOrgOwner: null,
};
const ORG_ADMINS: ReadonlySet<Caller> = new Set(['owner', 'admin', 'otherOrgOwner']);

/** A denial with its exact status and detail, or "allowed" (the access checks let it through). */
type Outcome = { deny: number; detail: string } | 'allowed';
const deny = (status: number, detail: string): Outcome => ({ deny: status, detail });
const UNAUTHORIZED = deny(401, 'Unauthorized');
const FORBIDDEN = deny(403, 'Forbidden');
const NOT_FOUND = deny(404, 'Not Found');
const BOARD_DENIED = deny(403, 'Board access denied');
const NO_ORG_ACCESS = deny(403, 'No org access');

type AccessKind =
  | { kind: 'public' }
  | { kind: 'user' }
  | { kind: 'orgMember' }
  | { kind: 'orgAdmin' }
  | { kind: 'board'; level: 'read' | 'write' }
  /** A user with board access, or an agent under the agent board guard. */
  | { kind: 'boardActor'; level: 'read' | 'write' }
  | { kind: 'agent' }
  | { kind: 'agentBoard' }
  | { kind: 'userOrAgent' };

interface RouteInfo {
  /** `GET /api/v1/agents/{agentId}` */
  key: string;
  method: 'get' | 'post' | 'patch' | 'put' | 'delete';
  /** Express form, `/api/v1/agents/:agentId`. */
  path: string;
  params: string[];
  access: AccessKind | null;
  /**
   * The route locates its target board by `?board_id=` (its query DTO is one of
   * QUERY_BOARD_TARGETS): the matrix sends board X there and checks its tenancy and board access.
   */
  queryBoardTarget?: boolean;
  /**
   * A GET that answers an event stream (`@ApiProduces('text/event-stream')`); a POST that
   * streams on request, as the template sync, answers JSON to the matrix's plain call.
   */
  eventStream?: boolean;
}

/** What `@ApiProduces()` stores (@nestjs/swagger's DECORATORS.API_PRODUCES, not exported). */
const API_PRODUCES_METADATA = 'swagger/apiProduces';

/** Routes that need no credentials: the probes. */
const PUBLIC_ROUTES = new Set(['GET /health', 'GET /healthz', 'GET /readyz']);

/**
 * Query DTOs whose `board_id` names the board the route acts on (the sessions routes resolve
 * the board's gateway from it): without it they answer 422, so the matrix sends board X.
 */
const QUERY_BOARD_TARGETS: readonly (abstract new () => object)[] = [GatewayBoardQuery];

/** Whether a handler takes a query DTO of QUERY_BOARD_TARGETS. */
function locatesBoardByQuery(controller: object, name: string): boolean {
  const types = (Reflect.getMetadata('design:paramtypes', controller, name) ?? []) as unknown[];
  return types.some(
    (type) =>
      typeof type === 'function' &&
      QUERY_BOARD_TARGETS.some((target) => type === target || type.prototype instanceof target),
  );
}

/** The access kind a route's guards and metadata say (null: no access decorator). */
function accessKindOf(controller: object, handler: object): AccessKind | null {
  const guards = [
    ...((Reflect.getMetadata(GUARDS_METADATA, controller) as unknown[]) ?? []),
    ...((Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[]) ?? []),
  ];
  const has = (guard: unknown) => guards.includes(guard);
  if (has(ActorGuard) && has(BoardActorGuard)) {
    const level = (Reflect.getMetadata(BOARD_ACCESS_KEY, handler) ?? 'read') as 'read' | 'write';
    return { kind: 'boardActor', level };
  }
  if (has(ActorGuard)) return { kind: 'userOrAgent' };
  if (has(AgentBoardGuard)) return { kind: 'agentBoard' };
  if (has(AgentAuthGuard)) return { kind: 'agent' };
  if (has(UserAuthGuard) && has(BoardAccessGuard)) {
    const level = (Reflect.getMetadata(BOARD_ACCESS_KEY, handler) ?? 'read') as 'read' | 'write';
    return { kind: 'board', level };
  }
  if (has(UserAuthGuard) && has(OrgAccessGuard)) {
    const role = Reflect.getMetadata(ORG_ROLE_KEY, handler) as string | undefined;
    return role === 'admin' ? { kind: 'orgAdmin' } : { kind: 'orgMember' };
  }
  if (has(UserAuthGuard)) return { kind: 'user' };
  return null;
}

const HTTP_METHODS: Partial<Record<RequestMethod, RouteInfo['method']>> = {
  [RequestMethod.GET]: 'get',
  [RequestMethod.POST]: 'post',
  [RequestMethod.PATCH]: 'patch',
  [RequestMethod.PUT]: 'put',
  [RequestMethod.DELETE]: 'delete',
};

const joinPath = (...parts: string[]) =>
  '/' +
  parts
    .flatMap((p) => p.split('/'))
    .filter(Boolean)
    .join('/');

/** Every route the application serves, from the controllers' metadata. */
function enumerateRoutes(t: TestApp): RouteInfo[] {
  const routes: RouteInfo[] = [];
  for (const module of t.app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as { prototype: Record<string, unknown> } | null;
      if (!controller) continue;
      const bases = [Reflect.getMetadata(PATH_METADATA, controller) as string | string[]].flat();
      for (const name of Object.getOwnPropertyNames(controller.prototype)) {
        if (name === 'constructor') continue;
        const handler = controller.prototype[name] as object;
        const subs = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
        if (subs === undefined) continue;
        const method = HTTP_METHODS[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
        if (!method) throw new Error(`${name}: unknown method`);
        for (const base of bases) {
          for (const sub of [subs].flat()) {
            let path = joinPath(base ?? '', sub);
            if (!PUBLIC_ROUTES.has(`${method.toUpperCase()} ${path}`)) {
              path = joinPath(API_PREFIX, path);
            }
            routes.push({
              key: `${method.toUpperCase()} ${path.replace(/:(\w+)/g, '{$1}')}`,
              method,
              path,
              params: [...path.matchAll(/:(\w+)/g)].map((m) => m[1]),
              access: accessKindOf(controller, handler),
              queryBoardTarget: locatesBoardByQuery(controller.prototype, name),
              eventStream:
                method === 'get' &&
                [(Reflect.getMetadata(API_PRODUCES_METADATA, handler) as unknown) ?? []]
                  .flat()
                  .includes('text/event-stream'),
            });
          }
        }
      }
    }
  }
  return routes;
}

interface World {
  orgA: string;
  orgB: string;
  gatewayA: string;
  boardX: Board;
  targetAgentId: string;
  targetMemberId: string;
  users: Record<UserCaller, SignedInUser>;
  agentTokens: Record<AgentCaller, string>;
  agentIds: Record<AgentCaller, string>;
  /** A new board of org A on gateway A with the same grants as board X. */
  freshBoard(): Promise<Board>;
  freshAgent(): Promise<string>;
  freshMember(): Promise<string>;
  freshInvite(): Promise<string>;
  /** A new gateway of org A (on the in-process gateway), with no boards. */
  freshGateway(): Promise<string>;
  /**
   * A new user standing where `caller` stands (same role in org A, same board grants; an owner
   * gets a new organization of its own), for routes that destroy the caller itself.
   */
  freshCaller(caller: UserCaller): Promise<SignedInUser>;
  /** The in-process gateway's URL (gateway A's). */
  gatewayUrl: string;
  /** A session the in-process gateway lists: the main session of gateway A. */
  sessionKey: string;
}

/**
 * Path parameter fixtures, by name: an entity of organization A (or its board X). `destructive`
 * ones (the route deletes it) are fresh per call.
 */
const PARAM_FIXTURES: Record<string, (w: World, destructive: boolean) => Promise<string> | string> =
  {
    boardId: async (w, destructive) => (destructive ? (await w.freshBoard()).id : w.boardX.id),
    agentId: (w, destructive) => (destructive ? w.freshAgent() : w.targetAgentId),
    memberId: (w, destructive) => (destructive ? w.freshMember() : w.targetMemberId),
    inviteId: (w) => w.freshInvite(),
    gatewayId: (w, destructive) => (destructive ? w.freshGateway() : w.gatewayA),
    // Gateway session keys are not entities of ours: the gateway's own session, located
    // through board X's gateway (`?board_id=`, see QUERY_BOARD_TARGETS).
    sessionId: (w) => w.sessionKey,
  };

/**
 * A DELETE of `/me` destroys the caller itself (its account, its active organization): each
 * call gets a fresh caller, so the shared world survives.
 */
const FRESH_OWNER_ORGANIZATION = 'Matrix owner organization';
const destroysCaller = (route: RouteInfo) =>
  route.method === 'delete' && route.path.endsWith('/me');

/** Routes the matrix cannot check: no access decorator, or a parameter without a fixture. */
function routeProblems(routes: RouteInfo[]): string[] {
  return routes.flatMap((route) => [
    ...(route.access === null && !PUBLIC_ROUTES.has(route.key)
      ? [`${route.key}: no access decorator`]
      : []),
    ...route.params
      .filter((p) => !PARAM_FIXTURES[p])
      .map((p) => `${route.key}: no fixture for path parameter :${p}`),
  ]);
}

/** Body fields filled with a fixture of organization A, by name. */
const BODY_FIXTURES: Record<string, (w: World) => string> = {
  board_id: (w) => w.boardX.id,
  gateway_id: (w) => w.gatewayA,
  organization_id: (w) => w.orgA,
  agent_id: (w) => w.targetAgentId,
};

/**
 * Fields of one request schema filled with a fixture (names too generic for BODY_FIXTURES): a
 * gateway is created on the in-process gateway, so its main agent is really provisioned.
 */
const SCHEMA_FIXTURES: Record<string, Record<string, (w: World) => unknown>> = {
  GatewayCreate: {
    url: (w) => w.gatewayUrl,
    token: () => FAKE_GATEWAY_TOKEN,
    disable_device_pairing: () => true,
  },
};

interface SchemaObject {
  $ref?: string;
  type?: string;
  format?: string;
  required?: string[];
  properties?: Record<string, SchemaObject>;
  allOf?: SchemaObject[];
}
interface OpenApiOperation {
  requestBody?: { content: Record<string, { schema: SchemaObject }> };
  parameters?: { name: string; in: string; required?: boolean; schema?: SchemaObject }[];
}
type OpenApi = {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, SchemaObject> };
};

/** The route's required query parameters: fixtures by name, else a plain value. */
function generateQuery(doc: OpenApi, route: RouteInfo, w: World): Record<string, string> {
  const operation = doc.paths[route.path.replace(/:(\w+)/g, '{$1}')]?.[route.method];
  const query: Record<string, string> = route.queryBoardTarget ? { board_id: w.boardX.id } : {};
  for (const parameter of operation?.parameters ?? []) {
    if (parameter.in !== 'query' || !parameter.required) continue;
    query[parameter.name] = BODY_FIXTURES[parameter.name]?.(w) ?? 'matrix';
  }
  return query;
}

/** A body with the schema's required fields, plus any field named like a fixture. */
function generateBody(doc: OpenApi, route: RouteInfo, w: World): object | undefined {
  const openApiPath = route.path.replace(/:(\w+)/g, '{$1}');
  const operation = doc.paths[openApiPath]?.[route.method];
  let schema = operation?.requestBody?.content['application/json']?.schema;
  if (!schema) return undefined;
  const schemaFixtures = SCHEMA_FIXTURES[schema.$ref?.split('/').pop() ?? ''] ?? {};
  const resolve = (s: SchemaObject): SchemaObject => {
    if (s.$ref) return resolve(doc.components.schemas[s.$ref.split('/').pop() as string]);
    if (s.allOf) {
      const parts = s.allOf.map(resolve);
      return {
        required: parts.flatMap((p) => p.required ?? []),
        properties: Object.assign({}, ...parts.map((p) => p.properties ?? {})) as Record<
          string,
          SchemaObject
        >,
      };
    }
    return s;
  };
  schema = resolve(schema);
  const body: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(schema.properties ?? {})) {
    const property = resolve(raw);
    if (schemaFixtures[name]) {
      body[name] = schemaFixtures[name](w);
      continue;
    }
    if (BODY_FIXTURES[name]) {
      body[name] = BODY_FIXTURES[name](w);
      continue;
    }
    if (!schema.required?.includes(name)) continue;
    const suffix = randomUUID().slice(0, 8);
    if (property.format === 'email' || name.endsWith('email')) {
      body[name] = `matrix-${suffix}@example.test`;
    } else if (property.type === 'string') body[name] = `matrix-${suffix}`;
    else if (property.type === 'boolean') body[name] = false;
    else if (property.type === 'integer' || property.type === 'number') body[name] = 1;
    else if (property.type === 'array') body[name] = [];
    else body[name] = {};
  }
  return body;
}

/** Step 1: what the route's access decorator says for this caller. */
function guardOutcome(access: AccessKind, caller: Caller): Outcome {
  if (access.kind === 'public') return 'allowed';
  if (caller === 'anonymous') return UNAUTHORIZED;
  const wantsAgent = access.kind === 'agent' || access.kind === 'agentBoard';
  const wantsUser = !wantsAgent && access.kind !== 'userOrAgent' && access.kind !== 'boardActor';
  // An agent token is no user token and the other way round.
  if ((wantsAgent && isUser(caller)) || (wantsUser && isAgent(caller))) return UNAUTHORIZED;
  switch (access.kind) {
    case 'orgAdmin':
      return ORG_ADMINS.has(caller) ? 'allowed' : FORBIDDEN;
    case 'board':
    case 'boardActor': {
      // The worker, lead and main agent work on board X or its gateway: the agent board guard
      // passes; the agents working elsewhere are refused board X.
      if (isAgent(caller)) return ELSEWHERE_AGENTS.has(caller) ? FORBIDDEN : 'allowed';
      const grant = BOARD_X_ACCESS[caller];
      if (grant === null) return NO_ORG_ACCESS;
      if (grant === 'write' || (grant === 'read' && access.level === 'read')) return 'allowed';
      return BOARD_DENIED;
    }
    case 'agentBoard': // the board guard again: board X is not the elsewhere agents'
      return ELSEWHERE_AGENTS.has(caller) ? FORBIDDEN : 'allowed';
    case 'user':
    case 'orgMember': // every user has an active membership
    case 'agent':
    case 'userOrAgent':
      return 'allowed';
  }
}

/** The 404 detail a module gives for an id of another organization (default "Not Found"). */
const NOT_FOUND_DETAIL: Record<string, string> = {
  gatewayId: 'Gateway not found',
};

/**
 * Step 2: the target's tenancy. Path ids name entities of organization A: a user acting in
 * another organization finds nothing (404). An agent target needs access to its board (§7.6:
 * read for GET, write otherwise). Board routes checked the board in their guard already.
 */
function targetOutcome(route: RouteInfo, caller: Caller): Outcome {
  if (route.queryBoardTarget && isUser(caller)) {
    // Board X, located through the query: another organization's caller must not learn it
    // exists; in org A the caller needs read access to it (write for anything but GET).
    const grant = BOARD_X_ACCESS[caller];
    if (grant === null) return deny(404, 'Board not found');
    const ok = grant === 'write' || (grant === 'read' && route.method === 'get');
    if (!ok) return BOARD_DENIED;
  }
  const orgScoped = route.params.filter((p) => p !== 'boardId');
  if (
    !isUser(caller) ||
    orgScoped.length === 0 ||
    route.access?.kind === 'board' ||
    route.access?.kind === 'boardActor'
  ) {
    return 'allowed';
  }
  if (caller === 'otherOrgOwner') {
    // A8 is idempotent: an agent the caller's organization does not have is already gone for
    // it ({ok: true}); the matrix checks that nothing was deleted.
    if (route.key === 'DELETE /api/v1/agents/{agentId}') return 'allowed';
    const named = orgScoped.map((p) => NOT_FOUND_DETAIL[p]).find(Boolean);
    return named ? deny(404, named) : NOT_FOUND;
  }
  if (route.params.includes('agentId') && !route.key.startsWith('DELETE /api/v1/agent/')) {
    const grant = BOARD_X_ACCESS[caller];
    const ok = grant === 'write' || (grant === 'read' && route.method === 'get');
    if (!ok) return FORBIDDEN;
  }
  return 'allowed';
}

/**
 * Step 3: handlers that narrow a coarse decorator (each says why). Returns a denial, or
 * undefined to keep steps 1-2.
 */
const HANDLER_RULES: Record<string, (caller: Caller) => Outcome | undefined> = {
  // A3: a user must administer the organization and write the board; an agent must be a lead.
  'POST /api/v1/agents': (caller) => {
    if (isAgent(caller)) {
      // The body names board X: the lead of board Y may create only on its own board.
      if (caller === 'otherLead') {
        return deny(403, 'Board leads can only create agents in their own board');
      }
      return caller === 'lead' ? undefined : deny(403, 'Only board leads can create agents');
    }
    if (!isUser(caller)) return undefined;
    if (!ORG_ADMINS.has(caller)) return FORBIDDEN;
    const grant = BOARD_X_ACCESS[caller];
    if (grant === null) return NO_ORG_ACCESS;
    return grant === 'write' ? undefined : BOARD_DENIED;
  },
  // A7: the body names a new agent on board X, so a user goes the create path (A3's rules).
  'POST /api/v1/agents/heartbeat': (caller) =>
    isAgent(caller) ? undefined : HANDLER_RULES['POST /api/v1/agents'](caller),
  // A6: an agent heartbeats only itself (the target is another agent); a user must be an admin.
  'POST /api/v1/agents/{agentId}/heartbeat': (caller) => {
    if (isAgent(caller)) return FORBIDDEN;
    if (isUser(caller) && caller !== 'otherOrgOwner' && !ORG_ADMINS.has(caller)) return FORBIDDEN;
    return undefined;
  },
  // Switching to an organization the caller is not a member of (the body names org A).
  'PATCH /api/v1/organizations/me/active': (caller) =>
    caller === 'otherOrgOwner' ? NO_ORG_ACCESS : undefined,
  // A member reads only itself; admins read every member (the target is another member).
  'GET /api/v1/organizations/me/members/{memberId}': (caller) =>
    isUser(caller) && !ORG_ADMINS.has(caller) ? FORBIDDEN : undefined,
  // C2: only a lead creates workers (on its own board, whatever the body says).
  'POST /api/v1/agent/agents': (caller) =>
    isAgent(caller) && caller !== 'lead' && caller !== 'otherLead' ? FORBIDDEN : undefined,
  // The owner (of a fresh organization) deletes it; an admin passes @OrgAdmin() only.
  'DELETE /api/v1/organizations/me': (caller) =>
    caller === 'admin' ? deny(403, 'Only organization owners can delete organizations') : undefined,
  // The owner's organization has other members and no other owner.
  'DELETE /api/v1/users/me': (caller) =>
    caller === 'owner' ? deny(409, lastOwnerDetail(FRESH_OWNER_ORGANIZATION)) : undefined,
  // Only a lead removes a worker of its board.
  'DELETE /api/v1/agent/boards/{boardId}/agents/{agentId}': (caller) =>
    isAgent(caller) && caller !== 'lead'
      ? deny(403, 'Only board leads can delete agents')
      : undefined,
  // Coordination (C4–C7): only a lead nudges, writes a SOUL, reads another agent's SOUL
  // (the target is another agent) and asks the user.
  ...Object.fromEntries(
    [
      'POST /api/v1/agent/boards/{boardId}/agents/{agentId}/nudge',
      'GET /api/v1/agent/boards/{boardId}/agents/{agentId}/soul',
      'PUT /api/v1/agent/boards/{boardId}/agents/{agentId}/soul',
      'POST /api/v1/agent/boards/{boardId}/gateway/main/ask-user',
    ].map((key) => [
      key,
      (caller: Caller) => (isAgent(caller) && caller !== 'lead' ? FORBIDDEN : undefined),
    ]),
  ),
  // O4/C10: only the gateway's main agent posts onboarding updates (board agents are refused).
  ...Object.fromEntries(
    [
      'POST /api/v1/boards/{boardId}/onboarding/agent',
      'POST /api/v1/agent/boards/{boardId}/onboarding',
    ].map((key) => [
      key,
      (caller: Caller) => (isAgent(caller) && caller !== 'main' ? FORBIDDEN : undefined),
    ]),
  ),
  // C8/C9: only a gateway's main agent talks to leads; C8's board X is on gateway A, not on the
  // other main agent's gateway B (C9 broadcasts to its own gateway's boards only).
  ...Object.fromEntries(
    [
      'POST /api/v1/agent/gateway/boards/{boardId}/lead/message',
      'POST /api/v1/agent/gateway/leads/broadcast',
    ].map((key) => [
      key,
      (caller: Caller) => {
        if (!isAgent(caller)) return undefined;
        if (caller !== 'main' && caller !== 'otherMain') {
          return deny(403, 'Only the dedicated gateway agent may call this endpoint.');
        }
        return caller === 'otherMain' && key.includes('{boardId}') ? FORBIDDEN : undefined;
      },
    ]),
  ),
};

function expectedOutcome(route: RouteInfo, caller: Caller): Outcome {
  const access = route.access as AccessKind;
  const guard = guardOutcome(access, caller);
  if (guard !== 'allowed') return guard;
  const target = targetOutcome(route, caller);
  if (target !== 'allowed') return target;
  return HANDLER_RULES[route.key]?.(caller) ?? 'allowed';
}

/**
 * What "allowed" must look like: a success, except where a generated call cannot succeed for a
 * reason that is not access (said here), or where the caller acts in another organization than
 * the fixtures' (a fixture id in the body is then refused as unknown: 404 or 422).
 */
const ALLOWED_NON_SUCCESS: Record<string, number[]> = {
  // A random invite token matches no invite.
  'POST /api/v1/organizations/invites/accept': [404, 403],
  // Board X has no onboarding session when the matrix first reads it (404 Not Found).
  'GET /api/v1/boards/{boardId}/onboarding': [404],
  // The update body is a union (oneOf): the generated body is `{}`, which neither branch accepts.
  'POST /api/v1/boards/{boardId}/onboarding/agent': [422],
  'POST /api/v1/agent/boards/{boardId}/onboarding': [422],
};

/** Rows of a body: the body itself and the objects of its top-level arrays (items, results…). */
function rowsOf(body: unknown): Record<string, unknown>[] {
  const isRow = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  if (Array.isArray(body)) return body.filter(isRow);
  if (!isRow(body)) return [];
  return [
    body,
    ...Object.values(body).flatMap((value) => (Array.isArray(value) ? value : [])),
  ].filter(isRow);
}

/** Routes whose rows are boards (their `id` is a board's). */
const listsBoards = (route: RouteInfo) => /\/boards(\/\{boardId\})?$/.test(route.key);

/**
 * Where a caller stands, from the database and the rules (not from the route under test): its
 * organization, the boards it may read (a member: an all-boards flag or a readable access row
 * in its organization; a board agent: its board; a gateway main agent: its gateway's boards) and
 * the gateways whose rows it may see (a user: its organization's; an agent: its own).
 */
async function standing(t: TestApp, w: World, caller: Caller) {
  if (isUser(caller)) {
    const memberId = w.users[caller].memberId;
    const organizationId = caller === 'otherOrgOwner' ? w.orgB : w.orgA;
    const boards = await t.dataSource.query<{ id: string }[]>(
      `SELECT b.id FROM boards b JOIN organization_members m
         ON m.id = $1 AND b.organization_id = m.organization_id
       WHERE m.all_boards_read OR m.all_boards_write OR EXISTS (
         SELECT 1 FROM organization_board_access a WHERE a.organization_member_id = m.id
           AND a.board_id = b.id AND (a.can_read OR a.can_write))`,
      [memberId],
    );
    const gateways = await t.dataSource.query<{ id: string }[]>(
      'SELECT id FROM gateways WHERE organization_id = $1',
      [organizationId],
    );
    return {
      organizationId,
      boards: new Set(boards.map((b) => b.id)),
      gateways: new Set(gateways.map((g) => g.id)),
    };
  }
  const agentId = w.agentIds[caller as AgentCaller];
  const boards = await t.dataSource.query<{ id: string; gateway_id: string }[]>(
    `SELECT b.id, a.gateway_id FROM agents a JOIN boards b
       ON (a.board_id IS NOT NULL AND b.id = a.board_id)
       OR (a.board_id IS NULL AND b.gateway_id = a.gateway_id)
     WHERE a.id = $1`,
    [agentId],
  );
  const [{ gateway_id: gatewayId }] = await t.dataSource.query<{ gateway_id: string }[]>(
    'SELECT gateway_id FROM agents WHERE id = $1',
    [agentId],
  );
  return {
    organizationId: w.orgA,
    boards: new Set(boards.map((b) => b.id)),
    gateways: new Set([gatewayId]),
  };
}

/**
 * The rows of an allowed answer that cross a tenancy line: another organization's, a board's
 * the caller may not read, a gateway's it may not see. Generated for every route (no hand list):
 * any row carrying `organization_id`, `board_id` or `gateway_id`, and the board rows of the
 * board routes. (It found GET /agent/agents listing every agent of the organization to a
 * gateway main agent, boards of other gateways included.)
 */
async function crossingRows(
  t: TestApp,
  w: World,
  route: RouteInfo,
  caller: Caller,
  body: unknown,
): Promise<string[]> {
  if (caller === 'anonymous') return [];
  const rows = rowsOf(body);
  const tenancyFields = ['organization_id', 'board_id', 'gateway_id'];
  if (!rows.some((row) => tenancyFields.some((f) => typeof row[f] === 'string'))) {
    if (!(listsBoards(route) && route.method === 'get' && rows.length > 0)) return [];
  }
  // Where the caller stood at its last check; read again before reporting (boards come and go).
  const cached = standings.get(caller);
  if (cached) {
    const found = crossingsOf(route, rows, cached);
    if (found.length === 0) return found;
  }
  const where = await standing(t, w, caller);
  standings.set(caller, where);
  return crossingsOf(route, rows, where);
}

type Standing = Awaited<ReturnType<typeof standing>>;
const standings = new Map<Caller, Standing>();

function crossingsOf(route: RouteInfo, rows: Record<string, unknown>[], where: Standing): string[] {
  const crossings: string[] = [];
  for (const row of rows) {
    const named = `row ${JSON.stringify(row).slice(0, 160)}`;
    if (typeof row.organization_id === 'string' && row.organization_id !== where.organizationId) {
      crossings.push(`${named} is of another organization`);
    }
    // An operation on a whole gateway (`/gateways/{gatewayId}/…`, org admins only: its template
    // sync) acts on every board on it by design; its rows must still be of the organization.
    const gatewayWide = route.params.includes('gatewayId');
    if (typeof row.board_id === 'string' && !gatewayWide && !where.boards.has(row.board_id)) {
      crossings.push(`${named} is of a board the caller may not read`);
    }
    if (typeof row.gateway_id === 'string' && !where.gateways.has(row.gateway_id)) {
      crossings.push(`${named} is of a gateway the caller may not see`);
    }
    if (
      listsBoards(route) &&
      route.method === 'get' &&
      typeof row.id === 'string' &&
      !where.boards.has(row.id)
    ) {
      crossings.push(`${named} is a board the caller may not read`);
    }
  }
  return crossings;
}

describe('access matrix (generated from the routes)', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let world: World;
  let routes: RouteInfo[];
  let openApi: OpenApi;

  beforeAll(async () => {
    t = await createTestApp();
    const ds = t.dataSource;
    ({ fake } = await startOpenClawFake());
    const owner = await signIn(t.http, ds);
    const orgA = owner.organizationId;
    const gatewayA = (await buildGateway(ds, orgA, gatewayFieldsFor(fake))).id;
    // Room for every worker the lead creates here (max_agents caps a lead's creates; the cap
    // itself is tested in board-worker-limit.e2e-spec.ts).
    const boardX = await buildBoard(ds, orgA, gatewayA, { name: 'X', maxAgents: 1000 });
    const boardY = await buildBoard(ds, orgA, gatewayA, { name: 'Y', maxAgents: 1000 });
    // Gateway B of org A with board Z: its main agent is a gateway main agent, not board X's.
    const gatewayB = (await buildGateway(ds, orgA, gatewayFieldsFor(fake))).id;
    const boardZ = await buildBoard(ds, orgA, gatewayB, { name: 'Z' });
    // Rows of boards Y and Z, for the body checks (a list must not show them to X's callers).
    await buildAgent(ds, gatewayA, boardY.id, { name: 'matrix worker of Y' });
    await buildAgent(ds, gatewayB, boardZ.id, { name: 'matrix worker of Z' });
    const reader = await signInMember(t.http, ds, orgA);
    const writer = await signInMember(t.http, ds, orgA);
    const otherOrgOwner = await signIn(t.http, ds);
    const grantBoardX = async (boardId: string) => {
      await grantBoard(ds, reader.memberId, boardId, { canRead: true });
      await grantBoard(ds, writer.memberId, boardId, { canRead: true, canWrite: true });
    };
    await grantBoardX(boardX.id);
    const worker = await buildAgent(ds, gatewayA, boardX.id, { name: 'matrix worker' });
    const lead = await buildAgent(ds, gatewayA, boardX.id, {
      name: 'matrix lead',
      isBoardLead: true,
    });
    // Keyed as the gateway's main agent (its session key), as the coordination routes require.
    const main = await buildMainAgent(ds, gatewayA, { name: 'matrix main' });
    const otherLead = await buildLead(ds, gatewayA, boardY.id, { name: 'matrix lead of Y' });
    const otherMain = await buildMainAgent(ds, gatewayB, { name: 'matrix main of B' });
    // The sessions routes read gateway A's sessions: it lists its main session and its history.
    const sessionKey = mainSessionKey(gatewayA);
    fake.methods['sessions.list'] = () => ({
      count: 1,
      sessions: [{ key: sessionKey, label: 'matrix main', kind: 'direct' }],
      hasMore: false,
    });
    fake.methods['chat.history'] = (p) => ({
      sessionKey: p.sessionKey,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }], timestamp: 1 }],
    });
    const target = await buildAgent(ds, gatewayA, boardX.id, { name: 'matrix target' });
    const newMember = async () => {
      const user = await ds.getRepository(User).save({ clerkUserId: `matrix-${randomUUID()}` });
      return (await buildMember(ds, orgA, user.id)).id;
    };
    const admin = await signInMember(t.http, ds, orgA, { role: 'admin' });
    const noAccess = await signInMember(t.http, ds, orgA);
    const allBoardsReader = await signInMember(t.http, ds, orgA, { allBoardsRead: true });
    /** Where each user caller stands, for a fresh one in its place. */
    const freshCaller = async (caller: UserCaller): Promise<SignedInUser> => {
      switch (caller) {
        case 'owner':
        case 'otherOrgOwner': {
          // The owner of an organization that owns things: a gateway, a board, agents; like org
          // A, the owner's has another member (org B has none).
          const user = await signIn(t.http, ds);
          const gatewayId = (await buildGateway(ds, user.organizationId, gatewayFieldsFor(fake)))
            .id;
          const board = await buildBoard(ds, user.organizationId, gatewayId);
          await buildAgent(ds, gatewayId, board.id);
          if (caller === 'owner') {
            await ds
              .getRepository(Organization)
              .update({ id: user.organizationId }, { name: FRESH_OWNER_ORGANIZATION });
            const other = await ds
              .getRepository(User)
              .save({ clerkUserId: `matrix-${randomUUID()}` });
            await buildMember(ds, user.organizationId, other.id);
          }
          return user;
        }
        case 'admin':
          return signInMember(t.http, ds, orgA, { role: 'admin' });
        case 'reader':
        case 'writer': {
          const user = await signInMember(t.http, ds, orgA);
          await grantBoard(ds, user.memberId, boardX.id, {
            canRead: true,
            canWrite: caller === 'writer',
          });
          return user;
        }
        case 'allBoardsReader':
          return signInMember(t.http, ds, orgA, { allBoardsRead: true });
        case 'noAccess':
          return signInMember(t.http, ds, orgA);
      }
    };
    world = {
      orgA,
      orgB: otherOrgOwner.organizationId,
      gatewayA,
      boardX,
      targetAgentId: target.agent.id,
      targetMemberId: await newMember(),
      users: {
        owner,
        admin,
        reader,
        writer,
        noAccess,
        allBoardsReader,
        otherOrgOwner,
      },
      agentTokens: {
        worker: worker.token,
        lead: lead.token,
        main: main.token,
        otherLead: otherLead.token,
        otherMain: otherMain.token,
      },
      agentIds: {
        worker: worker.agent.id,
        lead: lead.agent.id,
        main: main.agent.id,
        otherLead: otherLead.agent.id,
        otherMain: otherMain.agent.id,
      },
      async freshBoard() {
        const board = await buildBoard(ds, orgA, gatewayA);
        await grantBoardX(board.id);
        return board;
      },
      async freshAgent() {
        return (await buildAgent(ds, gatewayA, boardX.id)).agent.id;
      },
      freshMember: newMember,
      freshCaller,
      gatewayUrl: fake.url,
      sessionKey,
      async freshGateway() {
        return (await buildGateway(ds, orgA, gatewayFieldsFor(fake))).id;
      },
      async freshInvite() {
        const invite = await ds.getRepository(OrganizationInvite).save({
          organizationId: orgA,
          invitedEmail: `invitee-${randomUUID().slice(0, 8)}@example.test`,
          role: 'member',
          token: randomUUID().replace(/-/g, ''),
        });
        return invite.id;
      },
    };
    routes = enumerateRoutes(t);
    openApi = buildOpenApiDocument(t.app) as unknown as OpenApi;
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });

  it('every route carries an access decorator (or is a listed probe) and known parameters', () => {
    expect(routeProblems(routes)).toEqual([]);
  });

  it('a route without an access decorator, or with an unknown parameter, is reported', () => {
    class Undecorated {
      find = () => undefined;
    }
    const handler = () => undefined;
    expect(accessKindOf(Undecorated, handler)).toBeNull();
    expect(
      routeProblems([
        { key: 'GET /api/v1/x', method: 'get', path: '/api/v1/x', params: [], access: null },
        {
          key: 'GET /api/v1/y/{widgetId}',
          method: 'get',
          path: '/api/v1/y/:widgetId',
          params: ['widgetId'],
          access: { kind: 'orgMember' },
        },
      ]),
    ).toEqual([
      'GET /api/v1/x: no access decorator',
      'GET /api/v1/y/{widgetId}: no fixture for path parameter :widgetId',
    ]);
  });

  it('covers the agents, stream, activity, gateways, sessions and tenancy routes and every route', () => {
    const keys = routes.map((r) => r.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'GET /api/v1/gateways',
        'POST /api/v1/gateways',
        'GET /api/v1/gateways/{gatewayId}',
        'PATCH /api/v1/gateways/{gatewayId}',
        'DELETE /api/v1/gateways/{gatewayId}',
        'POST /api/v1/gateways/{gatewayId}/templates/sync',
        'GET /api/v1/gateways/status',
        'GET /api/v1/gateways/sessions',
        'GET /api/v1/gateways/sessions/{sessionId}',
        'GET /api/v1/gateways/sessions/{sessionId}/history',
        'POST /api/v1/gateways/sessions/{sessionId}/message',
        'GET /api/v1/gateways/commands',
        'DELETE /api/v1/organizations/me',
        'DELETE /api/v1/users/me',
        'GET /api/v1/agents/stream',
        'GET /api/v1/activity',
        'GET /api/v1/agents',
        'POST /api/v1/agents',
        'POST /api/v1/agents/heartbeat',
        'GET /api/v1/agents/{agentId}',
        'PATCH /api/v1/agents/{agentId}',
        'DELETE /api/v1/agents/{agentId}',
        'POST /api/v1/agents/{agentId}/heartbeat',
        'GET /api/v1/agent/agents',
        'POST /api/v1/agent/agents',
        'DELETE /api/v1/agent/boards/{boardId}/agents/{agentId}',
        'POST /api/v1/agent/heartbeat',
        'GET /api/v1/boards/{boardId}',
        'GET /api/v1/organizations/me',
        'GET /api/v1/boards/{boardId}/memory',
        'POST /api/v1/boards/{boardId}/memory',
        'GET /api/v1/boards/{boardId}/memory/stream',
        'GET /api/v1/boards/{boardId}/onboarding/stream',
        'GET /api/v1/agent/boards/{boardId}/memory',
        'POST /api/v1/agent/boards/{boardId}/memory',
      ]),
    );
    expect(new Set(keys).size).toBe(keys.length);
    // The sessions routes locate their board through the query (so the matrix sends board X).
    expect(routes.filter((r) => r.queryBoardTarget).map((r) => r.key)).toEqual(
      expect.arrayContaining([
        'GET /api/v1/gateways/status',
        'GET /api/v1/gateways/sessions',
        'GET /api/v1/gateways/sessions/{sessionId}',
        'GET /api/v1/gateways/sessions/{sessionId}/history',
        'POST /api/v1/gateways/sessions/{sessionId}/message',
        'GET /api/v1/gateways/commands',
      ]),
    );
    expect(routes.filter((r) => r.eventStream).map((r) => r.key)).toEqual(
      expect.arrayContaining([
        'GET /api/v1/agents/stream',
        'GET /api/v1/boards/{boardId}/memory/stream',
        'GET /api/v1/boards/{boardId}/onboarding/stream',
      ]),
    );
  });

  async function call(
    route: RouteInfo,
    caller: Caller,
  ): Promise<{ res: Response; values: Record<string, string> }> {
    let path = route.path;
    const values: Record<string, string> = {};
    for (const [index, param] of route.params.entries()) {
      // A DELETE destroys what its last parameter names (the ones before it only locate it).
      const destructive = route.method === 'delete' && index === route.params.length - 1;
      values[param] = await PARAM_FIXTURES[param](world, destructive);
      path = path.replace(`:${param}`, encodeURIComponent(values[param]));
    }
    let req = t.http[route.method](path).query(generateQuery(openApi, route, world));
    // A stream (Server-Sent Events) that opened is the answer: read no further.
    // (Under Node, superagent hands parsers the IncomingMessage its types call Response.)
    if (route.method === 'get') {
      req = req.buffer(true).parse(untilStreamOpens as unknown as Parameters<typeof req.parse>[0]);
    }
    if (isUser(caller)) {
      const user = destroysCaller(route) ? await world.freshCaller(caller) : world.users[caller];
      values.callerUserId = user.userId;
      values.callerOrganizationId = user.organizationId;
      req = req.set(user.headers);
    }
    if (isAgent(caller)) req = req.set('X-Agent-Token', world.agentTokens[caller]);
    const body = generateBody(openApi, route, world);
    const res = await (body === undefined ? req : req.send(body));
    // Some routes switch the caller's active organization (POST /organizations, PATCH
    // /organizations/me/active): every case starts from the same one.
    for (const user of USERS) {
      await t.dataSource
        .getRepository(User)
        .update(
          { id: world.users[user].userId },
          { activeOrganizationId: user === 'otherOrgOwner' ? world.orgB : world.orgA },
        );
    }
    return { res, values };
  }

  it('every route answers every caller as its access metadata and the target tenancy say', async () => {
    const mismatches: string[] = [];
    const tally = { allowed: 0, denied: 0, streamsOpened: 0, rowsChecked: 0 };
    /** Per caller kind: allowed answers that succeeded, and denials. */
    const byCaller = new Map<Caller, { succeeded: number; denied: number }>(
      CALLERS.map((c) => [c, { succeeded: 0, denied: 0 }]),
    );
    const checked = routes.filter((r) => !PUBLIC_ROUTES.has(r.key) && r.access !== null);
    for (const route of checked) {
      for (const caller of CALLERS) {
        const expected = expectedOutcome(route, caller);
        const { res, values } = await call(route, caller);
        const got = `${res.status} ${JSON.stringify((res.body as { detail?: unknown }).detail)}`;
        tally[expected === 'allowed' ? 'allowed' : 'denied'] += 1;
        if (expected !== 'allowed') {
          byCaller.get(caller)!.denied += 1;
          if (
            res.status !== expected.deny ||
            (res.body as { detail?: unknown }).detail !== expected.detail
          ) {
            mismatches.push(
              `${route.key} as ${caller}: expected ${expected.deny} "${expected.detail}", got ${got}`,
            );
          }
          continue;
        }
        const success = res.status >= 200 && res.status < 300;
        // What an allowed caller got back names no row of a board or organization it may not use.
        if (success) byCaller.get(caller)!.succeeded += 1;
        if (success && !destroysCaller(route)) {
          tally.rowsChecked += rowsOf(res.body).length;
          for (const crossing of await crossingRows(t, world, route, caller, res.body)) {
            mismatches.push(`${route.key} as ${caller}: ${crossing}`);
          }
        }
        const otherOrgRefusal = caller === 'otherOrgOwner' && [404, 422].includes(res.status);
        // An idempotent delete from another organization answers ok and must delete nothing.
        if (caller === 'otherOrgOwner' && route.method === 'delete' && values.agentId) {
          const survived = await t.dataSource.getRepository(Agent).existsBy({ id: values.agentId });
          if (!survived)
            mismatches.push(`${route.key} as ${caller}: deleted another tenant's agent`);
        }
        // An event stream route lets an allowed caller in by opening the stream.
        if (success && route.eventStream) {
          if (String(res.headers['content-type']).startsWith('text/event-stream')) {
            tally.streamsOpened += 1;
          } else mismatches.push(`${route.key} as ${caller}: answered ${got}, no event stream`);
        }
        // A caller that deleted itself (its account, its organization) is gone.
        if (success && destroysCaller(route)) {
          const gone = route.path.endsWith('/users/me')
            ? !(await t.dataSource.getRepository(User).existsBy({ id: values.callerUserId }))
            : !(await t.dataSource
                .getRepository(Organization)
                .existsBy({ id: values.callerOrganizationId }));
          if (!gone) mismatches.push(`${route.key} as ${caller}: answered ok, deleted nothing`);
        }
        const listed = ALLOWED_NON_SUCCESS[route.key]?.includes(res.status) ?? false;
        if (!success && !otherOrgRefusal && !listed) {
          mismatches.push(`${route.key} as ${caller}: expected allowed, got ${got}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    // The matrix really exercised both sides for every caller kind.
    expect(tally.denied).toBeGreaterThan(100);
    expect(tally.allowed).toBeGreaterThan(100);
    expect(tally.rowsChecked).toBeGreaterThan(500);
    // Every caller kind was both let in somewhere and refused somewhere (anonymous: probes only).
    const oneSided = [...byCaller]
      .filter(([c, n]) => n.denied === 0 || (c !== 'anonymous' && n.succeeded === 0))
      .map(([c, n]) => `${c}: ${JSON.stringify(n)}`);
    expect(oneSided).toEqual([]);
    // GET /agents/stream opened for every user caller (each a member of its active organization).
    expect(tally.streamsOpened).toBeGreaterThanOrEqual(USERS.length);
    // Bound for ~70 routes x 15 callers, each an HTTP call plus fixtures (not a timing claim).
  }, 180_000);

  it('the body check reports a row of a board, gateway or organization the caller may not use', async () => {
    const boardOf = async (name: string) =>
      (
        await t.dataSource
          .getRepository(Board)
          .findOneByOrFail({ name, organizationId: world.orgA })
      ).id;
    const [y, z] = [await boardOf('Y'), await boardOf('Z')];
    const list = routes.find((r) => r.key === 'GET /api/v1/agents')!;
    const boards = routes.find((r) => r.key === 'GET /api/v1/boards')!;
    const rows = (...items: object[]) => ({ items, total: items.length });
    expect(
      await crossingRows(t, world, list, 'reader', rows({ board_id: world.boardX.id })),
    ).toEqual([]);
    expect(await crossingRows(t, world, list, 'reader', rows({ board_id: y }))).toHaveLength(1);
    expect(await crossingRows(t, world, boards, 'writer', rows({ id: y }))).toHaveLength(1);
    expect(await crossingRows(t, world, boards, 'allBoardsReader', rows({ id: y }))).toEqual([]);
    expect(await crossingRows(t, world, list, 'otherMain', rows({ board_id: z }))).toEqual([]);
    expect(await crossingRows(t, world, list, 'main', rows({ board_id: z }))).not.toEqual([]);
    expect(
      await crossingRows(t, world, list, 'lead', rows({ gateway_id: world.gatewayA })),
    ).toEqual([]);
    expect(
      await crossingRows(t, world, list, 'otherOrgOwner', rows({ organization_id: world.orgA })),
    ).toHaveLength(1);
  });

  it.each([
    ['owner', ['X', 'Y', 'Z']],
    ['admin', []],
    ['allBoardsReader', ['X', 'Y', 'Z']],
    ['reader', ['X']],
    ['writer', ['X']],
    ['noAccess', []],
    ['otherOrgOwner', []],
  ] as [UserCaller, string[]][])('GET /boards as %s lists %j', async (caller, names) => {
    const res = await t.http.get('/api/v1/boards').set(world.users[caller].headers).expect(200);
    // Boards created by other cases have generated names; only X, Y and Z are stable.
    const listed = (res.body.items as { name: string }[])
      .map((b) => b.name)
      .filter((n) => ['X', 'Y', 'Z'].includes(n));
    expect(listed).toEqual(names);
  });

  it.each([
    ['owner', 'orgA'],
    ['admin', 'orgA'],
    ['reader', 'orgA'],
    ['otherOrgOwner', 'orgB'],
  ] as [UserCaller, 'orgA' | 'orgB'][])(
    'GET /organizations/me as %s is the active organization (%s)',
    async (caller, which) => {
      const res = await t.http
        .get('/api/v1/organizations/me')
        .set(world.users[caller].headers)
        .expect(200);
      expect(res.body.id).toBe(which === 'orgA' ? world.orgA : world.orgB);
    },
  );

  it('GET /agents lists the agents of readable boards, plus main agents for admins', async () => {
    type Listed = { id: string; board_id: string | null; is_gateway_main: boolean };
    const list = async (caller: UserCaller) =>
      (await t.http.get('/api/v1/agents').set(world.users[caller].headers).expect(200)).body
        .items as Listed[];
    const ownerSees = (await list('owner')).map((a) => a.id);
    expect(ownerSees).toEqual(
      expect.arrayContaining([world.agentIds.worker, world.agentIds.lead, world.agentIds.main]),
    );
    // The admin reads no board: only gateway main agents (the matrix's POST /gateways made more).
    const adminSees = await list('admin');
    expect(adminSees.map((a) => a.id)).toContain(world.agentIds.main);
    expect(adminSees.filter((a) => a.board_id !== null || !a.is_gateway_main)).toEqual([]);
    // The other organization's owner sees only its own (the gateways it created in the matrix).
    const otherSees = (await list('otherOrgOwner')).map((a) => a.id);
    expect(otherSees.filter((id) => ownerSees.includes(id))).toEqual([]);
  });
});
