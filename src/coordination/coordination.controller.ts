import { Body, Controller, Get, Header, Param, Post, Put } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Agent } from '../agents/entities/agent.entity';
import { AgentAuth, AgentBoardAccess } from '../auth/decorators/access.decorators';
import { CurrentAgent, CurrentBoard } from '../auth/decorators/context.decorators';
import type { Board } from '../boards/entities/board.entity';
import { OkResponse } from '../common/dto/ok-response.dto';
import { ParseUuidPipe } from '../common/validation/parse-uuid.pipe';
import { CoordinationService } from './coordination.service';
import {
  AgentNudgeRequest,
  GatewayLeadBroadcastRequest,
  GatewayLeadBroadcastResponse,
  GatewayLeadMessageRequest,
  GatewayLeadMessageResponse,
  GatewayMainAskUserRequest,
  GatewayMainAskUserResponse,
  SoulUpdateRequest,
} from './dto/coordination.dto';

/**
 * Coordination through the gateway (contract C4–C9): a lead nudges its agents, reads and writes
 * their SOUL.md and asks the human through the gateway agent; the gateway agent messages board
 * leads. Access beyond the board guard (lead, self, gateway agent) is the service's.
 */
@ApiTags('agent')
@Controller('agent')
export class CoordinationController {
  constructor(private readonly coordination: CoordinationService) {}

  /** C4: lead only; the target must be an agent of this board. */
  @Post('boards/:boardId/agents/:agentId/nudge')
  @AgentBoardAccess()
  @ApiParam({ name: 'boardId', format: 'uuid' })
  @ApiParam({ name: 'agentId', format: 'uuid' })
  @ApiOkResponse({ type: OkResponse })
  async nudge(
    @CurrentAgent() agent: Agent,
    @CurrentBoard() board: Board,
    @Param('agentId', ParseUuidPipe) agentId: string,
    @Body() body: AgentNudgeRequest,
  ): Promise<OkResponse> {
    await this.coordination.nudge(agent, board, agentId, body.message);
    return { ok: true };
  }

  /** C5: the SOUL.md on the gateway, as a JSON string. A lead, or the agent itself. */
  @Get('boards/:boardId/agents/:agentId/soul')
  @AgentBoardAccess()
  @ApiParam({ name: 'boardId', format: 'uuid' })
  @ApiParam({ name: 'agentId', format: 'uuid' })
  @ApiProduces('application/json')
  @ApiOkResponse({ schema: { type: 'string' }, description: 'SOUL.md content (a JSON string)' })
  @Header('Content-Type', 'application/json; charset=utf-8')
  async readSoul(
    @CurrentAgent() agent: Agent,
    @CurrentBoard() board: Board,
    @Param('agentId', ParseUuidPipe) agentId: string,
  ): Promise<string> {
    // A bare string would be sent as text: the body is the content as a JSON string.
    return JSON.stringify(await this.coordination.readSoul(agent, board, agentId));
  }

  /** C6: lead only; the gateway first, the database only once it accepted. */
  @Put('boards/:boardId/agents/:agentId/soul')
  @AgentBoardAccess()
  @ApiParam({ name: 'boardId', format: 'uuid' })
  @ApiParam({ name: 'agentId', format: 'uuid' })
  @ApiOkResponse({ type: OkResponse })
  async writeSoul(
    @CurrentAgent() agent: Agent,
    @CurrentBoard() board: Board,
    @Param('agentId', ParseUuidPipe) agentId: string,
    @Body() body: SoulUpdateRequest,
  ): Promise<OkResponse> {
    await this.coordination.writeSoul(agent, board, agentId, body);
    return { ok: true };
  }

  /** C7: lead only; the board's gateway agent is asked to reach the human. */
  @Post('boards/:boardId/gateway/main/ask-user')
  @AgentBoardAccess()
  @ApiParam({ name: 'boardId', format: 'uuid' })
  @ApiOkResponse({ type: GatewayMainAskUserResponse })
  askUser(
    @CurrentAgent() agent: Agent,
    @CurrentBoard() board: Board,
    @Body() body: GatewayMainAskUserRequest,
  ): Promise<GatewayMainAskUserResponse> {
    return this.coordination.askUser(agent, board, body);
  }

  /** C8: the gateway agent only; the board must be on its gateway. */
  @Post('gateway/boards/:boardId/lead/message')
  @AgentAuth()
  @ApiParam({ name: 'boardId', format: 'uuid' })
  @ApiOkResponse({ type: GatewayLeadMessageResponse })
  messageLead(
    @CurrentAgent() agent: Agent,
    @Param('boardId', ParseUuidPipe) boardId: string,
    @Body() body: GatewayLeadMessageRequest,
  ): Promise<GatewayLeadMessageResponse> {
    return this.coordination.messageLead(agent, boardId, body);
  }

  /** C9: the gateway agent only; every board of its gateway (or the named ones). */
  @Post('gateway/leads/broadcast')
  @AgentAuth()
  @ApiOkResponse({ type: GatewayLeadBroadcastResponse })
  broadcast(
    @CurrentAgent() agent: Agent,
    @Body() body: GatewayLeadBroadcastRequest,
  ): Promise<GatewayLeadBroadcastResponse> {
    return this.coordination.broadcast(agent, body);
  }
}
