// Shared by the bench scripts: arguments, percentiles, a throwaway PostgreSQL and a gateway.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
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
 * `env` overrides the configuration (e.g. AUTH_MODE=jwt with AUTH_JWT_SECRET to act as many users).
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

/** Quick mode (`--quick` or BENCH_QUICK=1): small sizes so a bench finishes in well under a minute (CI). */
export const isQuick = () => process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';

/** `--name value` as a number, else `full`, or `quick` in quick mode. */
export const size = (name, full, quick) => arg(name, isQuick() ? quick : full);

/** When this bench process started (the `startedAt` of its result). */
const STARTED_AT = new Date().toISOString();

/**
 * Where results go: `bench/results/<name>.json` for a full run (may be committed),
 * `bench/results/quick/<name>.json` for a quick one (git-ignored), so a quick run never
 * overwrites the figures of a full one.
 */
export const resultPath = (name, quick = isQuick()) =>
  join(ROOT, 'bench/results', ...(quick ? ['quick'] : []), `${name}.json`);

/**
 * A target line for a result: `check('p95 ms', 21.3, { below: 25 })` →
 * `{ what, target: '< 25', value, met }`. One of below / atMost / atLeast / equals.
 */
export function check(what, value, { below, atMost, atLeast, equals }) {
  const [target, met] =
    below !== undefined
      ? [`< ${below}`, value < below]
      : atMost !== undefined
        ? [`<= ${atMost}`, value <= atMost]
        : atLeast !== undefined
          ? [`>= ${atLeast}`, value >= atLeast]
          : [`= ${JSON.stringify(equals)}`, JSON.stringify(value) === JSON.stringify(equals)];
  return { what, target, value: typeof value === 'number' ? round(value) : value, met };
}

const round = (x) => (Number.isInteger(x) ? x : Number(x.toFixed(Math.abs(x) >= 100 ? 1 : 3)));

/**
 * Writes the result of bench `name` as JSON ({ name, quick, startedAt, finishedAt, node, cpus,
 * params, results, targets }) and returns its path. `targets`: [{ what, target, value, met }]
 * (see `check`); run-all prints them in its summary.
 */
export function writeResult(
  name,
  { params = {}, results = {}, targets = [], startedAt, ...extra } = {},
) {
  const path = resultPath(name);
  mkdirSync(dirname(path), { recursive: true });
  const data = {
    name,
    quick: isQuick(),
    startedAt: startedAt ?? STARTED_AT,
    finishedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    params,
    results,
    ...extra,
    targets,
  };
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  console.log(`\nresult written to ${relative(ROOT, path)}`);
  return path;
}

const cell = (value) =>
  value === undefined || value === null
    ? ''
    : typeof value === 'number'
      ? String(round(value))
      : typeof value === 'boolean'
        ? value
          ? 'yes'
          : 'NO'
        : typeof value === 'object'
          ? JSON.stringify(value)
          : String(value);

/** Prints rows (objects) as an aligned text table; columns are the union of the keys, in order. */
export function printTable(rows, { title } = {}) {
  if (title) console.log(`\n${title}`);
  if (rows.length === 0) {
    console.log('(no rows)');
    return;
  }
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cells = rows.map((row) => columns.map((column) => cell(row[column])));
  const widths = columns.map((column, i) =>
    Math.max(column.length, ...cells.map((line) => line[i].length)),
  );
  const line = (values) =>
    values
      .map((value, i) => value.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  console.log(line(columns));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const values of cells) console.log(line(values));
}

/** Latency summary of samples in ms: { n, p50, p95, p99, max, mean }. */
export function latencyStats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((sum, x) => sum + x, 0) / Math.max(1, sorted.length);
  return {
    n: sorted.length,
    p50: round(pct(sorted, 50)),
    p95: round(pct(sorted, 95)),
    p99: round(pct(sorted, 99)),
    max: round(sorted.at(-1)),
    mean: round(mean),
  };
}

// CPU time from /proc (Linux): utime + stime of a process and of every living process whose
// parent it is, plus what its waited-for children used (cutime + cstime). In clock ticks of
// 1/100 s (the USER_HZ every Linux build reports), converted to ms.
const TICK_MS = 10;
const procStat = (pid) => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(fields[1]),
      cpuMs:
        (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) *
        TICK_MS,
    };
  } catch {
    return null; // gone (or not Linux)
  }
};

/** CPU ms used so far by `pid` and its direct children (e.g. a postmaster and its backends). */
export function processTreeCpuMs(pid) {
  let total = procStat(pid)?.cpuMs ?? 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === pid) continue;
    const stat = procStat(entry);
    if (stat?.ppid === pid) total += stat.cpuMs;
  }
  return total;
}

/** The postmaster's PID of the database behind `pool` (from its data directory's pid file). */
export async function postmasterPid(pool) {
  const {
    rows: [{ setting }],
  } = await pool.query(`SELECT setting FROM pg_settings WHERE name = 'data_directory'`);
  return Number(readFileSync(join(setting, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/**
 * One JSON call to the API at `base`: as the local user (`token`) or, with `agentToken`, as an
 * agent. The parsed answer; throws on a non-2xx answer, naming the call.
 */
export async function callApi(base, method, path, { token, agentToken, body } = {}) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: {
      'Content-Type': 'application/json',
      ...(agentToken ? { 'X-Agent-Token': agentToken } : { Authorization: `Bearer ${token}` }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * Where a real-gateway bench works: an organization made through the API by the local user of
 * `app` (listening at `base`), a gateway row for `gateway` whose agent workspaces go under
 * `workspaceDir` in the gateway's run dir (or a temp dir), and one goal board on it.
 */
export async function gatewayBenchTenant(app, base, token, gateway, { workspaceDir, board }) {
  await callApi(base, 'POST', '/auth/bootstrap', { token });
  const org = await callApi(base, 'POST', '/organizations', { token, body: { name: 'bench' } });
  const ds = app.get(require('typeorm').DataSource);
  const workspaceRoot = join(gateway.runDir ?? mkdtempSync(join(tmpdir(), 'mc-ws-')), workspaceDir);
  const [{ id: gatewayId }] = await ds.query(
    `INSERT INTO gateways (organization_id, name, url, token, workspace_root)
     VALUES ($1, 'bench', $2, $3, $4) RETURNING id`,
    [org.id, gateway.url, gateway.token, workspaceRoot],
  );
  const [{ id: boardId }] = await ds.query(
    `INSERT INTO boards (organization_id, gateway_id, name, slug, board_type, objective, max_agents)
     VALUES ($1, $2, $3, $4, 'goal', $5, $6) RETURNING id`,
    [org.id, gatewayId, board.name, board.slug, board.objective, board.maxAgents ?? 1],
  );
  return { ds, orgId: org.id, gatewayId, boardId };
}
