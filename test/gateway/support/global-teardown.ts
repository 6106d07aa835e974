import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import databaseTeardown from '../../support/global-teardown';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..', '..');
const LOG_TAIL_LINES = 80;

/** Whether something accepts TCP connections on the loopback port (within 2 s). */
function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * When the gateway is no longer running or listening at the end of the suite (it died or
 * stopped under the tests), its own logs are the only account of why, and `stop` removes the
 * run dir: print their tails first.
 */
async function reportDeadGateway(runDir: string): Promise<void> {
  const envFile = join(runDir, 'env');
  if (!existsSync(envFile)) return;
  const env = readFileSync(envFile, 'utf8');
  const pid = /^OPENCLAW_GATEWAY_PID=(\d+)$/m.exec(env)?.[1];
  const port = /^OPENCLAW_GATEWAY_URL=ws:\/\/127\.0\.0\.1:(\d+)$/m.exec(env)?.[1];
  let alive = false;
  try {
    if (pid) process.kill(Number(pid), 0);
    alive = pid !== undefined;
  } catch {
    alive = false;
  }
  if (alive && port && (await portAnswers(Number(port)))) return;
  // gateway.failed-start.log and gateway.previous.log: a restart's first attempt that exited
  // before it was ready, and the gateway before the last (re)start (scripts/openclaw-gateway.sh).
  const tails = ['gateway.previous.log', 'gateway.failed-start.log', 'gateway.log', 'openclaw.log']
    .map((name) => join(runDir, name))
    .filter((file) => existsSync(file))
    .map((file) => {
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      return `--- ${file} (last ${LOG_TAIL_LINES} lines) ---\n${lines.slice(-LOG_TAIL_LINES).join('\n')}`;
    });
  console.error(
    `[gateway suite] the OpenClaw gateway (pid ${pid ?? '?'}, port ${port ?? '?'}) was ` +
      `${alive ? 'not listening' : 'no longer running'} at the end of the suite\n` +
      tails.join('\n'),
  );
}

export default async function globalTeardown(): Promise<void> {
  const runDir = globalThis.__MC_GATEWAY_RUN_DIR__;
  try {
    if (runDir) {
      await reportDeadGateway(runDir);
      await run('bash', [join(ROOT, 'scripts/openclaw-gateway.sh'), 'stop', runDir], {
        cwd: ROOT,
        timeout: 60_000,
      });
    }
  } finally {
    await globalThis.__MC_FAKE_MODEL__?.close();
    await databaseTeardown();
  }
}
