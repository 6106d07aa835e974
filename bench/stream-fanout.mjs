#!/usr/bin/env node
// The live agent stream under fan-out: the API server in a child process (its own event loop,
// its own RSS), 1, 100 and 500 SSE clients on GET /api/v1/agents/stream (org owner) spread over
// client child processes, while this process makes 50 agent changes per second directly in
// PostgreSQL (UPDATE agents, so the triggers write the change log). Each change stamps its
// sequence number into `heartbeat_config`, which the stream carries; this process records when
// each UPDATE's commit was acknowledged and the clients when they received it.
// Per client count: delivery latency p50/p95/p99 (commit acknowledged -> client receipt),
// events delivered / expected, SQL statements the server sent per change (every pg client of the
// server process counted: the listener, the hub's batch reads, keep-alive pings, background
// ticks) and the server's RSS (max of /proc/<pid>/status VmRSS sampled every 100 ms).
// Usage: npm run bench:stream-fanout [-- --quick] [-- --clients 1,100,500 --rate 50 --seconds 30]
//        add --profile to write a CPU profile of the server (--cpu-prof) into bench/results/.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ROOT, arg, isQuick, pct, printTable, writeResult } from './support.mjs';

const require = createRequire(import.meta.url);
const SELF = fileURLToPath(import.meta.url);
/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const role = process.argv.includes('--role')
  ? process.argv[process.argv.indexOf('--role') + 1]
  : 'main';

if (role === 'server') await runServer();
else if (role === 'clients') runClients();
else await runMain();

/** The application, counting every SQL statement its pg clients send. */
async function runServer() {
  const { Client } = require('pg');
  let statements = 0;
  const original = Client.prototype.query;
  Client.prototype.query = function countedQuery(...args) {
    statements++;
    return original.apply(this, args);
  };
  const { createBenchApp } = await import('./support.mjs');
  const app = await createBenchApp(process.env.BENCH_DATABASE_URL);
  await app.listen(0, '127.0.0.1');
  const { APP_CONFIG } = require('../dist/config/app-config.js');
  const { AgentStreamHub } = require('../dist/agents/stream/agent-stream.hub.js');
  const hub = app.get(AgentStreamHub);
  process.on('message', (message) => {
    if (message.type === 'stats') {
      process.send({ type: 'stats', statements, clients: hub.clientCount, closed: hub.closed });
    } else if (message.type === 'stop') {
      void app.close().finally(() => process.exit(0));
    }
  });
  process.send({
    type: 'ready',
    url: await app.getUrl(),
    token: app.get(APP_CONFIG).auth.localToken,
  });
}

/** `count` SSE clients; each records (sequence, receipt time) of every `agent` event. */
function runClients() {
  const { url, token, count } = JSON.parse(process.env.BENCH_CLIENTS);
  const received = Array.from({ length: count }, () => []);
  let connected = 0;
  let failures = 0;
  for (let i = 0; i < count; i++) {
    const request = http.get(
      `${url}/api/v1/agents/stream`,
      { agent: false, headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          failures++;
          res.resume();
          return;
        }
        connected++;
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk) => {
          const at = now();
          buffer += chunk;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (!block.includes('event: agent\n')) continue;
            const data = block.slice(block.indexOf('data: ') + 6);
            const seq = JSON.parse(data).agent.heartbeat_config?.bench_seq;
            if (typeof seq === 'number') received[i].push(seq, at);
          }
        });
      },
    );
    request.on('error', () => failures++);
  }
  process.on('message', (message) => {
    if (message.type === 'status') {
      process.send({ type: 'status', connected, failures });
    } else if (message.type === 'collect') {
      // Latencies against the commit times the writer recorded; distinct (client, seq) pairs.
      const commits = message.commits;
      const latencies = [];
      let delivered = 0;
      let duplicates = 0;
      for (const events of received) {
        const seen = new Set();
        for (let k = 0; k < events.length; k += 2) {
          const seq = events[k];
          const committed = commits[seq];
          if (committed === undefined) continue;
          if (seen.has(seq)) {
            duplicates++;
            continue;
          }
          seen.add(seq);
          delivered++;
          latencies.push(events[k + 1] - committed);
        }
        events.length = 0;
      }
      process.send({ type: 'collected', latencies, delivered, duplicates });
    }
  });
  process.send({ type: 'started' });
}

function nextMessage(child, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message);
    };
    const onExit = (code) => reject(new Error(`child exited (${code}) before '${type}'`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function ask(child, type, reply, payload = {}) {
  const answer = nextMessage(child, reply);
  child.send({ type, ...payload });
  return answer;
}

function vmRss(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

async function runMain() {
  const quick = isQuick();
  const clientCounts = process.argv.includes('--clients')
    ? process.argv[process.argv.indexOf('--clients') + 1].split(',').map(Number)
    : quick
      ? [1, 10, 50]
      : [1, 100, 500];
  const RATE = arg('rate', 50);
  const SECONDS = arg('seconds', quick ? 3 : 30);
  const AGENTS = arg('agents', 500);
  const CLIENTS_PER_PROCESS = 250;
  const profile = process.argv.includes('--profile');
  const startedAt = new Date().toISOString();

  const { startBenchDatabase } = await import('./support.mjs');
  const { Client } = require('pg');
  const db = await startBenchDatabase();
  const server = fork(SELF, ['--role', 'server'], {
    env: { ...process.env, BENCH_DATABASE_URL: db.url },
    execArgv: profile ? ['--cpu-prof', `--cpu-prof-dir=${join(ROOT, 'bench/results')}`] : [],
  });
  const writer = new Client({ connectionString: db.url });
  const rows = [];
  try {
    const { url, token } = await nextMessage(server, 'ready');
    const call = async (method, path, body) => {
      const res = await fetch(`${url}/api/v1${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (res.status !== 200)
        throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.json();
    };
    await call('POST', '/auth/bootstrap');
    const org = await call('POST', '/organizations', { name: 'bench' });
    await writer.connect();
    const {
      rows: [{ id: gatewayId }],
    } = await writer.query(
      `INSERT INTO gateways (organization_id, name, url, workspace_root)
       VALUES ($1, 'gw', 'ws://127.0.0.1:1', '~/.openclaw') RETURNING id`,
      [org.id],
    );
    const {
      rows: [{ id: boardId }],
    } = await writer.query(
      `INSERT INTO boards (organization_id, gateway_id, name, slug, max_agents)
       VALUES ($1, $2, 'bench', 'bench', $3) RETURNING id`,
      [org.id, gatewayId, AGENTS + 1],
    );
    const { rows: agents } = await writer.query(
      `INSERT INTO agents (organization_id, gateway_id, board_id, name, status, last_seen_at)
       SELECT $1, $2, $3, 'agent-' || n, 'online', now() FROM generate_series(1, $4) AS n
       RETURNING id`,
      [org.id, gatewayId, boardId, AGENTS],
    );
    await writer.query('ANALYZE');
    let seq = 0;

    for (const clientCount of clientCounts) {
      const children = [];
      for (let left = clientCount; left > 0; left -= CLIENTS_PER_PROCESS) {
        const count = Math.min(left, CLIENTS_PER_PROCESS);
        const child = fork(SELF, ['--role', 'clients'], {
          env: { ...process.env, BENCH_CLIENTS: JSON.stringify({ url, token, count }) },
        });
        await nextMessage(child, 'started');
        children.push(child);
      }
      // Every client registered with the hub (its start ran), so none misses a change.
      const connectDeadline = Date.now() + 60_000;
      for (;;) {
        const { clients } = await ask(server, 'stats', 'stats');
        if (clients >= clientCount) break;
        if (Date.now() > connectDeadline)
          throw new Error(`only ${clients}/${clientCount} connected`);
        await sleep(100);
      }

      let rssMax = vmRss(server.pid);
      const sampler = setInterval(() => {
        rssMax = Math.max(rssMax, vmRss(server.pid));
      }, 100);
      const before = await ask(server, 'stats', 'stats');

      // 50 changes per second, paced on a fixed schedule; round-robin over the agents, so no
      // agent changes twice within a batch (the stream would coalesce those into one event).
      const commits = {};
      const changes = RATE * SECONDS;
      const firstSeq = seq;
      const t0 = performance.now();
      for (let i = 0; i < changes; i++) {
        const due = t0 + (i * 1000) / RATE;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const n = seq++;
        await writer.query(
          `UPDATE agents SET heartbeat_config = jsonb_build_object('bench_seq', $1::int) WHERE id = $2`,
          [n, agents[n % agents.length].id],
        );
        commits[n] = now();
      }
      const writeSeconds = (performance.now() - t0) / 1000;

      // Wait (bounded) until every client got every change.
      const expected = changes * clientCount;
      let collected;
      const deliveryDeadline = Date.now() + 10_000;
      for (;;) {
        await sleep(250);
        // Collecting drains the clients' buffers: gather and accumulate.
        const parts = await Promise.all(
          children.map((child) => ask(child, 'collect', 'collected', { commits })),
        );
        collected ??= { latencies: [], delivered: 0, duplicates: 0 };
        for (const part of parts) {
          for (const latency of part.latencies) collected.latencies.push(latency);
          collected.delivered += part.delivered;
          collected.duplicates += part.duplicates;
        }
        if (collected.delivered >= expected || Date.now() > deliveryDeadline) break;
      }
      const after = await ask(server, 'stats', 'stats');
      clearInterval(sampler);
      rssMax = Math.max(rssMax, vmRss(server.pid));

      for (const child of children) child.kill();
      const closeDeadline = Date.now() + 15_000;
      while ((await ask(server, 'stats', 'stats')).clients > 0 && Date.now() < closeDeadline) {
        await sleep(100);
      }

      const latencies = collected.latencies.sort((a, b) => a - b);
      const row = {
        clients: clientCount,
        changes,
        changesPerSecond: +(changes / writeSeconds).toFixed(1),
        firstSeq,
        p50Ms: +pct(latencies, 50).toFixed(1),
        p95Ms: +pct(latencies, 95).toFixed(1),
        p99Ms: +pct(latencies, 99).toFixed(1),
        maxMs: +latencies.at(-1).toFixed(1),
        delivered: collected.delivered,
        expected,
        duplicates: collected.duplicates,
        statementsPerChange: +((after.statements - before.statements) / changes).toFixed(3),
        serverRssMaxMb: +(rssMax / 2 ** 20).toFixed(1),
        clientsClosedByServer: Object.values(after.closed).reduce((a, b) => a + b, 0),
      };
      rows.push(row);
      process.stderr.write(`${clientCount} clients: ${JSON.stringify(row)}\n`);
    }
  } finally {
    await writer.end().catch(() => undefined);
    if (server.exitCode === null) {
      server.send({ type: 'stop' });
      await Promise.race([new Promise((resolve) => server.once('exit', resolve)), sleep(10_000)]);
      if (server.exitCode === null) server.kill();
    }
    await db.stop();
  }

  console.log(
    `\nagent stream fan-out: ${RATE} changes/s for ${SECONDS} s over ${AGENTS} agents; ` +
      'latency = UPDATE commit acknowledged -> SSE event received',
  );
  printTable(
    rows.map((r) => ({
      clients: r.clients,
      'changes/s': r.changesPerSecond,
      'p50 ms': r.p50Ms,
      'p95 ms': r.p95Ms,
      'p99 ms': r.p99Ms,
      'max ms': r.maxMs,
      'delivered/expected': `${r.delivered}/${r.expected} (${((100 * r.delivered) / r.expected).toFixed(1)}%)`,
      'SQL/change': r.statementsPerChange,
      'server RSS max MB': r.serverRssMaxMb,
    })),
  );
  const largest = rows.at(-1);
  const perChange = rows.map((r) => r.statementsPerChange);
  const spread = Math.max(...perChange) - Math.min(...perChange);
  const targets = [
    {
      what: `delivery latency p95 at ${largest.clients} clients (ms)`,
      target: '< 250',
      value: largest.p95Ms,
      met: largest.p95Ms < 250,
    },
    {
      what: 'server RSS max (MB)',
      target: '< 300',
      value: Math.max(...rows.map((r) => r.serverRssMaxMb)),
      met: Math.max(...rows.map((r) => r.serverRssMaxMb)) < 300,
    },
    {
      what: `SQL statements per change at ${rows.map((r) => r.clients).join('/')} clients`,
      target: 'independent of the client count (spread < 0.5)',
      value: perChange,
      met: spread < 0.5,
    },
    {
      what: 'events delivered / expected',
      target: '100%',
      value: rows.map((r) => `${r.delivered}/${r.expected}`),
      met: rows.every((r) => r.delivered === r.expected && r.duplicates === 0),
    },
  ];
  console.log('');
  printTable(targets.map((t) => ({ ...t, value: JSON.stringify(t.value) })));
  const file = writeResult('stream-fanout', {
    startedAt,
    params: { clientCounts, rate: RATE, seconds: SECONDS, agents: AGENTS },
    results: rows,
    targets,
  });
  console.log(`\nwritten: ${file}`);
}
