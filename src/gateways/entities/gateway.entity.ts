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

@Entity('gateways')
// The target of boards' (organization_id, gateway_id) foreign key: a board's gateway is one of
// its own organization's, whatever writes the row.
@Unique('uq_gateways_organization_id_id', ['organizationId', 'id'])
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

  /**
   * Connect token-only, without the signed device identity. Loopback gateways accept that;
   * remote ones require a paired device. Null means false.
   */
  @Column({ type: 'boolean', nullable: true })
  disableDevicePairing!: boolean | null;

  /** Accept a wss:// certificate that does not verify (self-signed). Null means false. */
  @Column({ type: 'boolean', nullable: true })
  allowInsecureTls!: boolean | null;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
