import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { toAgentRead } from '../agents/dto/agent.dto';
import { Agent } from '../agents/entities/agent.entity';
import { Approval } from '../approvals/entities/approval.entity';
import { toBoardMemoryRead } from '../board-memory/dto/board-memory-read.dto';
import { BoardMemory } from '../board-memory/entities/board-memory.entity';
import { Task } from '../tasks/entities/task.entity';
import { toBoardRead } from './dto/board.dto';
import { ApprovalRead, BoardSnapshot, TaskCardRead } from './dto/board-snapshot.dto';
import type { Board } from './entities/board.entity';

/** The newest tasks the board page gets (upstream sends all; ours is bounded). */
export const SNAPSHOT_MAX_TASKS = 1000;
/** The newest agents the board page gets (upstream sends all; ours is bounded). */
export const SNAPSHOT_MAX_AGENTS = 500;
/** The newest approvals the board page gets (as upstream). */
export const SNAPSHOT_MAX_APPROVALS = 200;
/** The latest chat messages the board page gets (as upstream), sent oldest first. */
export const SNAPSHOT_MAX_CHAT_MESSAGES = 200;

const APPROVAL_PENDING = 'pending';

/**
 * GET /boards/{id}/snapshot: the board page in one response. Five reads in one REPEATABLE READ
 * (read-only) transaction (so the lists and counts agree), whatever the number of tasks, agents or
 * approvals: the tasks carry their assignee's name and approval counts from the same query.
 */
@Injectable()
export class BoardSnapshotService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  snapshot(board: Board): Promise<BoardSnapshot> {
    return this.inReadOnlySnapshot(async (manager) => {
      const tasks = await this.taskCards(manager, board);
      const agents = await manager
        .createQueryBuilder(Agent, 'agent')
        .where('agent.organization_id = :organizationId AND agent.board_id = :boardId', {
          organizationId: board.organizationId,
          boardId: board.id,
        })
        .orderBy('agent.created_at', 'DESC')
        .addOrderBy('agent.id', 'DESC')
        .limit(SNAPSHOT_MAX_AGENTS)
        .getMany();
      const approvals = await this.approvals(manager, board);
      const pending = await manager
        .createQueryBuilder(Approval, 'approval')
        .where('approval.board_id = :boardId AND approval.status = :pending', {
          boardId: board.id,
          pending: APPROVAL_PENDING,
        })
        .getCount();
      const chat = await manager
        .createQueryBuilder(BoardMemory, 'memory')
        .where('memory.board_id = :boardId AND memory.is_chat', { boardId: board.id })
        // Blank rows cannot be shown as a message (upstream filters them the same way).
        .andWhere('length(trim(memory.content)) > 0')
        .orderBy('memory.created_at', 'DESC')
        .addOrderBy('memory.id', 'DESC')
        .limit(SNAPSHOT_MAX_CHAT_MESSAGES)
        .getMany();
      const now = new Date();
      return {
        board: toBoardRead(board),
        tasks,
        agents: agents.map((agent) => toAgentRead(agent, now)),
        approvals,
        chat_messages: chat.reverse().map(toBoardMemoryRead),
        pending_approvals_count: pending,
      };
    });
  }

  /**
   * `read` in one REPEATABLE READ, READ ONLY transaction opened by a single statement (TypeORM's
   * transaction() sends START TRANSACTION and SET TRANSACTION separately: a round trip more).
   */
  private async inReadOnlySnapshot<T>(read: (manager: EntityManager) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      try {
        const result = await read(runner.manager);
        await runner.query('COMMIT');
        return result;
      } catch (error) {
        await runner.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      await runner.release();
    }
  }

  /**
   * Newest first, each with its assignee's name and its approval counts (one query). Raw rows,
   * not entities: the board's largest list, and hydrating entities on top of the raw rows cost
   * more than the query itself.
   */
  private async taskCards(manager: EntityManager, board: Board): Promise<TaskCardRead[]> {
    const rows = await manager
      .createQueryBuilder(Task, 'task')
      .select('task.id', 'id')
      .addSelect('task.board_id', 'board_id')
      .addSelect('task.title', 'title')
      .addSelect('task.description', 'description')
      .addSelect('task.status', 'status')
      .addSelect('task.priority', 'priority')
      .addSelect('task.due_at', 'due_at')
      .addSelect('task.in_progress_at', 'in_progress_at')
      .addSelect('task.created_by_user_id', 'created_by_user_id')
      .addSelect('task.assigned_agent_id', 'assigned_agent_id')
      .addSelect('task.created_at', 'created_at')
      .addSelect('task.updated_at', 'updated_at')
      .leftJoin(
        Agent,
        'assignee',
        'assignee.id = task.assigned_agent_id AND assignee.organization_id = :organizationId',
        { organizationId: board.organizationId },
      )
      .addSelect('assignee.name', 'assignee_name')
      .leftJoin(
        (sub) =>
          sub
            .select('counted.task_id', 'task_id')
            .addSelect('count(*)::int', 'total')
            .addSelect(`count(*) FILTER (WHERE counted.status = :pending)::int`, 'pending')
            .from(Approval, 'counted')
            .where('counted.board_id = :boardId AND counted.task_id IS NOT NULL')
            .groupBy('counted.task_id'),
        'approval_counts',
        'approval_counts.task_id = task.id',
      )
      .addSelect('approval_counts.total', 'approvals_total')
      .addSelect('approval_counts.pending', 'approvals_pending')
      .where('task.board_id = :boardId')
      .setParameters({ boardId: board.id, pending: APPROVAL_PENDING })
      .orderBy('task.created_at', 'DESC')
      .addOrderBy('task.id', 'DESC')
      .limit(SNAPSHOT_MAX_TASKS)
      .getRawMany<TaskCardRow>();
    return rows.map(toTaskCard);
  }

  /** The newest approvals, newest first, with the title of the task each one names. */
  private async approvals(manager: EntityManager, board: Board): Promise<ApprovalRead[]> {
    const { raw, entities } = await manager
      .createQueryBuilder(Approval, 'approval')
      .leftJoin(Task, 'task', 'task.id = approval.task_id AND task.board_id = approval.board_id')
      .addSelect('task.title', 'task_title')
      .where('approval.board_id = :boardId', { boardId: board.id })
      .orderBy('approval.created_at', 'DESC')
      .addOrderBy('approval.id', 'DESC')
      .limit(SNAPSHOT_MAX_APPROVALS)
      .getRawAndEntities<{ approval_id: string; task_title: string | null }>();
    const titles = new Map(raw.map((row) => [row.approval_id, row.task_title]));
    return entities.map((approval) => toApprovalRead(approval, titles.get(approval.id) ?? null));
  }
}

/** A task row of the snapshot's task query (pg parses the timestamps into Dates). */
interface TaskCardRow {
  id: string;
  board_id: string | null;
  title: string;
  description: string | null;
  status: string;
  priority: string;
  due_at: Date | null;
  in_progress_at: Date | null;
  created_by_user_id: string | null;
  assigned_agent_id: string | null;
  created_at: Date;
  updated_at: Date;
  assignee_name: string | null;
  approvals_total: number | null;
  approvals_pending: number | null;
}

function toTaskCard(row: TaskCardRow): TaskCardRead {
  return {
    title: row.title,
    description: row.description,
    status: row.status,
    priority: row.priority,
    due_at: row.due_at ? row.due_at.toISOString() : null,
    assigned_agent_id: row.assigned_agent_id,
    depends_on_task_ids: [],
    tag_ids: [],
    id: row.id,
    board_id: row.board_id,
    created_by_user_id: row.created_by_user_id,
    in_progress_at: row.in_progress_at ? row.in_progress_at.toISOString() : null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    blocked_by_task_ids: [],
    is_blocked: false,
    tags: [],
    custom_field_values: {},
    assignee: row.assigned_agent_id ? (row.assignee_name ?? null) : null,
    approvals_count: row.approvals_total ?? 0,
    approvals_pending_count: row.approvals_pending ?? 0,
  };
}

/** `task_ids` / `task_titles` list the approval's one task (upstream links several; we keep one). */
function toApprovalRead(approval: Approval, taskTitle: string | null): ApprovalRead {
  return {
    action_type: approval.actionType,
    task_id: approval.taskId,
    task_ids: approval.taskId ? [approval.taskId] : [],
    payload: approval.payload,
    confidence: approval.confidence,
    rubric_scores: approval.rubricScores,
    status: approval.status,
    id: approval.id,
    board_id: approval.boardId,
    task_titles: approval.taskId && taskTitle !== null ? [taskTitle] : [],
    agent_id: approval.agentId,
    created_at: approval.createdAt.toISOString(),
    resolved_at: approval.resolvedAt ? approval.resolvedAt.toISOString() : null,
  };
}
