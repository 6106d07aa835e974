import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsArray, IsBoolean, IsOptional, IsString, MaxLength } from 'class-validator';
import { PageQuery } from '../../common/pagination/pagination';
import {
  AbsentWhenNullish,
  MaxChars,
  MaxItems,
  NonEmptyString,
} from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import { BoardMemoryRead } from './board-memory-read.dto';

/** Tags per item and characters per tag (upstream has no bounds; ours are generous). */
export const MAX_MEMORY_TAGS = 50;
export const MAX_MEMORY_TAG_LENGTH = 100;

/**
 * `?is_chat=`: `true` or `false` (any case); `null` or empty: absent; anything else is a 422
 * `bool_type`, never "no filter".
 */
function IsChatFilter(): PropertyDecorator {
  return (target, key) => {
    ApiPropertyOptional({ type: Boolean, nullable: true })(target, key);
    AbsentWhenNullish()(target, key);
    Transform(({ value }: { value: unknown }) => {
      if (typeof value !== 'string') return value;
      const text = value.trim().toLowerCase();
      return text === 'true' ? true : text === 'false' ? false : value;
    })(target, key);
    IsOptional()(target, key);
    IsBoolean()(target, key);
  };
}

/** `POST /boards/{board_id}/memory` and `POST /agent/boards/{board_id}/memory`. */
export class BoardMemoryCreate {
  @ApiProperty({ description: 'Non-empty after stripping surrounding whitespace' })
  @NonEmptyString()
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  content!: string;

  @ApiPropertyOptional({
    type: [String],
    nullable: true,
    description: `\`chat\` makes the item a chat message; at most ${MAX_MEMORY_TAG_LENGTH} characters per tag`,
  })
  @IsOptional()
  @IsArray()
  @MaxItems(MAX_MEMORY_TAGS)
  @IsString({ each: true })
  @MaxLength(MAX_MEMORY_TAG_LENGTH, {
    each: true,
    message: `String should have at most ${MAX_MEMORY_TAG_LENGTH} characters`,
  })
  tags?: string[] | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: "Who wrote it; a chat item without one records the poster's name",
  })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  source?: string | null;
}

/** `GET …/memory`: pagination plus the `is_chat` filter. */
export class BoardMemoryListQuery extends PageQuery {
  @IsChatFilter()
  is_chat?: boolean;
}

/** `GET /boards/{board_id}/memory/stream`. */
export class BoardMemoryStreamQuery {
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description:
      'ISO timestamp: first send the items created since then (those the retained log holds), ' +
      'then live. Blank, `null` or invalid: live only. A `Last-Event-ID` header wins over it.',
  })
  @AbsentWhenNullish()
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.shortText)
  since?: string;

  @IsChatFilter()
  is_chat?: boolean;
}

export class BoardMemoryPage {
  @ApiProperty({ type: [BoardMemoryRead] }) items!: BoardMemoryRead[];
  @ApiProperty() total!: number;
  @ApiProperty() limit!: number;
  @ApiProperty() offset!: number;
}
