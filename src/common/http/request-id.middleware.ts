import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** Longest client-supplied request id we echo; longer ones are replaced, not truncated. */
const MAX_REQUEST_ID_LENGTH = 200;
const PRINTABLE = /^[\x21-\x7e]+$/;

const requestIds = new WeakMap<Request, string>();

/**
 * Reuses a non-blank `X-Request-Id` from the client, or generates one (uuid4 hex, as upstream),
 * and puts it on every response. Registered before routing so 404s and body-parse errors get it too.
 */
export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const supplied = req.header(REQUEST_ID_HEADER)?.trim();
  const requestId =
    supplied && supplied.length <= MAX_REQUEST_ID_LENGTH && PRINTABLE.test(supplied)
      ? supplied
      : randomUUID().replace(/-/g, '');
  requestIds.set(req, requestId);
  res.setHeader(REQUEST_ID_HEADER, requestId);
  next();
}

export function requestIdOf(req: Request): string {
  let requestId = requestIds.get(req);
  if (!requestId) {
    requestId = randomUUID().replace(/-/g, '');
    requestIds.set(req, requestId);
  }
  return requestId;
}
