#!/usr/bin/env node
// The board page: GET /api/v1/boards/{id}/snapshot over HTTP for a board with many agents, tasks
// (half with an approval) and chat messages, and the number of SQL statements one request sends
// (every pg client of this process counted, so it includes authentication). Prints figures;
// asserts nothing.
// Usage: npm run bench:board-snapshot [-- --agents 200 --tasks 500 --chat 100 --requests 500 --quick]
import { createRequire } from 'node:module';
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

// Quick mode keeps the board's size (the target is about it) and sends fewer requests.
const AGENTS = size('agents', 200, 200);
const TASKS = size('tasks', 500, 500);
const CHAT = size('chat', 100, 100);
const REQUESTS = size('requests', 500, 100);
const CONCURRENCY = size('concurrency', 1, 1);

const db = await startBenchDatabase();
let app;
try {
  app = await createBenchApp(db.url);
  await app.listen(0, '127.0.0.1');
  const base = await app.getUrl();
  const { APP_CONFIG } = require('../dist/config/app-config.js');
  const headers = { Authorization: `Bearer ${app.get(APP_CONFIG).auth.localToken}` };
  const call = async (method, path, body) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  await call('POST', '/auth/bootstrap');
  const org = await call('POST', '/organizations', { name: 'bench' });
  const ds = app.get(require('typeorm').DataSource);
  const [{ id: gatewayId }] = await ds.query(
    `INSERT INTO gateways (organization_id, name, url, workspace_root)
     VALUES ($1, 'gw', 'ws://127.0.0.1:1', '~/.openclaw') RETURNING id`,
    [org.id],
  );
  const [{ id: boardId }] = await ds.query(
    `INSERT INTO boards (organization_id, gateway_id, name, slug, max_agents)
     VALUES ($1, $2, 'bench', 'bench', $3) RETURNING id`,
    [org.id, gatewayId, AGENTS + 1],
  );
  await ds.query(
    `INSERT INTO agents (organization_id, gateway_id, board_id, name, last_seen_at)
     SELECT $1, $2, $3, 'agent-' || n, now() - (n || ' seconds')::interval
       FROM generate_series(1, $4) AS n`,
    [org.id, gatewayId, boardId, AGENTS],
  );
  await ds.query(
    `INSERT INTO tasks (board_id, title, status, assigned_agent_id)
     SELECT $1, 'task ' || n, (ARRAY['inbox','in_progress','review','done'])[1 + n % 4],
            (SELECT id FROM agents WHERE board_id = $1 ORDER BY name OFFSET (n % $3) LIMIT 1)
       FROM generate_series(1, $2) AS n`,
    [boardId, TASKS, AGENTS],
  );
  await ds.query(
    `INSERT INTO approvals (board_id, task_id, action_type, confidence, status)
     SELECT $1, id, 'mark_done', 80, CASE WHEN random() < 0.5 THEN 'pending' ELSE 'approved' END
       FROM tasks WHERE board_id = $1 AND random() < 0.5`,
    [boardId],
  );
  await ds.query(
    `INSERT INTO board_memory (organization_id, board_id, content, tags, is_chat, source)
     SELECT $1, $2, 'message ' || n, '["chat"]'::jsonb, true, 'bench'
       FROM generate_series(1, $3) AS n`,
    [org.id, boardId, CHAT],
  );
  await ds.query('ANALYZE');

  // Statements per request: the minimum of a few counted requests (a background tick only adds).
  const counts = [];
  for (let round = 0; round < 5; round++) {
    const original = Client.prototype.query;
    let count = 0;
    Client.prototype.query = function (...args) {
      count++;
      return original.apply(this, args);
    };
    try {
      await call('GET', `/boards/${boardId}/snapshot`);
    } finally {
      Client.prototype.query = original;
    }
    counts.push(count);
  }

  for (let i = 0; i < 20; i++) await call('GET', `/boards/${boardId}/snapshot`); // warm-up
  const latencies = [];
  let next = 0;
  let bytes = 0;
  const worker = async () => {
    while (next++ < REQUESTS) {
      const t0 = performance.now();
      const res = await fetch(`${base}/api/v1/boards/${boardId}/snapshot`, { headers });
      bytes = (await res.arrayBuffer()).byteLength;
      if (res.status !== 200) throw new Error(`unexpected ${res.status}`);
      latencies.push(performance.now() - t0);
    }
  };
  const wall0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const wall = performance.now() - wall0;
  const latency = latencyStats(latencies);
  const requestsPerSecond = REQUESTS / (wall / 1000);
  const statements = Math.min(...counts);

  console.log(
    `board: ${AGENTS} agents, ${TASKS} tasks, ${CHAT} chat messages; ` +
      `${REQUESTS} requests at concurrency ${CONCURRENCY}; response ${(bytes / 1024).toFixed(0)} KiB`,
  );
  printTable([
    {
      what: 'GET /boards/{id}/snapshot',
      ...latency,
      'req/s': Math.round(requestsPerSecond),
      statements,
    },
  ]);
  console.log(`SQL statements per request (incl. auth and transaction control): ${statements}`);
  writeResult('board-snapshot', {
    params: {
      agents: AGENTS,
      tasks: TASKS,
      chat: CHAT,
      requests: REQUESTS,
      concurrency: CONCURRENCY,
    },
    results: {
      snapshot: { ...latency, requestsPerSecond: Math.round(requestsPerSecond) },
      responseBytes: bytes,
      statementsPerRequest: statements,
    },
    targets: [check(`snapshot p95 ms (c=${CONCURRENCY})`, latency.p95, { below: 40 })],
  });
} finally {
  await app?.close();
  await db.stop();
}
