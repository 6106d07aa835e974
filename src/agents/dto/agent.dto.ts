import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsOptional, IsString } from 'class-validator';
import { IsUuid, MaxChars } from '../../common/validation/decorators';
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

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    enum: AGENT_CLAIMABLE_STATUSES,
    description: 'Case-insensitive; blank or absent keeps the status (provisioning becomes online)',
  })
  @IsOptional()
  @Transform(normalizeClaimedStatus)
  @IsString()
  @MaxChars(MAX_LENGTH.keyword)
  @IsIn(AGENT_CLAIMABLE_STATUSES, {
    message: `Input should be ${AGENT_CLAIMABLE_STATUSES.map((s) => `'${s}'`).join(' or ')}`,
  })
  status?: string | null;
}
