import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate, ValidationError } from 'class-validator';
import { RequestValidationError, ValidationIssue } from '../errors/app-error';
import { raiseUnsafeBodyIssues } from '../http/unsafe-input.middleware';
import { MODEL_RULE } from './decorators';

type Location = 'body' | 'query' | 'path';

const LOCATION: Record<ArgumentMetadata['type'], Location | null> = {
  body: 'body',
  query: 'query',
  param: 'path',
  custom: null,
};

const PRIMITIVES = new Set<unknown>([String, Boolean, Number, Array, Object]);

/**
 * class-validator constraint names mapped to the pydantic error types and messages the upstream
 * frontend knows. The first constraint that failed, in this priority order, is reported.
 */
const ISSUE_TYPES: [constraint: string, type: string, msg: string][] = [
  ['isDefined', 'missing', 'Field required'],
  ['isString', 'string_type', 'Input should be a valid string'],
  ['isBoolean', 'bool_type', 'Input should be a valid boolean'],
  ['isInt', 'int_type', 'Input should be a valid integer'],
  ['isNumber', 'float_type', 'Input should be a valid number'],
  ['isUuid', 'uuid_parsing', 'Input should be a valid UUID'],
  ['isDate', 'datetime_parsing', 'Input should be a valid datetime'],
  ['isObject', 'dict_type', 'Input should be a valid dictionary'],
  ['isArray', 'list_type', 'Input should be a valid list'],
  ['nestedValidation', 'model_type', 'Input should be a valid object'],
  ['isNotEmpty', 'string_too_short', 'String should have at least 1 character'],
  ['minLength', 'string_too_short', 'String is too short'],
  ['maxLength', 'string_too_long', 'String is too long'],
  ['min', 'greater_than_equal', 'Input is too small'],
  ['max', 'less_than_equal', 'Input is too large'],
  ['arrayMaxSize', 'too_long', 'List has too many items'],
  ['arrayMinSize', 'too_short', 'List has too few items'],
  ['isIn', 'enum', 'Input should be one of the allowed values'],
  ['isEmail', 'value_error', 'value is not a valid email address'],
];

const OPTIONAL_BODY = Symbol('optionalBody');

/** Marks a body DTO whose fields are all optional as allowed to be absent (no body at all). */
export function OptionalBody(): ClassDecorator {
  return (target) => Reflect.defineMetadata(OPTIONAL_BODY, true, target);
}

function isOptionalBody(metatype: unknown): boolean {
  return typeof metatype === 'function' && Reflect.getMetadata(OPTIONAL_BODY, metatype) === true;
}

/**
 * Global validation: body, query and path DTO classes are validated with class-validator.
 * Unknown body fields are stripped (upstream ignores them); wrong types, missing fields and
 * bad values become a 422 whose `detail` lists `{type, loc, msg, input}` like FastAPI does.
 */
@Injectable()
export class RequestValidationPipe implements PipeTransform<unknown> {
  async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // First, whatever the body's declared type: what the edge found unsafe in it.
    if (metadata.type === 'body') raiseUnsafeBodyIssues(value);
    const location = LOCATION[metadata.type];
    const metatype = metadata.metatype;
    if (!location || !metatype || PRIMITIVES.has(metatype)) return value;

    if (location === 'body') {
      if (value === undefined && isOptionalBody(metatype)) value = {};
      if (value === undefined) {
        throw new RequestValidationError([
          { type: 'missing', loc: ['body'], msg: 'Field required' },
        ]);
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new RequestValidationError([
          {
            type: 'model_attributes_type',
            loc: ['body'],
            msg: 'Input should be a valid dictionary or object to extract fields from',
            input: value,
          },
        ]);
      }
    }

    const instance = plainToInstance(metatype as new () => object, value ?? {});
    const errors = await validate(instance, {
      whitelist: true,
      forbidNonWhitelisted: false,
      forbidUnknownValues: false,
      validationError: { target: false, value: true },
    });
    if (errors.length > 0) {
      throw new RequestValidationError(toIssues(errors, [location], value));
    }
    return instance;
  }
}

/** One level of nested validation errors: a model, or a nested model inside it. */
interface IssueLevel {
  parent: IssueLevel | null;
  /** A field issue was found at this level or below (suppresses this level's model rules). */
  hasFieldIssues: boolean;
}

interface PendingError {
  error: ValidationError;
  prefix: (string | number)[];
  model: unknown;
  level: IssueLevel;
}

/**
 * class-validator errors as pydantic issues. `model` is what the client sent at this level: an
 * issue's `input` is the client's value (`"0"`, `"abc"`), not the transformed one. A model-level
 * rule (`ValidateModel`) is reported at the model's own location with the model as input, and,
 * like pydantic's after-validators, only when the model's fields (nested ones included) are all
 * valid. Iterative and depth-first (issues in the order of the fields), so neither a long list
 * nor deep nesting can exhaust the stack.
 */
export function toIssues(
  errors: ValidationError[],
  prefix: (string | number)[],
  model?: unknown,
): ValidationIssue[] {
  const found: { issue: ValidationIssue; level: IssueLevel; modelRule: boolean }[] = [];
  const root: IssueLevel = { parent: null, hasFieldIssues: false };
  const pending: PendingError[] = [];
  const pushLevel = (
    levelErrors: ValidationError[],
    levelPrefix: (string | number)[],
    levelModel: unknown,
    level: IssueLevel,
  ) => {
    for (let index = levelErrors.length - 1; index >= 0; index--) {
      pending.push({ error: levelErrors[index], prefix: levelPrefix, model: levelModel, level });
    }
  };
  pushLevel(errors, prefix, model, root);

  while (pending.length > 0) {
    const { error, prefix: at, model: sent, level } = pending.pop()!;
    const loc = [...at, /^\d+$/.test(error.property) ? Number(error.property) : error.property];
    const input = sentValue(sent, error.property, error.value);
    const constraints = error.constraints ?? {};
    if (MODEL_RULE in constraints) {
      found.push({
        issue: {
          type: 'value_error',
          loc: at,
          msg: `Value error, ${constraints[MODEL_RULE]}`,
          input: sent,
        },
        level,
        modelRule: true,
      });
      continue;
    }
    const issue = fieldIssue(constraints, loc, input);
    if (issue) {
      found.push({ issue, level, modelRule: false });
      // A field issue hides the model rules of its own level and of every enclosing one.
      for (let up: IssueLevel | null = level; up && !up.hasFieldIssues; up = up.parent) {
        up.hasFieldIssues = true;
      }
    }
    if (error.children && error.children.length > 0) {
      pushLevel(error.children, loc, input, { parent: level, hasFieldIssues: false });
    }
  }
  return found
    .filter(({ level, modelRule }) => !modelRule || !hasReportedIssues(level, found))
    .map(({ issue }) => issue);
}

/**
 * Whether anything below or beside a model rule at `level` is reported, which hides that rule:
 * a field issue at or under the level, or a nested level's own model rule (pydantic reports
 * the innermost failing model only).
 */
function hasReportedIssues(
  level: IssueLevel,
  found: { level: IssueLevel; modelRule: boolean }[],
): boolean {
  if (level.hasFieldIssues) return true;
  return found.some(
    (entry) => entry.modelRule && entry.level !== level && isBelow(entry.level, level),
  );
}

function isBelow(level: IssueLevel, ancestor: IssueLevel): boolean {
  for (let up = level.parent; up; up = up.parent) {
    if (up === ancestor) return true;
  }
  return false;
}

/** The pydantic issue for a field's failed constraints, or null when none failed. */
function fieldIssue(
  constraints: Record<string, string>,
  loc: (string | number)[],
  input: unknown,
): ValidationIssue | null {
  const names = Object.keys(constraints);
  if (names.length === 0) return null;
  const known = ISSUE_TYPES.find(([constraint]) => constraint in constraints);
  if (known) {
    const [constraint, type, fallback] = known;
    return {
      type,
      loc,
      msg: constraint === 'isDefined' ? fallback : cleanMessage(constraints[constraint], fallback),
      input,
    };
  }
  return { type: 'value_error', loc, msg: `Value error, ${constraints[names[0]]}`, input };
}

/** The value the client sent for `property`, when `model` is what it sent; else `fallback`. */
function sentValue(model: unknown, property: string, fallback: unknown): unknown {
  if (model === null || typeof model !== 'object') return fallback;
  return Object.prototype.hasOwnProperty.call(model, property)
    ? (model as Record<string, unknown>)[property]
    : fallback;
}

/** class-validator messages start with the property name; keep ours when they are generic. */
function cleanMessage(message: string | undefined, fallback: string): string {
  if (!message) return fallback;
  return /^[a-z_]+ (must|should) /.test(message) ? fallback : message;
}
