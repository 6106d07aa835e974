/**
 * Starts, for the whole gateway suite: the e2e PostgreSQL (test/support/global-setup.ts), a fake
 * OpenAI-compatible model server, and a real OpenClaw gateway pointed at it
 * (scripts/openclaw-gateway.sh start). Test files read the gateway from the environment.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import databaseSetup from '../../support/global-setup';
import { startFakeModelServer } from './fake-model-server';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..', '..');
export const FAKE_MODEL_REPLY = 'Fake model reply: acknowledged by the offline test model.';

declare global {
  var __MC_FAKE_MODEL__: { close(): Promise<void> } | undefined;
  var __MC_GATEWAY_RUN_DIR__: string | undefined;
}

export default async function globalSetup(): Promise<void> {
  await databaseSetup();
  const model = await startFakeModelServer({ reply: FAKE_MODEL_REPLY });
  globalThis.__MC_FAKE_MODEL__ = model;

  const started = Date.now();
  const { stdout } = await run('bash', [join(ROOT, 'scripts/openclaw-gateway.sh'), 'start'], {
    cwd: ROOT,
    // lan: also reachable through this machine's non-loopback address, where the gateway
    // treats us as a remote client (device pairing). Token-protected, random port, test-only.
    env: { ...process.env, OPENCLAW_MODEL_BASE_URL: model.baseUrl, OPENCLAW_BIND: 'lan' },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 10 * 60_000,
  });
  const env = Object.fromEntries(
    stdout
      .split('\n')
      .map((line) => /^(OPENCLAW_[A-Z_]+)=(.*)$/.exec(line.trim()))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => [match[1], match[2]]),
  );
  if (!env.OPENCLAW_GATEWAY_URL || !env.OPENCLAW_GATEWAY_TOKEN || !env.OPENCLAW_RUN_DIR) {
    throw new Error(`scripts/openclaw-gateway.sh start printed no gateway:\n${stdout}`);
  }
  globalThis.__MC_GATEWAY_RUN_DIR__ = env.OPENCLAW_RUN_DIR;
  // Workers are forked after this runs, so they inherit these.
  process.env.MC_IT_GATEWAY_URL = env.OPENCLAW_GATEWAY_URL;
  process.env.MC_IT_GATEWAY_TOKEN = env.OPENCLAW_GATEWAY_TOKEN;
  process.env.MC_IT_GATEWAY_RUN_DIR = env.OPENCLAW_RUN_DIR;
  if (env.OPENCLAW_GATEWAY_LAN_URL)
    process.env.MC_IT_GATEWAY_LAN_URL = env.OPENCLAW_GATEWAY_LAN_URL;
  process.env.MC_IT_FAKE_MODEL_REPLY = FAKE_MODEL_REPLY;
  process.stderr.write(
    `\nOpenClaw gateway ready at ${env.OPENCLAW_GATEWAY_URL} in ${Date.now() - started} ms\n`,
  );
}
