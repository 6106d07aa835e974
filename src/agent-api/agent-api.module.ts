import { Module } from '@nestjs/common';
import { BoardsModule } from '../boards/boards.module';
import { AgentBoardsController } from './agent-boards.controller';

/** Routes agents call with their own token (`/agent/...`). */
@Module({
  imports: [BoardsModule],
  controllers: [AgentBoardsController],
})
export class AgentApiModule {}
