import { Body, Controller, Get, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { OrgAdmin } from '../auth/decorators/access.decorators';
import { CurrentOrg, CurrentUser } from '../auth/decorators/context.decorators';
import { OkResponse } from '../common/dto/ok-response.dto';
import type { OrganizationMember } from '../organizations/entities/organization-member.entity';
import type { Organization } from '../organizations/entities/organization.entity';
import type { User } from '../users/entities/user.entity';
import {
  GatewayBoardQuery,
  GatewayCommandsResponse,
  GatewaySessionHistoryResponse,
  GatewaySessionMessageRequest,
  GatewaySessionResponse,
  GatewaySessionsResponse,
  GatewaysStatusResponse,
  GatewayStatusQuery,
  MAX_SESSION_KEY_LENGTH,
  ParseSessionKeyPipe,
} from './dto/sessions.dto';
import { SessionsService } from './sessions.service';

type OrgContext = { organization: Organization; member: OrganizationMember };

const sessionIdParam = ApiParam({
  name: 'sessionId',
  description: 'A gateway session key, e.g. agent:mc-gateway-<id>:main',
  schema: { type: 'string', minLength: 1, maxLength: MAX_SESSION_KEY_LENGTH },
});
const gatewayFailed = ApiBadGatewayResponse({ description: 'The gateway call failed' });
const unresolvable = ApiUnprocessableEntityResponse({
  description: 'No board_id, or the board has no usable gateway',
});
const noBoard = ApiNotFoundResponse({ description: 'No such board in the active organization' });

/**
 * Live gateway sessions (contract §1.1), org admins only. Its static paths (`status`,
 * `sessions`, `commands`) must be registered before the gateways module's `/gateways/:id`, so
 * SessionsModule is imported before GatewaysModule in AppModule.
 */
@ApiTags('gateway-sessions')
@Controller('gateways')
export class SessionsController {
  constructor(private readonly sessions: SessionsService) {}

  /** E1: a board's gateway, or a URL being tested before it is saved; never a gateway error. */
  @Get('status')
  @OrgAdmin()
  @ApiOkResponse({ type: GatewaysStatusResponse })
  @noBoard
  @unresolvable
  status(
    @CurrentUser() user: User,
    @CurrentOrg() { member }: OrgContext,
    @Query() query: GatewayStatusQuery,
  ): Promise<GatewaysStatusResponse> {
    return this.sessions.status({ user, member }, query);
  }

  @Get('sessions')
  @OrgAdmin()
  @ApiOkResponse({ type: GatewaySessionsResponse })
  @noBoard
  @unresolvable
  @gatewayFailed
  list(
    @CurrentUser() user: User,
    @CurrentOrg() { member }: OrgContext,
    @Query() query: GatewayBoardQuery,
  ): Promise<GatewaySessionsResponse> {
    return this.sessions.sessions({ user, member }, query.board_id);
  }

  @Get('sessions/:sessionId')
  @OrgAdmin()
  @sessionIdParam
  @ApiOkResponse({ type: GatewaySessionResponse })
  @ApiNotFoundResponse({ description: 'No such board, or "Session not found"' })
  @unresolvable
  @gatewayFailed
  get(
    @CurrentUser() user: User,
    @CurrentOrg() { member }: OrgContext,
    @Param('sessionId', ParseSessionKeyPipe) sessionId: string,
    @Query() query: GatewayBoardQuery,
  ): Promise<GatewaySessionResponse> {
    return this.sessions.session({ user, member }, sessionId, query.board_id);
  }

  @Get('sessions/:sessionId/history')
  @OrgAdmin()
  @sessionIdParam
  @ApiOkResponse({ type: GatewaySessionHistoryResponse })
  @noBoard
  @unresolvable
  @gatewayFailed
  history(
    @CurrentUser() user: User,
    @CurrentOrg() { member }: OrgContext,
    @Param('sessionId', ParseSessionKeyPipe) sessionId: string,
    @Query() query: GatewayBoardQuery,
  ): Promise<GatewaySessionHistoryResponse> {
    return this.sessions.history({ user, member }, sessionId, query.board_id);
  }

  /** E5: org admin, the board in the active organization, and write access to it. */
  @Post('sessions/:sessionId/message')
  @OrgAdmin()
  @sessionIdParam
  @ApiOkResponse({ type: OkResponse })
  @noBoard
  @unresolvable
  @gatewayFailed
  async message(
    @CurrentUser() user: User,
    @CurrentOrg() { member }: OrgContext,
    @Param('sessionId', ParseSessionKeyPipe) sessionId: string,
    @Query() query: GatewayBoardQuery,
    @Body() body: GatewaySessionMessageRequest,
  ): Promise<OkResponse> {
    await this.sessions.sendMessage({ user, member }, sessionId, body.content, query.board_id);
    return { ok: true };
  }

  /** E6: the board's gateway's advertised methods and events, else this client's own. */
  @Get('commands')
  @OrgAdmin()
  @ApiOkResponse({ type: GatewayCommandsResponse })
  @noBoard
  @gatewayFailed
  commands(
    @CurrentUser() user: User,
    @CurrentOrg() { member }: OrgContext,
    @Query() query: GatewayBoardQuery,
  ): Promise<GatewayCommandsResponse> {
    return this.sessions.commands({ user, member }, query.board_id);
  }
}
