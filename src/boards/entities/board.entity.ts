import {
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

@Entity('boards')
// The target of agents' (organization_id, board_id) foreign key.
@Unique('uq_boards_organization_id_id', ['organizationId', 'id'])
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

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
