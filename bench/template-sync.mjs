#!/usr/bin/env node
// Template sync on a real OpenClaw gateway (scripts/openclaw-gateway.sh): N board agents are
// provisioned first (ProvisioningService, as bench/provision.mjs; each first provision patches the
// gateway config, which reloads it), then POST /api/v1/gateways/{id}/templates/sync over HTTP on
// app instances that differ only in TEMPLATE_SYNC_CONCURRENCY (1, the default 4, and 8), all on
// the same database and gateway, in the same run. Prints wall time per concurrency and the ratio
// against one-at-a-time; asserts only that every agent was updated.
// Usage: npm run bench:template-sync [-- --quick] [-- --agents 50 --rounds 3]
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isQuick, printTable, writeResult } from './results-lite.mjs';
import { arg, createBenchApp, startBenchDatabase, useGateway } from './support.mjs';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { ProvisioningService } = require('../dist/provisioning/provisioning.service.js');

const quick = isQuick();
const AGENTS = arg('agents', quick ? 5 : 50);
const ROUNDS = arg('rounds', 3);
const CONCURRENCIES = [1, 4, 8];
const startedAt = new Date().toISOString();

const gateway = useGateway();
const db = await startBenchDatabase();
const localToken = randomBytes(48).toString('base64url');
const apps = [];
const rows = [];
let provisionSeconds = 0;
try {
  for (const concurrency of CONCURRENCIES) {
    const app = await createBenchApp(db.url, {
      LOCAL_AUTH_TOKEN: localToken,
      TEMPLATE_SYNC_CONCURRENCY: String(concurrency),
    });
    await app.listen(0, '127.0.0.1');
    apps.push({ concurrency, app, base: await app.getUrl() });
  }
  const call = async (base, method, path, body) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${localToken}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  await call(apps[0].base, 'POST', '/auth/bootstrap');
  const org = await call(apps[0].base, 'POST', '/organizations', { name: 'bench' });
  const ds = apps[0].app.get(require('typeorm').DataSource);
  const workspaceRoot = join(
    gateway.runDir ?? mkdtempSync(join(tmpdir(), 'mc-ws-')),
    'bench-sync-workspaces',
  );
  const [{ id: gatewayId }] = await ds.query(
    `INSERT INTO gateways (organization_id, name, url, token, workspace_root)
     VALUES ($1, 'bench', $2, $3, $4) RETURNING id`,
    [org.id, gateway.url, gateway.token, workspaceRoot],
  );
  const [{ id: boardId }] = await ds.query(
    `INSERT INTO boards (organization_id, gateway_id, name, slug, board_type, objective, max_agents)
     VALUES ($1, $2, 'Sync board', 'sync-board', 'goal', 'Measure template sync', $3) RETURNING id`,
    [org.id, gatewayId, AGENTS + 1],
  );
  const agentIds = [];
  for (let i = 0; i < AGENTS; i += 1) {
    const [{ id }] = await ds.query(
      `INSERT INTO agents (organization_id, board_id, gateway_id, name, status)
       VALUES ($1, $2, $3, $4, 'provisioning') RETURNING id`,
      [org.id, boardId, gatewayId, `Sync agent ${i + 1}`],
    );
    agentIds.push(id);
  }

  // Provisioning: one agent at a time (each creates the gateway agent and patches the config).
  const provisioning = apps[0].app.get(ProvisioningService);
  const provisionStarted = performance.now();
  for (const agentId of agentIds) {
    const outcome = await provisioning.provisionAgent(
      { organizationId: org.id, agentId },
      { action: 'provision', wake: false },
    );
    if (outcome.status !== 'provisioned') throw new Error(`provision: ${outcome.error}`);
  }
  provisionSeconds = (performance.now() - provisionStarted) / 1000;
  process.stderr.write(`provisioned ${AGENTS} agents in ${provisionSeconds.toFixed(1)} s\n`);

  const sync = async ({ base }) => {
    const started = performance.now();
    const result = await call(
      base,
      'POST',
      `/gateways/${gatewayId}/templates/sync?include_main=false`,
    );
    const seconds = (performance.now() - started) / 1000;
    if (result.agents_updated !== AGENTS || result.errors.length > 0) {
      throw new Error(`sync: ${JSON.stringify(result)}`);
    }
    return seconds;
  };
  // Warm-up: the first sync of a fresh gateway socket and of each rendered template is not the
  // steady state; one pass at the default concurrency.
  await sync(apps.find((a) => a.concurrency === 4));
  const times = new Map(CONCURRENCIES.map((c) => [c, []]));
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const instance of apps) times.get(instance.concurrency).push(await sync(instance));
  }
  const best = (c) => Math.min(...times.get(c));
  for (const concurrency of CONCURRENCIES) {
    rows.push({
      concurrency,
      agents: AGENTS,
      wallSeconds: +best(concurrency).toFixed(2),
      allSeconds: times.get(concurrency).map((s) => +s.toFixed(2)),
      perAgentMs: +((1000 * best(concurrency)) / AGENTS).toFixed(0),
      speedupVsOne: +(best(1) / best(concurrency)).toFixed(2),
    });
  }

  // Remove what the bench created from the gateway (the rows go with the database).
  const { Agent } = require('../dist/agents/entities/agent.entity.js');
  const { Gateway } = require('../dist/gateways/entities/gateway.entity.js');
  const gatewayRow = await ds.getRepository(Gateway).findOneByOrFail({ id: gatewayId });
  for (const agent of await ds.getRepository(Agent).findBy({ gatewayId })) {
    await provisioning.cleanupAgent(agent, gatewayRow).catch(() => undefined);
  }
} finally {
  for (const { app } of apps) await app.close();
  await db.stop();
  gateway.stop();
}

console.log(
  `\ntemplate sync of ${AGENTS} agents on a real gateway (include_main=false), ` +
    `best of ${ROUNDS} after one warm-up; provisioning them first took ${provisionSeconds.toFixed(1)} s`,
);
printTable(
  rows.map((r) => ({
    TEMPLATE_SYNC_CONCURRENCY: r.concurrency,
    'wall s': r.wallSeconds,
    'ms/agent': r.perAgentMs,
    'one-at-a-time / this': `${r.speedupVsOne}x`,
  })),
);
const four = rows.find((r) => r.concurrency === 4);
const targets = [
  {
    what: 'wall time, concurrency 1 / concurrency 4 (default)',
    target: '> 1 (bounded concurrency is faster)',
    value: four.speedupVsOne,
    met: four.speedupVsOne > 1,
  },
];
console.log('');
printTable(targets);
const file = writeResult('template-sync', {
  startedAt,
  params: { agents: AGENTS, rounds: ROUNDS, concurrencies: CONCURRENCIES, provisionSeconds },
  results: rows,
  targets,
});
console.log(`\nwritten: ${file}`);
