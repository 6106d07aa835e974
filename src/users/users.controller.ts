import { Body, Controller, Get, Patch, Post } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { UserAuth } from '../auth/decorators/access.decorators';
import { CurrentUser } from '../auth/decorators/context.decorators';
import { toUserRead, UserRead, UserUpdate } from './dto/user.dto';
import { User } from './entities/user.entity';
import { UsersService } from './users.service';

@ApiTags('users')
@Controller()
export class UsersController {
  constructor(private readonly users: UsersService) {}

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

  /** Creates or syncs the caller's user and ensures a membership (done by the guard). */
  @Post('auth/bootstrap')
  @UserAuth()
  @ApiOkResponse({ type: UserRead })
  bootstrap(@CurrentUser() user: User): UserRead {
    return toUserRead(user);
  }
}
