import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Brackets, DataSource, EntityManager, QueryFailedError, SelectQueryBuilder } from 'typeorm';
import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { Agent } from '../agents/entities/agent.entity';
import { Approval } from '../approvals/entities/approval.entity';
import { BoardMemory } from '../board-memory/entities/board-memory.entity';
import { ConflictError, InvalidRequestError, NotFoundError } from '../common/errors/app-error';
import { Page, page, PageQuery } from '../common/pagination/pagination';
import { Gateway } from '../gateways/entities/gateway.entity';
import { BoardOnboardingSession } from '../onboarding/entities/board-onboarding-session.entity';
import { OrganizationBoardAccess } from '../organizations/entities/organization-board-access.entity';
import { OrganizationInviteBoardAccess } from '../organizations/entities/organization-invite-board-access.entity';
import { OrganizationMember } from '../organizations/entities/organization-member.entity';
import { Task } from '../tasks/entities/task.entity';
import {
  BoardCreate,
  BoardListQuery,
  BoardRead,
  BoardUpdate,
  lacksGoal,
  toBoardRead,
} from './dto/board.dto';
import { BoardGroup } from './entities/board-group.entity';
import { Board, BOARD_SETTING_DEFAULTS, BOARD_TYPE_GOAL } from './entities/board.entity';

export const BOARD_HAS_AGENTS = 'Board still has agents; delete them first';

/** Body fields copied to the entity as they are (ids and nullable text included). */
const WRITABLE: [keyof BoardUpdate, keyof Board][] = [
  ['name', 'name'],
  ['slug', 'slug'],
  ['gateway_id', 'gatewayId'],
  ['board_group_id', 'boardGroupId'],
  ['board_type', 'boardType'],
  ['objective', 'objective'],
  ['success_metrics', 'successMetrics'],
  ['target_date', 'targetDate'],
  ['goal_confirmed', 'goalConfirmed'],
  ['goal_source', 'goalSource'],
  ['description', 'description'],
  ['require_approval_for_done', 'requireApprovalForDone'],
  ['require_review_before_done', 'requireReviewBeforeDone'],
  ['comment_required_for_review', 'commentRequiredForReview'],
  ['block_status_changes_with_pending_approval', 'blockStatusChangesWithPendingApproval'],
  ['only_lead_can_change_status', 'onlyLeadCanChangeStatus'],
  ['max_agents', 'maxAgents'],
];

@Injectable()
export class BoardsService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  private get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /**
   * T16: the boards of the member's organization it may read (every board with an all-boards
   * flag, else those with a readable or writable access row), filtered in SQL.
   */
  async listForMember(member: OrganizationMember, query: BoardListQuery): Promise<Page<BoardRead>> {
    const qb = this.manager
      .createQueryBuilder(Board, 'board')
      .where('board.organization_id = :organizationId', { organizationId: member.organizationId });
    if (!member.allBoardsRead && !member.allBoardsWrite) {
      qb.andWhere(
        (sub) =>
          `EXISTS ${sub
            .subQuery()
            .select('1')
            .from(OrganizationBoardAccess, 'access')
            .where('access.board_id = board.id')
            .andWhere('access.organization_member_id = :memberId')
            .andWhere('(access.can_read OR access.can_write)')
            .getQuery()}`,
        { memberId: member.id },
      );
    }
    if (query.gateway_id)
      qb.andWhere('board.gateway_id = :gatewayId', { gatewayId: query.gateway_id });
    if (query.board_group_id) {
      qb.andWhere('board.board_group_id = :boardGroupId', { boardGroupId: query.board_group_id });
    }
    return this.pageOf(qb, query);
  }

  /**
   * GET /agent/boards: a board agent sees its own board; a gateway's main agent (no board) sees
   * the boards attached to its gateway.
   */
  async listForAgent(agent: Agent, query: PageQuery): Promise<Page<BoardRead>> {
    const qb = this.manager.createQueryBuilder(Board, 'board');
    if (agent.boardId) qb.where('board.id = :boardId', { boardId: agent.boardId });
    else qb.where('board.gateway_id = :gatewayId', { gatewayId: agent.gatewayId });
    return this.pageOf(qb, query);
  }

  /** `lower(name)` ascending, then newest first (id only to make pages deterministic). */
  private async pageOf(qb: SelectQueryBuilder<Board>, query: PageQuery): Promise<Page<BoardRead>> {
    const total = await qb.clone().getCount();
    const boards = await qb
      .orderBy('lower(board.name)', 'ASC')
      .addOrderBy('board.created_at', 'DESC')
      .addOrderBy('board.id', 'ASC')
      .limit(query.limit)
      .offset(query.offset)
      .getMany();
    return page(boards.map(toBoardRead), total, query);
  }

  /** T17: the gateway (and the group, if given) must belong to the active organization. */
  async create(organizationId: string, body: BoardCreate): Promise<Board> {
    await this.requireGateway(body.gateway_id!, organizationId);
    if (body.board_group_id) await this.requireBoardGroup(body.board_group_id, organizationId);
    return gatewayGoneIsInvalid(() =>
      this.manager.save(
        this.manager.create(Board, {
          organizationId,
          name: body.name,
          slug: body.slug,
          gatewayId: body.gateway_id!,
          boardGroupId: body.board_group_id ?? null,
          boardType: body.board_type ?? BOARD_TYPE_GOAL,
          objective: body.objective ?? null,
          successMetrics: body.success_metrics ?? null,
          targetDate: body.target_date ?? null,
          goalConfirmed: body.goal_confirmed ?? false,
          goalSource: body.goal_source ?? null,
          description: body.description ?? BOARD_SETTING_DEFAULTS.description,
          requireApprovalForDone:
            body.require_approval_for_done ?? BOARD_SETTING_DEFAULTS.requireApprovalForDone,
          requireReviewBeforeDone:
            body.require_review_before_done ?? BOARD_SETTING_DEFAULTS.requireReviewBeforeDone,
          commentRequiredForReview:
            body.comment_required_for_review ?? BOARD_SETTING_DEFAULTS.commentRequiredForReview,
          blockStatusChangesWithPendingApproval:
            body.block_status_changes_with_pending_approval ??
            BOARD_SETTING_DEFAULTS.blockStatusChangesWithPendingApproval,
          onlyLeadCanChangeStatus:
            body.only_lead_can_change_status ?? BOARD_SETTING_DEFAULTS.onlyLeadCanChangeStatus,
          maxAgents: body.max_agents ?? BOARD_SETTING_DEFAULTS.maxAgents,
        }),
      ),
    );
  }

  /** T19: only the keys sent are applied; the rules run in upstream's order. */
  async update(board: Board, body: BoardUpdate): Promise<Board> {
    if (body.gateway_id) await this.requireGateway(body.gateway_id, board.organizationId);
    if (body.board_group_id) {
      await this.requireBoardGroup(body.board_group_id, board.organizationId);
    }
    const changes: Record<string, unknown> = {};
    for (const [field, column] of WRITABLE) {
      if (body[field] !== undefined) changes[column] = body[field];
    }
    const merged: Board = { ...board, ...changes };
    if (
      body.board_type === BOARD_TYPE_GOAL &&
      lacksGoal({ objective: merged.objective, success_metrics: merged.successMetrics })
    ) {
      throw new InvalidRequestError('Goal boards require objective and success_metrics');
    }
    if (!merged.gatewayId) throw new InvalidRequestError('gateway_id is required');
    // An UPDATE (not save()), so a board deleted meanwhile is a 404 rather than re-inserted.
    const result = await gatewayGoneIsInvalid(() =>
      this.manager.update(
        Board,
        { id: board.id },
        {
          ...changes,
          updatedAt: new Date(),
        },
      ),
    );
    if (!result.affected) throw new NotFoundError();
    return this.manager.findOneByOrFail(Board, { id: board.id });
  }

  /**
   * T20, changed on purpose: a board whose agents still exist is refused (409) rather than having
   * its agents removed from the gateway here; otherwise the board and every row depending on it
   * go in one transaction. The board row is locked first, so an agent created concurrently
   * either commits before the check (and is seen) or fails on its foreign key.
   */
  async delete(boardId: string): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const locked = await manager
        .createQueryBuilder(Board, 'board')
        .setLock('pessimistic_write')
        .where('board.id = :boardId', { boardId })
        .getOne();
      if (!locked) throw new NotFoundError();
      if (await manager.exists(Agent, { where: { boardId } })) {
        throw new ConflictError(BOARD_HAS_AGENTS);
      }
      const boardTasks = manager
        .createQueryBuilder()
        .subQuery()
        .select('task.id')
        .from(Task, 'task')
        .where('task.board_id = :boardId')
        .getQuery();
      await manager
        .createQueryBuilder()
        .delete()
        .from(ActivityEvent)
        .where(
          new Brackets((w) => w.where(`task_id IN ${boardTasks}`).orWhere('board_id = :boardId')),
        )
        .setParameters({ boardId })
        .execute();
      await manager.delete(Approval, { boardId });
      await manager.delete(BoardMemory, { boardId });
      await manager.delete(BoardOnboardingSession, { boardId });
      await manager.delete(OrganizationBoardAccess, { boardId });
      await manager.delete(OrganizationInviteBoardAccess, { boardId });
      await manager.delete(Task, { boardId });
      await manager.delete(Board, { id: boardId });
    });
  }

  private async requireGateway(gatewayId: string, organizationId: string): Promise<void> {
    const found = await this.manager.exists(Gateway, { where: { id: gatewayId, organizationId } });
    if (!found) throw new InvalidRequestError('gateway_id is invalid');
  }

  private async requireBoardGroup(boardGroupId: string, organizationId: string): Promise<void> {
    const found = await this.manager.exists(BoardGroup, {
      where: { id: boardGroupId, organizationId },
    });
    if (!found) throw new InvalidRequestError('board_group_id is invalid');
  }
}

/** The boards' foreign keys to gateways (plain, and with the organization). */
const BOARD_GATEWAY_FKS = new Set([
  'FK_3cefed683cbe504f4c9f39f1faa',
  'FK_4d88409b77cabe9ac2bab5f5033',
]);

/**
 * A gateway deleted between the check and the write (its DELETE holds the row while it removes
 * the main agent from the gateway; this write waits, then finds it gone): the same 422 as an
 * unknown gateway, not a 500 on the foreign key.
 */
async function gatewayGoneIsInvalid<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const driver = (error as { driverError?: { code?: string; constraint?: string } }).driverError;
    if (
      error instanceof QueryFailedError &&
      driver?.code === '23503' &&
      BOARD_GATEWAY_FKS.has(driver.constraint ?? '')
    ) {
      throw new InvalidRequestError('gateway_id is invalid');
    }
    throw error;
  }
}
