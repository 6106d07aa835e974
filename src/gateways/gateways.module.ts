import { Module } from '@nestjs/common';
import { ProvisioningModule } from '../provisioning/provisioning.module';
import { GatewaysController } from './gateways.controller';
import { GatewaysService } from './gateways.service';
import { TemplateSyncService } from './template-sync.service';

@Module({
  imports: [ProvisioningModule],
  controllers: [GatewaysController],
  providers: [GatewaysService, TemplateSyncService],
  exports: [GatewaysService],
})
export class GatewaysModule {}
