import type { Request, Response } from 'express';
import { STATUS_CODES } from 'node:http';
import { REQUEST_ID_HEADER, requestIdOf } from '../http/request-id.middleware';

/** The upstream error body: `{"detail": ..., "request_id": ...}`. */
export interface ErrorEnvelope {
  detail: unknown;
  request_id: string;
}

export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

export function sendErrorEnvelope(
  req: Request,
  res: Response,
  status: number,
  detail: unknown = reasonPhrase(status),
  headers: Record<string, string> = {},
): void {
  const requestId = requestIdOf(req);
  if (res.headersSent) {
    // A streaming response already started; the connection is all we can close.
    res.end();
    return;
  }
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (!res.getHeader(REQUEST_ID_HEADER)) res.setHeader(REQUEST_ID_HEADER, requestId);
  const body: ErrorEnvelope = { detail, request_id: requestId };
  res.status(status).json(body);
}

/**
 * The request as error logs name it: method and path, never the query string, whose values can
 * be secrets (`/gateways/status?gateway_token=…` tests an unsaved gateway with its token).
 */
export function requestForLog(req: Request): string {
  const [path, query] = req.originalUrl.split('?', 2);
  return `${req.method} ${path}${query === undefined ? '' : '?…'}`;
}
