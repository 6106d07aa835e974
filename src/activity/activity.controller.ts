import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { OrgMember } from '../auth/decorators/access.decorators';
import { CurrentOrg } from '../auth/decorators/context.decorators';
import type { Page } from '../common/pagination/pagination';
import type { OrganizationMember } from '../organizations/entities/organization-member.entity';
import type { Organization } from '../organizations/entities/organization.entity';
import { ActivityService } from './activity.service';
import { ActivityEventPage, ActivityEventRead, ActivityListQuery } from './dto/activity.dto';

type OrgContext = { organization: Organization; member: OrganizationMember };

@ApiTags('activity')
@Controller('activity')
export class ActivityController {
  constructor(private readonly activity: ActivityService) {}

  /** The activity feed of the active organization the caller may read, newest first. */
  @Get()
  @OrgMember()
  @ApiOkResponse({ type: ActivityEventPage })
  list(
    @CurrentOrg() org: OrgContext,
    @Query() query: ActivityListQuery,
  ): Promise<Page<ActivityEventRead>> {
    return this.activity.list(org.member, query);
  }
}
