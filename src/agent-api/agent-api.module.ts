import { Module } from '@nestjs/common';
import { AgentsModule } from '../agents/agents.module';
import { BoardsModule } from '../boards/boards.module';
import { AgentAgentsController } from './agent-agents.controller';
import { AgentBoardsController } from './agent-boards.controller';
import { AgentHeartbeatController } from './agent-heartbeat.controller';

/** Routes agents call with their own token (`/agent/...`). */
@Module({
  imports: [BoardsModule, AgentsModule],
  controllers: [AgentBoardsController, AgentHeartbeatController, AgentAgentsController],
})
export class AgentApiModule {}
