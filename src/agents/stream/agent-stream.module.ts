import { Module } from '@nestjs/common';
import { ChangeLogModule } from '../../change-log/change-log.module';
import { AgentStreamController } from './agent-stream.controller';
import { AgentStreamHub } from './agent-stream.hub';
import { AgentStreamService } from './agent-stream.service';

/**
 * `GET /agents/stream`. Imported by AppModule before any module serving `GET /agents/:agentId`,
 * so the static `stream` segment is matched first.
 */
@Module({
  imports: [ChangeLogModule],
  controllers: [AgentStreamController],
  providers: [AgentStreamHub, AgentStreamService],
  exports: [AgentStreamHub],
})
export class AgentStreamModule {}
