#!/usr/bin/env node
// Agent authentication cost: our digest lookup (one unique-index query) over HTTP, with many
// agents in the table, against upstream's scheme (PBKDF2-SHA256, 200k iterations, random salt
// per agent, every hash tried in turn). Prints figures; asserts nothing.
// Usage: npm run bench:agent-auth [-- --agents 10000 --requests 2000 --concurrency 8 --quick]
import { createRequire } from 'node:module';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  createBenchApp,
  latencyStats,
  printTable,
  size,
  startBenchDatabase,
  writeResult,
} from './support.mjs';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { agentTokenDigest, generateAgentToken } = require('../dist/auth/agent-token.js');

const AGENTS = size('agents', 10_000, 1_000);
const REQUESTS = size('requests', 2_000, 300);
const CONCURRENCY = size('concurrency', 8, 8);

const db = await startBenchDatabase();
let app;
try {
  app = await createBenchApp(db.url);
  await app.listen(0, '127.0.0.1');
  const base = await app.getUrl();
  const ds = app.get(require('typeorm').DataSource);

  const [{ id: orgId }] = await ds.query(
    `INSERT INTO organizations (name) VALUES ('bench') RETURNING id`,
  );
  const [{ id: gatewayId }] = await ds.query(
    `INSERT INTO gateways (organization_id, name, url, workspace_root) VALUES ($1, 'gw', 'ws://127.0.0.1:1', '~/.openclaw') RETURNING id`,
    [orgId],
  );
  // Board agents: a gateway has one main agent (unique index).
  const [{ id: boardId }] = await ds.query(
    `INSERT INTO boards (organization_id, gateway_id, name, slug) VALUES ($1, $2, 'bench', 'bench') RETURNING id`,
    [orgId, gatewayId],
  );
  const tokens = [];
  for (let start = 0; start < AGENTS; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, AGENTS - start) }, () =>
      generateAgentToken(),
    );
    tokens.push(...batch);
    await ds.query(
      `INSERT INTO agents (organization_id, gateway_id, board_id, name, agent_token_hash, last_seen_at)
       SELECT $1, $2, $3, 'agent-' || ($5::int + n), h, now()
         FROM unnest($4::text[]) WITH ORDINALITY AS t(h, n)`,
      // Names are unique on a board (ignoring case): number them across batches.
      [orgId, gatewayId, boardId, batch.map(agentTokenDigest), start],
    );
  }

  const latencies = [];
  let next = 0;
  const worker = async () => {
    while (next < REQUESTS) {
      const token = tokens[next++ % tokens.length];
      const t0 = performance.now();
      const res = await fetch(`${base}/api/v1/agent/boards`, {
        headers: { 'X-Agent-Token': token },
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`unexpected ${res.status}`);
      latencies.push(performance.now() - t0);
    }
  };
  const wall0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const wall = performance.now() - wall0;
  const latency = latencyStats(latencies);
  const requestsPerSecond = REQUESTS / (wall / 1000);

  const salt = randomBytes(16);
  const h0 = performance.now();
  for (let i = 0; i < 5; i++) pbkdf2Sync('x'.repeat(43), salt, 200_000, 32, 'sha256');
  const pbkdf2Ms = (performance.now() - h0) / 5;
  const upstreamAverageScanMs = (pbkdf2Ms * AGENTS) / 2;

  console.log(`agents in table: ${AGENTS}, requests: ${REQUESTS}, concurrency: ${CONCURRENCY}`);
  printTable([
    {
      what: 'GET /api/v1/agent/boards (X-Agent-Token)',
      ...latency,
      'req/s': Math.round(requestsPerSecond),
    },
  ]);
  console.log(`upstream PBKDF2 (200k iterations), one hash: ${pbkdf2Ms.toFixed(1)} ms`);
  console.log(
    `upstream scan for one request with ${AGENTS} agents: ~${(upstreamAverageScanMs / 1000).toFixed(1)} s on average ` +
      `(half the table), ${((pbkdf2Ms * AGENTS) / 1000).toFixed(1)} s for an unknown token`,
  );
  writeResult('agent-auth', {
    params: { agents: AGENTS, requests: REQUESTS, concurrency: CONCURRENCY },
    results: {
      agentBoards: { ...latency, requestsPerSecond: Math.round(requestsPerSecond) },
      upstreamPbkdf2OneHashMs: pbkdf2Ms,
      upstreamAverageScanMs,
    },
    targets: [],
  });
} finally {
  await app?.close();
  await db.stop();
}
