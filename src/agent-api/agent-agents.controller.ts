import { Body, Controller, Delete, Get, Param, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { AgentsService } from '../agents/agents.service';
import { AgentAgentsQuery, AgentCreate, AgentPage, AgentRead } from '../agents/dto/agent.dto';
import type { Agent } from '../agents/entities/agent.entity';
import { AgentAuth, AgentBoardAccess } from '../auth/decorators/access.decorators';
import { CurrentAgent, CurrentBoard } from '../auth/decorators/context.decorators';
import type { Board } from '../boards/entities/board.entity';
import { ForbiddenError } from '../common/errors/app-error';
import { OkResponse } from '../common/dto/ok-response.dto';
import type { Page } from '../common/pagination/pagination';
import { ParseUuidPipe } from '../common/validation/parse-uuid.pipe';

/** Agents a lead manages on its board, and what a gateway main agent may list (§1.4.5). */
@ApiTags('agent')
@Controller('agent')
export class AgentAgentsController {
  constructor(private readonly agents: AgentsService) {}

  /** C1: a board agent lists its board's agents; a main agent its gateway's (and itself). */
  @Get('agents')
  @AgentAuth()
  @ApiOkResponse({ type: AgentPage })
  list(@CurrentAgent() agent: Agent, @Query() query: AgentAgentsQuery): Promise<Page<AgentRead>> {
    return this.agents.listForAgent(agent, query);
  }

  /** C2: a board lead creates a worker on its own board. */
  @Post('agents')
  @AgentAuth()
  @ApiOkResponse({ type: AgentRead })
  create(@CurrentAgent() agent: Agent, @Body() body: AgentCreate): Promise<AgentRead> {
    if (!agent.isBoardLead || !agent.boardId) throw new ForbiddenError();
    return this.agents.create({ type: 'agent', agent }, { ...body, board_id: agent.boardId });
  }

  /** A lead removes a worker of its own board (never a lead or a gateway main agent). */
  @Delete('boards/:boardId/agents/:agentId')
  @AgentBoardAccess()
  @ApiParam({ name: 'boardId', format: 'uuid' })
  @ApiParam({ name: 'agentId', format: 'uuid' })
  @ApiOkResponse({ type: OkResponse })
  async delete(
    @CurrentAgent() agent: Agent,
    @CurrentBoard() board: Board,
    @Param('agentId', ParseUuidPipe) agentId: string,
  ): Promise<OkResponse> {
    await this.agents.deleteByLead(agent, board, agentId);
    return { ok: true };
  }
}
