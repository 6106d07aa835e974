import { QueryFailedError, QueryRunnerAlreadyReleasedError } from 'typeorm';
import { GatewayError, GatewayOperationError } from './gateway-errors';

/**
 * SQLSTATEs that say the database connection is gone or cannot be made, not that the statement
 * was wrong: class 08 (connection exceptions, listed below), admin / crash shutdown and "cannot connect now"
 * (57P01-57P03: `pg_terminate_backend`, a restart), too many connections (53300).
 */
const UNAVAILABLE_SQLSTATES = new Set([
  // class 08, connection exceptions, except 08P01 (protocol violation): that one is raised for a
  // malformed message (e.g. a bind with more parameters than the protocol carries), a bug of
  // ours that a retry cannot cure, so it stays a 500.
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '08007',
  '57P01',
  '57P02',
  '57P03',
  '57P05',
  '53300',
]);
/**
 * Raised while connecting only: "database … is not currently accepting connections"
 * (`ALLOW_CONNECTIONS false`). TypeORM wraps statement errors in QueryFailedError, so a bare
 * error carrying it comes from the pool acquiring a connection.
 */
const CONNECT_ONLY_SQLSTATES = new Set(['55000']);
/** Socket failures reaching the database server. */
const UNAVAILABLE_SYSTEM_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/**
 * node-postgres reports a connection that ended under a query, or a pool wait that timed out,
 * without any code: its messages are all there is to go by.
 */
const PG_CONNECTION_MESSAGES = [
  /^Connection terminated( unexpectedly| due to connection timeout)?$/,
  /^timeout exceeded when trying to connect$/,
  /^Client has encountered a connection error and is not queryable$/,
];

function codeOf(error: object): unknown {
  return (error as { code?: unknown }).code;
}

/**
 * Error-like by shape, not `instanceof Error`: socket errors are created by Node's core, which
 * is another realm than code running in a vm context (as under jest), where they would fail
 * `instanceof` and a lost connection would be answered 500.
 */
function isErrorLike(value: unknown): value is Error {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

function isUnavailableLink(error: unknown, wrapped: boolean): boolean {
  if (!isErrorLike(error)) return false;
  // TypeORM releases a query runner whose connection failed; the transaction's next statement
  // (its COMMIT included) then throws this without reaching the server.
  if (error instanceof QueryRunnerAlreadyReleasedError) return true;
  const code = codeOf(error);
  if (typeof code === 'string') {
    if (UNAVAILABLE_SQLSTATES.has(code)) return true;
    if (!wrapped && CONNECT_ONLY_SQLSTATES.has(code)) return true;
    if (UNAVAILABLE_SYSTEM_CODES.has(code)) return true;
  }
  return PG_CONNECTION_MESSAGES.some((pattern) => pattern.test(error.message));
}

/**
 * Whether `error` (or what caused it) is the database being unreachable: a terminated or
 * refused connection rather than a fault of the request or of this service. Such a request is
 * answered 503 with a Retry-After: the statement in flight did not commit (a transaction whose
 * connection is gone is rolled back by the server), and the same request may succeed once the
 * database is back. A gateway failure in the chain is the gateway's, never the database's.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  return someDatabaseCause(error, (cause, wrapped) => isUnavailableLink(cause, wrapped));
}

/**
 * Whether `test` holds for `error` or an error in its `cause` chain, as the database driver
 * raised it: a QueryFailedError is tested through its driver error (`wrapped` true). A gateway
 * failure in the chain is the gateway's, never the database's: the walk stops there.
 */
function someDatabaseCause(
  error: unknown,
  test: (cause: unknown, wrapped: boolean) => boolean,
): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (isErrorLike(current) && !seen.has(current)) {
    seen.add(current);
    if (current instanceof GatewayError || current instanceof GatewayOperationError) return false;
    if (current instanceof QueryFailedError) {
      const driverError = (current as QueryFailedError & { driverError?: unknown }).driverError;
      if (test(driverError, true)) return true;
    } else if (test(current, false)) {
      return true;
    }
    current = current.cause;
  }
  return false;
}

/** The 503 detail for {@link isDatabaseUnavailable} errors. */
export const DATABASE_UNAVAILABLE_DETAIL =
  'The database is unavailable (its connection was lost or refused); retry the request.';

/**
 * query_canceled: a statement ran past DATABASE_STATEMENT_TIMEOUT_MS (a lock held elsewhere, an
 * overloaded server) or an operator cancelled it. PostgreSQL aborted the statement, and with it
 * the transaction around it; the same request may succeed when retried.
 */
const STATEMENT_CANCELED_SQLSTATE = '57014';

function isStatementCanceled(error: unknown): boolean {
  return someDatabaseCause(
    error,
    (cause) => isErrorLike(cause) && codeOf(cause) === STATEMENT_CANCELED_SQLSTATE,
  );
}

/** The 503 detail for a statement PostgreSQL cancelled ({@link databaseRetryDetail}). */
export const STATEMENT_TIMEOUT_DETAIL =
  'The database did not complete the request in time (its statement was cancelled); retry the request.';

/**
 * The 503 detail when `error` (or its cause) is the database failing this request in a way a
 * retry may cure: unreachable (a lost, refused or unobtainable connection) or a cancelled
 * statement. Null for anything else.
 */
export function databaseRetryDetail(error: unknown): string | null {
  if (isDatabaseUnavailable(error)) return DATABASE_UNAVAILABLE_DETAIL;
  if (isStatementCanceled(error)) return STATEMENT_TIMEOUT_DETAIL;
  return null;
}
