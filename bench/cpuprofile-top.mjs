#!/usr/bin/env node
// The top functions of a V8 .cpuprofile (node --cpu-prof) by self time, with file:line.
// Usage: node bench/cpuprofile-top.mjs <file.cpuprofile> [--top 15]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { ROOT } from './support.mjs';

/** Self time per function (ms), summed over the nodes of the call tree, descending. */
export function topSelfTime(profile, top = 15) {
  const selfUs = new Map();
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const deltas = profile.timeDeltas ?? [];
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = deltas[i] ?? 0;
    totalUs += dt;
    const frame = byId.get(id).callFrame;
    const file = frame.url ? relative(ROOT, frame.url.replace(/^file:\/\//, '')) : '';
    const key = `${frame.functionName || '(anonymous)'} ${file}${file ? `:${frame.lineNumber + 1}` : ''}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
  });
  const rows = [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({ fn, selfMs: us / 1000, pct: (100 * us) / totalUs }));
  return { totalMs: totalUs / 1000, rows };
}

export function formatTop({ totalMs, rows }) {
  const lines = [`total sampled ${totalMs.toFixed(0)} ms`, '  self ms   self %  function'];
  for (const row of rows) {
    lines.push(
      `${row.selfMs.toFixed(1).padStart(8)} ${row.pct.toFixed(1).padStart(7)}%  ${row.fn}`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  const i = process.argv.indexOf('--top');
  const top = i > 0 ? Number(process.argv[i + 1]) : 15;
  console.log(formatTop(topSelfTime(JSON.parse(readFileSync(file, 'utf8')), top)));
}
