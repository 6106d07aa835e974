/**
 * Domain errors thrown by services and guards. They carry no HTTP status: the
 * exception filters decide the status at the edge (see common/filters).
 */
export type AppErrorKind =
  'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'invalid' | 'busy';

export abstract class AppError extends Error {
  abstract readonly kind: AppErrorKind;

  /** @param detail text for the client; when omitted the HTTP reason phrase is used. */
  constructor(readonly detail?: string) {
    super(detail ?? new.target.name);
    this.name = new.target.name;
  }
}

export class UnauthorizedError extends AppError {
  readonly kind = 'unauthorized';
}

export class ForbiddenError extends AppError {
  readonly kind = 'forbidden';
}

export class NotFoundError extends AppError {
  readonly kind = 'not_found';
}

export class ConflictError extends AppError {
  readonly kind = 'conflict';
}

/**
 * This instance is too busy to take the request now (a bounded queue stayed full for as long as
 * a caller may wait): HTTP 503 with a Retry-After; nothing of the request was done.
 */
export class ServiceBusyError extends AppError {
  readonly kind = 'busy';
}

/** A request that is well-formed but breaks a business rule (HTTP 422 with a string detail). */
export class InvalidRequestError extends AppError {
  readonly kind = 'invalid';
}

/** One field-level validation problem, in the upstream (pydantic) shape. */
export interface ValidationIssue {
  type: string;
  loc: (string | number)[];
  msg: string;
  input?: unknown;
  ctx?: Record<string, unknown>;
}

/** Request validation failed: HTTP 422 with `detail` as a list of issues. */
export class RequestValidationError extends Error {
  constructor(readonly issues: ValidationIssue[]) {
    super(
      `Request validation failed: ${issues.map((i) => `${i.loc.join('.')}: ${i.msg}`).join('; ')}`,
    );
    this.name = 'RequestValidationError';
  }
}
