#!/usr/bin/env node
// Every bench in turn: builds once (nest build), then runs each bench of BENCHES in its own
// process (forwarding --quick), sharing one real OpenClaw gateway among the benches that need
// one, and prints a summary of every target read from the result files. Exits non-zero only if
// a bench crashed (or timed out); a missed target is a figure, not a failure.
// Usage: npm run bench [-- --quick]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT, isQuick, printTable, resultPath, useGateway } from './support.mjs';

/** Run in this order; a file not present (yet) is skipped, so merge order does not matter. */
const BENCHES = [
  { name: 'agent-auth' },
  { name: 'agent-listing' },
  { name: 'board-snapshot' },
  { name: 'heartbeats' },
  { name: 'stream-fanout' },
  { name: 'gateway', gateway: true },
  { name: 'provision', gateway: true },
  { name: 'gateway-api', gateway: true },
  { name: 'template-sync', gateway: true },
];

const quick = isQuick();
// A bench that hangs must not hang the run (or CI): quick benches should take < 60 s.
const TIMEOUT_MS = quick ? 180_000 : 45 * 60_000;

const present = BENCHES.filter(({ name }) => existsSync(join(ROOT, 'bench', `${name}.mjs`)));
const runAll0 = performance.now();

console.log(`bench run-all${quick ? ' (quick)' : ''}: building once (nest build) …`);
execFileSync(join(ROOT, 'node_modules/.bin/nest'), ['build'], { cwd: ROOT, stdio: 'inherit' });

/** Runs one bench in a child process; resolves { code, signal, timedOut, seconds }. */
function runBench(name, env) {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bench', `${name}.mjs`), ...(quick ? ['--quick'] : [])],
      { cwd: ROOT, env, stdio: 'inherit' },
    );
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    const done = (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, seconds: (performance.now() - started) / 1000 });
    };
    child.on('error', () => done(-1, null));
    child.on('exit', done);
  });
}

const outcomes = [];
let gateway = null;
try {
  for (const { name, gateway: needsGateway } of BENCHES) {
    if (!present.some((bench) => bench.name === name)) {
      console.log(`\n=== ${name}: skipped: not present (bench/${name}.mjs)`);
      outcomes.push({ name, status: 'skipped: not present' });
      continue;
    }
    const env = { ...process.env, ...(quick ? { BENCH_QUICK: '1' } : {}) };
    if (needsGateway) {
      try {
        // One gateway for every gateway bench (starting one takes seconds and a lot of CPU).
        gateway ??= useGateway();
        Object.assign(env, {
          OPENCLAW_GATEWAY_URL: gateway.url,
          OPENCLAW_GATEWAY_TOKEN: gateway.token,
          ...(gateway.runDir ? { OPENCLAW_RUN_DIR: gateway.runDir } : {}),
        });
      } catch (error) {
        console.log(`\n=== ${name}: crashed: no gateway (${error.message})`);
        outcomes.push({ name, status: 'crashed: no gateway', crashed: true });
        continue;
      }
    }
    // A stale result must not pass for this run's.
    rmSync(resultPath(name, quick), { force: true });
    console.log(`\n=== ${name}${quick ? ' --quick' : ''}`);
    const run = await runBench(name, env);
    const crashed = run.timedOut || run.code !== 0;
    const status = run.timedOut
      ? `crashed: timed out after ${TIMEOUT_MS / 1000} s`
      : run.code !== 0
        ? `crashed: exit ${run.code ?? run.signal}`
        : 'ok';
    let result = null;
    try {
      result = JSON.parse(readFileSync(resultPath(name, quick), 'utf8'));
    } catch {
      // No result file: reported below.
    }
    outcomes.push({
      name,
      status: !crashed && !result ? 'ok, but no result file written' : status,
      crashed,
      seconds: run.seconds,
      result,
    });
  }
} finally {
  gateway?.stop();
}

const totalSeconds = (performance.now() - runAll0) / 1000;
printTable(
  outcomes.map(({ name, status, seconds, result }) => ({
    bench: name,
    status,
    seconds: seconds === undefined ? '' : seconds.toFixed(1),
    result: result ? relative(ROOT, resultPath(name, quick)) : '',
  })),
  { title: `\n=== summary${quick ? ' (quick: small sizes, figures indicative only)' : ''}` },
);
const targets = outcomes.flatMap(({ name, result }) =>
  (result?.targets ?? []).map(({ what, target, value, met }) => ({
    bench: name,
    what,
    target,
    value,
    met: met ? 'met' : 'NOT MET',
  })),
);
printTable(targets, { title: '\ntargets' });
const crashedNames = outcomes.filter((outcome) => outcome.crashed).map(({ name }) => name);
const missed = targets.filter((row) => row.met !== 'met').length;
console.log(
  `\n${outcomes.length - crashedNames.length - outcomes.filter((o) => o.status.startsWith('skipped')).length} ran, ` +
    `${crashedNames.length} crashed${crashedNames.length ? ` (${crashedNames.join(', ')})` : ''}, ` +
    `${targets.length - missed}/${targets.length} targets met; ${totalSeconds.toFixed(0)} s in all`,
);
process.exitCode = crashedNames.length > 0 ? 1 : 0;
