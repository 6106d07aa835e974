import { Global, Module } from '@nestjs/common';
import { DeviceIdentityStore } from './device-identity.store';
import { OpenClawGatewayService } from './openclaw-gateway.service';

/**
 * The shared gateway client. Global because every feature module talks to gateways and none
 * may open sockets of its own.
 */
@Global()
@Module({
  providers: [DeviceIdentityStore, OpenClawGatewayService],
  exports: [OpenClawGatewayService],
})
export class OpenClawGatewayModule {}
