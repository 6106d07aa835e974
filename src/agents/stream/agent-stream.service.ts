import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { hasBoardAccess } from '../../auth/membership.service';
import { Board } from '../../boards/entities/board.entity';
import { ForbiddenError } from '../../common/errors/app-error';
import type { OrganizationMember } from '../../organizations/entities/organization-member.entity';
import { isOrgAdmin } from '../../organizations/roles';
import type { User } from '../../users/entities/user.entity';
import type { AgentStreamQuery } from './agent-stream.dto';
import { streamStart } from '../../change-log/change-stream.hub';
import { AgentStreamHub } from './agent-stream.hub';

/** Opening a stream: the checks that answer with a status, then the hub takes over. */
@Injectable()
export class AgentStreamService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly hub: AgentStreamHub,
  ) {}

  async open(params: {
    user: User;
    member: OrganizationMember;
    query: AgentStreamQuery;
    lastEventId: string | undefined;
    res: Response;
  }): Promise<void> {
    const { user, member, query, res } = params;
    const boardId = query.board_id ?? null;
    if (boardId !== null) {
      // Upstream: a board_id outside the caller's readable boards is 403, before streaming.
      const board = await this.dataSource
        .getRepository(Board)
        .findOne({ where: { id: boardId, organizationId: member.organizationId } });
      const readable =
        board !== null &&
        (isOrgAdmin(member) ||
          (await hasBoardAccess(this.dataSource.manager, member, board, false)));
      if (!readable) throw new ForbiddenError();
    }
    await this.hub.serve(
      res,
      { userId: user.id, organizationId: member.organizationId, boardId },
      streamStart(params.lastEventId, query.since),
    );
  }
}
