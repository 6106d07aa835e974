import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DeviceIdentity } from './device-identity';
import { OpenClawDeviceIdentity } from './entities/openclaw-device-identity.entity';

const IDENTITY_NAME = 'default';

/**
 * Loads the installation's device key, creating it on first use. Instances racing to create
 * it insert with ON CONFLICT DO NOTHING and then all read the one row that won.
 *
 * Loaded at boot, so a gateway call never needs a pool connection for it: a caller that holds
 * a connection across its gateway call (an onboarding start holds its board's lock transaction)
 * would otherwise, with the pool full of such callers on a fresh process, wait for a connection
 * none of them can give back until its handshake timed out.
 */
@Injectable()
export class DeviceIdentityStore implements OnApplicationBootstrap {
  private readonly logger = new Logger('OpenClawDevice');
  private loading: Promise<DeviceIdentity> | null = null;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.get();
    } catch (error) {
      // Not fatal: the first gateway call loads it again.
      this.logger.warn(`Gateway device identity not loaded at boot: ${(error as Error).message}`);
    }
  }

  get(): Promise<DeviceIdentity> {
    this.loading ??= this.load().catch((error: unknown) => {
      this.loading = null; // a failed read (database down) is retried by the next caller
      throw error;
    });
    return this.loading;
  }

  private async load(): Promise<DeviceIdentity> {
    const repository = this.dataSource.getRepository(OpenClawDeviceIdentity);
    let row = await repository.findOneBy({ name: IDENTITY_NAME });
    if (!row) {
      const { identity, privateKeyPem } = DeviceIdentity.generate();
      await repository
        .createQueryBuilder()
        .insert()
        .values({ name: IDENTITY_NAME, deviceId: identity.deviceId, privateKeyPem })
        .orIgnore()
        .execute();
      row = await repository.findOneByOrFail({ name: IDENTITY_NAME });
      if (row.deviceId === identity.deviceId) {
        this.logger.log(`Created gateway device identity ${identity.deviceId}`);
      }
    }
    return DeviceIdentity.fromPrivateKeyPem(row.privateKeyPem);
  }
}
