import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { OrgMember } from '../../auth/decorators/access.decorators';
import { CurrentOrg, CurrentUser } from '../../auth/decorators/context.decorators';
import type { OrganizationMember } from '../../organizations/entities/organization-member.entity';
import type { Organization } from '../../organizations/entities/organization.entity';
import type { User } from '../../users/entities/user.entity';
import { AgentStreamQuery } from './agent-stream.dto';
import { AgentStreamService } from './agent-stream.service';

type OrgContext = { organization: Organization; member: OrganizationMember };

@ApiTags('agents')
@Controller('agents')
export class AgentStreamController {
  constructor(private readonly streams: AgentStreamService) {}

  /**
   * Server-sent events: `event: agent` with `{"agent": AgentRead}` and `event: agent_deleted`
   * with `{"agent_id": …}`, each with `id:` (the change id to resume from), and a keep-alive
   * comment every 15 s.
   */
  @Get('stream')
  @OrgMember()
  @ApiProduces('text/event-stream')
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'Resume after this event id: exactly the changes missed since',
  })
  // `content` spelled out: @ApiProduces alone adds no media type to a response without a type.
  @ApiOkResponse({
    description:
      'text/event-stream of `agent` / `agent_deleted` events for the agents the caller may read',
    content: {
      'text/event-stream': {
        schema: {
          type: 'string',
          description:
            '`id: <change id>`, `event: agent` + `data: {"agent": AgentRead}` or ' +
            '`event: agent_deleted` + `data: {"agent_id": …}`; `: ping` comments',
        },
      },
    },
  })
  async stream(
    @CurrentUser() user: User,
    @CurrentOrg() org: OrgContext,
    @Query() query: AgentStreamQuery,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    await this.streams.open({ user, member: org.member, query, lastEventId, res });
  }
}
