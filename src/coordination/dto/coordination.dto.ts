import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsArray, IsIn, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { MaxChars, MaxItems, NonEmptyString } from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import { normalizeUuid } from '../../common/validation/parse-uuid.pipe';
import {
  DEFAULT_ASK_USER_REPLY_SOURCE,
  DEFAULT_ASK_USER_REPLY_TAGS,
  DEFAULT_LEAD_REPLY_SOURCE,
  DEFAULT_LEAD_REPLY_TAGS,
  LEAD_MESSAGE_KINDS,
  type LeadMessageKind,
} from '../coordination-messages';

/** Reply tags a request may name (each a short keyword). */
const MAX_REPLY_TAGS = 20;
/** Boards one broadcast may name. */
export const MAX_BROADCAST_BOARD_IDS = 1000;

/** `reply_tags`: short keywords; empty means the route's default. */
const ReplyTags = (defaults: readonly string[]) =>
  applyDecorators(
    ApiPropertyOptional({
      type: [String],
      default: defaults,
      description: 'Empty means the default',
    }),
    IsOptional(),
    IsArray(),
    MaxItems(MAX_REPLY_TAGS),
    IsString({ each: true }),
    MaxLength(MAX_LENGTH.keyword, { each: true }),
  );

/** `reply_source`: a short keyword; null or empty means the route's default. */
const ReplySource = (fallback: string) =>
  applyDecorators(
    ApiPropertyOptional({
      type: String,
      nullable: true,
      default: fallback,
      description: 'Null or empty means the default',
    }),
    IsOptional(),
    IsString(),
    MaxChars(MAX_LENGTH.keyword),
  );

/** C4 body. */
export class AgentNudgeRequest {
  @ApiProperty({ description: 'Stripped; at least one character' })
  @NonEmptyString()
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  message!: string;
}

/** C6 body. */
export class SoulUpdateRequest {
  @ApiProperty({ description: 'The new SOUL.md; stripped, blank is refused (422)' })
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  content!: string;

  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.url)
  source_url?: string | null;

  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.shortText * 5)
  reason?: string | null;
}

class ReplyFields {
  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.shortText)
  correlation_id?: string | null;

  @ApiProperty({ description: 'Stripped; at least one character' })
  @NonEmptyString()
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  content!: string;
}

/** C7 body. */
export class GatewayMainAskUserRequest extends ReplyFields {
  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.shortText)
  preferred_channel?: string | null;

  @ReplyTags(DEFAULT_ASK_USER_REPLY_TAGS)
  reply_tags?: string[];

  @ReplySource(DEFAULT_ASK_USER_REPLY_SOURCE)
  reply_source?: string | null;
}

/** C7 response. */
export class GatewayMainAskUserResponse {
  @ApiProperty({ example: true }) ok!: true;
  @ApiProperty({ format: 'uuid' }) board_id!: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) main_agent_id!: string | null;
  @ApiProperty({ type: String, nullable: true }) main_agent_name!: string | null;
}

/** C8 body. */
export class GatewayLeadMessageRequest extends ReplyFields {
  @ApiPropertyOptional({ enum: LEAD_MESSAGE_KINDS, default: 'question' })
  @IsOptional()
  @IsIn(LEAD_MESSAGE_KINDS)
  kind?: LeadMessageKind;

  @ReplyTags(DEFAULT_LEAD_REPLY_TAGS)
  reply_tags?: string[];

  @ReplySource(DEFAULT_LEAD_REPLY_SOURCE)
  reply_source?: string | null;
}

/** C8 response. */
export class GatewayLeadMessageResponse {
  @ApiProperty({ example: true }) ok!: true;
  @ApiProperty({ format: 'uuid' }) board_id!: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) lead_agent_id!: string | null;
  @ApiProperty({ type: String, nullable: true }) lead_agent_name!: string | null;
  @ApiProperty() lead_created!: boolean;
}

/** C9 body. */
export class GatewayLeadBroadcastRequest extends GatewayLeadMessageRequest {
  @ApiPropertyOptional({
    type: [String],
    format: 'uuid',
    nullable: true,
    description: "Only these boards (of the caller's gateway); empty or absent: all of them",
  })
  @IsOptional()
  @IsArray()
  @MaxItems(MAX_BROADCAST_BOARD_IDS)
  @Transform(({ value }: { value: unknown }) =>
    Array.isArray(value) ? value.map((item) => normalizeUuid(item) ?? item) : value,
  )
  @IsUUID('all', { each: true })
  board_ids?: string[] | null;
}

export class GatewayLeadBroadcastBoardResult {
  @ApiProperty({ format: 'uuid' }) board_id!: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) lead_agent_id!: string | null;
  @ApiProperty({ type: String, nullable: true }) lead_agent_name!: string | null;
  @ApiProperty() ok!: boolean;
  @ApiProperty({ type: String, nullable: true }) error!: string | null;
}

/** C9 response. */
export class GatewayLeadBroadcastResponse {
  @ApiProperty({ example: true }) ok!: true;
  @ApiProperty() sent!: number;
  @ApiProperty() failed!: number;
  @ApiProperty({ type: [GatewayLeadBroadcastBoardResult] })
  results!: GatewayLeadBroadcastBoardResult[];
}
