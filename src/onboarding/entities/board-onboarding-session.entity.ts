import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Board } from '../../boards/entities/board.entity';
import { CreatedAt, UpdatedAt } from '../../database/columns';

export interface OnboardingMessage {
  role: 'user' | 'assistant';
  content: string;
  timestamp: string;
}

@Entity('board_onboarding_sessions')
export class BoardOnboardingSession {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_board_onboarding_sessions_board_id')
  @Column({ type: 'uuid' })
  boardId!: string;

  @ManyToOne(() => Board, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'board_id' })
  board?: Board;

  /** The gateway-main session key used for the conversation. */
  @Column({ type: 'varchar' })
  sessionKey!: string;

  @Index('ix_board_onboarding_sessions_status')
  @Column({ type: 'varchar', default: 'active' })
  status!: string;

  @Column({ type: 'jsonb', nullable: true })
  messages!: OnboardingMessage[] | null;

  @Column({ type: 'jsonb', nullable: true })
  draftGoal!: Record<string, unknown> | null;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
