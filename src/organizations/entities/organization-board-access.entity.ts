import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  Unique,
} from 'typeorm';
import { Board } from '../../boards/entities/board.entity';
import { CreatedAt, UpdatedAt } from '../../database/columns';
import { OrganizationMember } from './organization-member.entity';

@Entity('organization_board_access')
@Unique('uq_org_board_access_member_board', ['organizationMemberId', 'boardId'])
export class OrganizationBoardAccess {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_organization_board_access_organization_member_id')
  @Column({ type: 'uuid' })
  organizationMemberId!: string;

  @ManyToOne(() => OrganizationMember, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_member_id' })
  member?: OrganizationMember;

  @Index('ix_organization_board_access_board_id')
  @Column({ type: 'uuid' })
  boardId!: string;

  @ManyToOne(() => Board, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'board_id' })
  board?: Board;

  @Column({ type: 'boolean', default: true })
  canRead!: boolean;

  @Column({ type: 'boolean', default: false })
  canWrite!: boolean;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
