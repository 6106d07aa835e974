import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString } from 'class-validator';
import { PageQuery } from '../../common/pagination/pagination';
import { AbsentWhenNullish } from '../../common/validation/decorators';
import { IsUuid, MaxChars } from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import type { ActivityEvent } from '../entities/activity-event.entity';

/** `GET /activity` filters: `null` / empty values are absent (the frontend sends `null`). */
export class ActivityListQuery extends PageQuery {
  @ApiPropertyOptional({ type: String, format: 'uuid', nullable: true })
  @AbsentWhenNullish()
  @IsOptional()
  @IsUuid()
  board_id?: string;

  @ApiPropertyOptional({ type: String, format: 'uuid', nullable: true })
  @AbsentWhenNullish()
  @IsOptional()
  @IsUuid()
  agent_id?: string;

  @ApiPropertyOptional({ type: String, nullable: true, description: 'Exact event type' })
  @AbsentWhenNullish()
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.keyword)
  event_type?: string;
}

export class ActivityEventRead {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() event_type!: string;
  @ApiProperty({ type: String, nullable: true }) message!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) agent_id!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) task_id!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) board_id!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The frontend page the event links to: `board` (with a board) or `agent`',
  })
  route_name!: string | null;
  @ApiProperty({
    type: Object,
    nullable: true,
    additionalProperties: { type: 'string' },
    description: "That page's parameters: `boardId` (+ `taskId`), or `agentId`",
  })
  route_params!: Record<string, string> | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
}

export class ActivityEventPage {
  @ApiProperty({ type: [ActivityEventRead] }) items!: ActivityEventRead[];
  @ApiProperty() total!: number;
  @ApiProperty() limit!: number;
  @ApiProperty() offset!: number;
}

/** Where the frontend links an event: its board page (and task), else its agent's page. */
function routeOf(event: ActivityEvent): Pick<ActivityEventRead, 'route_name' | 'route_params'> {
  if (event.boardId) {
    return {
      route_name: 'board',
      route_params: {
        boardId: event.boardId,
        ...(event.taskId ? { taskId: event.taskId } : {}),
      },
    };
  }
  if (event.agentId) return { route_name: 'agent', route_params: { agentId: event.agentId } };
  return { route_name: null, route_params: null };
}

export function toActivityEventRead(event: ActivityEvent): ActivityEventRead {
  return {
    id: event.id,
    event_type: event.eventType,
    message: event.message,
    agent_id: event.agentId,
    task_id: event.taskId,
    board_id: event.boardId,
    ...routeOf(event),
    created_at: event.createdAt.toISOString(),
  };
}
