// Stand-ins for the harness contract's `isQuick()`, `writeResult()` and `printTable()` until
// bench/support.mjs has them (then these imports switch to support.mjs and this file goes).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './support.mjs';

/** `--quick`: small sizes, done in under a minute (CI runs every bench this way). */
export const isQuick = () => process.argv.includes('--quick');

/** Writes bench/results/<name>.json ({ name, quick, startedAt, params, results, targets }). */
export function writeResult(name, data) {
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ name, quick: isQuick(), ...data }, null, 2)}\n`);
  return file;
}

/** Prints rows (objects with the same keys) as an aligned text table. */
export function printTable(rows) {
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]);
  const cells = rows.map((row) => keys.map((key) => String(row[key] ?? '')));
  const widths = keys.map((key, i) => Math.max(key.length, ...cells.map((c) => c[i].length)));
  const line = (values) => values.map((v, i) => v.padEnd(widths[i])).join('  ');
  console.log(line(keys));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const c of cells) console.log(line(c));
}
