import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Agent } from '../../agents/entities/agent.entity';
import { Board } from '../../boards/entities/board.entity';
import { CreatedAt, UpdatedAt } from '../../database/columns';
import { User } from '../../users/entities/user.entity';

@Entity('tasks')
export class Task {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_tasks_board_id')
  @Column({ type: 'uuid', nullable: true })
  boardId!: string | null;

  @ManyToOne(() => Board, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'board_id' })
  board?: Board | null;

  @Column({ type: 'varchar' })
  title!: string;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  @Index('ix_tasks_status')
  @Column({ type: 'varchar', default: 'inbox' })
  status!: string;

  @Index('ix_tasks_priority')
  @Column({ type: 'varchar', default: 'medium' })
  priority!: string;

  @Column({ type: 'timestamptz', nullable: true })
  dueAt!: Date | null;

  @Column({ type: 'timestamptz', nullable: true })
  inProgressAt!: Date | null;

  @Index('ix_tasks_created_by_user_id')
  @Column({ type: 'uuid', nullable: true })
  createdByUserId!: string | null;

  @ManyToOne(() => User, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'created_by_user_id' })
  createdBy?: User | null;

  @Index('ix_tasks_assigned_agent_id')
  @Column({ type: 'uuid', nullable: true })
  assignedAgentId!: string | null;

  @ManyToOne(() => Agent, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'assigned_agent_id' })
  assignedAgent?: Agent | null;

  @Column({ type: 'boolean', default: false })
  autoCreated!: boolean;

  @Column({ type: 'varchar', nullable: true })
  autoReason!: string | null;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
