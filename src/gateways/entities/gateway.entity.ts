import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { CreatedAt, UpdatedAt } from '../../database/columns';
import { Organization } from '../../organizations/entities/organization.entity';

@Entity('gateways')
export class Gateway {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_gateways_organization_id')
  @Column({ type: 'uuid' })
  organizationId!: string;

  @ManyToOne(() => Organization, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_id' })
  organization?: Organization;

  @Column({ type: 'varchar' })
  name!: string;

  /** ws:// or wss:// URL of the OpenClaw gateway. */
  @Column({ type: 'varchar' })
  url!: string;

  /** Gateway auth token (the gateway's shared secret). Never logged. */
  @Column({ type: 'varchar', nullable: true })
  token!: string | null;

  /** Root of the agents' workspaces on the gateway host, e.g. `~/.openclaw`. */
  @Column({ type: 'varchar' })
  workspaceRoot!: string;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
