import { Module } from '@nestjs/common';
import { ProvisioningModule } from '../provisioning/provisioning.module';
import { AgentHeartbeatService } from './agent-heartbeat.service';
import { AgentsController } from './agents.controller';
import { AgentsService } from './agents.service';
import { HeartbeatBatcher } from './heartbeat-batcher';

/**
 * The agent lifecycle (`/agents`) and the agent rules the agent-facing routes share. A module
 * serving `GET /agents/stream` must be imported before this one (static before parameterised).
 */
@Module({
  imports: [ProvisioningModule],
  controllers: [AgentsController],
  providers: [AgentHeartbeatService, AgentsService, HeartbeatBatcher],
  exports: [AgentHeartbeatService, AgentsService],
})
export class AgentsModule {}
