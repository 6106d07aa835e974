import { applyDecorators } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  IsDefined,
  MinLength,
  registerDecorator,
  ValidateBy,
  ValidateIf,
  ValidationArguments,
  ValidationOptions,
} from 'class-validator';
import { MAX_FREE_JSON_BYTES, MAX_FREE_JSON_DEPTH } from './limits';
import { normalizeUuid } from './parse-uuid.pipe';

/** Trims strings; leaves other values for the type validators to reject. */
export function Trim(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' ? value.trim() : value,
  );
}

/**
 * The field may be absent, but when present it must pass the other validators, null included.
 * For PATCH bodies whose columns are NOT NULL: an explicit null is a 422, not a database error.
 */
export function IsOptionalNonNull(options?: ValidationOptions): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== undefined, options);
}

/** Required, string, stripped, at least one character after stripping (upstream `NonEmptyStr`). */
export function NonEmptyString(): PropertyDecorator {
  return applyDecorators(
    IsDefined(),
    Trim(),
    MinLength(1, { message: 'String should have at least 1 character' }),
  );
}

const ISO_DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?$/;

/**
 * An ISO-8601 date-time (or date) as a Date, or null when the text is not one or names an
 * impossible date. A value without a zone is UTC (upstream stores naive UTC), never local time.
 */
export function parseIsoDateTime(text: string): Date | null {
  const m = ISO_DATETIME.exec(text.trim());
  if (!m) return null;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
  const millis = Number(((m[7] ?? '') + '000').slice(0, 3));
  if (hour > 23 || minute > 59 || second > 59) return null;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  const date = new Date(utc);
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day
  ) {
    return null;
  }
  if (m[9]) {
    const offsetHours = Number(m[10]);
    const offsetMinutes = Number(m[11]);
    if (offsetHours > 23 || offsetMinutes > 59) return null;
    const sign = m[9] === '+' ? 1 : -1;
    return new Date(utc - sign * (offsetHours * 60 + offsetMinutes) * 60_000);
  }
  return date;
}

/**
 * Parses ISO-8601 strings into Dates (no zone means UTC); anything else stays as it is so that
 * `@IsDate()` rejects it.
 */
export function ToDate(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => {
    if (typeof value !== 'string') return value;
    return parseIsoDateTime(value) ?? value;
  });
}

/**
 * A UUID as pydantic accepts it (any 32 hex digits, hyphens optional, any case), normalised to
 * lowercase hyphenated form. Reported as `uuid_parsing` when invalid. Combine with
 * `@IsOptional()` for optional or nullable fields.
 */
export function IsUuid(options?: ValidationOptions): PropertyDecorator {
  return applyDecorators(
    Transform(({ value }: { value: unknown }) => normalizeUuid(value) ?? value),
    ValidateBy(
      {
        name: 'isUuid',
        validator: {
          validate: (value: unknown) => typeof value === 'string' && normalizeUuid(value) === value,
          defaultMessage: () => 'Input should be a valid UUID',
        },
      },
      options,
    ),
  );
}

/** The constraint name of model-level rules; request validation reports them at the model's location. */
export const MODEL_RULE = 'modelRule';

/**
 * A model-level rule (pydantic `model_validator(mode="after")`): `rule` returns the text of the
 * first broken rule, or null. It is reported as `{type: "value_error", loc: ["body"],
 * msg: "Value error, <text>"}`, and only when every field of the model is valid.
 */
export function ValidateModel<T extends object>(rule: (model: T) => string | null): ClassDecorator {
  return (target) => {
    registerDecorator({
      name: MODEL_RULE,
      target,
      // A property no client field maps to; the rule reads the whole object.
      propertyName: '__model__',
      validator: {
        validate: (_value: unknown, args: ValidationArguments) => rule(args.object as T) === null,
        defaultMessage: (args?: ValidationArguments) =>
          args ? (rule(args.object as T) ?? '') : '',
      },
    });
  };
}

/** At most `max` characters (pydantic `max_length`): `string_too_long` past it. */
export function MaxChars(max: number): PropertyDecorator {
  // Named like class-validator's rule so request validation reports it as `string_too_long`;
  // unlike it, a non-string passes here and is left to the type validator.
  // The OpenAPI document states the bound too (merged into the property's own @ApiProperty).
  return applyDecorators(
    ValidateBy({
      name: 'maxLength',
      constraints: [max],
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || value.length <= max,
        defaultMessage: () => `String should have at most ${max} characters`,
      },
    }),
    ApiProperty({ maxLength: max }),
  );
}

/** At most `max` items (pydantic `max_length` on a list): `too_long` past it. */
export function MaxItems(max: number): PropertyDecorator {
  return applyDecorators(
    ArrayMaxSize(max, { message: `List should have at most ${max} items` }),
    ApiProperty({ maxItems: max }),
  );
}

/** Nesting depth of a JSON value (a scalar is 0), without recursion; stops past `limit`. */
function jsonDepthExceeds(value: unknown, limit: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (next.value === null || typeof next.value !== 'object') continue;
    if (next.depth + 1 > limit) return true;
    for (const child of Object.values(next.value))
      stack.push({ value: child, depth: next.depth + 1 });
  }
  return false;
}

/**
 * A free JSON object (stored as jsonb) bounded in serialized size and nesting depth, so that
 * keys and values inside it are bounded too. Checked after the type validator accepted an object.
 */
export function BoundedJson(
  maxBytes: number = MAX_FREE_JSON_BYTES,
  maxDepth: number = MAX_FREE_JSON_DEPTH,
): PropertyDecorator {
  return ValidateBy({
    name: 'boundedJson',
    validator: {
      validate: (value: unknown) => {
        if (value === null || value === undefined || typeof value !== 'object') return true;
        if (jsonDepthExceeds(value, maxDepth)) return false;
        return Buffer.byteLength(JSON.stringify(value), 'utf8') <= maxBytes;
      },
      defaultMessage: () => `JSON should be at most ${maxBytes} bytes and ${maxDepth} levels deep`,
    },
  });
}

/**
 * An optional query value the generated frontend client fills with the literal string `null`
 * when it has none (e.g. `?board_id=null&since=null`): `null`, blank, `null` and `undefined`
 * (any case) mean "absent", never a 422 (issue 11: every list and stream route). Put it before
 * the type validators.
 */
export function AbsentWhenNullish(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => {
    if (value === null) return undefined;
    if (typeof value !== 'string') return value;
    const text = value.trim().toLowerCase();
    return text === '' || text === 'null' || text === 'undefined' ? undefined : value;
  });
}

/**
 * A gateway URL: ws:// or wss:// with a host. Upstream accepted anything, the empty string
 * included; a URL that could never be dialled is refused up front instead of failing later.
 */
export function IsGatewayUrl(): PropertyDecorator {
  return ValidateBy({
    name: 'isGatewayUrl',
    validator: {
      validate: (value: unknown) => {
        if (typeof value !== 'string') return false;
        try {
          const url = new URL(value.trim());
          return (url.protocol === 'ws:' || url.protocol === 'wss:') && url.hostname !== '';
        } catch {
          return false;
        }
      },
      defaultMessage: () => 'URL should be a ws:// or wss:// URL',
    },
  });
}
