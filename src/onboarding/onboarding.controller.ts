import { Body, Controller, Get, Post } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBody,
  ApiConflictResponse,
  ApiExtraModels,
  ApiOkResponse,
  ApiParam,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Agent } from '../agents/entities/agent.entity';
import { AgentBoardAccess, BoardAccess } from '../auth/decorators/access.decorators';
import { CurrentAgent, CurrentBoard, CurrentUser } from '../auth/decorators/context.decorators';
import { toBoardRead } from '../boards/dto/board.dto';
import type { Board } from '../boards/entities/board.entity';
import type { User } from '../users/entities/user.entity';
import {
  BoardOnboardingAgentComplete,
  BoardOnboardingRead,
  toBoardOnboardingRead,
} from './dto/board-onboarding-read.dto';
import {
  BoardOnboardingAgentQuestion,
  BoardOnboardingAnswer,
  BoardOnboardingConfirm,
  BoardOnboardingConfirmRead,
  BoardOnboardingStart,
  BoardOnboardingStartRead,
} from './dto/board-onboarding-requests.dto';
import { OnboardingService } from './onboarding.service';

const boardIdParam = ApiParam({ name: 'boardId', format: 'uuid' });

/** The agent update body: a question or the completion (contract §6). */
const agentUpdateBody = ApiBody({
  schema: {
    oneOf: [
      { $ref: getSchemaPath(BoardOnboardingAgentQuestion) },
      { $ref: getSchemaPath(BoardOnboardingAgentComplete) },
    ],
  },
});

/** Board onboarding for users (contract O1–O3, O5) and the gateway agent's updates (O4). */
@ApiTags('board-onboarding')
@ApiExtraModels(BoardOnboardingAgentQuestion, BoardOnboardingAgentComplete)
@Controller('boards/:boardId/onboarding')
export class OnboardingController {
  constructor(private readonly onboarding: OnboardingService) {}

  /** O1: the board's latest session. */
  @Get()
  @BoardAccess('read')
  @boardIdParam
  @ApiOkResponse({ type: BoardOnboardingRead })
  async get(@CurrentBoard() board: Board): Promise<BoardOnboardingRead> {
    return toBoardOnboardingRead(await this.onboarding.get(board));
  }

  /** O2: starts onboarding, or re-sends the pending message of the active session. */
  @Post('start')
  @BoardAccess('write')
  @boardIdParam
  @ApiOkResponse({ type: BoardOnboardingStartRead })
  @ApiBadGatewayResponse({ description: 'Gateway onboarding start dispatch failed: {error}' })
  async start(
    @CurrentBoard() board: Board,
    @CurrentUser() user: User,
    // Required (a JSON body, `{}`), though it has no fields.
    @Body() _body: BoardOnboardingStart,
  ): Promise<BoardOnboardingStartRead> {
    const { session, resent } = await this.onboarding.start(board, user);
    return { ...toBoardOnboardingRead(session), resent };
  }

  /** O3: the user's answer, sent to the gateway agent, then stored. */
  @Post('answer')
  @BoardAccess('write')
  @boardIdParam
  @ApiOkResponse({ type: BoardOnboardingRead })
  @ApiConflictResponse({ description: 'The conversation is full' })
  @ApiBadGatewayResponse({ description: 'Gateway onboarding answer dispatch failed: {error}' })
  async answer(
    @CurrentBoard() board: Board,
    @CurrentUser() user: User,
    @Body() body: BoardOnboardingAnswer,
  ): Promise<BoardOnboardingRead> {
    return toBoardOnboardingRead(await this.onboarding.answer(board, user, body));
  }

  /**
   * O4: the gateway main agent's question or completion. Agents only (a user is 401); the board
   * is looked up first (404), then the agent board guard.
   */
  @Post('agent')
  @AgentBoardAccess()
  @boardIdParam
  @agentUpdateBody
  @ApiOkResponse({ type: BoardOnboardingRead })
  @ApiConflictResponse({ description: 'The session is confirmed' })
  async agentUpdate(
    @CurrentBoard() board: Board,
    @CurrentAgent() agent: Agent,
    @Body() body: unknown,
  ): Promise<BoardOnboardingRead> {
    return toBoardOnboardingRead(await this.onboarding.agentUpdate(board, agent, body));
  }

  /** O5: the user confirms the goal; the lead is created or updated. Returns the board. */
  @Post('confirm')
  @BoardAccess('write')
  @boardIdParam
  @ApiOkResponse({ type: BoardOnboardingConfirmRead })
  async confirm(
    @CurrentBoard() board: Board,
    @CurrentUser() user: User,
    @Body() body: BoardOnboardingConfirm,
  ): Promise<BoardOnboardingConfirmRead> {
    const result = await this.onboarding.confirm(board, user, body);
    return {
      ...toBoardRead(result.board),
      lead_agent_id: result.leadId,
      lead_created: result.leadCreated,
      lead_error: result.leadError,
    };
  }
}

/** C10: the agent route of the same update (board guard first, then as O4). */
@ApiTags('agent')
@ApiExtraModels(BoardOnboardingAgentQuestion, BoardOnboardingAgentComplete)
@Controller('agent/boards/:boardId/onboarding')
export class AgentOnboardingController {
  constructor(private readonly onboarding: OnboardingService) {}

  @Post()
  @AgentBoardAccess()
  @boardIdParam
  @agentUpdateBody
  @ApiOkResponse({ type: BoardOnboardingRead })
  @ApiConflictResponse({ description: 'The session is confirmed' })
  async update(
    @CurrentBoard() board: Board,
    @CurrentAgent() agent: Agent,
    @Body() body: unknown,
  ): Promise<BoardOnboardingRead> {
    return toBoardOnboardingRead(await this.onboarding.agentUpdate(board, agent, body));
  }
}
