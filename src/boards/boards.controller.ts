import { Body, Controller, Delete, Get, Patch, Post, Query } from '@nestjs/common';
import { ApiConflictResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import {
  BoardAccess,
  BoardActorAccess,
  OrgAdmin,
  OrgMember,
} from '../auth/decorators/access.decorators';
import { CurrentBoard, CurrentOrg } from '../auth/decorators/context.decorators';
import { OkResponse } from '../common/dto/ok-response.dto';
import type { Page } from '../common/pagination/pagination';
import type { Organization } from '../organizations/entities/organization.entity';
import type { OrganizationMember } from '../organizations/entities/organization-member.entity';
import { BoardSnapshotService } from './board-snapshot.service';
import { BoardsService } from './boards.service';
import { BoardSnapshot } from './dto/board-snapshot.dto';
import {
  BoardCreate,
  BoardListQuery,
  BoardPage,
  BoardRead,
  BoardUpdate,
  toBoardRead,
} from './dto/board.dto';
import { Board } from './entities/board.entity';

type OrgContext = { organization: Organization; member: OrganizationMember };

const boardIdParam = ApiParam({ name: 'boardId', format: 'uuid' });

@ApiTags('boards')
@Controller('boards')
export class BoardsController {
  constructor(
    private readonly boards: BoardsService,
    private readonly snapshots: BoardSnapshotService,
  ) {}

  /** The boards of the active organization the caller may read. */
  @Get()
  @OrgMember()
  @ApiOkResponse({ type: BoardPage })
  list(@CurrentOrg() org: OrgContext, @Query() query: BoardListQuery): Promise<Page<BoardRead>> {
    return this.boards.listForMember(org.member, query);
  }

  @Post()
  @OrgAdmin()
  @ApiOkResponse({ type: BoardRead })
  async create(@CurrentOrg() org: OrgContext, @Body() body: BoardCreate): Promise<BoardRead> {
    return toBoardRead(await this.boards.create(org.organization.id, body));
  }

  @Get(':boardId')
  @BoardAccess('read')
  @boardIdParam
  @ApiOkResponse({ type: BoardRead })
  get(@CurrentBoard() board: Board): BoardRead {
    return toBoardRead(board);
  }

  /**
   * The board page: the board, its tasks, agents, approvals and latest chat messages. Users
   * need board read; agents (as upstream) the agent board guard.
   */
  @Get(':boardId/snapshot')
  @BoardActorAccess('read')
  @boardIdParam
  @ApiOkResponse({ type: BoardSnapshot })
  snapshot(@CurrentBoard() board: Board): Promise<BoardSnapshot> {
    return this.snapshots.snapshot(board);
  }

  @Patch(':boardId')
  @BoardAccess('write')
  @boardIdParam
  @ApiOkResponse({ type: BoardRead })
  async update(@CurrentBoard() board: Board, @Body() body: BoardUpdate): Promise<BoardRead> {
    return toBoardRead(await this.boards.update(board, body));
  }

  /** Deletes the board and its tasks, approvals, memory and onboarding; refused while agents remain. */
  @Delete(':boardId')
  @BoardAccess('write')
  @boardIdParam
  @ApiOkResponse({ type: OkResponse })
  @ApiConflictResponse({ description: 'The board still has agents' })
  async delete(@CurrentBoard() board: Board): Promise<OkResponse> {
    await this.boards.delete(board.id);
    return { ok: true };
  }
}
