#!/usr/bin/env node
// Gateway calls through the HTTP API on a real OpenClaw gateway (scripts/openclaw-gateway.sh):
//   nudge            - POST /api/v1/agent/boards/{b}/agents/{a}/nudge by the board lead (agent
//                      token): sessions.patch + chat.send to the worker's session,
//   session history  - GET /api/v1/gateways/sessions/{key}/history?board_id=… by the org owner:
//                      chat.history of the worker's session,
// each on two app instances on the same database and gateway that differ only in
// OPENCLAW_IDLE_CLOSE_MS: the default (pooled: one socket kept open) and 0 (no pooling: the
// socket closes as soon as nothing is in flight, so every request dials and handshakes again,
// as a connect-per-call client does; a nudge's two calls, sessions.patch and chat.send, run back
// to back and share that one dial). Sequential requests alternating between the instances,
// p50/p95 per cell, the per-call/pooled ratio, and the gateway dials per request. The gateway runs without a model: chat.send is
// acknowledged when the message is queued, and the run it starts fails at once (the bench
// prints what the worker's session holds afterwards), so no model run competes.
// Usage: npm run bench:gateway-api [-- --quick] [-- --requests 200]
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import {
  arg,
  callApi,
  createBenchApp,
  gatewayBenchTenant,
  isQuick,
  pct,
  printTable,
  startBenchDatabase,
  useGateway,
  writeResult,
} from './support.mjs';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { ProvisioningService } = require('../dist/provisioning/provisioning.service.js');
const { GatewayConnection } = require('../dist/openclaw/gateway-connection.js');

const quick = isQuick();
const REQUESTS = arg('requests', quick ? 20 : 200);
const WARMUP = quick ? 5 : 20;
const startedAt = new Date().toISOString();

// Every gateway socket the app instances open (both instances live in this process).
let dials = 0;
const originalOpen = GatewayConnection.open;
GatewayConnection.open = function countedOpen(...args) {
  dials += 1;
  return originalOpen.apply(this, args);
};

const stats = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: +pct(sorted, 50).toFixed(2), p95: +pct(sorted, 95).toFixed(2) };
};

const gateway = useGateway();
const db = await startBenchDatabase();
const localToken = randomBytes(48).toString('base64url');
const instances = [];
const rows = [];
let sessionSummary = null;
try {
  for (const [mode, idleCloseMs] of [
    ['pooled', '120000'],
    ['connect-per-call', '0'],
  ]) {
    const app = await createBenchApp(db.url, {
      LOCAL_AUTH_TOKEN: localToken,
      OPENCLAW_IDLE_CLOSE_MS: idleCloseMs,
    });
    await app.listen(0, '127.0.0.1');
    instances.push({ mode, app, base: await app.getUrl() });
  }
  const request = (base, method, path, options = {}) =>
    callApi(base, method, path, { token: localToken, ...options });
  const { ds, orgId, gatewayId, boardId } = await gatewayBenchTenant(
    instances[0].app,
    instances[0].base,
    localToken,
    gateway,
    {
      workspaceDir: 'bench-api-workspaces',
      board: { name: 'API board', slug: 'api-board', objective: 'Measure gateway calls' },
    },
  );
  const { Gateway } = require('../dist/gateways/entities/gateway.entity.js');
  const gatewayRow = await ds.getRepository(Gateway).findOneByOrFail({ id: gatewayId });

  // The gateway main agent, the board lead and one worker, provisioned by the engine.
  const provisioning = instances[0].app.get(ProvisioningService);
  const setupStarted = performance.now();
  const main = await provisioning.ensureMainAgent(gatewayRow, {
    action: 'provision',
    notify: false,
  });
  if (main.status !== 'provisioned') throw new Error(`main agent: ${main.error}`);
  const lead = await provisioning.ensureBoardLead(
    { organizationId: orgId, boardId },
    { agentName: 'Bench Lead' },
  );
  if (lead.outcome?.status !== 'provisioned') throw new Error(`lead: ${lead.outcome?.error}`);
  const leadToken = lead.outcome.token;
  const [{ id: workerId }] = await ds.query(
    `INSERT INTO agents (organization_id, board_id, gateway_id, name, status)
     VALUES ($1, $2, $3, 'Bench Worker', 'provisioning') RETURNING id`,
    [orgId, boardId, gatewayId],
  );
  const worker = await provisioning.provisionAgent(
    { organizationId: orgId, agentId: workerId },
    { action: 'provision', wake: false },
  );
  if (worker.status !== 'provisioned') throw new Error(`worker: ${worker.error}`);
  const sessionKey = worker.agent.openclawSessionId;
  const setupSeconds = (performance.now() - setupStarted) / 1000;
  process.stderr.write(`provisioned main, lead and worker in ${setupSeconds.toFixed(1)} s\n`);

  const operations = {
    nudge: (base, i) =>
      request(base, 'POST', `/agent/boards/${boardId}/agents/${workerId}/nudge`, {
        body: { message: `bench nudge ${i}` },
        agentToken: leadToken,
      }),
    'session history': (base) =>
      request(
        base,
        'GET',
        `/gateways/sessions/${encodeURIComponent(sessionKey)}/history?board_id=${boardId}`,
      ),
  };
  let historyLength = 0;
  // Requests alternate between the two instances, so whatever else the gateway is doing (the
  // failed runs the nudges start) falls on both alike; a request's dials are those made while it ran.
  for (const [operation, run] of Object.entries(operations)) {
    for (const { base } of instances) {
      for (let i = 0; i < WARMUP; i += 1) await run(base, `warm-${i}`);
    }
    const samples = Object.fromEntries(instances.map(({ mode }) => [mode, []]));
    const dialsBy = Object.fromEntries(instances.map(({ mode }) => [mode, 0]));
    for (let i = 0; i < REQUESTS; i += 1) {
      for (const { mode, base } of instances) {
        const dialsBefore = dials;
        const started = performance.now();
        const answer = await run(base, i);
        samples[mode].push(performance.now() - started);
        dialsBy[mode] += dials - dialsBefore;
        if (operation === 'session history') historyLength = answer.history.length;
      }
    }
    const cells = Object.fromEntries(
      instances.map(({ mode }) => [
        mode,
        { ...stats(samples[mode]), dialsPerRequest: +(dialsBy[mode] / REQUESTS).toFixed(2) },
      ]),
    );
    for (const mode of Object.keys(cells)) {
      rows.push({
        operation,
        mode,
        requests: REQUESTS,
        ...cells[mode],
        p50VsPooled: +(cells[mode].p50 / cells.pooled.p50).toFixed(2),
        p95VsPooled: +(cells[mode].p95 / cells.pooled.p95).toFixed(2),
      });
    }
  }

  // What a nudge leaves in the worker's session on a gateway without a model.
  const { OpenClawGatewayService } = require('../dist/openclaw/openclaw-gateway.service.js');
  const history = await instances[0].app
    .get(OpenClawGatewayService)
    .methods(gatewayRow)
    .chatHistory({ sessionKey, limit: 1000 });
  const roles = {};
  for (const message of history.messages) roles[message.role] = (roles[message.role] ?? 0) + 1;
  const lastReply = history.messages.filter((m) => m.role !== 'user').at(-1);
  sessionSummary = {
    messagesByRole: roles,
    historyLengthRead: historyLength,
    lastNonUserMessage: JSON.stringify(lastReply?.content ?? null).slice(0, 200),
  };

  const { Agent } = require('../dist/agents/entities/agent.entity.js');
  for (const agent of await ds.getRepository(Agent).findBy({ gatewayId })) {
    await provisioning.cleanupAgent(agent, gatewayRow).catch(() => undefined);
  }
} finally {
  for (const { app } of instances) await app.close();
  await db.stop();
  gateway.stop();
}

console.log(
  `\ngateway calls through the HTTP API on a real gateway, ${REQUESTS} sequential requests per cell ` +
    `(the two clients alternating) after ${WARMUP} warm-up each; pooled = OPENCLAW_IDLE_CLOSE_MS ` +
    'default, connect-per-call = OPENCLAW_IDLE_CLOSE_MS=0',
);
printTable(
  rows.map((r) => ({
    operation: r.operation,
    client: r.mode,
    'p50 ms': r.p50,
    'p95 ms': r.p95,
    'p50 / pooled': `${r.p50VsPooled}x`,
    'p95 / pooled': `${r.p95VsPooled}x`,
    'dials/request': r.dialsPerRequest,
  })),
);
console.log(`\nworker session after the nudges (no model): ${JSON.stringify(sessionSummary)}`);
const perCall = (operation) =>
  rows.find((r) => r.operation === operation && r.mode === 'connect-per-call');
const targets = ['nudge', 'session history'].map((operation) => ({
  what: `${operation}: p50 connect-per-call / pooled`,
  target: '> 1 (the pool saves the dial and handshake)',
  value: perCall(operation).p50VsPooled,
  met: perCall(operation).p50VsPooled > 1,
}));
console.log('');
printTable(targets);
const file = writeResult('gateway-api', {
  startedAt,
  params: { requests: REQUESTS, warmup: WARMUP },
  results: rows,
  session: sessionSummary,
  targets,
});
console.log(`\nwritten: ${file}`);
