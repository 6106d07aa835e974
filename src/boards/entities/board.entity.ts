import {
  Check,
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  Unique,
} from 'typeorm';
import { CreatedAt, UpdatedAt } from '../../database/columns';
import { Gateway } from '../../gateways/entities/gateway.entity';
import { Organization } from '../../organizations/entities/organization.entity';
import { BoardGroup } from './board-group.entity';

export const BOARD_TYPE_GOAL = 'goal';

/**
 * The workflow settings a board stores and the frontend edits, with upstream's defaults. Only
 * `max_agents` has a rule here (the workers a lead may create); the others are stored and
 * returned for the task and approval rules that read them.
 */
export const BOARD_SETTING_DEFAULTS = {
  description: '',
  maxAgents: 1,
  requireApprovalForDone: true,
  requireReviewBeforeDone: false,
  commentRequiredForReview: false,
  blockStatusChangesWithPendingApproval: false,
  onlyLeadCanChangeStatus: false,
} as const;

@Entity('boards')
// The target of agents' (organization_id, board_id) foreign key.
@Unique('uq_boards_organization_id_id', ['organizationId', 'id'])
@Check('ck_boards_max_agents_positive', '"max_agents" >= 1')
export class Board {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_boards_organization_id')
  @Column({ type: 'uuid' })
  organizationId!: string;

  @ManyToOne(() => Organization, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_id' })
  organization?: Organization;

  @Column({ type: 'varchar' })
  name!: string;

  @Index('ix_boards_slug')
  @Column({ type: 'varchar' })
  slug!: string;

  @Column({ type: 'text', default: BOARD_SETTING_DEFAULTS.description })
  description!: string;

  @Index('ix_boards_gateway_id')
  @Column({ type: 'uuid', nullable: true })
  gatewayId!: string | null;

  /**
   * Keyed by (organization_id, gateway_id), so the database itself refuses a board whose gateway
   * belongs to another organization (agent routes rely on it). A null gateway_id is not checked.
   */
  @ManyToOne(() => Gateway, { onDelete: 'RESTRICT' })
  @JoinColumn([
    { name: 'organization_id', referencedColumnName: 'organizationId' },
    { name: 'gateway_id', referencedColumnName: 'id' },
  ])
  gateway?: Gateway | null;

  @Index('ix_boards_board_group_id')
  @Column({ type: 'uuid', nullable: true })
  boardGroupId!: string | null;

  @ManyToOne(() => BoardGroup, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'board_group_id' })
  boardGroup?: BoardGroup | null;

  @Index('ix_boards_board_type')
  @Column({ type: 'varchar', default: BOARD_TYPE_GOAL })
  boardType!: string;

  @Column({ type: 'text', nullable: true })
  objective!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  successMetrics!: Record<string, unknown> | null;

  @Column({ type: 'timestamptz', nullable: true })
  targetDate!: Date | null;

  @Column({ type: 'boolean', default: false })
  goalConfirmed!: boolean;

  @Column({ type: 'varchar', nullable: true })
  goalSource!: string | null;

  @Column({ type: 'boolean', default: BOARD_SETTING_DEFAULTS.requireApprovalForDone })
  requireApprovalForDone!: boolean;

  @Column({ type: 'boolean', default: BOARD_SETTING_DEFAULTS.requireReviewBeforeDone })
  requireReviewBeforeDone!: boolean;

  @Column({ type: 'boolean', default: BOARD_SETTING_DEFAULTS.commentRequiredForReview })
  commentRequiredForReview!: boolean;

  @Column({
    type: 'boolean',
    default: BOARD_SETTING_DEFAULTS.blockStatusChangesWithPendingApproval,
  })
  blockStatusChangesWithPendingApproval!: boolean;

  @Column({ type: 'boolean', default: BOARD_SETTING_DEFAULTS.onlyLeadCanChangeStatus })
  onlyLeadCanChangeStatus!: boolean;

  /** The workers (non-lead agents) the board's lead may create; users are not limited. */
  @Column({ type: 'integer', default: BOARD_SETTING_DEFAULTS.maxAgents })
  maxAgents!: number;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
