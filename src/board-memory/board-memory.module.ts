import { Module } from '@nestjs/common';
import { ChangeLogModule } from '../change-log/change-log.module';
import { BoardChatNotifier } from './board-chat-notifier';
import { AgentBoardMemoryController, BoardMemoryController } from './board-memory.controller';
import { BoardMemoryService } from './board-memory.service';
import { BoardMemoryStreamHub } from './stream/board-memory-stream.hub';

/**
 * Board memory: `GET|POST /boards/{id}/memory` (users), `GET|POST /agent/boards/{id}/memory`
 * (agents) and the live `GET /boards/{id}/memory/stream` over the change log.
 */
@Module({
  imports: [ChangeLogModule],
  controllers: [BoardMemoryController, AgentBoardMemoryController],
  providers: [BoardMemoryService, BoardMemoryStreamHub, BoardChatNotifier],
  exports: [BoardMemoryService],
})
export class BoardMemoryModule {}
