/**
 * Fuzzing EVERY operation of the OpenAPI document (issue 14, "Fuzzing"): for each one,
 * fast-check generates malformed path parameters, malformed and unknown query parameters,
 * hostile headers and hostile bodies (a valid body built from the operation's schema with
 * fields replaced, wrong top-level types, invalid JSON, huge ones), sent by an authorised caller
 * (so requests reach validation and the handlers), another kind of caller, or anonymously.
 * Every answer must be < 500 and, for 4xx, the error envelope `{detail, request_id}`.
 *
 * Reproducible: the cases of a route are drawn with `fc.sample` from FUZZ_SEED (printed; set
 * the environment variable to replay another seed) mixed with the route's key, so adding a route
 * changes no other route's cases. All of a route's cases run (no shrinking: each is an HTTP
 * call) and every failing one is reported with what was sent.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Response } from 'supertest';
import type { Test } from 'supertest';
import { buildOpenApiDocument } from '../../src/bootstrap';
import { OrganizationInvite } from '../../src/organizations/entities/organization-invite.entity';
import { mainSessionKey } from '../../src/provisioning/agent-identity';
import { User } from '../../src/users/entities/user.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  buildMainAgent,
  buildMember,
  signIn,
  SignedInUser,
} from '../support/builders';
import type { FakeGateway } from '../support/fake-gateway';
import {
  FAKE_GATEWAY_TOKEN,
  gatewayFieldsFor,
  startOpenClawFake,
} from '../support/fake-openclaw-state';
import {
  encodeLoosely,
  hostileBody,
  hostileJson,
  hostileNumber,
  hostileString,
  unhandledAnswer,
  untilStreamOpens,
} from '../support/hostile-input';
import { createTestApp, TestApp } from '../support/test-app';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_130);
/** Cases per operation (FUZZ_CASES for a deeper run than the suite's). */
const CASES_PER_ROUTE = Number(process.env.FUZZ_CASES ?? 20);
/** No request may hang (an SSE 200 is read up to its headers only). */
const ANSWER_TIMEOUT_MS = 10_000;
/** Encoded query length per case (Node refuses a request line over 16 KiB itself). */
const MAX_QUERY_LENGTH = 12_000;

// ---------------------------------------------------------------------------------------------
// The OpenAPI document, as far as the generator needs it.

interface SchemaObject {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  minimum?: number;
  minLength?: number;
  nullable?: boolean;
  required?: string[];
  items?: SchemaObject;
  properties?: Record<string, SchemaObject>;
  allOf?: SchemaObject[];
  oneOf?: SchemaObject[];
  anyOf?: SchemaObject[];
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: SchemaObject;
}
interface OpenApiOperation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: SchemaObject }> };
  responses?: Record<string, { content?: Record<string, unknown> }>;
}
interface OpenApi {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, SchemaObject> };
}

type Method = 'get' | 'post' | 'patch' | 'put' | 'delete';
const METHODS: readonly Method[] = ['get', 'post', 'patch', 'put', 'delete'];

interface Operation {
  /** `PATCH /api/v1/agents/{agentId}` */
  key: string;
  method: Method;
  /** OpenAPI form, `/api/v1/agents/{agentId}`. */
  path: string;
  pathParams: string[];
  queryParams: Parameter[];
  bodySchema: SchemaObject | null;
  eventStream: boolean;
}

function operationsOf(doc: OpenApi): Operation[] {
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const parameters = operation.parameters ?? [];
      operations.push({
        key: `${method.toUpperCase()} ${path}`,
        method,
        path,
        pathParams: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]),
        queryParams: parameters.filter((p) => p.in === 'query'),
        bodySchema: operation.requestBody?.content['application/json']?.schema ?? null,
        eventStream: Object.values(operation.responses ?? {}).some(
          (response) => response.content?.['text/event-stream'] !== undefined,
        ),
      });
    }
  }
  // Destructive routes last, the ones destroying the caller itself at the very end (they get
  // fresh targets and callers anyway; the order only keeps a surprise from spoiling the rest).
  const rank = (op: Operation) => (op.method !== 'delete' ? 0 : op.path.endsWith('/me') ? 2 : 1);
  return operations.sort((a, b) => rank(a) - rank(b));
}

function resolve(doc: OpenApi, schema: SchemaObject): SchemaObject {
  if (schema.$ref) return resolve(doc, doc.components.schemas[schema.$ref.split('/').pop()!]);
  if (schema.allOf) {
    const parts = schema.allOf.map((part) => resolve(doc, part));
    return {
      type: 'object',
      required: parts.flatMap((p) => p.required ?? []),
      properties: Object.assign({}, ...parts.map((p) => p.properties ?? {})) as Record<
        string,
        SchemaObject
      >,
    };
  }
  const first = schema.oneOf?.[0] ?? schema.anyOf?.[0];
  return first ? resolve(doc, first) : schema;
}

// ---------------------------------------------------------------------------------------------
// The world the valid parts of a request name.

interface World {
  owner: SignedInUser;
  organizationId: string;
  gatewayId: string;
  boardId: string;
  workerId: string;
  memberId: string;
  gatewayUrl: string;
  sessionKey: string;
  tokens: { worker: string; lead: string; main: string };
  freshBoard(): Promise<string>;
  freshAgent(): Promise<string>;
  freshMember(): Promise<string>;
  freshInvite(): Promise<string>;
  freshGateway(): Promise<string>;
}

const PATH_FIXTURE_NAMES = ['boardId', 'agentId', 'memberId', 'inviteId', 'gatewayId', 'sessionId'];

/**
 * A valid path parameter by name; `fresh`: the request may change or destroy what it names (a
 * non-GET names it last), so it gets an entity of its own.
 */
async function pathFixture(w: World, name: string, fresh: boolean): Promise<string> {
  switch (name) {
    case 'boardId':
      return fresh ? w.freshBoard() : w.boardId;
    case 'agentId':
      return fresh ? w.freshAgent() : w.workerId;
    case 'memberId':
      return fresh ? w.freshMember() : w.memberId;
    case 'inviteId':
      return w.freshInvite();
    case 'gatewayId':
      return fresh ? w.freshGateway() : w.gatewayId;
    case 'sessionId':
      return w.sessionKey;
    default:
      throw new Error(`no fixture for path parameter {${name}}`);
  }
}

/** Fields named like an entity of the world get it (a fuzzed request then reaches the handler). */
function namedFixture(w: World, name: string): unknown {
  switch (name) {
    case 'board_id':
      return w.boardId;
    case 'gateway_id':
      return w.gatewayId;
    case 'organization_id':
      return w.organizationId;
    case 'agent_id':
      return w.workerId;
    case 'url':
      return w.gatewayUrl;
    case 'token':
      return FAKE_GATEWAY_TOKEN;
    case 'disable_device_pairing':
      return true;
    default:
      return undefined;
  }
}

/** A valid-looking value of a schema: every property filled (fixtures by name), a few levels. */
function validValue(doc: OpenApi, w: World, raw: SchemaObject, name = '', depth = 0): unknown {
  const fixture = namedFixture(w, name);
  if (fixture !== undefined) return fixture;
  const schema = resolve(doc, raw);
  if (schema.enum?.length) return schema.enum[0];
  switch (schema.type ?? 'object') {
    case 'boolean':
      return false;
    case 'integer':
    case 'number':
      return Math.max(schema.minimum ?? 1, 1);
    case 'array':
      return depth < 3 && schema.items ? [validValue(doc, w, schema.items, '', depth + 1)] : [];
    case 'string': {
      if (schema.format === 'uuid') return randomUUID();
      if (schema.format === 'date-time') return new Date().toISOString();
      if (schema.format === 'email' || name.endsWith('email')) {
        return `fuzz-${randomUUID().slice(0, 8)}@example.test`;
      }
      const text = `fuzz-${randomUUID().slice(0, 8)}`;
      return text.padEnd(schema.minLength ?? 0, 'x');
    }
    default: {
      if (depth >= 3 || !schema.properties) return {};
      return Object.fromEntries(
        Object.entries(schema.properties).map(([key, value]) => [
          key,
          validValue(doc, w, value, key, depth + 1),
        ]),
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Cases: what one fuzzed request changes from a valid one.

type CallerKind = 'owner' | 'worker' | 'lead' | 'main' | 'anonymous';

type BodyCase =
  | { kind: 'fields'; replace: Record<string, unknown> }
  | { kind: 'raw'; text: string; contentType: string | null };

interface FuzzCase {
  caller: CallerKind;
  /** A path parameter replaced by an already-encoded hostile segment. */
  path?: { index: number; segment: string };
  /** Extra (already-encoded) query pairs, declared names with wrong values or unknown names. */
  query: [string, string][];
  headers: Record<string, string>;
  /** Omitted headers: sent without Content-Type or credentials. */
  omit: ('content-type' | 'credentials')[];
  body?: BodyCase;
}

/** Characters a Node client can put in a header value: printable ASCII and Latin-1. */
const headerText = (maxLength: number) =>
  fc.string({
    unit: fc
      .integer({ min: 0x20, max: 0xff })
      .filter((code) => code < 0x7f || code > 0x9f)
      .map((code) => String.fromCharCode(code)),
    maxLength,
  });

/** Path segments: not ids, ids of nothing, dot segments, NULs, broken escapes, huge ones. */
const hostilePathSegment = fc.oneof(
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '%2E%2E%2F%2E%2E',
    '..%2F..%2Fetc%2Fpasswd',
    '%00',
    'x%00y',
    '%',
    '%zz',
    '%E0%A4%A',
    '%ED%A0%80',
    '%C0%AF',
    '%FF%FE',
    'not-a-uuid',
    '00000000-0000-0000-0000-000000000000',
    'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
    '{00000000-0000-0000-0000-000000000000}',
    '-1',
    '0',
    '1e400',
    'null',
    'undefined',
    '__proto__',
    'constructor',
    '%20',
    'a'.repeat(8_000),
  ),
  fc.uuid().map((id) => id.toUpperCase()),
  fc.uuid().map((id) => `${id}x`),
  hostileString.map((text) => encodeLoosely(text.slice(0, 600)) || '%20'),
);

const hostileQueryValue = fc.oneof(
  hostileNumber.map(encodeURIComponent),
  hostileString.map((text) => encodeLoosely(text.slice(0, 600))),
  fc.constantFrom('true', 'false', 'null', '[]', '{}', '%00', '%', '%zz', 'a'.repeat(8_000)),
  fc.uuid(),
);

function hostileQuery(op: Operation): fc.Arbitrary<[string, string][]> {
  const declared = op.queryParams.map((p) => p.name);
  const name = fc.oneof(
    ...(declared.length ? [{ weight: 3, arbitrary: fc.constantFrom(...declared) }] : []),
    {
      weight: 1,
      arbitrary: fc.oneof(
        hostileString.map((text) => encodeLoosely(text.slice(0, 200)) || 'x'),
        fc.constantFrom('__proto__', 'constructor', 'limit[]', 'offset[x]', '', '%00'),
      ),
    },
  );
  // Repeated names too (`?limit=1&limit=2`): an array where a string is expected. Node itself
  // answers a request line over 16 KiB (431, before any application code): stay under it.
  return fc
    .array(fc.tuple(name, hostileQueryValue), { minLength: 1, maxLength: 4 })
    .map((pairs) => {
      let room = MAX_QUERY_LENGTH;
      return pairs.filter(([key, value]) => (room -= key.length + value.length + 2) >= 0);
    });
}

const hostileHeaders = fc.oneof(
  fc.record({
    'Content-Type': fc.oneof(
      fc.constantFrom(
        'text/plain',
        'application/xml',
        'application/json; charset=utf-7',
        'application/json; charset=garbage',
        'application/json; charset=utf-16',
        'application/json; charset=""',
        'application/json;;;',
        'multipart/form-data; boundary=x',
        'application/x-www-form-urlencoded',
        '*/*',
        'application/merge-patch+json',
      ),
      headerText(200),
    ),
  }),
  fc.record({
    Authorization: fc.oneof(
      fc.constantFrom(
        'Bearer',
        'Bearer ',
        'Bearer  ',
        'bearer x',
        'Basic dXNlcjpwYXNz',
        'Bearer a.b.c',
        'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
        `Bearer ${'x'.repeat(8_000)}`,
        'Bearer \u00e9\u00e8\u00ff',
        'Token x',
      ),
      headerText(300).map((text) => `Bearer ${text}`),
    ),
  }),
  fc.record({
    'X-Agent-Token': fc.oneof(
      fc.constantFrom('', ' ', 'x'.repeat(8_000), '\u00e9\u00ff', 'null', 'Bearer x'),
      headerText(300),
    ),
  }),
  fc.record({
    'Last-Event-ID': fc.oneof(
      hostileNumber,
      fc.constantFrom('abc', '1:2', '-1', '0', 'x'.repeat(8_000), '\u00e9'),
      headerText(200),
    ),
  }),
);

const wrongTopLevel = fc.oneof(
  fc.constantFrom('[]', '"text"', '42', 'null', 'true', '[{}]', '""', '-1e999'),
  fc.array(hostileJson, { maxLength: 3 }).map((items) => JSON.stringify(items)),
);
const invalidJson = fc.oneof(
  fc.constantFrom(
    '{',
    '{"a":',
    "{'a': 1}",
    '{"a": 1,}',
    '{"a": NaN}',
    '\u0000',
    '',
    ' ',
    '{"__proto__": {"admin": true}}',
    '{"constructor": {"prototype": {"x": 1}}}',
  ),
  hostileString.map((text) => text.slice(0, 2_000)),
);
/** Past the 1 MB limit, just under it, and nested deep enough to trouble a recursive walker. */
const hugeJson = fc.constantFrom(
  `{"x":"${'a'.repeat(1_100_000)}"}`,
  `{"x":"${'a'.repeat(1_000_000)}"}`,
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`,
  `[${Array.from({ length: 150_000 }, () => '{}').join(',')}]`,
);

function bodyCase(base: Record<string, unknown> | null): fc.Arbitrary<BodyCase> {
  const contentType = fc.constantFrom<string | null>('application/json', null);
  return fc.oneof(
    ...(base
      ? [
          {
            weight: 4,
            arbitrary: hostileBody(base).map((replace): BodyCase => ({ kind: 'fields', replace })),
          },
        ]
      : []),
    {
      weight: 1,
      arbitrary: fc
        .tuple(wrongTopLevel, contentType)
        .map(([text, type]): BodyCase => ({ kind: 'raw', text, contentType: type })),
    },
    {
      weight: 1,
      arbitrary: invalidJson.map((text): BodyCase => ({
        kind: 'raw',
        text,
        contentType: 'application/json',
      })),
    },
    {
      weight: 1,
      arbitrary: hugeJson.map((text): BodyCase => ({
        kind: 'raw',
        text,
        contentType: 'application/json',
      })),
    },
  );
}

/** The caller that may use the route: an agent on /agent routes, else the organization owner. */
function authorisedCaller(op: Operation): CallerKind {
  if (!op.path.startsWith('/api/v1/agent/')) return 'owner';
  return op.path.includes('/gateway/') || op.path.includes('/onboarding') ? 'main' : 'lead';
}

function fuzzCase(op: Operation, base: Record<string, unknown> | null): fc.Arbitrary<FuzzCase> {
  const primary = authorisedCaller(op);
  const caller = fc.oneof(
    { weight: 6, arbitrary: fc.constant<CallerKind>(primary) },
    { weight: 1, arbitrary: fc.constant<CallerKind>('anonymous') },
    {
      weight: 1,
      arbitrary: fc.constantFrom<CallerKind>(primary === 'owner' ? 'lead' : 'owner', 'worker'),
    },
  );
  const noChange = { query: [] as [string, string][], headers: {}, omit: [] };
  const mutations: fc.WeightedArbitrary<Omit<FuzzCase, 'caller'>>[] = [
    // The valid request itself, so hostile callers and the base reach the handler too.
    { weight: 1, arbitrary: fc.constant(noChange) },
    { weight: 2, arbitrary: hostileQuery(op).map((query) => ({ ...noChange, query })) },
    { weight: 2, arbitrary: hostileHeaders.map((headers) => ({ ...noChange, headers })) },
    {
      weight: 1,
      arbitrary: fc
        .subarray<'content-type' | 'credentials'>(['content-type', 'credentials'], {
          minLength: 1,
        })
        .map((omit) => ({ ...noChange, omit })),
    },
  ];
  if (op.pathParams.length) {
    mutations.push({
      weight: 4,
      arbitrary: fc
        .tuple(fc.nat({ max: op.pathParams.length - 1 }), hostilePathSegment)
        .map(([index, segment]) => ({ ...noChange, path: { index, segment } })),
    });
  }
  if (op.method !== 'get') {
    mutations.push({
      weight: base ? 6 : 2,
      arbitrary: bodyCase(base).map((body) => ({ ...noChange, body })),
    });
  }
  return fc
    .tuple(caller, fc.oneof(...mutations))
    .map(([who, mutation]) => ({ caller: who, ...mutation }));
}

/** A short description of a case for failure reports (huge values abbreviated). */
function describeCase(fuzz: FuzzCase, url: string): string {
  return JSON.stringify({ ...fuzz, url }, (_key, value: unknown) => {
    if (typeof value === 'string' && value.length > 120) {
      return `${value.slice(0, 60)}…(${value.length} chars)`;
    }
    if (Array.isArray(value) && value.length > 10) return `[array of ${value.length}]`;
    return value;
  });
}

/** A stable 32-bit number per route, mixed into the seed. */
function routeSeed(key: string): number {
  let hash = SEED | 0;
  for (const char of key) hash = (Math.imul(hash, 31) + char.charCodeAt(0)) | 0;
  return hash;
}

describe('OpenAPI fuzz: every operation answers hostile input < 500 with the error envelope', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let world: World;
  let doc: OpenApi;
  /** Cases per operation, by status class (proof that cases reach the handlers too). */
  const casesPerRoute = new Map<string, Record<'2xx' | '3xx' | '4xx' | '5xx' | 'none', number>>();

  beforeAll(async () => {
    t = await createTestApp();
    const ds = t.dataSource;
    ({ fake } = await startOpenClawFake());
    const owner = await signIn(t.http, ds);
    const organizationId = owner.organizationId;
    const gatewayId = (await buildGateway(ds, organizationId, gatewayFieldsFor(fake))).id;
    // Room for every worker a fuzzed lead creates (max_agents caps a lead's creates).
    const boardId = (await buildBoard(ds, organizationId, gatewayId, { maxAgents: 100_000 })).id;
    const worker = await buildAgent(ds, gatewayId, boardId);
    const lead = await buildAgent(ds, gatewayId, boardId, { isBoardLead: true });
    const main = await buildMainAgent(ds, gatewayId);
    const sessionKey = mainSessionKey(gatewayId);
    fake.methods['sessions.list'] = () => ({
      count: 1,
      sessions: [{ key: sessionKey, label: 'fuzz main', kind: 'direct' }],
      hasMore: false,
    });
    fake.methods['chat.history'] = (p) => ({
      sessionKey: p.sessionKey,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }], timestamp: 1 }],
    });
    const newMember = async () => {
      const user = await ds.getRepository(User).save({ clerkUserId: `fuzz-${randomUUID()}` });
      return (await buildMember(ds, organizationId, user.id)).id;
    };
    world = {
      owner,
      organizationId,
      gatewayId,
      boardId,
      workerId: worker.agent.id,
      memberId: await newMember(),
      gatewayUrl: fake.url,
      sessionKey,
      tokens: { worker: worker.token, lead: lead.token, main: main.token },
      freshBoard: async () => (await buildBoard(ds, organizationId, gatewayId)).id,
      freshAgent: async () => (await buildAgent(ds, gatewayId, boardId)).agent.id,
      freshMember: newMember,
      freshInvite: async () =>
        (
          await ds.getRepository(OrganizationInvite).save({
            organizationId,
            invitedEmail: `invitee-${randomUUID().slice(0, 8)}@example.test`,
            role: 'member',
            token: randomUUID().replace(/-/g, ''),
          })
        ).id,
      freshGateway: async () => (await buildGateway(ds, organizationId, gatewayFieldsFor(fake))).id,
    };
    doc = buildOpenApiDocument(t.app) as unknown as OpenApi;
    console.log(`openapi fuzz: seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
  });
  afterAll(async () => {
    const counts = [...casesPerRoute.values()];
    const total = counts.reduce((sum, c) => sum + Object.values(c).reduce((a, b) => a + b, 0), 0);
    const lines = [...casesPerRoute].map(([key, c]) => {
      const n = Object.values(c).reduce((a, b) => a + b, 0);
      const classes = Object.entries(c)
        .filter(([, count]) => count > 0)
        .map(([status, count]) => `${status} ${count}`)
        .join(', ');
      return `  ${String(n).padStart(4)}  ${key}  (${classes})`;
    });
    console.log(
      `openapi fuzz (seed ${SEED}): ${total} cases over ${casesPerRoute.size} operations\n` +
        lines.join('\n'),
    );
    await t?.close();
    await fake?.stop();
  });

  /** Sends one case; returns its status class and what was wrong with the answer, or null. */
  async function send(
    op: Operation,
    fuzz: FuzzCase,
  ): Promise<{ status: '2xx' | '3xx' | '4xx' | '5xx' | 'none'; problem: string | null }> {
    let path = op.path;
    for (const [index, name] of op.pathParams.entries()) {
      const fresh = op.method !== 'get' && index === op.pathParams.length - 1;
      const segment =
        fuzz.path?.index === index
          ? fuzz.path.segment
          : encodeURIComponent(await pathFixture(world, name, fresh));
      path = path.replace(`{${name}}`, segment);
    }
    // Declared query parameters named like a fixture get it (the sessions routes locate their
    // gateway by `?board_id=`), unless the case sends that name itself.
    const fixtureQuery = op.queryParams.flatMap((p) => {
      const value = namedFixture(world, p.name);
      const sentByCase = fuzz.query.some(([name]) => name === p.name);
      return typeof value === 'string' && !sentByCase ? [[p.name, encodeURIComponent(value)]] : [];
    });
    const query = [...fixtureQuery, ...fuzz.query]
      .map(([name, value]) => `${name}=${value}`)
      .join('&');
    const url = query ? `${path}?${query}` : path;
    let req: Test = t.http[op.method](url)
      .timeout({ response: ANSWER_TIMEOUT_MS })
      .buffer(true)
      .parse(untilStreamOpens as unknown as Parameters<Test['parse']>[0]);
    if (!fuzz.omit.includes('credentials')) {
      if (fuzz.caller === 'owner') {
        // A route destroying the caller itself gets a caller of its own.
        const owner =
          op.method === 'delete' && op.path.endsWith('/me')
            ? await signIn(t.http, t.dataSource)
            : world.owner;
        req = req.set(owner.headers);
      } else if (fuzz.caller !== 'anonymous') {
        req = req.set('X-Agent-Token', world.tokens[fuzz.caller]);
      }
    }
    for (const [name, value] of Object.entries(fuzz.headers)) req = req.set(name, value);
    const body = fuzz.body;
    const contentType = fuzz.omit.includes('content-type') ? null : 'application/json';
    let text: string | undefined;
    let type: string | null = contentType;
    if (body?.kind === 'raw') {
      text = body.text;
      type = body.contentType;
    } else if (body?.kind === 'fields') {
      text = JSON.stringify(body.replace);
    } else if (op.bodySchema) {
      // A fresh valid body (new names: creates do not collide with the previous case's).
      text = JSON.stringify(validValue(doc, world, op.bodySchema));
    }
    if (fuzz.headers['Content-Type'] !== undefined) type = fuzz.headers['Content-Type'];
    if (text !== undefined) {
      // The bytes go out as they are, with only the Content-Type this case chose (or none):
      // superagent would otherwise serialize a Buffer as JSON ({"type":"Buffer",…}).
      if (type !== null) req = req.set('Content-Type', type);
      req = req.serialize((bytes: unknown) => bytes as string).send(Buffer.from(text, 'utf8'));
    }
    let res: Response;
    try {
      res = await req;
    } catch (error) {
      const problem = `no answer (${(error as Error).message}) to ${describeCase(fuzz, url)}`;
      return { status: 'none', problem };
    } finally {
      // Some routes switch the owner's active organization (POST /organizations, PATCH
      // /organizations/me/active): every case starts from the same one.
      await t.dataSource
        .getRepository(User)
        .update({ id: world.owner.userId }, { activeOrganizationId: world.organizationId });
    }
    const problem = unhandledAnswer(res);
    const status = `${Math.min(Math.floor(res.status / 100), 5)}xx` as
      '2xx' | '3xx' | '4xx' | '5xx';
    return { status, problem: problem ? `${problem} to ${describeCase(fuzz, url)}` : null };
  }

  it('the answer check refuses a 5xx, a 4xx without the envelope and a malformed 422 list', () => {
    const answer = (status: number, body: unknown) => ({ status, body }) as unknown as Response;
    const envelope = { detail: 'Not Found', request_id: 'r' };
    expect(unhandledAnswer(answer(200, {}))).toBeNull();
    expect(unhandledAnswer(answer(404, envelope))).toBeNull();
    expect(unhandledAnswer(answer(500, envelope))).toMatch(/answered 500/);
    expect(unhandledAnswer(answer(502, envelope))).toMatch(/answered 502/);
    expect(unhandledAnswer(answer(400, 'Bad Request'))).toMatch(/without the error envelope/);
    expect(unhandledAnswer(answer(404, { detail: 'x' }))).toMatch(/without the error envelope/);
    expect(unhandledAnswer(answer(404, { ...envelope, extra: 1 }))).toMatch(/without/);
    const issue = { type: 'missing', loc: ['body', 'name'], msg: 'Field required' };
    expect(unhandledAnswer(answer(422, { detail: [issue], request_id: 'r' }))).toBeNull();
    expect(unhandledAnswer(answer(422, { detail: [{ msg: 'x' }], request_id: 'r' }))).toMatch(
      /malformed detail item/,
    );
  });

  it('covers every operation of the document with a fixture for each path parameter', () => {
    const operations = operationsOf(doc);
    expect(operations.length).toBeGreaterThan(60);
    const unknown = operations.flatMap((op) =>
      op.pathParams
        .filter((name) => !PATH_FIXTURE_NAMES.includes(name))
        .map((name) => `${op.key}: {${name}}`),
    );
    expect(unknown).toEqual([]);
  });

  // The list of operations is only known once the app is built: one test walks them all and
  // reports every failing case of every route at once.
  it('every case of every operation answers < 500, with the envelope on 4xx', async () => {
    const problems: string[] = [];
    for (const op of operationsOf(doc)) {
      const value = op.bodySchema === null ? null : validValue(doc, world, op.bodySchema);
      const base =
        typeof value === 'object' && value !== null && !Array.isArray(value)
          ? (value as Record<string, unknown>)
          : null;
      const cases = fc.sample(fuzzCase(op, base), {
        seed: routeSeed(op.key),
        numRuns: CASES_PER_ROUTE,
      });
      const counts = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, none: 0 };
      for (const fuzz of cases) {
        const { status, problem } = await send(op, fuzz);
        counts[status] += 1;
        if (problem) problems.push(`${op.key}: ${problem}`);
      }
      casesPerRoute.set(op.key, counts);
    }
    expect(problems).toEqual([]);
  }, 180_000);
});
