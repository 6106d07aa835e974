import { ApiProperty } from '@nestjs/swagger';
import { AgentRead } from '../../agents/dto/agent.dto';
import { BoardMemoryRead } from '../../board-memory/dto/board-memory-read.dto';
import { BoardRead } from './board.dto';

/** A tag on a task card (upstream's TagRef). We keep no tags yet: lists are always empty. */
export class TagRef {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() slug!: string;
  @ApiProperty() color!: string;
}

/**
 * A task as the board page shows it (upstream's TaskCardRead): the task row, its assignee's name
 * and its approval counts. Tags, custom fields and dependencies are not kept by this service;
 * they are their empty values.
 */
export class TaskCardRead {
  @ApiProperty() title!: string;
  @ApiProperty({ type: String, nullable: true }) description!: string | null;
  @ApiProperty({ enum: ['inbox', 'in_progress', 'review', 'done'] }) status!: string;
  @ApiProperty() priority!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) due_at!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true })
  assigned_agent_id!: string | null;
  @ApiProperty({ type: [String], description: 'Always empty: no task dependencies yet' })
  depends_on_task_ids!: string[];
  @ApiProperty({ type: [String], description: 'Always empty: no tags yet' }) tag_ids!: string[];
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) board_id!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true })
  created_by_user_id!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  in_progress_at!: string | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
  @ApiProperty({ type: [String], description: 'Always empty: no task dependencies yet' })
  blocked_by_task_ids!: string[];
  @ApiProperty({ description: 'Always false: no task dependencies yet' }) is_blocked!: boolean;
  @ApiProperty({ type: [TagRef], description: 'Always empty: no tags yet' }) tags!: TagRef[];
  @ApiProperty({
    type: Object,
    nullable: true,
    additionalProperties: true,
    description: 'Always empty: no custom fields yet',
  })
  custom_field_values!: Record<string, unknown> | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: "The assigned agent's name (null when unassigned)",
  })
  assignee!: string | null;
  @ApiProperty({ type: 'integer' }) approvals_count!: number;
  @ApiProperty({ type: 'integer' }) approvals_pending_count!: number;
}

/** An approval (upstream's ApprovalRead); `task_ids` / `task_titles` name its task, if any. */
export class ApprovalRead {
  @ApiProperty() action_type!: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) task_id!: string | null;
  @ApiProperty({ type: [String] }) task_ids!: string[];
  @ApiProperty({ type: Object, nullable: true, additionalProperties: true })
  payload!: Record<string, unknown> | null;
  @ApiProperty({ type: 'number', minimum: 0, maximum: 100 }) confidence!: number;
  @ApiProperty({ type: Object, nullable: true, additionalProperties: { type: 'number' } })
  rubric_scores!: Record<string, unknown> | null;
  @ApiProperty({ enum: ['pending', 'approved', 'rejected'] }) status!: string;
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) board_id!: string;
  @ApiProperty({ type: [String] }) task_titles!: string[];
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) agent_id!: string | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) resolved_at!: string | null;
}

/** Everything the board page shows, in one response (upstream's BoardSnapshot). */
export class BoardSnapshot {
  @ApiProperty({ type: BoardRead }) board!: BoardRead;
  @ApiProperty({ type: [TaskCardRead], description: 'Newest first' }) tasks!: TaskCardRead[];
  @ApiProperty({ type: [AgentRead], description: 'Newest first; computed status' })
  agents!: AgentRead[];
  @ApiProperty({ type: [ApprovalRead], description: 'The newest, newest first' })
  approvals!: ApprovalRead[];
  @ApiProperty({
    type: [BoardMemoryRead],
    description: 'The latest chat messages (board memory tagged chat), oldest first',
  })
  chat_messages!: BoardMemoryRead[];
  @ApiProperty({ type: 'integer', description: 'Pending approvals of the board (all of them)' })
  pending_approvals_count!: number;
}
