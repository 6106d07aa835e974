#!/usr/bin/env node
// Generates a migration from the difference between the entities and the schema that the
// existing migrations produce, then registers it in src/database/migrations/index.ts.
// Usage: npm run migration:generate -- <Name>
// Without DATABASE_URL it uses a throwaway embedded PostgreSQL, so it works on a fresh machine.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const name = process.argv[2];
if (!name || !/^[A-Z][A-Za-z0-9]*$/.test(name)) {
  console.error('Usage: npm run migration:generate -- <PascalCaseName>');
  process.exit(2);
}

const require = createRequire(import.meta.url);
const run = (cmd, args, env = process.env) => execFileSync(cmd, args, { stdio: 'inherit', env });

run('npx', ['nest', 'build']);
const { startEmbeddedPostgres, freePort } = require('../dist/database/embedded-postgres.js');

let database;
let url = process.env.DATABASE_URL;
if (!url) {
  const dir = mkdtempSync(join(tmpdir(), 'mc-migrations-'));
  database = await startEmbeddedPostgres({
    dataDir: join(dir, 'pg'),
    port: await freePort(),
    database: 'migrations',
    persistent: false,
    ephemeralTuning: true,
  });
  url = database.url;
}

try {
  const env = { ...process.env, DATABASE_URL: url };
  const cli = ['typeorm', '-d', 'dist/database/cli-data-source.js'];
  run('npx', [cli[0], 'migration:run', ...cli.slice(1)], env);
  const before = new Set(readdirSync('src/database/migrations'));
  run('npx', [cli[0], 'migration:generate', `src/database/migrations/${name}`, ...cli.slice(1), '--pretty'], env);
  const added = readdirSync('src/database/migrations').filter((f) => !before.has(f));
  for (const file of added) {
    const source = readFileSync(join('src/database/migrations', file), 'utf8');
    const className = /export class (\w+)/.exec(source)[1];
    const indexPath = 'src/database/migrations/index.ts';
    let index = readFileSync(indexPath, 'utf8');
    const module = `./${file.replace(/\.ts$/, '')}`;
    index = `import { ${className} } from '${module}';\n${index}`;
    index = index.replace(/(MIGRATIONS: \(new \(\) => unknown\)\[\] = \[)([^\]]*)\]/, (_m, head, body) => {
      const entries = body.split(',').map((s) => s.trim()).filter(Boolean);
      entries.push(className);
      return `${head}${entries.join(', ')}]`;
    });
    writeFileSync(indexPath, index);
    console.log(`Registered ${className} in ${indexPath}; review the generated SQL before committing.`);
  }
} finally {
  await database?.stop();
}
