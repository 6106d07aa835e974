import { Body, Controller, Delete, Get, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { OrgAdmin, OrgMember, UserAuth } from '../auth/decorators/access.decorators';
import {
  CurrentOrg,
  CurrentUser,
  CurrentVerifiedEmail,
} from '../auth/decorators/context.decorators';
import { OkResponse } from '../common/dto/ok-response.dto';
import { Page, PageQuery } from '../common/pagination/pagination';
import { ParseUuidPipe } from '../common/validation/parse-uuid.pipe';
import { User } from '../users/entities/user.entity';
import {
  OrganizationInviteAccept,
  OrganizationInviteCreate,
  OrganizationInvitePage,
  OrganizationInviteRead,
  toOrganizationInviteRead,
} from './dto/invite.dto';
import {
  OrganizationMemberAccessUpdate,
  OrganizationMemberPage,
  OrganizationMemberRead,
  OrganizationMemberUpdate,
  toOrganizationMemberRead,
} from './dto/member.dto';
import {
  OrganizationActiveUpdate,
  OrganizationCreate,
  OrganizationListItem,
  OrganizationRead,
  toOrganizationListItem,
  toOrganizationRead,
} from './dto/organization.dto';
import {
  OrganizationDeleteResponse,
  toOrganizationDeleteResponse,
} from './dto/organization-delete.dto';
import { OrganizationMember } from './entities/organization-member.entity';
import { OrganizationDeletionService } from './organization-deletion.service';
import { Organization } from './entities/organization.entity';
import { mayRevealInviteToken, MemberView, OrganizationsService } from './organizations.service';

type OrgContext = { organization: Organization; member: OrganizationMember };

const memberRead = ({ member, boardAccess }: MemberView) =>
  toOrganizationMemberRead(member, boardAccess);

/** Organizations, their members and invites. Static segments are declared before parameters. */
@ApiTags('organizations')
@Controller('organizations')
export class OrganizationsController {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly deletion: OrganizationDeletionService,
  ) {}

  @Post()
  @UserAuth()
  @ApiOkResponse({ type: OrganizationRead })
  async create(
    @CurrentUser() user: User,
    @Body() body: OrganizationCreate,
  ): Promise<OrganizationRead> {
    return toOrganizationRead(await this.organizations.createOrganization(user, body.name));
  }

  @Get('me')
  @OrgMember()
  @ApiOkResponse({ type: OrganizationRead })
  me(@CurrentOrg() { organization }: OrgContext): OrganizationRead {
    return toOrganizationRead(organization);
  }

  /**
   * T5, owner only: the active organization and everything it owns. Its agents are removed
   * from their gateways first (best effort); those that could not be are listed.
   */
  @Delete('me')
  @OrgAdmin()
  @ApiOkResponse({ type: OrganizationDeleteResponse })
  async deleteMine(@CurrentOrg() { member }: OrgContext): Promise<OrganizationDeleteResponse> {
    return toOrganizationDeleteResponse(await this.deletion.deleteOrganization(member));
  }

  @Get('me/list')
  @UserAuth()
  @ApiOkResponse({ type: OrganizationListItem, isArray: true })
  async list(@CurrentUser() user: User): Promise<OrganizationListItem[]> {
    const listings = await this.organizations.listOrganizations(user);
    return listings.map(({ organization, role, isActive }) =>
      toOrganizationListItem(organization, role, isActive),
    );
  }

  @Patch('me/active')
  @UserAuth()
  @ApiOkResponse({ type: OrganizationRead })
  async setActive(
    @CurrentUser() user: User,
    @Body() body: OrganizationActiveUpdate,
  ): Promise<OrganizationRead> {
    return toOrganizationRead(
      await this.organizations.setActiveOrganization(user, body.organization_id),
    );
  }

  @Get('me/member')
  @OrgMember()
  @ApiOkResponse({ type: OrganizationMemberRead })
  async ownMembership(@CurrentOrg() { member }: OrgContext): Promise<OrganizationMemberRead> {
    return memberRead(await this.organizations.ownMembership(member));
  }

  @Get('me/members')
  @OrgMember()
  @ApiOkResponse({ type: OrganizationMemberPage })
  async listMembers(
    @CurrentOrg() { organization }: OrgContext,
    @Query() query: PageQuery,
  ): Promise<Page<OrganizationMemberRead>> {
    const result = await this.organizations.listMembers(organization.id, query);
    return { ...result, items: result.items.map((member) => toOrganizationMemberRead(member)) };
  }

  @Get('me/members/:memberId')
  @OrgMember()
  @ApiOkResponse({ type: OrganizationMemberRead })
  async getMember(
    @CurrentOrg() { member }: OrgContext,
    @Param('memberId', ParseUuidPipe) memberId: string,
  ): Promise<OrganizationMemberRead> {
    return memberRead(await this.organizations.getMember(member, memberId));
  }

  @Patch('me/members/:memberId')
  @OrgAdmin()
  @ApiOkResponse({ type: OrganizationMemberRead })
  async updateMember(
    @CurrentOrg() { member }: OrgContext,
    @Param('memberId', ParseUuidPipe) memberId: string,
    @Body() body: OrganizationMemberUpdate,
  ): Promise<OrganizationMemberRead> {
    return memberRead(await this.organizations.updateMember(member, memberId, body));
  }

  @Put('me/members/:memberId/access')
  @OrgAdmin()
  @ApiOkResponse({ type: OrganizationMemberRead })
  async updateMemberAccess(
    @CurrentOrg() { organization }: OrgContext,
    @Param('memberId', ParseUuidPipe) memberId: string,
    @Body() body: OrganizationMemberAccessUpdate,
  ): Promise<OrganizationMemberRead> {
    return memberRead(await this.organizations.updateMemberAccess(organization.id, memberId, body));
  }

  @Delete('me/members/:memberId')
  @OrgAdmin()
  @ApiOkResponse({ type: OkResponse })
  async removeMember(
    @CurrentOrg() { member }: OrgContext,
    @Param('memberId', ParseUuidPipe) memberId: string,
  ): Promise<OkResponse> {
    await this.organizations.removeMember(member, memberId);
    return { ok: true };
  }

  @Get('me/invites')
  @OrgAdmin()
  @ApiOkResponse({ type: OrganizationInvitePage })
  async listInvites(
    @CurrentOrg() { organization, member }: OrgContext,
    @Query() query: PageQuery,
  ): Promise<Page<OrganizationInviteRead>> {
    const result = await this.organizations.listInvites(organization.id, query);
    return {
      ...result,
      items: result.items.map((invite) =>
        toOrganizationInviteRead(invite, mayRevealInviteToken(member, invite)),
      ),
    };
  }

  @Post('me/invites')
  @OrgAdmin()
  @ApiOkResponse({ type: OrganizationInviteRead })
  async createInvite(
    @CurrentOrg() { member }: OrgContext,
    @CurrentUser() user: User,
    @Body() body: OrganizationInviteCreate,
  ): Promise<OrganizationInviteRead> {
    const invite = await this.organizations.createInvite(member, user, body);
    return toOrganizationInviteRead(invite, mayRevealInviteToken(member, invite));
  }

  @Delete('me/invites/:inviteId')
  @OrgAdmin()
  @ApiOkResponse({ type: OrganizationInviteRead })
  async revokeInvite(
    @CurrentOrg() { organization, member }: OrgContext,
    @Param('inviteId', ParseUuidPipe) inviteId: string,
  ): Promise<OrganizationInviteRead> {
    const invite = await this.organizations.revokeInvite(organization.id, inviteId);
    return toOrganizationInviteRead(invite, mayRevealInviteToken(member, invite));
  }

  @Post('invites/accept')
  @UserAuth()
  @ApiOkResponse({ type: OrganizationMemberRead })
  async acceptInvite(
    @CurrentUser() user: User,
    @CurrentVerifiedEmail() verifiedEmail: string | null,
    @Body() body: OrganizationInviteAccept,
  ): Promise<OrganizationMemberRead> {
    return memberRead(await this.organizations.acceptInvite(user, verifiedEmail, body.token));
  }
}
