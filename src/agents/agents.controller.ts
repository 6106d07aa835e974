import { Body, Controller, Delete, Get, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiConflictResponse,
  ApiOkResponse,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import { OrgAdmin, UserOrAgent } from '../auth/decorators/access.decorators';
import { CurrentOrg, CurrentUser } from '../auth/decorators/context.decorators';
import { OkResponse } from '../common/dto/ok-response.dto';
import type { Page } from '../common/pagination/pagination';
import { ParseUuidPipe } from '../common/validation/parse-uuid.pipe';
import type { OrganizationMember } from '../organizations/entities/organization-member.entity';
import type { User } from '../users/entities/user.entity';
import { CurrentAgentsCaller } from './agents-caller.decorator';
import { AgentsService, type AgentsCaller } from './agents.service';
import {
  AgentCreate,
  AgentHeartbeat,
  AgentHeartbeatCreate,
  AgentListQuery,
  AgentPage,
  AgentRead,
  AgentUpdate,
  AgentUpdateQuery,
} from './dto/agent.dto';

type OrgContext = { member: OrganizationMember };

const agentIdParam = ApiParam({ name: 'agentId', format: 'uuid' });

/**
 * User-facing agent routes (contract §1.3). `GET /agents/stream` belongs to the stream module,
 * registered before this one; `:agentId` only matches UUIDs anyway (422 otherwise).
 */
@ApiTags('agents')
@Controller('agents')
export class AgentsController {
  constructor(private readonly agents: AgentsService) {}

  /** A1. */
  @Get()
  @OrgAdmin()
  @ApiOkResponse({ type: AgentPage })
  list(@CurrentOrg() org: OrgContext, @Query() query: AgentListQuery): Promise<Page<AgentRead>> {
    return this.agents.list(org.member, query);
  }

  /** A3: an org admin, or a board lead on its own board. */
  @Post()
  @UserOrAgent()
  @ApiOkResponse({ type: AgentRead })
  @ApiConflictResponse({ description: 'The name is taken on the board or its gateway' })
  create(
    @CurrentAgentsCaller() caller: AgentsCaller,
    @Body() body: AgentCreate,
  ): Promise<AgentRead> {
    return this.agents.create(caller, body);
  }

  /** A7: heartbeat of the agent named `name`, created when missing (users: org admins only). */
  @Post('heartbeat')
  @UserOrAgent()
  @ApiOkResponse({ type: AgentRead })
  heartbeatOrCreate(
    @CurrentAgentsCaller() caller: AgentsCaller,
    @Body() body: AgentHeartbeatCreate,
  ): Promise<AgentRead> {
    return this.agents.heartbeatOrCreate(caller, body);
  }

  /** A4. */
  @Get(':agentId')
  @OrgAdmin()
  @agentIdParam
  @ApiOkResponse({ type: AgentRead })
  get(
    @CurrentOrg() org: OrgContext,
    @Param('agentId', ParseUuidPipe) agentId: string,
  ): Promise<AgentRead> {
    return this.agents.get(org.member, agentId);
  }

  /** A5: applies the changes and re-provisions; `force` rewrites BOOTSTRAP.md too. */
  @Patch(':agentId')
  @OrgAdmin()
  @agentIdParam
  @ApiOkResponse({ type: AgentRead })
  @ApiConflictResponse({ description: 'Name taken, or the gateway / board already has one' })
  @ApiBadGatewayResponse({ description: 'Gateway update failed: <step>: <error>' })
  update(
    @CurrentUser() user: User,
    @CurrentOrg() org: OrgContext,
    @Param('agentId', ParseUuidPipe) agentId: string,
    @Query() query: AgentUpdateQuery,
    @Body() body: AgentUpdate,
  ): Promise<AgentRead> {
    return this.agents.update(
      { type: 'user', user, member: org.member },
      agentId,
      body,
      query.force ?? false,
    );
  }

  /** A8: removed from the gateway first; `{ok: true}` also when it does not exist. */
  @Delete(':agentId')
  @OrgAdmin()
  @agentIdParam
  @ApiOkResponse({ type: OkResponse })
  @ApiBadGatewayResponse({ description: 'Gateway cleanup failed: <error> (nothing deleted)' })
  async delete(
    @CurrentOrg() org: OrgContext,
    @Param('agentId', ParseUuidPipe) agentId: string,
  ): Promise<OkResponse> {
    await this.agents.delete(org.member, agentId);
    return { ok: true };
  }

  /** A6: an agent heartbeats itself; a user needs org admin and write access. */
  @Post(':agentId/heartbeat')
  @UserOrAgent()
  @agentIdParam
  @ApiOkResponse({ type: AgentRead })
  heartbeat(
    @CurrentAgentsCaller() caller: AgentsCaller,
    @Param('agentId', ParseUuidPipe) agentId: string,
    @Body() body: AgentHeartbeat,
  ): Promise<AgentRead> {
    return this.agents.heartbeat(caller, agentId, body?.status);
  }
}
