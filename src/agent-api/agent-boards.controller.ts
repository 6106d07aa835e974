import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Agent } from '../agents/entities/agent.entity';
import { AgentAuth, AgentBoardAccess } from '../auth/decorators/access.decorators';
import { CurrentAgent, CurrentBoard } from '../auth/decorators/context.decorators';
import { BoardsService } from '../boards/boards.service';
import { BoardPage, BoardRead, toBoardRead } from '../boards/dto/board.dto';
import type { Board } from '../boards/entities/board.entity';
import { Page, PageQuery } from '../common/pagination/pagination';

/** Agent-facing board reads: an agent's own board, or its gateway's boards for a main agent. */
@ApiTags('agent')
@Controller('agent/boards')
export class AgentBoardsController {
  constructor(private readonly boards: BoardsService) {}

  @Get()
  @AgentAuth()
  @ApiOkResponse({ type: BoardPage })
  list(@CurrentAgent() agent: Agent, @Query() query: PageQuery): Promise<Page<BoardRead>> {
    return this.boards.listForAgent(agent, query);
  }

  @Get(':boardId')
  @AgentBoardAccess()
  @ApiParam({ name: 'boardId', format: 'uuid' })
  @ApiOkResponse({ type: BoardRead })
  get(@CurrentBoard() board: Board): BoardRead {
    return toBoardRead(board);
  }
}
