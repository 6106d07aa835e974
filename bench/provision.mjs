#!/usr/bin/env node
// Provisioning runs against a real OpenClaw gateway (scripts/openclaw-gateway.sh) and an embedded
// PostgreSQL: N board agents are provisioned (gateway agent created), updated with a changed
// heartbeat (config patched, files rewritten, new token) and updated again with nothing changed.
// Prints per-run wall time (p50/p95) and the gateway calls each run made, by method; asserts
// nothing. The wake-up message is off so no model run competes with the measurement.
// Usage: npm run bench:provision [-- --agents 10 --quick]
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  check,
  createBenchApp,
  latencyStats,
  printTable,
  size,
  startBenchDatabase,
  useGateway,
  writeResult,
} from './support.mjs';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { GatewayClient } = require('../dist/openclaw/gateway-client.js');
const { ProvisioningService } = require('../dist/provisioning/provisioning.service.js');

const AGENTS = size('agents', 10, 1);

// Count every gateway call by method (the pooled client is the only way calls leave).
const calls = new Map();
const originalCall = GatewayClient.prototype.call;
GatewayClient.prototype.call = function countedCall(method, params, options) {
  calls.set(method, (calls.get(method) ?? 0) + 1);
  return originalCall.call(this, method, params, options);
};
const takeCalls = () => {
  const snapshot = Object.fromEntries([...calls].sort());
  calls.clear();
  return snapshot;
};

const phases = [];

const gateway = useGateway();
const gatewayUrl = gateway.url;
const gatewayToken = gateway.token;
const runDir = gateway.runDir;
const db = await startBenchDatabase();
let app;
try {
  app = await createBenchApp(db.url);
  const ds = app.get(require('typeorm').DataSource);
  const provisioning = app.get(ProvisioningService);
  const workspaceRoot = join(runDir ?? mkdtempSync(join(tmpdir(), 'mc-ws-')), 'bench-workspaces');

  const [{ id: organizationId }] = await ds.query(
    `INSERT INTO organizations (name) VALUES ('bench') RETURNING id`,
  );
  const [{ id: gatewayId }] = await ds.query(
    `INSERT INTO gateways (organization_id, name, url, token, workspace_root)
     VALUES ($1, 'bench', $2, $3, $4) RETURNING id`,
    [organizationId, gatewayUrl, gatewayToken, workspaceRoot],
  );
  const [{ id: boardId }] = await ds.query(
    `INSERT INTO boards (organization_id, gateway_id, name, slug, board_type, objective)
     VALUES ($1, $2, 'Bench board', 'bench-board', 'goal', 'Measure provisioning') RETURNING id`,
    [organizationId, gatewayId],
  );
  const agentIds = [];
  for (let i = 0; i < AGENTS; i += 1) {
    const [{ id }] = await ds.query(
      `INSERT INTO agents (organization_id, board_id, gateway_id, name, status)
       VALUES ($1, $2, $3, $4, 'provisioning') RETURNING id`,
      [organizationId, boardId, gatewayId, `Bench agent ${i + 1}`],
    );
    agentIds.push(id);
  }

  // Warm the pooled socket (the first call pays the handshake).
  await app
    .get(require('../dist/openclaw/openclaw-gateway.service.js').OpenClawGatewayService)
    .methods({ url: gatewayUrl, token: gatewayToken })
    .health();
  takeCalls();

  const phase = async (key, label, request, before) => {
    const times = [];
    let configPatches = 0;
    for (const agentId of agentIds) {
      if (before) await before(agentId);
      const started = performance.now();
      const outcome = await provisioning.provisionAgent({ organizationId, agentId }, request);
      times.push(performance.now() - started);
      if (outcome.status !== 'provisioned') throw new Error(`${label}: ${outcome.error}`);
      if (outcome.configPatched) configPatches += 1;
    }
    const perRun = Object.fromEntries(
      Object.entries(takeCalls()).map(([method, n]) => [method, +(n / AGENTS).toFixed(1)]),
    );
    const total = Object.values(perRun).reduce((sum, n) => sum + n, 0);
    const { p50, p95, max } = latencyStats(times);
    phases.push({ label, key, p50, p95, max, configPatches, callsPerRun: total, perRun });
    console.log(`${label}: done`);
  };

  await phase('firstProvision', 'first provision (creates the gateway agent)', {
    action: 'provision',
    wake: false,
  });
  await phase(
    'updateChanged',
    'update with a changed heartbeat (patch + files + new token)',
    { action: 'update', wake: false },
    (agentId) =>
      ds.query(`UPDATE agents SET heartbeat_config = '{"every": "20m"}' WHERE id = $1`, [agentId]),
  );
  await phase('updateUnchanged', 'update with nothing changed', { action: 'update', wake: false });
  await phase('updateWithWake', 'update with the wake-up message (chat.send)', {
    action: 'update',
  });

  printTable(
    phases.map(({ label, p50, p95, max, configPatches, callsPerRun, perRun }) => ({
      [`run (${AGENTS} agents)`]: label,
      'p50 ms': p50,
      'p95 ms': p95,
      'max ms': max,
      'config patches': `${configPatches}/${AGENTS}`,
      'gateway calls/run': callsPerRun,
      'by method': perRun,
    })),
  );
  const unchanged = phases.find((entry) => entry.key === 'updateUnchanged');
  writeResult('provision', {
    params: { agents: AGENTS },
    results: Object.fromEntries(phases.map(({ key, label: _label, ...rest }) => [key, rest])),
    targets: [
      check('config patches on an update with nothing changed', unchanged.configPatches, {
        equals: 0,
      }),
    ],
  });

  // Remove what the bench created from the gateway (the rows go with the database).
  const { Agent } = require('../dist/agents/entities/agent.entity.js');
  const { Gateway } = require('../dist/gateways/entities/gateway.entity.js');
  const gatewayRow = await ds.getRepository(Gateway).findOneByOrFail({ id: gatewayId });
  for (const agent of await ds.getRepository(Agent).findBy({ gatewayId })) {
    await provisioning.cleanupAgent(agent, gatewayRow);
  }
} finally {
  await app?.close();
  await db.stop();
  gateway.stop();
}
