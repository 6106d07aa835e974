import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsBoolean,
  IsDate,
  IsDefined,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Max,
  Min,
} from 'class-validator';
import { PageQuery } from '../../common/pagination/pagination';
import {
  BoundedJson,
  IsOptionalNonNull,
  IsUuid,
  MaxChars,
  ToDate,
  ValidateModel,
} from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import { Board, BOARD_SETTING_DEFAULTS, BOARD_TYPE_GOAL } from '../entities/board.entity';

export class BoardRead {
  @ApiProperty() name!: string;
  @ApiProperty() slug!: string;
  @ApiProperty() description!: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) gateway_id!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) board_group_id!: string | null;
  @ApiProperty({ example: BOARD_TYPE_GOAL }) board_type!: string;
  @ApiProperty({ type: String, nullable: true }) objective!: string | null;
  @ApiProperty({ type: Object, nullable: true, additionalProperties: true })
  success_metrics!: Record<string, unknown> | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) target_date!: string | null;
  @ApiProperty() goal_confirmed!: boolean;
  @ApiProperty({ type: String, nullable: true }) goal_source!: string | null;
  @ApiProperty() require_approval_for_done!: boolean;
  @ApiProperty() require_review_before_done!: boolean;
  @ApiProperty() comment_required_for_review!: boolean;
  @ApiProperty() block_status_changes_with_pending_approval!: boolean;
  @ApiProperty() only_lead_can_change_status!: boolean;
  @ApiProperty({
    type: 'integer',
    minimum: 1,
    description: 'Workers (non-lead agents) the board lead may create; users are not limited',
  })
  max_agents!: number;
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) organization_id!: string;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

export function toBoardRead(board: Board): BoardRead {
  return {
    name: board.name,
    slug: board.slug,
    description: board.description,
    gateway_id: board.gatewayId,
    board_group_id: board.boardGroupId,
    board_type: board.boardType,
    objective: board.objective,
    success_metrics: board.successMetrics,
    target_date: board.targetDate ? board.targetDate.toISOString() : null,
    goal_confirmed: board.goalConfirmed,
    goal_source: board.goalSource,
    require_approval_for_done: board.requireApprovalForDone,
    require_review_before_done: board.requireReviewBeforeDone,
    comment_required_for_review: board.commentRequiredForReview,
    block_status_changes_with_pending_approval: board.blockStatusChangesWithPendingApproval,
    only_lead_can_change_status: board.onlyLeadCanChangeStatus,
    max_agents: board.maxAgents,
    id: board.id,
    organization_id: board.organizationId,
    created_at: board.createdAt.toISOString(),
    updated_at: board.updatedAt.toISOString(),
  };
}

export class BoardPage {
  @ApiProperty({ type: [BoardRead] }) items!: BoardRead[];
  @ApiProperty() total!: number;
  @ApiProperty() limit!: number;
  @ApiProperty() offset!: number;
}

/** Upstream's goal-board rule (board create/update, onboarding completion and confirm). */
export const GOAL_RULE_TEXT = 'Confirmed goal boards require objective and success_metrics';

/** Python falsiness, as upstream's "requires objective and success_metrics" checks use it. */
function isBlank(value: unknown): boolean {
  if (value === null || value === undefined || value === '' || value === false || value === 0) {
    return true;
  }
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

/** Missing objective or success metrics (null, "" or `{}`), as the goal-board rules see it. */
export function lacksGoal(fields: { objective?: unknown; success_metrics?: unknown }): boolean {
  return isBlank(fields.objective) || isBlank(fields.success_metrics);
}

/** Upstream BoardCreate validator, rules in its order. */
function boardCreateRule(body: BoardCreate): string | null {
  if (body.gateway_id === null || body.gateway_id === undefined) return 'gateway_id is required';
  const boardType = body.board_type ?? BOARD_TYPE_GOAL;
  if (boardType === BOARD_TYPE_GOAL && body.goal_confirmed === true && lacksGoal(body)) {
    return GOAL_RULE_TEXT;
  }
  return null;
}

/** Upstream BoardUpdate validator: the gateway may be changed, not removed. */
function boardUpdateRule(body: BoardUpdate): string | null {
  return body.gateway_id === null ? 'gateway_id is required' : null;
}

const NOT_NULL = 'May not be null.';

/** The largest `max_agents`: PostgreSQL's integer maximum (upstream sets none). */
export const MAX_BOARD_MAX_AGENTS = 2_147_483_647;

/** An optional workflow flag: a boolean, never null (the column is NOT NULL). */
function BoardFlag(defaultValue: boolean): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({ default: defaultValue, description: NOT_NULL }),
    IsOptionalNonNull(),
    IsBoolean(),
  );
}

/** The optional fields BoardCreate and BoardUpdate validate alike. */
abstract class BoardOptionalFields {
  @ApiPropertyOptional({ type: String, format: 'uuid', nullable: true })
  @IsOptional()
  @IsUuid()
  board_group_id?: string | null;

  @ApiPropertyOptional({
    default: BOARD_TYPE_GOAL,
    description: 'Free text, e.g. goal or general. May not be null.',
  })
  @IsOptionalNonNull()
  @IsString()
  @MaxChars(MAX_LENGTH.keyword)
  board_type?: string;

  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  objective?: string | null;

  @ApiPropertyOptional({ type: Object, nullable: true, additionalProperties: true })
  @IsOptional()
  @IsObject()
  @BoundedJson()
  success_metrics?: Record<string, unknown> | null;

  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true })
  @IsOptional()
  @ToDate()
  @IsDate()
  target_date?: Date | null;

  @ApiPropertyOptional({ default: false, description: 'May not be null.' })
  @IsOptionalNonNull()
  @IsBoolean()
  goal_confirmed?: boolean;

  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.shortText)
  goal_source?: string | null;

  @ApiPropertyOptional({ default: BOARD_SETTING_DEFAULTS.description, description: NOT_NULL })
  @IsOptionalNonNull()
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  description?: string;

  @BoardFlag(BOARD_SETTING_DEFAULTS.requireApprovalForDone)
  require_approval_for_done?: boolean;

  @BoardFlag(BOARD_SETTING_DEFAULTS.requireReviewBeforeDone)
  require_review_before_done?: boolean;

  @BoardFlag(BOARD_SETTING_DEFAULTS.commentRequiredForReview)
  comment_required_for_review?: boolean;

  @BoardFlag(BOARD_SETTING_DEFAULTS.blockStatusChangesWithPendingApproval)
  block_status_changes_with_pending_approval?: boolean;

  @BoardFlag(BOARD_SETTING_DEFAULTS.onlyLeadCanChangeStatus)
  only_lead_can_change_status?: boolean;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: MAX_BOARD_MAX_AGENTS,
    default: BOARD_SETTING_DEFAULTS.maxAgents,
    description: `Workers (non-lead agents) the board lead may create; users are not limited. ${NOT_NULL}`,
  })
  @IsOptionalNonNull()
  @IsInt()
  @Min(1)
  @Max(MAX_BOARD_MAX_AGENTS)
  max_agents?: number;
}

@ValidateModel(boardCreateRule)
export class BoardCreate extends BoardOptionalFields {
  @ApiProperty({ description: 'Not trimmed; may be blank.' })
  @IsDefined()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  name!: string;

  @ApiProperty({ description: 'Free text: no format or uniqueness check.' })
  @IsDefined()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  slug!: string;

  @ApiProperty({
    type: String,
    format: 'uuid',
    description: 'Required: a gateway of the active organization.',
  })
  @IsOptional()
  @IsUuid()
  gateway_id?: string | null;
}

/**
 * Only the keys sent are applied. Nullable columns accept an explicit null (which clears them);
 * NOT NULL columns (name, slug, board_type, goal_confirmed, description, max_agents and the
 * workflow flags) reject it with a 422.
 */
@ValidateModel(boardUpdateRule)
export class BoardUpdate extends BoardOptionalFields {
  @ApiPropertyOptional()
  @IsOptionalNonNull()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  name?: string;

  @ApiPropertyOptional()
  @IsOptionalNonNull()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  slug?: string;

  @ApiPropertyOptional({ type: String, format: 'uuid', description: 'May not be null.' })
  @IsOptional()
  @IsUuid()
  gateway_id?: string | null;
}

export class BoardListQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUuid()
  gateway_id?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUuid()
  board_group_id?: string;
}
