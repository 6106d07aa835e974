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
import { User } from '../../users/entities/user.entity';
import { Organization } from './organization.entity';

export const ORG_ROLES = ['owner', 'admin', 'member'] as const;
export type OrgRole = (typeof ORG_ROLES)[number];

@Entity('organization_members')
@Unique('uq_organization_members_org_user', ['organizationId', 'userId'])
export class OrganizationMember {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_organization_members_organization_id')
  @Column({ type: 'uuid' })
  organizationId!: string;

  @ManyToOne(() => Organization, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_id' })
  organization?: Organization;

  @Index('ix_organization_members_user_id')
  @Column({ type: 'uuid' })
  userId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @Index('ix_organization_members_role')
  @Column({ type: 'varchar', default: 'member' })
  role!: string;

  @Column({ type: 'boolean', default: false })
  allBoardsRead!: boolean;

  @Column({ type: 'boolean', default: false })
  allBoardsWrite!: boolean;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
