#!/usr/bin/env node
// Gateway call latency against a real OpenClaw gateway (scripts/openclaw-gateway.sh):
//   connect-per-call  - a new socket + handshake for every call (what upstream does),
//   pooled            - our GatewayClient: one persistent socket, requests multiplexed,
//   floor             - a bare `ws` request/response on an already-open socket (no client code),
// all sequential `sessions.list`, plus 100 concurrent calls on the pooled client.
// Prints figures; asserts nothing. Uses a running gateway when OPENCLAW_GATEWAY_URL and
// OPENCLAW_GATEWAY_TOKEN are set, else starts (and stops) one.
// Usage: npm run bench:gateway [-- --calls 300 --concurrent 100 --quick]
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { check, pct, printTable, size, useGateway, writeResult } from './support.mjs';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
const { GatewayConnection } = require('../dist/openclaw/gateway-connection.js');
const { GatewayClient } = require('../dist/openclaw/gateway-client.js');
const { DeviceIdentity } = require('../dist/openclaw/device-identity.js');
const { OPERATOR_SCOPES } = require('../dist/openclaw/protocol.js');
require('@nestjs/common').Logger.overrideLogger(['error', 'warn']);

const CALLS = size('calls', 300, 60);
const CONCURRENT = size('concurrent', 100, 50);
const WARMUP = size('warmup', 30, 10);

const stats = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p) => pct(sorted, p);
  const mean = sorted.reduce((sum, x) => sum + x, 0) / sorted.length;
  return { n: sorted.length, p50: at(50), p95: at(95), mean };
};
const fmt = (ms) => `${ms.toFixed(3)} ms`;

const gateway = useGateway();
const gatewayUrl = gateway.url;
const gatewayToken = gateway.token;

const settings = {
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleCloseMs: 600_000,
  clientVersion: 'bench',
  reconnectBaseMs: 250,
  reconnectMaxMs: 15_000,
};
const device = DeviceIdentity.generate().identity;

/** Upstream pattern: open, handshake, one request, close. Token-only (upstream sent no device). */
async function connectPerCall() {
  const connection = await GatewayConnection.open({
    url: gatewayUrl,
    token: gatewayToken,
    device: null,
    allowInsecureTls: false,
    connectTimeoutMs: settings.connectTimeoutMs,
    clientVersion: 'bench',
  });
  try {
    return await connection.request('sessions.list', {}, settings.requestTimeoutMs);
  } finally {
    connection.close(new Error('done'));
  }
}

/** The floor: a socket opened and handshaken by hand, then plain send/await-by-id. */
async function openBareSocket() {
  const ws = new WebSocket(gatewayUrl, { perMessageDeflate: false });
  const waiting = new Map();
  await new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'event' && frame.event === 'connect.challenge') {
        ws.send(
          JSON.stringify({
            type: 'req',
            id: 'connect',
            method: 'connect',
            params: {
              minProtocol: 3,
              maxProtocol: 4,
              client: {
                id: 'gateway-client',
                version: 'bench',
                platform: process.platform,
                mode: 'backend',
              },
              role: 'operator',
              scopes: [...OPERATOR_SCOPES],
              auth: { token: gatewayToken },
            },
          }),
        );
      } else if (frame.type === 'res' && frame.id === 'connect') {
        if (frame.ok) resolve();
        else reject(new Error(frame.error?.message));
      } else if (frame.type === 'res') {
        waiting.get(frame.id)?.(frame);
        waiting.delete(frame.id);
      }
    });
  });
  return {
    call(method) {
      const id = randomUUID();
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        ws.send(JSON.stringify({ type: 'req', id, method, params: {} }));
      });
    },
    close: () => ws.close(),
  };
}

async function timeSequential(label, call) {
  for (let i = 0; i < WARMUP; i += 1) await call();
  const samples = [];
  for (let i = 0; i < CALLS; i += 1) {
    const started = performance.now();
    await call();
    samples.push(performance.now() - started);
  }
  return { label, ...stats(samples) };
}

const pooled = new GatewayClient(
  { url: gatewayUrl, token: gatewayToken, disableDevicePairing: false, allowInsecureTls: false },
  settings,
  () => Promise.resolve(device),
);
const bare = await openBareSocket();
try {
  const server = await pooled.connect();
  const perCall = await timeSequential('connect-per-call (upstream)', connectPerCall);
  const pool = await timeSequential('pooled GatewayClient', () => pooled.call('sessions.list', {}));
  const floor = await timeSequential('floor: bare ws, open socket', () =>
    bare.call('sessions.list'),
  );

  const concurrentSamples = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENT }, async () => {
      const t = performance.now();
      await pooled.call('sessions.list', {});
      concurrentSamples.push(performance.now() - t);
    }),
  );
  const wall = performance.now() - started;
  const concurrent = { label: `pooled, ${CONCURRENT} concurrent`, ...stats(concurrentSamples) };

  console.log(
    `\nOpenClaw gateway ${server.version} (protocol ${server.protocol}) at ${gatewayUrl}; ` +
      `${CALLS} sequential sessions.list per pattern after ${WARMUP} warm-up calls\n`,
  );
  printTable(
    [perCall, pool, floor, concurrent].map(({ label, n, p50, p95, mean }) => ({
      pattern: label,
      n,
      'p50 ms': p50,
      'p95 ms': p95,
      'mean ms': mean,
    })),
  );
  const perCallOverPooled = perCall.p50 / pool.p50;
  const pooledOverFloor = pool.p50 / floor.p50;
  console.log(
    `\n${CONCURRENT} concurrent calls on one pooled socket: ${fmt(wall)} wall, ` +
      `${(CONCURRENT / (wall / 1000)).toFixed(0)} calls/s; dials made by the pooled client: ${pooled.dialCount}`,
  );
  console.log(
    `connect-per-call p50 / pooled p50 = ${perCallOverPooled.toFixed(2)}x (target >= 3x)`,
  );
  console.log(`pooled p50 / floor p50 = ${pooledOverFloor.toFixed(2)}x (target <= 1.5x)`);
  writeResult('gateway', {
    params: {
      calls: CALLS,
      concurrent: CONCURRENT,
      warmup: WARMUP,
      gatewayVersion: server.version,
    },
    results: {
      connectPerCall: perCall,
      pooled: pool,
      floor,
      pooledConcurrent: { ...concurrent, wallMs: wall, dials: pooled.dialCount },
      perCallOverPooledP50: perCallOverPooled,
      pooledOverFloorP50: pooledOverFloor,
    },
    targets: [
      check('connect-per-call p50 / pooled p50', perCallOverPooled, { atLeast: 3 }),
      check('pooled p50 / floor p50', pooledOverFloor, { atMost: 1.5 }),
    ],
  });
} finally {
  pooled.close();
  bare.close();
  gateway.stop();
}
