import { Module } from '@nestjs/common';
import { SessionsController } from './sessions.controller';
import { SessionsService } from './sessions.service';

/**
 * Gateway session inspection (`/gateways/status`, `/gateways/sessions…`, `/gateways/commands`).
 * Uses the global gateway client and auth modules. Import it before GatewaysModule: Express
 * matches routes in registration order, and these static paths must win over `/gateways/:id`.
 */
@Module({
  controllers: [SessionsController],
  providers: [SessionsService],
})
export class SessionsModule {}
