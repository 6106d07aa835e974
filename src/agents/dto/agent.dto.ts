import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsObject, IsOptional, IsString, MinLength } from 'class-validator';
import { PageQuery } from '../../common/pagination/pagination';
import {
  AbsentWhenNullish,
  BoundedJson,
  IsUuid,
  MaxChars,
  NonEmptyString,
} from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import { OptionalBody } from '../../common/validation/request-validation.pipe';
import { Agent, AGENT_STATUS } from '../entities/agent.entity';

/** An agent not seen for this long is reported offline (contract §7.2). */
export const OFFLINE_AFTER_MS = 10 * 60 * 1000;

/**
 * The status the API reports: `updating`/`deleting` as stored; never seen → `provisioning`;
 * silent for over 10 minutes → `offline`; else as stored.
 */
export function computedStatus(
  agent: Pick<Agent, 'status' | 'lastSeenAt'>,
  now: Date = new Date(),
): string {
  if (agent.status === AGENT_STATUS.updating || agent.status === AGENT_STATUS.deleting) {
    return agent.status;
  }
  if (!agent.lastSeenAt) return AGENT_STATUS.provisioning;
  if (now.getTime() - agent.lastSeenAt.getTime() > OFFLINE_AFTER_MS) return AGENT_STATUS.offline;
  return agent.status;
}

export class AgentRead {
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) board_id!: string | null;
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'Computed: provisioning until first seen, offline after 10 min' })
  status!: string;
  @ApiProperty({ type: Object, nullable: true, additionalProperties: true })
  heartbeat_config!: Record<string, unknown> | null;
  @ApiProperty({ type: Object, nullable: true, additionalProperties: { type: 'string' } })
  identity_profile!: Record<string, string> | null;
  @ApiProperty({ type: String, nullable: true }) identity_template!: string | null;
  @ApiProperty({ type: String, nullable: true }) soul_template!: string | null;
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) gateway_id!: string;
  @ApiProperty() is_board_lead!: boolean;
  @ApiProperty() is_gateway_main!: boolean;
  @ApiProperty({ type: String, nullable: true }) openclaw_session_id!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) last_seen_at!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Why the last (re)provision failed; null after a success',
  })
  last_provision_error!: string | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

/** The token digests and provision_* bookkeeping are never exposed. */
export function toAgentRead(agent: Agent, now: Date = new Date()): AgentRead {
  return {
    board_id: agent.boardId,
    name: agent.name,
    status: computedStatus(agent, now),
    heartbeat_config: agent.heartbeatConfig,
    identity_profile: agent.identityProfile,
    identity_template: agent.identityTemplate,
    soul_template: agent.soulTemplate,
    id: agent.id,
    gateway_id: agent.gatewayId,
    is_board_lead: agent.isBoardLead,
    is_gateway_main: agent.boardId === null,
    openclaw_session_id: agent.openclawSessionId,
    last_seen_at: agent.lastSeenAt ? agent.lastSeenAt.toISOString() : null,
    last_provision_error: agent.lastProvisionError,
    created_at: agent.createdAt.toISOString(),
    updated_at: agent.updatedAt.toISOString(),
  };
}

/**
 * The statuses an agent may report about itself. `online` is what the workspace files tell it to
 * send and `busy` says it is working; every other stored status belongs to the engine
 * (`provisioning` until first seen, `updating`/`deleting` while the engine changes the agent, and
 * which freeze the computed status) or is computed (`offline`), so an agent claiming one of those
 * would hide its real state from users.
 */
export const AGENT_CLAIMABLE_STATUSES = ['online', 'busy'] as const;

/** Trimmed and lowercased; blank is "no status" (the heartbeat keeps or sets `online`). */
const normalizeClaimedStatus = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const status = value.trim().toLowerCase();
  return status === '' ? null : status;
};

/** A heartbeat's optional `status`: one of the statuses an agent may claim, or blank/absent. */
function ClaimedStatus(): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({
      type: String,
      nullable: true,
      enum: AGENT_CLAIMABLE_STATUSES,
      description:
        'Case-insensitive; blank or absent keeps the status (provisioning becomes online)',
    }),
    IsOptional(),
    Transform(normalizeClaimedStatus),
    IsString(),
    MaxChars(MAX_LENGTH.keyword),
    IsIn(AGENT_CLAIMABLE_STATUSES, {
      message: `Input should be ${AGENT_CLAIMABLE_STATUSES.map((s) => `'${s}'`).join(' or ')}`,
    }),
  );
}

/**
 * Body of an agent's own heartbeat (C3). Upstream still required `name` here although it is
 * ignored; later upstream dropped the body, so every field is optional and only `status` counts.
 */
@OptionalBody()
export class AgentSelfHeartbeat {
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Ignored: the caller heartbeats itself',
  })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  name?: string | null;

  @ApiPropertyOptional({ type: String, format: 'uuid', nullable: true, description: 'Ignored' })
  @IsOptional()
  @IsUuid()
  board_id?: string | null;

  @ClaimedStatus()
  status?: string | null;
}

export class AgentPage {
  @ApiProperty({ type: [AgentRead] }) items!: AgentRead[];
  @ApiProperty() total!: number;
  @ApiProperty() limit!: number;
  @ApiProperty() offset!: number;
}

/**
 * `identity_profile` as upstream normalises it: keys trimmed (blank keys dropped), null values
 * dropped, a list becomes the comma+space join of its trimmed non-empty items, anything else its
 * trimmed text; empty values and an empty result are dropped (null). A non-object is left for
 * the type validator to refuse.
 */
export function normalizeIdentityProfile(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object' || Array.isArray(value)) return value;
  const profile: Record<string, string> = {};
  for (const [rawKey, raw] of Object.entries(value as Record<string, unknown>)) {
    const key = rawKey.trim();
    if (!key || raw === null || raw === undefined) continue;
    const text = Array.isArray(raw)
      ? raw
          .filter((item) => item !== null && item !== undefined)
          .map((item) => textOf(item).trim())
          .filter((item) => item !== '')
          .join(', ')
      : textOf(raw).trim();
    if (text) profile[key] = text;
  }
  return Object.keys(profile).length > 0 ? profile : null;
}

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? '';
}

/** Template text: trimmed, blank is null. */
const trimmedOrNull = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  return value.trim() === '' ? null : value.trim();
};

/** The optional fields AgentCreate and AgentUpdate share. */
abstract class AgentProfileFields {
  @ApiPropertyOptional({ type: Object, nullable: true, additionalProperties: true })
  @IsOptional()
  @IsObject()
  @BoundedJson()
  heartbeat_config?: Record<string, unknown> | null;

  @ApiPropertyOptional({
    type: Object,
    nullable: true,
    additionalProperties: true,
    description: 'Values become text (lists joined with ", "); blank keys and values dropped',
  })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => normalizeIdentityProfile(value))
  @IsObject()
  @BoundedJson()
  identity_profile?: Record<string, string> | null;

  @ApiPropertyOptional({ type: String, nullable: true, description: 'Trimmed; blank is null' })
  @IsOptional()
  @Transform(trimmedOrNull)
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  identity_template?: string | null;

  @ApiPropertyOptional({ type: String, nullable: true, description: 'Trimmed; blank is null' })
  @IsOptional()
  @Transform(trimmedOrNull)
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  soul_template?: string | null;
}

/** A3 / C2 body. */
export class AgentCreate extends AgentProfileFields {
  @ApiPropertyOptional({
    type: String,
    format: 'uuid',
    nullable: true,
    description: 'Required for users; a lead creates on its own board',
  })
  @IsOptional()
  @IsUuid()
  board_id?: string | null;

  @ApiProperty({ description: 'Unique (ignoring case) on the board and on its gateway' })
  @NonEmptyString()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  name!: string;

  @ApiPropertyOptional({
    default: 'provisioning',
    description: 'Ignored: a new agent always starts provisioning',
  })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.keyword)
  status?: string;
}

/** A5 body: only the fields present count. */
export class AgentUpdate extends AgentProfileFields {
  @ApiPropertyOptional({ type: String, format: 'uuid', nullable: true })
  @IsOptional()
  @IsUuid()
  board_id?: string | null;

  @ApiPropertyOptional({
    type: Boolean,
    nullable: true,
    description: "true: make it its gateway's main agent; false (with board_id): a board agent",
  })
  @IsOptional()
  @IsBoolean()
  is_gateway_main?: boolean | null;

  @ApiPropertyOptional({ type: String, nullable: true, description: 'null leaves it unchanged' })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value))
  @IsString()
  @MinLength(1, { message: 'String should have at least 1 character' })
  @MaxChars(MAX_LENGTH.name)
  name?: string | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Refused (403): the status is controlled by agent heartbeats',
  })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.keyword)
  status?: string | null;
}

export class AgentUpdateQuery {
  @ApiPropertyOptional({ default: false, description: 'Re-provision (BOOTSTRAP.md included)' })
  @AbsentWhenNullish()
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    value === 'true' || value === '1' ? true : value === 'false' || value === '0' ? false : value,
  )
  @IsBoolean()
  force?: boolean;
}

/** `?board_id=&gateway_id=` with paging; `null` or blank values are absent. */
export class AgentListQuery extends PageQuery {
  @ApiPropertyOptional({ type: String, format: 'uuid' })
  @AbsentWhenNullish()
  @IsOptional()
  @IsUuid()
  board_id?: string;

  @ApiPropertyOptional({ type: String, format: 'uuid' })
  @AbsentWhenNullish()
  @IsOptional()
  @IsUuid()
  gateway_id?: string;
}

/** C1: `?board_id=` with paging. */
export class AgentAgentsQuery extends PageQuery {
  @ApiPropertyOptional({ type: String, format: 'uuid' })
  @AbsentWhenNullish()
  @IsOptional()
  @IsUuid()
  board_id?: string;
}

/** A6 body (optional). */
@OptionalBody()
export class AgentHeartbeat {
  @ClaimedStatus()
  status?: string | null;
}

/** A7 body: the agent named `name` (on `board_id`) heartbeats, created when missing. */
export class AgentHeartbeatCreate extends AgentHeartbeat {
  @ApiProperty({ description: 'Matched ignoring case' })
  @NonEmptyString()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  name!: string;

  @ApiPropertyOptional({ type: String, format: 'uuid', nullable: true })
  @IsOptional()
  @IsUuid()
  board_id?: string | null;
}
