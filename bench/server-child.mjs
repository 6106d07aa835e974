#!/usr/bin/env node
// The API in its own process (its own event loop), for benches that drive it over HTTP from a
// parent: `fork('bench/server-child.mjs', [databaseUrl])`. Replies { url } once listening, then
// answers { type: 'stats' } with the number of SQL statements and transactions its pg clients
// sent so far, and
// { type: 'stop' } by closing the app and exiting (a --cpu-prof profile is written on exit).
import { createRequire } from 'node:module';
import { createBenchApp } from './support.mjs';

const require = createRequire(import.meta.url);
const { Client } = require('pg');

// Statements sent, and transactions: explicit ones (BEGIN / START TRANSACTION) plus every
// statement sent outside one (its own implicit transaction).
let statements = 0;
let transactions = 0;
const inTransaction = new WeakSet();
const query = Client.prototype.query;
Client.prototype.query = function countedQuery(...args) {
  const text = typeof args[0] === 'string' ? args[0] : (args[0]?.text ?? '');
  statements += 1;
  if (/^\s*(BEGIN|START TRANSACTION)\b/i.test(text)) {
    inTransaction.add(this);
    transactions += 1;
  } else if (/^\s*(COMMIT|ROLLBACK)\b/i.test(text)) {
    inTransaction.delete(this);
  } else if (!inTransaction.has(this)) {
    transactions += 1;
  }
  return query.apply(this, args);
};

const app = await createBenchApp(process.argv[2]);
await app.listen(0, '127.0.0.1');
const url = await app.getUrl();

process.on('message', (message) => {
  if (message?.type === 'stats') {
    process.send({ type: 'stats', statements, transactions });
  } else if (message?.type === 'stop') {
    void app.close().finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', url });
