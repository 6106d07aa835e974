import { Body, Controller, Get, Headers, Post, Query, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Agent } from '../agents/entities/agent.entity';
import { AgentBoardAccess, BoardAccess } from '../auth/decorators/access.decorators';
import { CurrentAgent, CurrentBoard, CurrentUser } from '../auth/decorators/context.decorators';
import type { Board } from '../boards/entities/board.entity';
import { streamStart } from '../change-log/change-stream.hub';
import type { Page } from '../common/pagination/pagination';
import type { User } from '../users/entities/user.entity';
import { BoardMemoryService } from './board-memory.service';
import {
  BoardMemoryCreate,
  BoardMemoryListQuery,
  BoardMemoryPage,
  BoardMemoryStreamQuery,
} from './dto/board-memory.dto';
import { BoardMemoryRead, toBoardMemoryRead } from './dto/board-memory-read.dto';
import { BoardMemoryStreamHub } from './stream/board-memory-stream.hub';

const boardIdParam = ApiParam({ name: 'boardId', format: 'uuid' });

/** A board's memory for its users: read needs board read access, write board write access. */
@ApiTags('board-memory')
@Controller('boards/:boardId/memory')
export class BoardMemoryController {
  constructor(
    private readonly memory: BoardMemoryService,
    private readonly streams: BoardMemoryStreamHub,
  ) {}

  @Get()
  @BoardAccess('read')
  @boardIdParam
  @ApiOkResponse({ type: BoardMemoryPage })
  list(
    @CurrentBoard() board: Board,
    @Query() query: BoardMemoryListQuery,
  ): Promise<Page<BoardMemoryRead>> {
    return this.memory.list(board, query);
  }

  @Post()
  @BoardAccess('write')
  @boardIdParam
  @ApiOkResponse({ type: BoardMemoryRead })
  async create(
    @CurrentBoard() board: Board,
    @CurrentUser() user: User,
    @Body() body: BoardMemoryCreate,
  ): Promise<BoardMemoryRead> {
    return toBoardMemoryRead(await this.memory.create(board, { type: 'user', user }, body));
  }

  /**
   * Server-sent events: `event: memory` with `{"memory": BoardMemoryRead}` per new item, each
   * with `id:` (the change id to resume from), and a keep-alive comment every 15 s.
   */
  @Get('stream')
  @BoardAccess('read')
  @boardIdParam
  @ApiProduces('text/event-stream')
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description:
      'Resume after this event id: exactly the items missed since. An id the change log no ' +
      'longer holds (or not an id we issued): every item the log still holds for the board.',
  })
  // `content` spelled out: @ApiProduces alone adds no media type to a response without a type.
  @ApiOkResponse({
    description: "text/event-stream of `memory` events: the board's new memory items",
    content: {
      'text/event-stream': {
        schema: {
          type: 'string',
          description:
            '`id: <change id>`, `event: memory` + `data: {"memory": BoardMemoryRead}`; `: ping` comments',
        },
      },
    },
  })
  async stream(
    @CurrentUser() user: User,
    @CurrentBoard() board: Board,
    @Query() query: BoardMemoryStreamQuery,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    await this.streams.serve(
      res,
      {
        userId: user.id,
        organizationId: board.organizationId,
        boardId: board.id,
        isChat: query.is_chat ?? null,
      },
      streamStart(lastEventId, query.since),
    );
  }
}

/** A board's memory for agents: their own board, or a board of their gateway (main agent). */
@ApiTags('agent')
@Controller('agent/boards/:boardId/memory')
export class AgentBoardMemoryController {
  constructor(private readonly memory: BoardMemoryService) {}

  @Get()
  @AgentBoardAccess()
  @boardIdParam
  @ApiOkResponse({ type: BoardMemoryPage })
  list(
    @CurrentBoard() board: Board,
    @Query() query: BoardMemoryListQuery,
  ): Promise<Page<BoardMemoryRead>> {
    return this.memory.list(board, query);
  }

  @Post()
  @AgentBoardAccess()
  @boardIdParam
  @ApiOkResponse({ type: BoardMemoryRead })
  async create(
    @CurrentBoard() board: Board,
    @CurrentAgent() agent: Agent,
    @Body() body: BoardMemoryCreate,
  ): Promise<BoardMemoryRead> {
    return toBoardMemoryRead(await this.memory.create(board, { type: 'agent', agent }, body));
  }
}
