import { Module } from '@nestjs/common';
import { AgentHeartbeatService } from './agent-heartbeat.service';

/** Agent rules shared by the user-facing and agent-facing routes. */
@Module({
  providers: [AgentHeartbeatService],
  exports: [AgentHeartbeatService],
})
export class AgentsModule {}
