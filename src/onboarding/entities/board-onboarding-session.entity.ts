import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Board } from '../../boards/entities/board.entity';
import { CreatedAt, UpdatedAt } from '../../database/columns';
import { Organization } from '../../organizations/entities/organization.entity';

export interface OnboardingMessage {
  role: 'user' | 'assistant';
  content: string;
  timestamp: string;
}

/** The session states (contract §6): no other transitions. */
export type OnboardingStatus = 'active' | 'completed' | 'confirmed';

/**
 * The partial unique index that admits one `active` session per board (migration
 * OnboardingTenancy): two concurrent starts cannot both create one.
 */
export const ONE_ACTIVE_ONBOARDING_INDEX = 'uq_board_onboarding_sessions_one_active';

@Entity('board_onboarding_sessions')
@Index('ix_board_onboarding_sessions_board_id_updated_at', ['boardId', 'updatedAt'])
@Index(ONE_ACTIVE_ONBOARDING_INDEX, ['boardId'], { unique: true, where: `"status" = 'active'` })
export class BoardOnboardingSession {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /**
   * The organization that owns the session. The board is referenced by (organization_id, id),
   * so the database refuses a session whose organization is not its board's, and every query
   * can filter on the tenant directly. Filled from the board by a trigger when left out.
   */
  @Column({ type: 'uuid' })
  organizationId!: string;

  @ManyToOne(() => Organization, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_id' })
  organization?: Organization;

  @Index('ix_board_onboarding_sessions_board_id')
  @Column({ type: 'uuid' })
  boardId!: string;

  @ManyToOne(() => Board, { onDelete: 'CASCADE' })
  @JoinColumn([
    { name: 'organization_id', referencedColumnName: 'organizationId' },
    { name: 'board_id', referencedColumnName: 'id' },
  ])
  board?: Board;

  /** The gateway-main session key used for the conversation. */
  @Column({ type: 'varchar' })
  sessionKey!: string;

  @Index('ix_board_onboarding_sessions_status')
  @Column({ type: 'varchar', default: 'active' })
  status!: OnboardingStatus;

  @Column({ type: 'jsonb', nullable: true })
  messages!: OnboardingMessage[] | null;

  @Column({ type: 'jsonb', nullable: true })
  draftGoal!: Record<string, unknown> | null;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
