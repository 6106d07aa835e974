#!/usr/bin/env node
// Heartbeat ingestion: POST /api/v1/agent/heartbeat from many agents (real tokens, 100 boards)
// against the floor, a bare `pg` pool of the app's size doing the same database work per
// heartbeat (BEGIN; token lookup; status/last-seen UPDATE; activity INSERT; COMMIT), at the same
// concurrency, in the same run on the same PostgreSQL. The API runs in a child process (its own
// event loop) driven over keep-alive HTTP. Prints a table and writes bench/results/heartbeats.json.
// Usage: npm run bench:heartbeats [-- --quick] [-- --agents 10000 --seconds 20 --warmup 3]
//        node bench/heartbeats.mjs --profile [--seconds 10]   (API at c=32 under --cpu-prof)
import { fork } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { formatTop, topSelfTime } from './cpuprofile-top.mjs';
import {
  ROOT,
  arg,
  isQuick,
  pct,
  postmasterPid,
  processTreeCpuMs,
  startBenchDatabase,
  writeResult,
} from './support.mjs';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { Pool } = require('pg');
const { agentTokenDigest, generateAgentToken } = require('../dist/auth/agent-token.js');

const QUICK = isQuick();
const PROFILE = process.argv.includes('--profile');
const AGENTS = arg('agents', QUICK ? 500 : 10_000);
const BOARDS = arg('boards', QUICK ? 10 : 100);
const SECONDS = arg('seconds', QUICK ? 3 : 20);
const WARMUP = arg('warmup', QUICK ? 1 : 3);
const POOL_SIZE = 10; // the app's DATABASE_POOL_SIZE default, which createBenchApp keeps
const CONCURRENCIES = PROFILE ? [32] : [32, 64];

const startedAt = new Date().toISOString();
const db = await startBenchDatabase();
const profileDir = PROFILE ? mkdtempSync(join(tmpdir(), 'mc-hb-prof-')) : null;
const child = fork(join(ROOT, 'bench/server-child.mjs'), [db.url], {
  execArgv: [
    ...(process.env.HB_FLAGS ? process.env.HB_FLAGS.split(' ') : []),
    ...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
  ],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const fromChild = (type) =>
  new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (message?.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message);
    };
    const onExit = (code) => reject(new Error(`server child exited (${code})`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
const childStats = async () => {
  const reply = fromChild('stats');
  child.send({ type: 'stats' });
  const { statements, transactions } = await reply;
  return { statements, transactions };
};

const pool = new Pool({ connectionString: db.url, max: POOL_SIZE });
// The database stops at the end while idle clients may still be connected.
pool.on('error', () => undefined);
const results = [];
try {
  const { url: base } = await fromChild('ready');
  const target = new URL(`${base}/api/v1/agent/heartbeat`);

  // One organization and gateway, BOARDS boards, AGENTS agents spread over them.
  const {
    rows: [{ id: orgId }],
  } = await pool.query(`INSERT INTO organizations (name) VALUES ('bench') RETURNING id`);
  const {
    rows: [{ id: gatewayId }],
  } = await pool.query(
    `INSERT INTO gateways (organization_id, name, url, workspace_root)
     VALUES ($1, 'gw', 'ws://127.0.0.1:1', '~/.openclaw') RETURNING id`,
    [orgId],
  );
  const perBoard = Math.ceil(AGENTS / BOARDS);
  const { rows: boards } = await pool.query(
    `INSERT INTO boards (organization_id, gateway_id, name, slug, max_agents)
     SELECT $1, $2, 'board ' || n, 'board-' || n, $4 FROM generate_series(1, $3) AS n RETURNING id`,
    [orgId, gatewayId, BOARDS, perBoard + 1],
  );
  const tokens = Array.from({ length: AGENTS }, () => generateAgentToken());
  for (let start = 0; start < AGENTS; start += 1000) {
    const batch = tokens.slice(start, start + 1000);
    await pool.query(
      `INSERT INTO agents (organization_id, gateway_id, board_id, name, status, agent_token_hash)
       SELECT $1, $2, ($3::uuid[])[1 + ((n - 1 + $5) % array_length($3::uuid[], 1))],
              'agent-' || (n + $5), CASE WHEN n % 10 = 0 THEN 'provisioning' ELSE 'online' END, h
         FROM unnest($4::text[]) WITH ORDINALITY AS t(h, n)`,
      [orgId, gatewayId, boards.map((b) => b.id), batch.map(agentTokenDigest), start],
    );
  }
  const digests = tokens.map(agentTokenDigest);

  // Heartbeats every few minutes: each agent was last seen long ago when a phase starts.
  // Every phase starts from the same database state: the previous phase's dead row versions
  // vacuumed and its dirty pages written, so no phase pays for autovacuum or a checkpoint the
  // one before it caused (the floor runs first and writes five times the statements).
  const ageAgents = async () => {
    await pool.query(`UPDATE agents SET last_seen_at = now() - interval '10 minutes'`);
    await pool.query('VACUUM ANALYZE agents, activity_events');
    await pool.query('CHECKPOINT');
  };
  const bodyOf = (i) => (i % 2 === 0 ? '{}' : '{"status":"online"}');

  const httpAgents = new Map();
  const postHeartbeat = (token, body, c) =>
    new Promise((resolve, reject) => {
      if (!httpAgents.has(c)) httpAgents.set(c, new http.Agent({ keepAlive: true, maxSockets: c }));
      const req = http.request(
        target,
        {
          method: 'POST',
          agent: httpAgents.get(c),
          headers: {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
            'X-Agent-Token': token,
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () =>
            res.statusCode === 200
              ? resolve()
              : reject(new Error(`heartbeat: ${res.statusCode} ${text}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const floorHeartbeat = async (digest, status) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const {
        rows: [agent],
      } = await client.query('SELECT id, status FROM agents WHERE agent_token_hash = $1', [digest]);
      const {
        rows: [row],
      } = await client.query(
        `UPDATE agents SET status = CASE WHEN status IN ('updating', 'deleting') THEN status
                                         WHEN $2::text IS NULL AND status = 'provisioning' THEN 'online'
                                         ELSE coalesce($2, status) END,
                           last_seen_at = now(), updated_at = now()
          WHERE id = $1 RETURNING *`,
        [agent.id, status],
      );
      await client.query(
        `INSERT INTO activity_events (organization_id, event_type, message, agent_id, board_id)
         VALUES ($1, 'agent.heartbeat', $2, $3, $4)`,
        [row.organization_id, `Heartbeat received from ${row.name}.`, row.id, row.board_id],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  };

  let cursor = 0; // walks all agents in turn, across phases
  const run = async (kind, c, seconds) => {
    const latencies = [];
    const deadline = performance.now() + seconds * 1000;
    let requests = 0;
    let failed = null;
    const worker = async () => {
      while (performance.now() < deadline && !failed) {
        const i = cursor++ % AGENTS;
        const t0 = performance.now();
        try {
          if (kind === 'api') await postHeartbeat(tokens[i], bodyOf(i), c);
          else await floorHeartbeat(digests[i], i % 2 === 0 ? null : 'online');
        } catch (error) {
          failed ??= error; // every worker stops; the phase fails once all have
          return;
        }
        latencies.push(performance.now() - t0);
        requests += 1;
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: c }, worker));
    if (failed) throw new Error(`${kind} phase at c=${c} failed: ${failed.message}`);
    const wall = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      requests,
      rps: requests / wall,
      p50: pct(latencies, 50),
      p95: pct(latencies, 95),
      p99: pct(latencies, 99),
    };
  };
  // CPU per heartbeat of each party on this shared machine: the load generator (this process:
  // HTTP client for the API, pg client for the floor), the API server, PostgreSQL.
  const pgPid = await postmasterPid(pool);
  const cpuNow = () => ({
    loadGenerator: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    server: processTreeCpuMs(child.pid),
    postgres: processTreeCpuMs(pgPid),
  });
  const measured = async (kind, c, seconds) => {
    await ageAgents();
    const s0 = kind === 'api' ? await childStats() : null;
    const cpu0 = cpuNow();
    const figures = await run(kind, c, seconds);
    const cpu1 = cpuNow();
    const s1 = kind === 'api' ? await childStats() : null;
    const cpuMsPerHeartbeat = Object.fromEntries(
      Object.keys(cpu0).map((party) => [party, (cpu1[party] - cpu0[party]) / figures.requests]),
    );
    cpuMsPerHeartbeat.total = Object.values(cpuMsPerHeartbeat).reduce((a, b) => a + b, 0);
    // The floor sends BEGIN, SELECT, UPDATE, INSERT, COMMIT: five statements, one transaction.
    const statements = s1 ? (s1.statements - s0.statements) / figures.requests : 5;
    const transactions = s1 ? (s1.transactions - s0.transactions) / figures.requests : 1;
    return {
      phase: kind,
      c,
      ...figures,
      statementsPerHeartbeat: statements,
      transactionsPerHeartbeat: transactions,
      cpuMsPerHeartbeat,
    };
  };

  await run('api', 8, WARMUP);
  await run('floor', 8, WARMUP);

  for (const c of CONCURRENCIES) {
    if (!PROFILE) results.push(await measured('floor', c, SECONDS));
    results.push(await measured('api', c, SECONDS));
  }
  for (const agent of httpAgents.values()) agent.destroy();
} finally {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.connected) child.send({ type: 'stop' });
  await exited;
  await pool.end();
  await db.stop();
}

const floorOf = (c) => results.find((r) => r.phase === 'floor' && r.c === c);
console.log(`agents ${AGENTS} over ${BOARDS} boards, ${SECONDS} s per phase, pg pool ${POOL_SIZE}`);
console.log(
  'phase  c    req/s   p50 ms  p95 ms  p99 ms  API/floor  statements/hb  transactions/hb' +
    '   CPU ms/hb: load gen  server  postgres  total',
);
for (const r of results) {
  const ratio = r.phase === 'api' && floorOf(r.c) ? r.rps / floorOf(r.c).rps : null;
  r.ratio = ratio;
  const cpu = r.cpuMsPerHeartbeat;
  console.log(
    `${r.phase.padEnd(6)} ${String(r.c).padStart(2)} ${r.rps.toFixed(0).padStart(8)} ${r.p50
      .toFixed(2)
      .padStart(8)} ${r.p95.toFixed(2).padStart(7)} ${r.p99.toFixed(2).padStart(7)} ${(ratio ===
    null
      ? '-'
      : ratio.toFixed(2)
    ).padStart(10)} ${r.statementsPerHeartbeat.toFixed(2).padStart(14)} ${r.transactionsPerHeartbeat
      .toFixed(2)
      .padStart(16)} ${cpu.loadGenerator.toFixed(3).padStart(20)} ${cpu.server
      .toFixed(3)
      .padStart(7)} ${cpu.postgres.toFixed(3).padStart(9)} ${cpu.total.toFixed(3).padStart(6)}`,
  );
}

if (PROFILE) {
  const file = readdirSync(profileDir).find((name) => name.endsWith('.cpuprofile'));
  console.log(`\nserver CPU profile (${join(profileDir, file)}), top 15 by self time:`);
  console.log(formatTop(topSelfTime(JSON.parse(readFileSync(join(profileDir, file), 'utf8')), 15)));
} else {
  const api32 = results.find((r) => r.phase === 'api' && r.c === 32);
  const data = {
    startedAt,
    params: {
      agents: AGENTS,
      boards: BOARDS,
      seconds: SECONDS,
      warmup: WARMUP,
      poolSize: POOL_SIZE,
    },
    results,
    targets: [
      {
        what: 'API/floor throughput at c=32',
        target: '>= 1.0',
        value: api32.ratio,
        met: api32.ratio >= 1,
      },
      { what: 'API p99 at c=32 (ms)', target: '< 50', value: api32.p99, met: api32.p99 < 50 },
    ],
  };
  writeResult('heartbeats', data);
  for (const t of data.targets) {
    console.log(
      `target ${t.what} ${t.target}: ${typeof t.value === 'number' ? t.value.toFixed(2) : t.value} ${t.met ? 'met' : 'NOT met'}`,
    );
  }
}
