import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate, ValidationError } from 'class-validator';
import { RequestValidationError, ValidationIssue } from '../errors/app-error';
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

/**
 * class-validator errors as pydantic issues. `model` is what the client sent at this level: an
 * issue's `input` is the client's value (`"0"`, `"abc"`), not the transformed one. A model-level
 * rule (`ValidateModel`) is reported at the model's own location with the model as input, and,
 * like pydantic's after-validators, only when the model's fields are all valid.
 */
export function toIssues(
  errors: ValidationError[],
  prefix: (string | number)[],
  model?: unknown,
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const modelIssues: ValidationIssue[] = [];
  for (const error of errors) {
    const loc = [...prefix, /^\d+$/.test(error.property) ? Number(error.property) : error.property];
    const input = sentValue(model, error.property, error.value);
    const constraints = error.constraints ?? {};
    if (MODEL_RULE in constraints) {
      modelIssues.push({
        type: 'value_error',
        loc: prefix,
        msg: `Value error, ${constraints[MODEL_RULE]}`,
        input: model,
      });
      continue;
    }
    const names = Object.keys(constraints);
    if (names.length > 0) {
      const known = ISSUE_TYPES.find(([constraint]) => constraint in constraints);
      if (known) {
        const [constraint, type, fallback] = known;
        issues.push({
          type,
          loc,
          msg:
            constraint === 'isDefined' ? fallback : cleanMessage(constraints[constraint], fallback),
          input,
        });
      } else {
        const first = names[0];
        issues.push({
          type: 'value_error',
          loc,
          msg: `Value error, ${constraints[first]}`,
          input,
        });
      }
    }
    if (error.children && error.children.length > 0) {
      issues.push(...toIssues(error.children, loc, input));
    }
  }
  return issues.length > 0 ? issues : modelIssues;
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
