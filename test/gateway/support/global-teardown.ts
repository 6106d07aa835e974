import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import databaseTeardown from '../../support/global-teardown';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..', '..');

export default async function globalTeardown(): Promise<void> {
  const runDir = globalThis.__MC_GATEWAY_RUN_DIR__;
  try {
    if (runDir) {
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
