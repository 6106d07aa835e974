#!/usr/bin/env node
// The agent list: GET /api/v1/agents (default page) over HTTP with many agents over many boards,
// for an organization admin with access to every board and for one whose board access is a
// single board (the route is ORG-ADMIN, contract A1: a plain member is refused with 403, so the
// one-board caller is an admin-role member without the all-boards flags and one board grant),
// and the SQL statements one request sends (every pg client of this process counted, so it
// includes authentication and membership resolution). Users sign in with HS256 JWTs
// (AUTH_MODE=jwt), as the e2e tests do. Prints figures and writes bench/results/agent-listing.json.
// Usage: npm run bench:agent-listing [-- --agents 10000 --boards 100 --requests 500 --concurrency 1 --quick]
import { createRequire } from 'node:module';
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  check,
  createBenchApp,
  latencyStats,
  printTable,
  size,
  startBenchDatabase,
  writeResult,
} from './support.mjs';

const require = createRequire(import.meta.url);
const { Client } = require('pg');
const { SignJWT } = require('jose');

const AGENTS = size('agents', 10_000, 10_000);
const BOARDS = size('boards', 100, 100);
const REQUESTS = size('requests', 500, 100);
const CONCURRENCY = size('concurrency', 1, 1);
const WARMUP = 20;
const JWT_SECRET = randomBytes(32).toString('hex');

const token = (sub) =>
  new SignJWT({ email: `${sub}@bench.test`, email_verified: true, name: sub })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(JWT_SECRET));

const EXPLAIN = process.argv.includes('--explain');
const statementValues = new Map();

/** The SQL statements `run` sends through any pg client of this process. */
async function countStatements(run) {
  const original = Client.prototype.query;
  const texts = [];
  Client.prototype.query = function (...args) {
    const [first, values] = args;
    const text = typeof first === 'string' ? first : (first?.text ?? String(first));
    texts.push(text);
    statementValues.set(text, Array.isArray(values) ? values : (first?.values ?? []));
    return original.apply(this, args);
  };
  try {
    await run();
  } finally {
    Client.prototype.query = original;
  }
  return texts;
}

const db = await startBenchDatabase();
let app;
try {
  app = await createBenchApp(db.url, { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: JWT_SECRET });
  await app.listen(0, '127.0.0.1');
  const base = await app.getUrl();
  const ds = app.get(require('typeorm').DataSource);

  const get = async (headers, path) => {
    const res = await fetch(`${base}/api/v1${path}`, { headers });
    const body = await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${Buffer.from(body)}`);
    return body;
  };
  /** A user signed in through the API, then made a member of the organization, active there. */
  const signInMember = async (label, organizationId, role, allBoards) => {
    const headers = { Authorization: `Bearer ${await token(`${label}-${randomUUID()}`)}` };
    const res = await fetch(`${base}/api/v1/auth/bootstrap`, { method: 'POST', headers });
    if (res.status !== 200) throw new Error(`bootstrap: ${res.status} ${await res.text()}`);
    const { id: userId } = await res.json();
    const [{ id: memberId }] = await ds.query(
      `INSERT INTO organization_members (organization_id, user_id, role, all_boards_read, all_boards_write)
       VALUES ($1, $2, $3, $4, $4) RETURNING id`,
      [organizationId, userId, role, allBoards],
    );
    await ds.query(`UPDATE users SET active_organization_id = $1 WHERE id = $2`, [
      organizationId,
      userId,
    ]);
    return { headers, memberId };
  };

  const [{ id: organizationId }] = await ds.query(
    `INSERT INTO organizations (name) VALUES ('bench') RETURNING id`,
  );
  const [{ id: gatewayId }] = await ds.query(
    `INSERT INTO gateways (organization_id, name, url, workspace_root)
     VALUES ($1, 'gw', 'ws://127.0.0.1:1', '~/.openclaw') RETURNING id`,
    [organizationId],
  );
  const boardIds = (
    await ds.query(
      `INSERT INTO boards (organization_id, gateway_id, name, slug, max_agents)
       SELECT $1, $2, 'board ' || n, 'board-' || n, $4 FROM generate_series(1, $3) AS n
       RETURNING id`,
      [organizationId, gatewayId, BOARDS, Math.ceil(AGENTS / BOARDS) + 1],
    )
  ).map((row) => row.id);
  // Agents spread evenly over the boards, created over the last days (the list is newest first).
  await ds.query(
    `INSERT INTO agents (organization_id, gateway_id, board_id, name, status, last_seen_at, created_at)
     SELECT $1, $2, ($3::uuid[])[1 + n % cardinality($3::uuid[])], 'agent-' || n, 'online',
            now() - (n || ' seconds')::interval, now() - (n || ' minutes')::interval
       FROM generate_series(1, $4) AS n`,
    [organizationId, gatewayId, boardIds, AGENTS],
  );
  const admin = await signInMember('admin', organizationId, 'admin', true);
  const member = await signInMember('one-board', organizationId, 'admin', false);
  await ds.query(
    `INSERT INTO organization_board_access (organization_member_id, board_id, can_read, can_write)
     VALUES ($1, $2, true, false)`,
    [member.memberId, boardIds[0]],
  );
  await ds.query('ANALYZE');

  const callers = [
    { label: 'org admin, all boards', key: 'admin', headers: admin.headers },
    { label: 'admin with one board', key: 'oneBoard', headers: member.headers },
  ];
  const rows = [];
  const results = {};
  const rawStatements = new Map();
  const rounds_ = (caller) => rawStatements.get(caller.key);
  for (const caller of callers) {
    const first = JSON.parse(Buffer.from(await get(caller.headers, '/agents')).toString());
    // Statements per request: the minimum of a few counted requests (a background tick only adds).
    const rounds = [];
    for (let round = 0; round < 5; round += 1) {
      rounds.push(await countStatements(() => get(caller.headers, '/agents')));
    }
    const statements = rounds.reduce((a, b) => (b.length < a.length ? b : a));
    rawStatements.set(caller.key, statements);

    for (let i = 0; i < WARMUP; i += 1) await get(caller.headers, '/agents');
    const latencies = [];
    let bytes = 0;
    let next = 0;
    const worker = async () => {
      while (next++ < REQUESTS) {
        const t0 = performance.now();
        bytes = (await get(caller.headers, '/agents')).byteLength;
        latencies.push(performance.now() - t0);
      }
    };
    const wall0 = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const wall = performance.now() - wall0;
    const latency = latencyStats(latencies);
    results[caller.key] = {
      ...latency,
      requestsPerSecond: Math.round(REQUESTS / (wall / 1000)),
      total: first.total,
      items: first.items.length,
      responseBytes: bytes,
      statementsPerRequest: statements.length,
      statements: statements.map((sql) => sql.replace(/\s+/g, ' ').trim()),
    };
    rows.push({
      caller: caller.label,
      total: first.total,
      items: first.items.length,
      ...latency,
      'req/s': results[caller.key].requestsPerSecond,
      KiB: Math.round(bytes / 1024),
      statements: statements.length,
    });
  }

  console.log(
    `${AGENTS} agents over ${BOARDS} boards; GET /api/v1/agents (default page), ` +
      `${REQUESTS} requests per caller at concurrency ${CONCURRENCY} after ${WARMUP} warm-up`,
  );
  printTable(rows);
  for (const caller of callers) {
    console.log(`\nSQL statements of one request, ${caller.label}:`);
    for (const sql of results[caller.key].statements) console.log(`  ${sql.slice(0, 220)}`);
  }
  if (EXPLAIN) {
    // The plans of the list's own statements (the last two: count and page), with timings.
    for (const caller of callers) {
      for (const sql of rounds_(caller).slice(-2)) {
        const plan = await ds.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, statementValues.get(sql));
        console.log(`\nEXPLAIN ANALYZE, ${caller.label}: ${sql.slice(0, 80)}…`);
        for (const row of plan) console.log(`  ${row['QUERY PLAN']}`);
      }
    }
  }
  writeResult('agent-listing', {
    params: { agents: AGENTS, boards: BOARDS, requests: REQUESTS, concurrency: CONCURRENCY },
    results,
    targets: callers.map((caller) =>
      check(`p95 ms, ${caller.label} (c=${CONCURRENCY})`, results[caller.key].p95, { below: 25 }),
    ),
  });
} finally {
  await app?.close();
  await db.stop();
}
