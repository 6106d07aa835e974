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
import { OrganizationInvite } from './organization-invite.entity';

@Entity('organization_invite_board_access')
@Unique('uq_org_invite_board_access_invite_board', ['organizationInviteId', 'boardId'])
export class OrganizationInviteBoardAccess {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_organization_invite_board_access_organization_invite_id')
  @Column({ type: 'uuid' })
  organizationInviteId!: string;

  @ManyToOne(() => OrganizationInvite, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_invite_id' })
  invite?: OrganizationInvite;

  @Index('ix_organization_invite_board_access_board_id')
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
