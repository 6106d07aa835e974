import {
  Body,
  Controller,
  Delete,
  Get,
  Inject,
  Logger,
  Param,
  Patch,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiProduces,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { OrgAdmin } from '../auth/decorators/access.decorators';
import { CurrentOrg, CurrentUser } from '../auth/decorators/context.decorators';
import { SseConnection } from '../common/http/sse-connection';
import { Page, PageQuery } from '../common/pagination/pagination';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ParseUuidPipe } from '../common/validation/parse-uuid.pipe';
import type { Organization } from '../organizations/entities/organization.entity';
import type { OrganizationMember } from '../organizations/entities/organization-member.entity';
import type { User } from '../users/entities/user.entity';
import { GatewayCreate, GatewayRead, GatewayUpdate } from './dto/gateway.dto';
import {
  GatewayDeleteResult,
  GatewayTemplatesSyncQuery,
  GatewayTemplatesSyncResult,
} from './dto/gateway-sync.dto';
import { GatewaysService } from './gateways.service';
import { TemplateSyncService } from './template-sync.service';
import { ApiProperty } from '@nestjs/swagger';

type OrgContext = { organization: Organization; member: OrganizationMember };

const gatewayIdParam = ApiParam({ name: 'gatewayId', format: 'uuid' });
const notFound = ApiNotFoundResponse({ description: 'Gateway not found' });

class GatewayPage {
  @ApiProperty({ type: [GatewayRead] }) items!: GatewayRead[];
  @ApiProperty() total!: number;
  @ApiProperty() limit!: number;
  @ApiProperty() offset!: number;
}

/** Gateway CRUD and template sync (contract §1.2 G1–G6), org admins of the active organization. */
@ApiTags('gateways')
@Controller('gateways')
export class GatewaysController {
  private readonly logger = new Logger('Gateways');

  constructor(
    private readonly gateways: GatewaysService,
    private readonly templateSync: TemplateSyncService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get()
  @OrgAdmin()
  @ApiOkResponse({ type: GatewayPage })
  list(@CurrentOrg() org: OrgContext, @Query() query: PageQuery): Promise<Page<GatewayRead>> {
    return this.gateways.list(org.organization.id, query);
  }

  /** Saves the gateway, then provisions its main agent; `main_agent` says how that went. */
  @Post()
  @OrgAdmin()
  @ApiOkResponse({ type: GatewayRead })
  create(
    @CurrentOrg() org: OrgContext,
    @CurrentUser() user: User,
    @Body() body: GatewayCreate,
  ): Promise<GatewayRead> {
    return this.gateways.create(org.organization.id, user, body);
  }

  /** Reads only: no provisioning, no token rotation, no gateway call. */
  @Get(':gatewayId')
  @OrgAdmin()
  @gatewayIdParam
  @notFound
  @ApiOkResponse({ type: GatewayRead })
  get(
    @CurrentOrg() org: OrgContext,
    @Param('gatewayId', ParseUuidPipe) gatewayId: string,
  ): Promise<GatewayRead> {
    return this.gateways.get(org.organization.id, gatewayId);
  }

  /** Re-provisions the main agent only when name, url, token, workspace_root or a flag changed. */
  @Patch(':gatewayId')
  @OrgAdmin()
  @gatewayIdParam
  @notFound
  @ApiOkResponse({ type: GatewayRead })
  update(
    @CurrentOrg() org: OrgContext,
    @CurrentUser() user: User,
    @Param('gatewayId', ParseUuidPipe) gatewayId: string,
    @Body() body: GatewayUpdate,
  ): Promise<GatewayRead> {
    return this.gateways.update(org.organization.id, gatewayId, user, body);
  }

  @Delete(':gatewayId')
  @OrgAdmin()
  @gatewayIdParam
  @notFound
  @ApiOkResponse({ type: GatewayDeleteResult })
  @ApiConflictResponse({ description: 'Boards still use the gateway' })
  delete(
    @CurrentOrg() org: OrgContext,
    @Param('gatewayId', ParseUuidPipe) gatewayId: string,
  ): Promise<GatewayDeleteResult> {
    return this.gateways.delete(org.organization.id, gatewayId);
  }

  /**
   * Re-renders the agents' workspace files. Plain: the result object. With `?stream=true` or
   * `Accept: text/event-stream`: Server-Sent Events, one `agent` event per agent
   * (`{agent_id, agent_name, board_id, ok, error, outcome}`), then one `result` event; a client
   * that disconnects stops the sync from starting further agents.
   */
  @Post(':gatewayId/templates/sync')
  @OrgAdmin()
  @gatewayIdParam
  @notFound
  @ApiProduces('application/json', 'text/event-stream')
  @ApiOkResponse({ type: GatewayTemplatesSyncResult })
  async sync(
    @CurrentOrg() org: OrgContext,
    @Param('gatewayId', ParseUuidPipe) gatewayId: string,
    @Query() query: GatewayTemplatesSyncQuery,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const gateway = await this.gateways.find(org.organization.id, gatewayId);
    const { stream, ...options } = query;
    const wantsStream = stream || (req.headers.accept ?? '').includes('text/event-stream');
    if (!wantsStream) {
      res.status(200).json(await this.templateSync.sync(gateway, options));
      return;
    }

    const cancelled = new AbortController();
    res.on('close', () => cancelled.abort());
    const connection = new SseConnection(res);
    connection.open(this.config.stream.keepAliveMs);
    const send = (event: string, data: unknown) => connection.event(event, JSON.stringify(data));
    try {
      const result = await this.templateSync.sync(gateway, options, {
        onAgent: (event) => send('agent', event),
        signal: cancelled.signal,
      });
      send('result', result);
    } catch (error) {
      this.logger.error(`template sync of gateway ${gateway.id} failed`, (error as Error).stack);
      send('error', { detail: 'Internal Server Error' });
    } finally {
      connection.close();
    }
  }
}
