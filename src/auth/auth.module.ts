import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Agent } from '../agents/entities/agent.entity';
import { OrganizationsModule } from '../organizations/organizations.module';
import { User } from '../users/entities/user.entity';
import { AgentAuthService } from './agent-auth.service';
import { ActorGuard } from './guards/actor.guard';
import { AgentAuthGuard, AgentBoardGuard } from './guards/agent-auth.guard';
import { BoardActorGuard } from './guards/board-actor.guard';
import { BoardAccessGuard } from './guards/board-access.guard';
import { OrgAccessGuard } from './guards/org-access.guard';
import { UserAuthGuard } from './guards/user-auth.guard';
import { MembershipService } from './membership.service';
import { UserAuthService } from './user-auth.service';

const GUARDS = [
  UserAuthGuard,
  OrgAccessGuard,
  BoardAccessGuard,
  AgentAuthGuard,
  AgentBoardGuard,
  ActorGuard,
  BoardActorGuard,
];

/** Authentication (users and agents), membership resolution and the access guards. */
@Global()
@Module({
  // Organization creation and invite acceptance come from the organizations module.
  imports: [TypeOrmModule.forFeature([User, Agent]), OrganizationsModule],
  providers: [UserAuthService, AgentAuthService, MembershipService, ...GUARDS],
  exports: [UserAuthService, AgentAuthService, MembershipService, ...GUARDS],
})
export class AuthModule {}
