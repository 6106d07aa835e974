import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Brackets, DataSource } from 'typeorm';
import { page, type Page } from '../common/pagination/pagination';
import type { OrganizationMember } from '../organizations/entities/organization-member.entity';
import { OrganizationBoardAccess } from '../organizations/entities/organization-board-access.entity';
import { isOrgAdmin } from '../organizations/roles';
import { ActivityListQuery, ActivityEventRead, toActivityEventRead } from './dto/activity.dto';
import { ActivityEvent } from './entities/activity-event.entity';

@Injectable()
export class ActivityService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * The activity of the member's organization, newest first: events of the boards the member
   * may read and, for owners/admins, the organization's events without a board (gateway main
   * agents, gateways). Tenancy is structural: every row records its organization.
   */
  async list(
    member: OrganizationMember,
    query: ActivityListQuery,
  ): Promise<Page<ActivityEventRead>> {
    const qb = this.dataSource
      .getRepository(ActivityEvent)
      .createQueryBuilder('e')
      .where('e.organization_id = :organizationId', { organizationId: member.organizationId });
    if (isOrgAdmin(member)) {
      // Every board of the organization and the events without one.
    } else if (member.allBoardsRead || member.allBoardsWrite) {
      qb.andWhere('e.board_id IS NOT NULL');
    } else {
      const granted = this.dataSource
        .getRepository(OrganizationBoardAccess)
        .createQueryBuilder('a')
        .select('a.board_id')
        .where('a.organization_member_id = :memberId')
        .andWhere(new Brackets((or) => or.where('a.can_read').orWhere('a.can_write')));
      qb.andWhere(`e.board_id IN (${granted.getQuery()})`, { memberId: member.id });
    }
    if (query.board_id) qb.andWhere('e.board_id = :boardId', { boardId: query.board_id });
    if (query.agent_id) qb.andWhere('e.agent_id = :agentId', { agentId: query.agent_id });
    if (query.event_type) {
      qb.andWhere('e.event_type = :eventType', { eventType: query.event_type });
    }
    const [events, total] = await qb
      .orderBy('e.created_at', 'DESC')
      .addOrderBy('e.id', 'DESC')
      .take(query.limit)
      .skip(query.offset)
      .getManyAndCount();
    return page(events.map(toActivityEventRead), total, query);
  }
}
