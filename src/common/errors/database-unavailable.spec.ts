import { runInNewContext } from 'node:vm';
import { QueryFailedError, QueryRunnerAlreadyReleasedError } from 'typeorm';
import { gatewayErrorResponse } from '../filters/gateway-exception.filter';
import {
  DATABASE_UNAVAILABLE_DETAIL,
  databaseRetryDetail,
  isDatabaseUnavailable,
  STATEMENT_TIMEOUT_DETAIL,
} from './database-unavailable';
import {
  GatewayOperationError,
  GatewayUnavailableError,
  ProvisioningError,
} from './gateway-errors';

/** An error as node-postgres raises it: a message and, from the server, a SQLSTATE. */
function pgError(message: string, code?: string): Error {
  return Object.assign(new Error(message), code === undefined ? {} : { code });
}

const failedQuery = (driverError: Error) => new QueryFailedError('SELECT 1', [], driverError);

describe('isDatabaseUnavailable', () => {
  it('recognises a socket error from another realm (Node core raises them outside a test sandbox)', () => {
    // A `read ECONNRESET` is created by Node's net internals, not by the code that catches it:
    // under jest (a vm context per file) it is not `instanceof Error` there. Seen in CI as a 500.
    const reset = runInNewContext(
      'Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET", syscall: "read" })',
    ) as Error;
    expect(reset instanceof Error).toBe(false);
    expect(isDatabaseUnavailable(reset)).toBe(true);
    expect(isDatabaseUnavailable(new QueryFailedError('START TRANSACTION', [], reset))).toBe(true);
    const wrapped = new Error('provision run failed', { cause: reset });
    expect(isDatabaseUnavailable(wrapped)).toBe(true);
  });

  it('recognises a terminated, refused or lost database connection', () => {
    const terminated = pgError('terminating connection due to administrator command', '57P01');
    expect(isDatabaseUnavailable(terminated)).toBe(true);
    for (const code of ['08006', '57P05', 'EHOSTUNREACH', 'EAI_AGAIN']) {
      expect(isDatabaseUnavailable(failedQuery(pgError(`lost (${code})`, code)))).toBe(true);
    }
    expect(isDatabaseUnavailable(failedQuery(terminated))).toBe(true);
    expect(isDatabaseUnavailable(failedQuery(pgError('Connection terminated unexpectedly')))).toBe(
      true,
    );
    expect(isDatabaseUnavailable(pgError('connection failure', '08006'))).toBe(true);
    expect(isDatabaseUnavailable(pgError('sorry, too many clients already', '53300'))).toBe(true);
    expect(
      isDatabaseUnavailable(pgError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')),
    ).toBe(true);
    expect(isDatabaseUnavailable(new QueryRunnerAlreadyReleasedError())).toBe(true);
    // Raised while connecting (ALLOW_CONNECTIONS false); a statement's 55000 is something else.
    const closed = pgError('database "x" is not currently accepting connections', '55000');
    expect(isDatabaseUnavailable(closed)).toBe(true);
    expect(isDatabaseUnavailable(failedQuery(pgError('currval not yet defined', '55000')))).toBe(
      false,
    );
    // Found through the cause chain (a provision run that lost its run lock).
    expect(isDatabaseUnavailable(new Error('run lock lost', { cause: terminated }))).toBe(true);
  });

  it('leaves statement errors, our own bugs and gateway failures alone', () => {
    expect(isDatabaseUnavailable(failedQuery(pgError('duplicate key', '23505')))).toBe(false);
    expect(isDatabaseUnavailable(failedQuery(pgError('deadlock detected', '40P01')))).toBe(false);
    // A protocol violation is a malformed message of ours (e.g. too many bind parameters), not an
    // outage: retrying cannot cure it, so it must not be a 503 with Retry-After.
    const bind = pgError(
      'bind message supplies 4464 parameters, but prepared statement "" requires 70000',
      '08P01',
    );
    expect(isDatabaseUnavailable(failedQuery(bind))).toBe(false);
    expect(isDatabaseUnavailable(new TypeError('x is undefined'))).toBe(false);
    expect(isDatabaseUnavailable('Connection terminated')).toBe(false);
    const refused = Object.assign(new GatewayUnavailableError('connect ECONNREFUSED'), {
      code: 'ECONNREFUSED',
    });
    expect(isDatabaseUnavailable(refused)).toBe(false);
    expect(isDatabaseUnavailable(new GatewayOperationError('update', refused))).toBe(false);
  });

  it('makes a provisioning failure caused by the database a 503, others stay 500', () => {
    const lost = new Error('sessions.patch: the provision run lost its run lock', {
      cause: pgError('terminating connection due to administrator command', '57P01'),
    });
    expect(gatewayErrorResponse(new ProvisioningError('update', lost)).status).toBe(503);
    expect(gatewayErrorResponse(new ProvisioningError('update', new Error('boom'))).status).toBe(
      500,
    );
  });
});

describe('databaseRetryDetail', () => {
  it('names a cancelled statement (statement timeout, 57014) apart from a lost connection', () => {
    const canceled = pgError('canceling statement due to statement timeout', '57014');
    expect(databaseRetryDetail(failedQuery(canceled))).toBe(STATEMENT_TIMEOUT_DETAIL);
    expect(databaseRetryDetail(new Error('run failed', { cause: failedQuery(canceled) }))).toBe(
      STATEMENT_TIMEOUT_DETAIL,
    );
    expect(databaseRetryDetail(pgError('timeout exceeded when trying to connect'))).toBe(
      DATABASE_UNAVAILABLE_DETAIL,
    );
    expect(databaseRetryDetail(failedQuery(pgError('duplicate key', '23505')))).toBeNull();
    expect(
      databaseRetryDetail(new GatewayUnavailableError('down', { cause: canceled })),
    ).toBeNull();
  });

  it('makes a provisioning failure on a cancelled statement a 503', () => {
    const canceled = failedQuery(pgError('canceling statement due to statement timeout', '57014'));
    expect(gatewayErrorResponse(new ProvisioningError('update', canceled))).toEqual({
      status: 503,
      detail: STATEMENT_TIMEOUT_DETAIL,
    });
  });
});
