import { Body, Controller, Post } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AgentHeartbeatService } from '../agents/agent-heartbeat.service';
import { AgentRead, AgentSelfHeartbeat, toAgentRead } from '../agents/dto/agent.dto';
import type { Agent } from '../agents/entities/agent.entity';
import { AgentAuth } from '../auth/decorators/access.decorators';
import { CurrentAgent } from '../auth/decorators/context.decorators';

@ApiTags('agent')
@Controller('agent/heartbeat')
export class AgentHeartbeatController {
  constructor(private readonly heartbeats: AgentHeartbeatService) {}

  /**
   * C3: the calling agent heartbeats itself (body optional; only `status` is used). The heartbeat
   * marks the agent seen, so authentication skips its own presence write here.
   */
  @Post()
  @AgentAuth({ touchPresence: false })
  @ApiOkResponse({ type: AgentRead })
  async heartbeat(
    @CurrentAgent() agent: Agent,
    @Body() body: AgentSelfHeartbeat,
  ): Promise<AgentRead> {
    return toAgentRead(await this.heartbeats.recordHeartbeat(agent, body?.status));
  }
}
