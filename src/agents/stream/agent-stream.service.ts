import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { hasBoardAccess } from '../../auth/membership.service';
import { Board } from '../../boards/entities/board.entity';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { ForbiddenError } from '../../common/errors/app-error';
import { parseIsoDateTime } from '../../common/validation/decorators';
import type { OrganizationMember } from '../../organizations/entities/organization-member.entity';
import { isOrgAdmin } from '../../organizations/roles';
import type { User } from '../../users/entities/user.entity';
import type { AgentStreamQuery } from './agent-stream.dto';
import { AgentStreamHub, type StreamStart } from './agent-stream.hub';
import { SseConnection } from '../../common/http/sse-connection';

const EVENT_ID = /^\d{1,18}$/;

/** Opening a stream: the checks that answer with a status, then the hub takes over. */
@Injectable()
export class AgentStreamService {
  private readonly logger = new Logger('AgentStream');

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
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
    const start = streamStart(params.lastEventId, query.since);
    if (start.kind === 'live') start.at = await this.hub.frontier();
    const connection = new SseConnection(res);
    connection.open(this.config.stream.keepAliveMs);
    // The response's close: the client went away (or we ended it).
    res.on('close', () => this.hub.remove(connection));
    try {
      await this.hub.open(
        { userId: user.id, organizationId: member.organizationId, boardId, connection },
        start,
      );
    } catch (error) {
      // The headers are sent: the client sees the stream end and reconnects with its id.
      this.logger.warn(
        `stream start failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      this.hub.remove(connection);
    }
    if (connection.closed) this.hub.remove(connection);
  }
}

/**
 * `Last-Event-ID` (a change id) wins; one that is not an id we issued gets a snapshot (the
 * client holds state we cannot place). Else `since` (ISO, as upstream; invalid means now).
 */
export function streamStart(
  lastEventId: string | undefined,
  since: string | undefined,
): StreamStart {
  const id = lastEventId?.trim();
  if (id) return EVENT_ID.test(id) ? { kind: 'after-id', id } : { kind: 'snapshot' };
  const sinceDate = since ? parseIsoDateTime(since) : null;
  return sinceDate ? { kind: 'since', since: sinceDate } : { kind: 'live', at: null };
}
