import { Body, Controller, Delete, Get, Patch, Post } from '@nestjs/common';
import { ApiConflictResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { UserAuth } from '../auth/decorators/access.decorators';
import { CurrentUser } from '../auth/decorators/context.decorators';
import { toUserRead, UserRead, UserUpdate } from './dto/user.dto';
import { User } from './entities/user.entity';
import { AccountDeleteResponse } from '../organizations/dto/organization-delete.dto';
import { AccountDeletionService } from './account-deletion.service';
import { UsersService } from './users.service';

@ApiTags('users')
@Controller()
export class UsersController {
  constructor(
    private readonly users: UsersService,
    private readonly accounts: AccountDeletionService,
  ) {}

  @Get('users/me')
  @UserAuth()
  @ApiOkResponse({ type: UserRead })
  me(@CurrentUser() user: User): UserRead {
    return toUserRead(user);
  }

  @Patch('users/me')
  @UserAuth()
  @ApiOkResponse({ type: UserRead })
  async updateMe(@CurrentUser() user: User, @Body() body: UserUpdate): Promise<UserRead> {
    return toUserRead(await this.users.updateProfile(user, body));
  }

  /**
   * Deletes the caller's account and memberships, and the organizations the caller is the only
   * member of (their agents removed from their gateways once the rows are deleted, best effort).
   * Refused while the caller is the last owner of an organization with other members.
   */
  @Delete('users/me')
  @UserAuth()
  @ApiOkResponse({ type: AccountDeleteResponse })
  @ApiConflictResponse({ description: 'Last owner of an organization that has other members' })
  async deleteMe(@CurrentUser() user: User): Promise<AccountDeleteResponse> {
    const { report, deletedOrganizationIds } = await this.accounts.deleteAccount(user);
    return {
      ok: true,
      agents_removed: report.removed.length,
      agent_cleanup_failures: report.failed,
      deleted_organization_ids: deletedOrganizationIds,
    };
  }

  /** Creates or syncs the caller's user and ensures a membership (done by the guard). */
  @Post('auth/bootstrap')
  @UserAuth()
  @ApiOkResponse({ type: UserRead })
  bootstrap(@CurrentUser() user: User): UserRead {
    return toUserRead(user);
  }
}
