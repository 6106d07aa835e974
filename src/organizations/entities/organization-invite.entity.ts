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

@Entity('organization_invites')
@Unique('uq_org_invites_token', ['token'])
export class OrganizationInvite {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_organization_invites_organization_id')
  @Column({ type: 'uuid' })
  organizationId!: string;

  @ManyToOne(() => Organization, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_id' })
  organization?: Organization;

  @Index('ix_organization_invites_invited_email')
  @Column({ type: 'varchar' })
  invitedEmail!: string;

  @Column({ type: 'varchar' })
  token!: string;

  @Column({ type: 'varchar', default: 'member' })
  role!: string;

  @Column({ type: 'boolean', default: false })
  allBoardsRead!: boolean;

  @Column({ type: 'boolean', default: false })
  allBoardsWrite!: boolean;

  @Index('ix_organization_invites_created_by_user_id')
  @Column({ type: 'uuid', nullable: true })
  createdByUserId!: string | null;

  @ManyToOne(() => User, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'created_by_user_id' })
  createdBy?: User | null;

  @Index('ix_organization_invites_accepted_by_user_id')
  @Column({ type: 'uuid', nullable: true })
  acceptedByUserId!: string | null;

  @ManyToOne(() => User, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'accepted_by_user_id' })
  acceptedBy?: User | null;

  @Column({ type: 'timestamptz', nullable: true })
  acceptedAt!: Date | null;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
