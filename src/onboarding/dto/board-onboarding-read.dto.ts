import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  IsDate,
  IsDefined,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  ValidateBy,
  ValidateNested,
} from 'class-validator';
import {
  BoundedJson,
  MaxChars,
  parseIsoDateTime,
  ToDate,
  ValidateModel,
} from '../../common/validation/decorators';
import { GOAL_RULE_TEXT, lacksGoal } from '../../boards/dto/board.dto';
import { BOARD_TYPE_GOAL } from '../../boards/entities/board.entity';
import { MAX_LENGTH } from '../../common/validation/limits';
import type {
  BoardOnboardingSession,
  OnboardingMessage,
} from '../entities/board-onboarding-session.entity';

/** Enumerations of the lead-agent draft (contract §6). */
export const AUTONOMY_LEVELS = ['ask_first', 'balanced', 'autonomous'] as const;
export const VERBOSITY_LEVELS = ['concise', 'balanced', 'detailed'] as const;
export const OUTPUT_FORMATS = ['bullets', 'mixed', 'narrative'] as const;
export const UPDATE_CADENCES = ['asap', 'hourly', 'daily', 'weekly'] as const;
export const ONBOARDING_BOARD_TYPES = ['goal', 'general'] as const;

export type AutonomyLevel = (typeof AUTONOMY_LEVELS)[number];
export type VerbosityLevel = (typeof VERBOSITY_LEVELS)[number];
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export type UpdateCadence = (typeof UPDATE_CADENCES)[number];

/** Bounds of the onboarding payloads (upstream sets none). */
export const ONBOARDING_LIMITS = {
  /** Keys of a drafted identity profile. */
  identityProfileKeys: 32,
  /** One identity profile value (a role, a style, an emoji...). */
  identityProfileValue: 1000,
} as const;

/** The goal rule of the completion and confirm bodies: a goal board states what and how measured. */
export function goalRule(model: {
  board_type?: unknown;
  objective?: unknown;
  success_metrics?: unknown;
}): string | null {
  return model.board_type === BOARD_TYPE_GOAL && lacksGoal(model) ? GOAL_RULE_TEXT : null;
}

/** Trims a string; a blank one becomes null. Other values are left for the type validators. */
export function TrimToNull(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => {
    if (typeof value !== 'string') return value;
    const trimmed = value.trim();
    return trimmed === '' ? null : trimmed;
  });
}

/** An optional, nullable string: trimmed, blank → null, bounded. */
function OptionalTrimmedText(max: number): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({ type: String, nullable: true }),
    TrimToNull(),
    IsOptional(),
    IsString(),
    MaxChars(max),
  );
}

/** `Input should be 'a', 'b' or 'c'` (pydantic's literal message). */
function literalMessage(values: readonly string[]): string {
  const quoted = values.map((value) => `'${value}'`);
  return `Input should be ${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}

/** An optional enum field of the lead draft: trimmed, blank → null, else one of `values`. */
function OptionalChoice(values: readonly string[]): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({ enum: values, nullable: true, type: String }),
    TrimToNull(),
    IsOptional(),
    IsIn(values, { message: literalMessage(values) }),
  );
}

/**
 * `{str: str}`: keys and values trimmed, blank pairs dropped, an empty result is null.
 * Non-string values stay, so the validator reports them.
 */
function normalizeIdentityProfile(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [rawKey, rawValue] of Object.entries(value as Record<string, unknown>)) {
    const key = rawKey.trim();
    const item = typeof rawValue === 'string' ? rawValue.trim() : rawValue;
    if (key === '' || item === '') continue;
    out[key] = item;
  }
  return Object.keys(out).length === 0 ? null : out;
}

function isBoundedStringMap(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (typeof value !== 'object' || Array.isArray(value)) return true; // IsObject reports it
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > ONBOARDING_LIMITS.identityProfileKeys) return false;
  return entries.every(
    ([key, item]) =>
      typeof item === 'string' &&
      key.length <= MAX_LENGTH.keyword &&
      item.length <= ONBOARDING_LIMITS.identityProfileValue,
  );
}

export class BoardOnboardingUserProfile {
  @OptionalTrimmedText(MAX_LENGTH.name)
  preferred_name?: string | null;

  @OptionalTrimmedText(MAX_LENGTH.shortText)
  pronouns?: string | null;

  @OptionalTrimmedText(MAX_LENGTH.shortText)
  timezone?: string | null;

  @OptionalTrimmedText(MAX_LENGTH.longText)
  notes?: string | null;

  @OptionalTrimmedText(MAX_LENGTH.longText)
  context?: string | null;
}

export class BoardOnboardingLeadAgentDraft {
  @ApiPropertyOptional({ type: String, nullable: true, description: 'Stripped; not blank' })
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value))
  @IsOptional()
  @IsString()
  @ValidateBy({
    name: 'isNotEmpty',
    validator: { validate: (value: unknown) => typeof value !== 'string' || value.length > 0 },
  })
  @MaxChars(MAX_LENGTH.name)
  name?: string | null;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    nullable: true,
    description: `Keys and values stripped, blank pairs dropped; at most ${ONBOARDING_LIMITS.identityProfileKeys} keys`,
  })
  @Transform(({ value }: { value: unknown }) => normalizeIdentityProfile(value))
  @IsOptional()
  @IsObject()
  @ValidateBy({
    name: 'stringMap',
    validator: {
      validate: isBoundedStringMap,
      defaultMessage: () =>
        `identity_profile maps at most ${ONBOARDING_LIMITS.identityProfileKeys} keys (≤ ${MAX_LENGTH.keyword} characters) to strings (≤ ${ONBOARDING_LIMITS.identityProfileValue} characters)`,
    },
  })
  identity_profile?: Record<string, string> | null;

  @OptionalChoice(AUTONOMY_LEVELS)
  autonomy_level?: AutonomyLevel | null;

  @OptionalChoice(VERBOSITY_LEVELS)
  verbosity?: VerbosityLevel | null;

  @OptionalChoice(OUTPUT_FORMATS)
  output_format?: OutputFormat | null;

  @OptionalChoice(UPDATE_CADENCES)
  update_cadence?: UpdateCadence | null;

  @OptionalTrimmedText(MAX_LENGTH.longText)
  custom_instructions?: string | null;
}

/** The goal fields the completion and the confirm bodies share (contract §6). */
export abstract class OnboardingGoalFields {
  @ApiProperty({ example: 'goal', description: 'goal or general' })
  @IsDefined()
  @IsString()
  @MaxChars(MAX_LENGTH.keyword)
  board_type!: string;

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

  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'YYYY-MM-DD (midnight UTC) or a full date-time',
  })
  @IsOptional()
  @ToDate()
  @IsDate()
  target_date?: Date | null;
}

/** The agent's completion payload (the `Complete` branch of the agent update). */
@ValidateModel(goalRule)
export class BoardOnboardingAgentComplete extends OnboardingGoalFields {
  @ApiProperty({ enum: ['complete'], type: String })
  @IsDefined()
  @IsIn(['complete'], { message: "Input should be 'complete'" })
  status!: 'complete';

  @ApiPropertyOptional({ type: () => BoardOnboardingUserProfile, nullable: true })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => BoardOnboardingUserProfile)
  user_profile?: BoardOnboardingUserProfile | null;

  @ApiPropertyOptional({ type: () => BoardOnboardingLeadAgentDraft, nullable: true })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => BoardOnboardingLeadAgentDraft)
  lead_agent?: BoardOnboardingLeadAgentDraft | null;
}

export class BoardOnboardingMessageRead {
  @ApiProperty({ enum: ['user', 'assistant'], type: String }) role!: 'user' | 'assistant';
  @ApiProperty() content!: string;
  @ApiProperty({ format: 'date-time' }) timestamp!: string;
}

/** A user profile as the response shows it: every key, unset ones null. */
export class BoardOnboardingUserProfileRead {
  @ApiProperty({ type: String, nullable: true }) preferred_name!: string | null;
  @ApiProperty({ type: String, nullable: true }) pronouns!: string | null;
  @ApiProperty({ type: String, nullable: true }) timezone!: string | null;
  @ApiProperty({ type: String, nullable: true }) notes!: string | null;
  @ApiProperty({ type: String, nullable: true }) context!: string | null;
}

/** A lead draft as the response shows it: every key, unset ones null. */
export class BoardOnboardingLeadAgentDraftRead {
  @ApiProperty({ type: String, nullable: true }) name!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, nullable: true })
  identity_profile!: Record<string, string> | null;
  @ApiProperty({ enum: AUTONOMY_LEVELS, type: String, nullable: true })
  autonomy_level!: AutonomyLevel | null;
  @ApiProperty({ enum: VERBOSITY_LEVELS, type: String, nullable: true })
  verbosity!: VerbosityLevel | null;
  @ApiProperty({ enum: OUTPUT_FORMATS, type: String, nullable: true })
  output_format!: OutputFormat | null;
  @ApiProperty({ enum: UPDATE_CADENCES, type: String, nullable: true })
  update_cadence!: UpdateCadence | null;
  @ApiProperty({ type: String, nullable: true }) custom_instructions!: string | null;
}

/** The stored draft re-serialised through the Complete model: every key, unset ones null. */
export class BoardOnboardingAgentCompleteRead {
  @ApiProperty({ enum: ['complete'], type: String }) status!: 'complete';
  @ApiProperty() board_type!: string;
  @ApiProperty({ type: String, nullable: true }) objective!: string | null;
  @ApiProperty({ type: Object, nullable: true, additionalProperties: true })
  success_metrics!: Record<string, unknown> | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) target_date!: string | null;
  @ApiProperty({ type: () => BoardOnboardingUserProfileRead, nullable: true })
  user_profile!: BoardOnboardingUserProfileRead | null;
  @ApiProperty({ type: () => BoardOnboardingLeadAgentDraftRead, nullable: true })
  lead_agent!: BoardOnboardingLeadAgentDraftRead | null;
}

export class BoardOnboardingRead {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) board_id!: string;
  @ApiProperty({ description: 'The gateway main session the conversation runs in' })
  session_key!: string;
  @ApiProperty({ enum: ['active', 'completed', 'confirmed'], type: String }) status!: string;
  @ApiProperty({ type: [BoardOnboardingMessageRead], nullable: true })
  messages!: BoardOnboardingMessageRead[] | null;
  @ApiProperty({ type: () => BoardOnboardingAgentCompleteRead, nullable: true })
  draft_goal!: BoardOnboardingAgentCompleteRead | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function choice<T extends string>(values: readonly T[], value: unknown): T | null {
  return typeof value === 'string' && (values as readonly string[]).includes(value)
    ? (value as T)
    : null;
}

/** A stored timestamp in the API's format (ISO-8601 UTC with `Z`); unparsable text as it is. */
function isoTimestamp(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const parsed = parseIsoDateTime(value);
  return parsed ? parsed.toISOString() : value;
}

function stringMap(value: unknown): Record<string, string> | null {
  const record = asRecord(value);
  if (!record) return null;
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(record)) if (typeof item === 'string') out[key] = item;
  return Object.keys(out).length === 0 ? null : out;
}

export function toUserProfileRead(value: unknown): BoardOnboardingUserProfileRead | null {
  const record = asRecord(value);
  if (!record) return null;
  return {
    preferred_name: text(record.preferred_name),
    pronouns: text(record.pronouns),
    timezone: text(record.timezone),
    notes: text(record.notes),
    context: text(record.context),
  };
}

export function toLeadAgentDraftRead(value: unknown): BoardOnboardingLeadAgentDraftRead | null {
  const record = asRecord(value);
  if (!record) return null;
  return {
    name: text(record.name),
    identity_profile: stringMap(record.identity_profile),
    autonomy_level: choice(AUTONOMY_LEVELS, record.autonomy_level),
    verbosity: choice(VERBOSITY_LEVELS, record.verbosity),
    output_format: choice(OUTPUT_FORMATS, record.output_format),
    update_cadence: choice(UPDATE_CADENCES, record.update_cadence),
    custom_instructions: text(record.custom_instructions),
  };
}

/** A stored draft (the completion payload, nulls omitted) with every key of the Complete model. */
export function toDraftGoalRead(value: unknown): BoardOnboardingAgentCompleteRead | null {
  const record = asRecord(value);
  if (!record) return null;
  return {
    status: 'complete',
    board_type: text(record.board_type) ?? '',
    objective: text(record.objective),
    success_metrics: asRecord(record.success_metrics),
    target_date: isoTimestamp(record.target_date),
    user_profile: toUserProfileRead(record.user_profile),
    lead_agent: toLeadAgentDraftRead(record.lead_agent),
  };
}

function toMessageRead(message: OnboardingMessage): BoardOnboardingMessageRead {
  return {
    role: message.role,
    content: message.content,
    timestamp: isoTimestamp(message.timestamp) ?? '',
  };
}

/** The session as the API shows it (pure). */
export function toBoardOnboardingRead(session: BoardOnboardingSession): BoardOnboardingRead {
  return {
    id: session.id,
    board_id: session.boardId,
    session_key: session.sessionKey,
    status: session.status,
    messages: Array.isArray(session.messages) ? session.messages.map(toMessageRead) : null,
    draft_goal: toDraftGoalRead(session.draftGoal),
    created_at: session.createdAt.toISOString(),
    updated_at: session.updatedAt.toISOString(),
  };
}
