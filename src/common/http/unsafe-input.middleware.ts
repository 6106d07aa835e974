import type { NextFunction, Request, Response } from 'express';
import { RequestValidationError, ValidationIssue } from '../errors/app-error';
import { sendErrorEnvelope } from '../filters/error-envelope';
import { MAX_INPUT_ARRAY_ITEMS, MAX_INPUT_DEPTH } from '../validation/limits';

const NUL = '\u0000';
/** A percent-encoded NUL in the raw path (`%2500` is a literal "%00", not a NUL). */
const ENCODED_NUL = /%00/i;
/** Enough issues to show the client what is wrong without building a list as large as the input. */
const MAX_REPORTED_ISSUES = 20;

type Loc = (string | number)[];

const nulIssue = (loc: Loc, input?: unknown): ValidationIssue => ({
  type: 'value_error',
  loc,
  msg: 'Value error, the NUL character (U+0000) is not allowed',
  ...(input === undefined ? {} : { input }),
});

/**
 * A lone UTF-16 surrogate (JSON allows `"\ud800"`) has no UTF-8 form: PostgreSQL refuses it in
 * jsonb and text columns would silently store U+FFFD instead. The input is not echoed: it cannot
 * be serialised faithfully either.
 */
const surrogateIssue = (loc: Loc): ValidationIssue => ({
  type: 'value_error',
  loc,
  msg: 'Value error, a lone UTF-16 surrogate (not well-formed Unicode) is not allowed',
});

/** `String.prototype.isWellFormed` (Node 20; ES2024, beyond the ES2023 lib we compile with). */
const isWellFormed = (text: string): boolean =>
  (text as string & { isWellFormed(): boolean }).isWellFormed();

/** The issue with a string or key, if it cannot be stored: a NUL or a lone surrogate. */
function textIssue(text: string, loc: Loc, echo: boolean): ValidationIssue | null {
  if (text.includes(NUL)) return nulIssue(loc, echo && isWellFormed(text) ? text : undefined);
  if (!isWellFormed(text)) return surrogateIssue(loc);
  return null;
}

/**
 * Finds what no handler can store or walk safely: NUL characters and lone surrogates in strings
 * and object keys (PostgreSQL refuses them in text and jsonb), nesting deeper than MAX_INPUT_DEPTH and arrays
 * longer than MAX_INPUT_ARRAY_ITEMS. Iterative, so a hostile document cannot exhaust the stack.
 */
export function findUnsafeInput(root: unknown, prefix: Loc): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const stack: { value: unknown; loc: Loc; depth: number }[] = [
    { value: root, loc: prefix, depth: 0 },
  ];
  while (stack.length > 0 && issues.length < MAX_REPORTED_ISSUES) {
    const { value, loc, depth } = stack.pop()!;
    if (typeof value === 'string') {
      const issue = textIssue(value, loc, true);
      if (issue) issues.push(issue);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_INPUT_DEPTH) {
      issues.push({
        type: 'value_error',
        loc,
        msg: `Value error, nesting deeper than ${MAX_INPUT_DEPTH} levels is not allowed`,
      });
      continue;
    }
    if (Array.isArray(value)) {
      if (value.length > MAX_INPUT_ARRAY_ITEMS) {
        issues.push({
          type: 'too_long',
          loc,
          msg: `List should have at most ${MAX_INPUT_ARRAY_ITEMS} items`,
        });
        continue;
      }
      for (let index = value.length - 1; index >= 0; index--) {
        stack.push({ value: value[index] as unknown, loc: [...loc, index], depth: depth + 1 });
      }
      continue;
    }
    const keys = Object.keys(value);
    for (let index = keys.length - 1; index >= 0; index--) {
      const key = keys[index];
      const issue = textIssue(key, [...loc, key], false);
      if (issue) {
        // A malformed key cannot be shown in `loc` either: name the object instead.
        issues.push(isWellFormed(key) ? issue : { ...issue, loc });
        continue;
      }
      stack.push({
        value: (value as Record<string, unknown>)[key],
        loc: [...loc, key],
        depth: depth + 1,
      });
    }
  }
  return issues;
}

/**
 * Body issues found at the edge, keyed by the parsed body itself (what `@Body()` hands the
 * validation pipe), raised once authentication has answered (see below).
 */
const deferredBodyIssues = new WeakMap<object, ValidationIssue[]>();

/**
 * One check at the edge, before routing to a handler or validation: a body, query or path holding
 * a NUL or a lone surrogate, or a body nested or listed beyond the edge bounds, is a 422 in the
 * upstream (pydantic) shape. Nothing behind it has to handle such input.
 *
 * The path and query are refused here, before authentication, because guards read them (board
 * and member ids). The body is only walked here and refused by the global validation pipe
 * ({@link raiseUnsafeBodyIssues}), which runs after the guards (no guard reads the body): so
 * 401/403/404 come before 422 for it, as upstream. A route that takes no body never reads it,
 * so nothing there refuses it (as upstream ignores a body its route does not declare).
 */
export function rejectUnsafeInput(req: Request, res: Response, next: NextFunction): void {
  const rawPath = req.originalUrl.split('?', 1)[0];
  const issues: ValidationIssue[] = [];
  if (ENCODED_NUL.test(rawPath)) issues.push(nulIssue(['path']));
  issues.push(...findUnsafeInput(req.query, ['query']));
  if (issues.length > 0) {
    sendErrorEnvelope(req, res, 422, issues.slice(0, MAX_REPORTED_ISSUES));
    return;
  }
  const body: unknown = req.body;
  // The JSON parser is strict: a parsed body is an object or an array, never a bare value.
  if (body !== null && typeof body === 'object') {
    const bodyIssues = findUnsafeInput(body, ['body']);
    if (bodyIssues.length > 0) deferredBodyIssues.set(body, bodyIssues);
  }
  next();
}

/**
 * Raises the issues rejectUnsafeInput found in this body; called by the global validation pipe
 * for every `@Body()` before anything else looks at it, so no route that reads a body can skip
 * it. A pipe, not an interceptor: pipes run after the guards as an interceptor would, but any
 * interceptor makes Nest wrap every request of the app in rxjs and AsyncResource.bind, which
 * measured at a third of the per-request CPU (`node bench/heartbeats.mjs`, README).
 */
export function raiseUnsafeBodyIssues(body: unknown): void {
  if (body === null || typeof body !== 'object') return;
  const issues = deferredBodyIssues.get(body);
  if (issues) throw new RequestValidationError(issues);
}
