import { Module } from '@nestjs/common';
import { ProvisioningModule } from '../provisioning/provisioning.module';
import { CoordinationController } from './coordination.controller';
import { CoordinationService } from './coordination.service';
import { GatewayDispatchService } from './gateway-dispatch.service';

/**
 * Leads coordinating through the gateway and the gateway agent talking to leads (contract C4–C9).
 * Exports the one dispatch path (ensure session + chat.send under the coordination retry
 * profile) for onboarding.
 */
@Module({
  imports: [ProvisioningModule],
  controllers: [CoordinationController],
  providers: [CoordinationService, GatewayDispatchService],
  exports: [GatewayDispatchService],
})
export class CoordinationModule {}
