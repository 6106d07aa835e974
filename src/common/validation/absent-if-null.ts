import { Transform } from 'class-transformer';

/**
 * Query values the generated frontend client sends for "not set": the literal string `null`
 * and the empty (or blank) string. Both mean absent, never a 422 (issue 11, for every list and
 * stream route).
 */
export function AbsentIfNull(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => {
    if (value === null) return undefined;
    if (typeof value !== 'string') return value;
    const text = value.trim();
    return text === '' || text.toLowerCase() === 'null' ? undefined : value;
  });
}
