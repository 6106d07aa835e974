import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { QueryFailedError } from 'typeorm';
import { AppError, AppErrorKind, RequestValidationError } from '../errors/app-error';
import { databaseRetryDetail } from '../errors/database-unavailable';
import { reasonPhrase, requestForLog, sendErrorEnvelope } from './error-envelope';

/**
 * PostgreSQL aborts a transaction that lost a deadlock (40P01) or a serialization check (40001):
 * nothing of it was written and the same request may well succeed again, so it is a 503 with a
 * Retry-After, not a 500.
 */
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);

function isRetryableDatabaseAbort(exception: unknown): boolean {
  if (!(exception instanceof QueryFailedError)) return false;
  const code = (exception as QueryFailedError & { driverError?: { code?: unknown } }).driverError
    ?.code;
  return typeof code === 'string' && RETRYABLE_SQLSTATES.has(code);
}

const APP_ERROR_STATUS: Record<AppErrorKind, number> = {
  unauthorized: HttpStatus.UNAUTHORIZED,
  forbidden: HttpStatus.FORBIDDEN,
  not_found: HttpStatus.NOT_FOUND,
  conflict: HttpStatus.CONFLICT,
  invalid: HttpStatus.UNPROCESSABLE_ENTITY,
  busy: HttpStatus.SERVICE_UNAVAILABLE,
};

const APP_ERROR_HEADERS: Partial<Record<AppErrorKind, Record<string, string>>> = {
  unauthorized: { 'WWW-Authenticate': 'Bearer' },
  busy: { 'Retry-After': '1' },
};

/**
 * The catch-all: domain errors, validation errors and Nest's own HTTP exceptions become the
 * upstream envelope; anything else is logged and answered 500 "Internal Server Error" with no
 * internals; a lost, refused or unobtainable database connection, or a statement the database
 * cancelled (statement timeout), is 503 with a Retry-After. Gateway errors are handled by GatewayExceptionFilter, registered after this one.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Exceptions');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();

    if (exception instanceof RequestValidationError) {
      sendErrorEnvelope(req, res, HttpStatus.UNPROCESSABLE_ENTITY, exception.issues);
      return;
    }
    if (exception instanceof AppError) {
      const status = APP_ERROR_STATUS[exception.kind];
      const headers = APP_ERROR_HEADERS[exception.kind] ?? {};
      sendErrorEnvelope(req, res, status, exception.detail ?? reasonPhrase(status), headers);
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status >= 500) this.logger.error(exception.message, exception.stack);
      // Nest's own texts ("Cannot GET /x") name routes; the reason phrase is the upstream detail.
      sendErrorEnvelope(req, res, status, reasonPhrase(status));
      return;
    }

    if (isRetryableDatabaseAbort(exception)) {
      this.logger.warn(`${requestForLog(req)} rolled back: ${(exception as Error).message}`);
      sendErrorEnvelope(
        req,
        res,
        HttpStatus.SERVICE_UNAVAILABLE,
        'The request conflicted with a concurrent change and was rolled back; retry it.',
        { 'Retry-After': '1' },
      );
      return;
    }

    const retryDetail = databaseRetryDetail(exception);
    if (retryDetail) {
      this.logger.warn(`${requestForLog(req)}: ${retryDetail} (${(exception as Error).message})`);
      sendErrorEnvelope(req, res, HttpStatus.SERVICE_UNAVAILABLE, retryDetail, {
        'Retry-After': '1',
      });
      return;
    }

    const error = exception instanceof Error ? exception : new Error(String(exception));
    this.logger.error(`${requestForLog(req)} failed: ${error.message}`, error.stack);
    sendErrorEnvelope(req, res, HttpStatus.INTERNAL_SERVER_ERROR, 'Internal Server Error');
  }
}
