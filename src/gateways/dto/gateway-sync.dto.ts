import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsOptional } from 'class-validator';
import { IsUuid } from '../../common/validation/decorators';

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on', 't', 'y']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off', 'f', 'n']);

/**
 * A query flag as pydantic reads it (true/false, 1/0, yes/no, on/off). The frontend's client
 * sends absent optional values as the text `null`: that and empty mean "absent" (the default).
 */
function QueryFlag(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => {
    if (typeof value !== 'string') return value;
    const word = value.trim().toLowerCase();
    if (word === '' || word === 'null') return undefined;
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    return value;
  });
}

const nullMeansAbsent = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && ['', 'null'].includes(value.trim().toLowerCase())
    ? undefined
    : value;

/** POST /gateways/{id}/templates/sync query (contract §1.2 G5 plus today's upstream flags). */
export class GatewayTemplatesSyncQuery {
  @ApiPropertyOptional({ default: true, description: "Also sync the gateway's main agent." })
  @IsOptional()
  @QueryFlag()
  @IsBoolean()
  include_main: boolean = true;

  @ApiPropertyOptional({ default: false, description: 'Only the boards’ lead agents.' })
  @IsOptional()
  @QueryFlag()
  @IsBoolean()
  lead_only: boolean = false;

  @ApiPropertyOptional({ default: false, description: "Reset each agent's session after." })
  @IsOptional()
  @QueryFlag()
  @IsBoolean()
  reset_sessions: boolean = false;

  @ApiPropertyOptional({
    default: false,
    description:
      "Issue a new token to agents whose workspace token is missing or is not the agent's.",
  })
  @IsOptional()
  @QueryFlag()
  @IsBoolean()
  rotate_tokens: boolean = false;

  @ApiPropertyOptional({ default: false, description: 'Write BOOTSTRAP.md again.' })
  @IsOptional()
  @QueryFlag()
  @IsBoolean()
  force_bootstrap: boolean = false;

  @ApiPropertyOptional({
    default: false,
    description: 'Also rewrite the agent-editable files (USER.md, MEMORY.md), replacing edits.',
  })
  @IsOptional()
  @QueryFlag()
  @IsBoolean()
  overwrite: boolean = false;

  @ApiPropertyOptional({ format: 'uuid', description: 'Only this board (of this gateway).' })
  @IsOptional()
  @Transform(nullMeansAbsent)
  @IsUuid()
  board_id?: string;

  @ApiPropertyOptional({
    default: false,
    description:
      'Stream Server-Sent Events (also with `Accept: text/event-stream`): one `agent` event ' +
      'per agent, then a `result` event carrying the result object.',
  })
  @IsOptional()
  @QueryFlag()
  @IsBoolean()
  stream: boolean = false;
}

export class GatewayTemplatesSyncError {
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) agent_id!: string | null;
  @ApiProperty({ type: String, nullable: true }) agent_name!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) board_id!: string | null;
  @ApiProperty() message!: string;
}

export class GatewayTemplatesSyncResult {
  @ApiProperty({ format: 'uuid' }) gateway_id!: string;
  @ApiProperty() include_main!: boolean;
  @ApiProperty() reset_sessions!: boolean;
  @ApiProperty() agents_updated!: number;
  @ApiProperty() agents_skipped!: number;
  @ApiProperty() main_updated!: boolean;
  @ApiProperty({ type: [GatewayTemplatesSyncError] }) errors!: GatewayTemplatesSyncError[];
  @ApiProperty({
    description:
      'Agents not attempted because the gateway stopped answering or the client went away ' +
      '(each also has an entry in errors and counts as skipped).',
  })
  agents_not_reached!: number;
}

/** One SSE `agent` event of a streamed sync. */
export class GatewayTemplatesSyncEvent {
  @ApiProperty({ format: 'uuid' }) agent_id!: string;
  @ApiProperty() agent_name!: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) board_id!: string | null;
  @ApiProperty() ok!: boolean;
  @ApiProperty({ type: String, nullable: true }) error!: string | null;
  @ApiProperty({
    enum: ['updated', 'skipped', 'failed', 'not_reached'],
    description: 'skipped: paused board or unreadable/mismatched token (see error)',
  })
  outcome!: 'updated' | 'skipped' | 'failed' | 'not_reached';
}

export class GatewayDeleteResult {
  @ApiProperty() ok!: boolean;
  @ApiProperty({
    description:
      'Whether the main agent was removed from the gateway (true when it had none). The rows ' +
      'are deleted either way.',
  })
  main_agent_removed!: boolean;
  @ApiProperty({ type: String, nullable: true, description: 'What could not be removed, and why' })
  warning!: string | null;
}
