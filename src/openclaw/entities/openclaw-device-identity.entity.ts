import { Column, Entity, PrimaryColumn } from 'typeorm';
import { CreatedAt } from '../../database/columns';

/**
 * The installation's gateway device key (one row, `name = 'default'`). Shared by every app
 * instance so that a gateway operator approves Mission Control once, not once per process.
 */
@Entity('openclaw_device_identities')
export class OpenClawDeviceIdentity {
  @PrimaryColumn({ type: 'varchar' })
  name!: string;

  /** sha256 hex of the raw public key, as the gateway lists the device. */
  @Column({ type: 'varchar' })
  deviceId!: string;

  /** ed25519 private key, PKCS#8 PEM. Never logged or returned. */
  @Column({ type: 'text' })
  privateKeyPem!: string;

  @CreatedAt()
  createdAt!: Date;
}
