#!/usr/bin/env node
// Template sync on a real OpenClaw gateway (scripts/openclaw-gateway.sh): N board agents are
// provisioned first (ProvisioningService, as bench/provision.mjs; each first provision patches the
// gateway config, which reloads it), then POST /api/v1/gateways/{id}/templates/sync over HTTP on
// app instances that differ only in TEMPLATE_SYNC_CONCURRENCY (1, the default 4, and 8), all on
// the same database and gateway, in the same run. Prints wall time per concurrency and the ratio
// against one-at-a-time; asserts only that every agent was updated.
// Usage: npm run bench:template-sync [-- --quick] [-- --agents 50 --rounds 3]
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  arg,
  callApi,
  createBenchApp,
  gatewayBenchTenant,
  isQuick,
  printTable,
  processTreeCpuMs,
  startBenchDatabase,
  useGateway,
  writeResult,
} from './support.mjs';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { ProvisioningService } = require('../dist/provisioning/provisioning.service.js');
const { GatewayClient } = require('../dist/openclaw/gateway-client.js');

// Gateway calls by method (every call of the app instances leaves through GatewayClient.call).
const calls = new Map();
const originalCall = GatewayClient.prototype.call;
GatewayClient.prototype.call = function countedCall(method, params, options) {
  calls.set(method, (calls.get(method) ?? 0) + 1);
  return originalCall.call(this, method, params, options);
};

/** CPU seconds the gateway process and its children used so far; null when unknown. */
const gatewayCpuSeconds = (pid) => (pid ? processTreeCpuMs(Number(pid)) / 1000 : null);

const quick = isQuick();
const AGENTS = arg('agents', quick ? 2 : 50);
const ROUNDS = arg('rounds', quick ? 1 : 3);
const CONCURRENCIES = [1, 4, 8];
const startedAt = new Date().toISOString();

const gateway = useGateway();
const pidFile = gateway.runDir ? join(gateway.runDir, 'gateway.pid') : null;
const gatewayPid =
  process.env.OPENCLAW_GATEWAY_PID ??
  (pidFile && existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : null);
let callsPerAgent = null;
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
  const call = (base, method, path) => callApi(base, method, path, { token: localToken });
  const { ds, orgId, gatewayId, boardId } = await gatewayBenchTenant(
    apps[0].app,
    apps[0].base,
    localToken,
    gateway,
    {
      workspaceDir: 'bench-sync-workspaces',
      board: {
        name: 'Sync board',
        slug: 'sync-board',
        objective: 'Measure template sync',
        maxAgents: AGENTS + 1,
      },
    },
  );
  const agentIds = [];
  for (let i = 0; i < AGENTS; i += 1) {
    const [{ id }] = await ds.query(
      `INSERT INTO agents (organization_id, board_id, gateway_id, name, status)
       VALUES ($1, $2, $3, $4, 'provisioning') RETURNING id`,
      [orgId, boardId, gatewayId, `Sync agent ${i + 1}`],
    );
    agentIds.push(id);
  }

  // Provisioning: one agent at a time (each creates the gateway agent and patches the config).
  const provisioning = apps[0].app.get(ProvisioningService);
  const provisionStarted = performance.now();
  for (const agentId of agentIds) {
    const outcome = await provisioning.provisionAgent(
      { organizationId: orgId, agentId },
      { action: 'provision', wake: false },
    );
    if (outcome.status !== 'provisioned') throw new Error(`provision: ${outcome.error}`);
  }
  provisionSeconds = (performance.now() - provisionStarted) / 1000;
  process.stderr.write(`provisioned ${AGENTS} agents in ${provisionSeconds.toFixed(1)} s\n`);

  const sync = async ({ base }) => {
    calls.clear();
    const cpu0 = gatewayCpuSeconds(gatewayPid);
    const started = performance.now();
    const result = await call(
      base,
      'POST',
      `/gateways/${gatewayId}/templates/sync?include_main=false`,
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu1 = gatewayCpuSeconds(gatewayPid);
    if (result.agents_updated !== AGENTS || result.errors.length > 0) {
      throw new Error(`sync: ${JSON.stringify(result)}`);
    }
    callsPerAgent = Object.fromEntries(
      [...calls].sort().map(([method, n]) => [method, +(n / AGENTS).toFixed(2)]),
    );
    return { seconds, gatewayCpu: cpu0 === null ? null : cpu1 - cpu0 };
  };
  // Warm-up: the first sync of a fresh gateway socket and of each rendered template is not the
  // steady state; one pass at the default concurrency.
  await sync(apps.find((a) => a.concurrency === 4));
  const times = new Map(CONCURRENCIES.map((c) => [c, []]));
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const instance of apps) times.get(instance.concurrency).push(await sync(instance));
  }
  const bestRun = (c) => times.get(c).reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const best = (c) => bestRun(c).seconds;
  for (const concurrency of CONCURRENCIES) {
    const { gatewayCpu } = bestRun(concurrency);
    rows.push({
      concurrency,
      agents: AGENTS,
      wallSeconds: +best(concurrency).toFixed(2),
      allSeconds: times.get(concurrency).map((t) => +t.seconds.toFixed(2)),
      gatewayCpuSeconds: gatewayCpu === null ? null : +gatewayCpu.toFixed(2),
      gatewayBusy: gatewayCpu === null ? null : +(gatewayCpu / best(concurrency)).toFixed(2),
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
    'gateway CPU s': r.gatewayCpuSeconds ?? 'n/a',
    'gateway CPU / wall': r.gatewayBusy ?? 'n/a',
  })),
);
console.log(`gateway calls per agent in one sync: ${JSON.stringify(callsPerAgent)}`);
console.log(
  `machine load average (1 min) at the end: ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs`,
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
  gatewayCallsPerAgent: callsPerAgent,
  results: rows,
  targets,
});
console.log(`\nwritten: ${file}`);
