import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsDefined, MinLength, ValidateIf, ValidationOptions } from 'class-validator';

/** Trims strings; leaves other values for the type validators to reject. */
export function Trim(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value));
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

/** Parses ISO-8601 strings into Dates; anything unparsable stays as is so `@IsDate()` rejects it. */
export function ToDate(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => {
    if (typeof value !== 'string') return value;
    const parsed = new Date(value);
    return Number.isNaN(parsed.getTime()) ? value : parsed;
  });
}
