import { ApiProperty } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export const MAX_PAGE_LIMIT = 200;
/**
 * The largest offset: the largest integer a JSON number carries exactly, well inside PostgreSQL's
 * bigint (OFFSET), so larger values are a 422 rather than `bigint out of range` or a literal
 * such as `1e+21` in SQL.
 */
export const MAX_PAGE_OFFSET = Number.MAX_SAFE_INTEGER;

/**
 * `?limit=&offset=` as upstream: limit 1..200 (default 200), offset >= 0 (default 0); offset at
 * most MAX_PAGE_OFFSET (upstream has no maximum; past it PostgreSQL fails).
 */
export class PageQuery {
  @ApiProperty({ required: false, minimum: 1, maximum: MAX_PAGE_LIMIT, default: MAX_PAGE_LIMIT })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_LIMIT)
  limit: number = MAX_PAGE_LIMIT;

  @ApiProperty({ required: false, minimum: 0, maximum: MAX_PAGE_OFFSET, default: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(MAX_PAGE_OFFSET)
  offset: number = 0;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export function page<T>(items: T[], total: number, query: PageQuery): Page<T> {
  return { items, total, limit: query.limit, offset: query.offset };
}
