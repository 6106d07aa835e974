import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Agent } from '../../agents/entities/agent.entity';
import { Board } from '../../boards/entities/board.entity';
import { CreatedAt } from '../../database/columns';
import { Organization } from '../../organizations/entities/organization.entity';
import { Task } from '../../tasks/entities/task.entity';

@Entity('activity_events')
@Index('ix_activity_events_board_id_created_at', ['boardId', 'createdAt'])
@Index('ix_activity_events_organization_id_created_at', ['organizationId', 'createdAt'])
export class ActivityEvent {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** Every event records its organization, so feeds filter by tenant without joins. */
  @Column({ type: 'uuid' })
  organizationId!: string;

  @ManyToOne(() => Organization, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_id' })
  organization?: Organization;

  @Index('ix_activity_events_event_type')
  @Column({ type: 'varchar' })
  eventType!: string;

  @Column({ type: 'text', nullable: true })
  message!: string | null;

  @Index('ix_activity_events_agent_id')
  @Column({ type: 'uuid', nullable: true })
  agentId!: string | null;

  @ManyToOne(() => Agent, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'agent_id' })
  agent?: Agent | null;

  @Index('ix_activity_events_task_id')
  @Column({ type: 'uuid', nullable: true })
  taskId!: string | null;

  @ManyToOne(() => Task, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'task_id' })
  task?: Task | null;

  /** The board the event concerns, when there is one (not in the upstream schema at 82425edd). */
  @Column({ type: 'uuid', nullable: true })
  boardId!: string | null;

  @ManyToOne(() => Board, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'board_id' })
  board?: Board | null;

  @CreatedAt()
  createdAt!: Date;
}
