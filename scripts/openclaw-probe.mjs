#!/usr/bin/env node
// Readiness probe for a local OpenClaw gateway (protocol v4), used by scripts/openclaw-gateway.sh.
//
// A bare TCP check is not enough: the gateway accepts sockets several seconds before it can serve
// RPCs and answers `connect` with a retryable UNAVAILABLE (details.reason "startup-sidecars") in
// between. So this performs the real handshake a backend client performs and succeeds only on
// hello-ok.
//
// Inputs come from the environment, never argv, so the token does not show up in `ps`:
//   OPENCLAW_GATEWAY_URL        ws://127.0.0.1:PORT (required)
//   OPENCLAW_GATEWAY_TOKEN      shared gateway token (required)
//   OPENCLAW_PROBE_TIMEOUT_MS   overall budget, default 90000
//   OPENCLAW_PROBE_PID          optional gateway PID; the probe fails fast once it has exited
// Exit codes: 0 ready, 1 timed out / gateway died, 2 non-retryable handshake error, 64 bad usage.
// All output goes to stderr; the token is never printed.
import WebSocket from 'ws';

const SCOPES = [
  'operator.read',
  'operator.write',
  'operator.admin',
  'operator.approvals',
  'operator.pairing',
];
const ATTEMPT_TIMEOUT_MS = 5000;
const RECONNECT_DELAY_MS = 200;

const url = process.env.OPENCLAW_GATEWAY_URL ?? '';
const token = process.env.OPENCLAW_GATEWAY_TOKEN ?? '';
const budgetMs = Number(process.env.OPENCLAW_PROBE_TIMEOUT_MS ?? '90000');
const gatewayPid = Number(process.env.OPENCLAW_PROBE_PID ?? '0');

function log(message) {
  process.stderr.write(`[openclaw-probe] ${message}\n`);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function gatewayAlive() {
  if (!gatewayPid) return true;
  try {
    process.kill(gatewayPid, 0);
    return true;
  } catch (error) {
    // EPERM means the process exists but belongs to someone else.
    return error && error.code === 'EPERM';
  }
}

/**
 * One connection attempt. Resolves to
 *   { kind: 'ready', hello } | { kind: 'retry', delayMs, why } | { kind: 'fatal', why }.
 */
function attempt() {
  return new Promise((resolve) => {
    let settled = false;
    // No Origin header: with one, the gateway treats the client as a browser and drops its scopes.
    const ws = new WebSocket(url, { handshakeTimeout: ATTEMPT_TIMEOUT_MS });
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners('close');
      ws.on('error', () => {});
      ws.terminate();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ kind: 'retry', delayMs: RECONNECT_DELAY_MS, why: 'attempt timed out' }),
      ATTEMPT_TIMEOUT_MS,
    );

    ws.on('error', (error) => {
      // ECONNREFUSED and friends: the listener is not up yet.
      finish({ kind: 'retry', delayMs: RECONNECT_DELAY_MS, why: error.code ?? error.message });
    });
    ws.on('close', (code) => {
      finish({ kind: 'retry', delayMs: RECONNECT_DELAY_MS, why: `closed ${code}` });
    });
    ws.on('message', (data) => {
      let frame;
      try {
        frame = JSON.parse(String(data));
      } catch {
        return;
      }
      if (frame.type === 'event' && frame.event === 'connect.challenge') {
        ws.send(
          JSON.stringify({
            type: 'req',
            id: 'probe-connect',
            method: 'connect',
            params: {
              minProtocol: 4,
              maxProtocol: 4,
              client: {
                id: 'gateway-client',
                mode: 'backend',
                platform: process.platform,
                version: '0.1.0',
              },
              role: 'operator',
              scopes: SCOPES,
              auth: { token },
            },
          }),
        );
        return;
      }
      if (frame.type !== 'res' || frame.id !== 'probe-connect') return;
      if (frame.ok && frame.payload && frame.payload.type === 'hello-ok') {
        finish({ kind: 'ready', hello: frame.payload });
        return;
      }
      const error = frame.error ?? {};
      const detail = error.details ?? {};
      const why = `${error.code ?? 'ERROR'}: ${error.message ?? 'connect failed'}${
        detail.reason ? ` (${detail.reason})` : ''
      }`;
      if (error.code === 'UNAVAILABLE' || error.retryable === true) {
        finish({ kind: 'retry', delayMs: error.retryAfterMs ?? detail.retryAfterMs ?? 500, why });
      } else {
        finish({ kind: 'fatal', why });
      }
    });
  });
}

async function main() {
  if (!url || !token) {
    log('OPENCLAW_GATEWAY_URL and OPENCLAW_GATEWAY_TOKEN must be set');
    return 64;
  }
  const started = Date.now();
  const deadline = started + budgetMs;
  let attempts = 0;
  let lastWhy = '';
  while (Date.now() < deadline) {
    if (!gatewayAlive()) {
      log(`gateway process ${gatewayPid} exited before becoming ready`);
      return 1;
    }
    attempts += 1;
    const result = await attempt();
    if (result.kind === 'ready') {
      const { hello } = result;
      log(
        `ready after ${Date.now() - started} ms, ${attempts} attempt(s): protocol ${hello.protocol}, ` +
          `server ${hello.server?.version ?? '?'}, scopes ${(hello.auth?.scopes ?? []).join(',')}`,
      );
      return 0;
    }
    if (result.kind === 'fatal') {
      log(`handshake rejected: ${result.why}`);
      return 2;
    }
    if (result.why !== lastWhy) {
      log(`not ready yet (${result.why}), retrying`);
      lastWhy = result.why;
    }
    await sleep(Math.max(50, Math.min(result.delayMs, deadline - Date.now())));
  }
  log(`timed out after ${budgetMs} ms (${attempts} attempts, last: ${lastWhy || 'n/a'})`);
  return 1;
}

process.exitCode = await main();
