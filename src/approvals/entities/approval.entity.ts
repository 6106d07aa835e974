import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Agent } from '../../agents/entities/agent.entity';
import { Board } from '../../boards/entities/board.entity';
import { CreatedAt } from '../../database/columns';
import { Task } from '../../tasks/entities/task.entity';

@Entity('approvals')
export class Approval {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_approvals_board_id')
  @Column({ type: 'uuid' })
  boardId!: string;

  @ManyToOne(() => Board, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'board_id' })
  board?: Board;

  @Index('ix_approvals_task_id')
  @Column({ type: 'uuid', nullable: true })
  taskId!: string | null;

  @ManyToOne(() => Task, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'task_id' })
  task?: Task | null;

  @Index('ix_approvals_agent_id')
  @Column({ type: 'uuid', nullable: true })
  agentId!: string | null;

  @ManyToOne(() => Agent, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'agent_id' })
  agent?: Agent | null;

  @Column({ type: 'varchar' })
  actionType!: string;

  @Column({ type: 'jsonb', nullable: true })
  payload!: Record<string, unknown> | null;

  @Column({ type: 'integer' })
  confidence!: number;

  @Column({ type: 'jsonb', nullable: true })
  rubricScores!: Record<string, unknown> | null;

  @Index('ix_approvals_status')
  @Column({ type: 'varchar', default: 'pending' })
  status!: string;

  @CreatedAt()
  createdAt!: Date;

  @Column({ type: 'timestamptz', nullable: true })
  resolvedAt!: Date | null;
}
