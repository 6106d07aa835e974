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
import { Organization } from '../../organizations/entities/organization.entity';

@Entity('users')
@Unique('uq_users_clerk_user_id', ['clerkUserId'])
export class User {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** The identity provider's subject (`sub`), or `local-auth-user` in local mode. */
  @Column({ type: 'varchar' })
  clerkUserId!: string;

  @Index('ix_users_email')
  @Column({ type: 'varchar', nullable: true })
  email!: string | null;

  @Column({ type: 'varchar', nullable: true })
  name!: string | null;

  @Column({ type: 'varchar', nullable: true })
  preferredName!: string | null;

  @Column({ type: 'varchar', nullable: true })
  pronouns!: string | null;

  @Column({ type: 'varchar', nullable: true })
  timezone!: string | null;

  @Column({ type: 'text', nullable: true })
  notes!: string | null;

  @Column({ type: 'text', nullable: true })
  context!: string | null;

  @Column({ type: 'boolean', default: false })
  isSuperAdmin!: boolean;

  @Index('ix_users_active_organization_id')
  @Column({ type: 'uuid', nullable: true })
  activeOrganizationId!: string | null;

  @ManyToOne(() => Organization, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'active_organization_id' })
  activeOrganization?: Organization | null;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
