import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { RequestValidationError } from '../errors/app-error';
import { snakeCase } from '../snake-case';

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Normalises a UUID to lowercase hyphenated form, or null when the text is not one. */
export function normalizeUuid(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (!UUID.test(text)) return null;
  const hex = text.replace(/-/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function uuidIssue(location: 'path' | 'query', name: string, input: unknown) {
  return new RequestValidationError([
    { type: 'uuid_parsing', loc: [location, name], msg: 'Input should be a valid UUID', input },
  ]);
}

/**
 * `@Param('id', ParseUuidPipe)`: a bad UUID in the path is a 422, never a database error. The
 * issue's `loc` uses the snake_case name (`:memberId` -> `["path", "member_id"]`), as upstream.
 */
@Injectable()
export class ParseUuidPipe implements PipeTransform<unknown, string> {
  transform(value: unknown, metadata: ArgumentMetadata): string {
    const uuid = normalizeUuid(value);
    if (uuid === null) {
      throw uuidIssue(
        metadata.type === 'query' ? 'query' : 'path',
        snakeCase(metadata.data ?? 'id'),
        value,
      );
    }
    return uuid;
  }
}
