import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { databaseRetryDetail } from '../errors/database-unavailable';
import { GatewayError, GatewayOperationError, ProvisioningError } from '../errors/gateway-errors';
import { requestForLog, sendErrorEnvelope } from './error-envelope';

/** HTTP status and detail for a member of the GatewayError family. */
export function gatewayErrorResponse(
  error: GatewayError | GatewayOperationError | ProvisioningError,
): { status: number; detail: string } {
  if (error instanceof ProvisioningError) {
    // A run that lost its database connection (its run lock, or a write) or had a statement
    // cancelled: not our fault, and the same request may succeed once the database answers.
    const retryDetail = databaseRetryDetail(error.cause);
    if (retryDetail) return { status: HttpStatus.SERVICE_UNAVAILABLE, detail: retryDetail };
    return { status: HttpStatus.INTERNAL_SERVER_ERROR, detail: error.message };
  }
  // The gateway (not this service) failed: 502, with the text naming what failed.
  return { status: HttpStatus.BAD_GATEWAY, detail: error.message };
}

/**
 * Maps gateway failures to 502 with the operation's detail text, and unexpected provisioning
 * failures to 500 with a fixed text (the cause is logged, never returned).
 */
@Catch(GatewayError, GatewayOperationError, ProvisioningError)
export class GatewayExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('GatewayErrors');

  catch(
    exception: GatewayError | GatewayOperationError | ProvisioningError,
    host: ArgumentsHost,
  ): void {
    const http = host.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    const { status, detail } = gatewayErrorResponse(exception);
    if (status === Number(HttpStatus.SERVICE_UNAVAILABLE)) {
      this.logger.warn(`${requestForLog(req)}: ${detail} (${exception.message})`);
      sendErrorEnvelope(req, res, status, detail, { 'Retry-After': '1' });
      return;
    }
    if (exception instanceof ProvisioningError) {
      this.logger.error(`${requestForLog(req)}: ${detail}`, describeCause(exception));
    } else {
      this.logger.warn(`${requestForLog(req)}: ${detail}`);
    }
    sendErrorEnvelope(req, res, status, detail);
  }
}

function describeCause(error: Error): string | undefined {
  const cause = error.cause;
  if (cause instanceof Error) return cause.stack ?? cause.message;
  return cause === undefined ? undefined : JSON.stringify(cause);
}
