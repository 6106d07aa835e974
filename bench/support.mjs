// Shared by the bench scripts: arguments, percentiles, a throwaway PostgreSQL and a gateway.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCRIPT = join(ROOT, 'scripts/openclaw-gateway.sh');

/** `--name value` from the command line as a number, else the fallback. */
export const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};

/** The p-th percentile of an ascending array. */
export const pct = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** An embedded PostgreSQL in a temp dir, gone when stopped. */
export async function startBenchDatabase() {
  const { startEmbeddedPostgres, freePort } = require('../dist/database/embedded-postgres.js');
  return startEmbeddedPostgres({
    dataDir: join(mkdtempSync(join(tmpdir(), 'mc-bench-')), 'pg'),
    port: await freePort(),
    database: 'bench',
    persistent: false,
    ephemeralTuning: true,
  });
}

/**
 * The application on a bench database (local auth, quiet logs), initialised, not listening;
 * `env` adds or overrides configuration variables.
 */
export async function createBenchApp(databaseUrl, env = {}) {
  require('reflect-metadata');
  const { randomBytes } = require('node:crypto');
  const { createApp } = require('../dist/bootstrap.js');
  const { loadConfig } = require('../dist/config/app-config.js');
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    AUTH_MODE: 'local',
    LOCAL_AUTH_TOKEN: randomBytes(48).toString('base64url'),
    LOG_LEVEL: 'error',
    PORT: '0',
    ...env,
  });
  const app = await createApp(config, { shutdownHooks: false });
  await app.init();
  return app;
}

/**
 * The gateway of OPENCLAW_GATEWAY_URL/_TOKEN when set, else one started with
 * scripts/openclaw-gateway.sh; `stop()` stops only a gateway started here.
 */
export function useGateway() {
  if (process.env.OPENCLAW_GATEWAY_URL && process.env.OPENCLAW_GATEWAY_TOKEN) {
    return {
      url: process.env.OPENCLAW_GATEWAY_URL,
      token: process.env.OPENCLAW_GATEWAY_TOKEN,
      runDir: process.env.OPENCLAW_RUN_DIR ?? null,
      stop: () => undefined,
    };
  }
  process.stderr.write('starting a gateway with scripts/openclaw-gateway.sh …\n');
  const out = execFileSync('bash', [SCRIPT, 'start'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const env = Object.fromEntries(
    out
      .split('\n')
      .map((line) => /^(OPENCLAW_[A-Z_]+)=(.*)$/.exec(line.trim()))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
  return {
    url: env.OPENCLAW_GATEWAY_URL,
    token: env.OPENCLAW_GATEWAY_TOKEN,
    runDir: env.OPENCLAW_RUN_DIR,
    stop: () =>
      execFileSync('bash', [SCRIPT, 'stop', env.OPENCLAW_RUN_DIR], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
  };
}
