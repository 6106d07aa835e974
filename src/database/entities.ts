import { ActivityEvent } from '../activity/entities/activity-event.entity';
import { AgentPendingToken } from '../agents/entities/agent-pending-token.entity';
import { Agent } from '../agents/entities/agent.entity';
import { Approval } from '../approvals/entities/approval.entity';
import { BoardMemory } from '../board-memory/entities/board-memory.entity';
import { BoardGroup } from '../boards/entities/board-group.entity';
import { Board } from '../boards/entities/board.entity';
import { Gateway } from '../gateways/entities/gateway.entity';
import { OpenClawDeviceIdentity } from '../openclaw/entities/openclaw-device-identity.entity';
import { BoardOnboardingSession } from '../onboarding/entities/board-onboarding-session.entity';
import { OrganizationBoardAccess } from '../organizations/entities/organization-board-access.entity';
import { OrganizationInviteBoardAccess } from '../organizations/entities/organization-invite-board-access.entity';
import { OrganizationInvite } from '../organizations/entities/organization-invite.entity';
import { OrganizationMember } from '../organizations/entities/organization-member.entity';
import { Organization } from '../organizations/entities/organization.entity';
import { Task } from '../tasks/entities/task.entity';
import { User } from '../users/entities/user.entity';

/** Every entity, listed once; the app, the migration CLI and the tests all use this list. */
export const ENTITIES = [
  Organization,
  User,
  OrganizationMember,
  OrganizationBoardAccess,
  OrganizationInvite,
  OrganizationInviteBoardAccess,
  BoardGroup,
  Board,
  Gateway,
  Agent,
  AgentPendingToken,
  Task,
  Approval,
  ActivityEvent,
  BoardMemory,
  BoardOnboardingSession,
  OpenClawDeviceIdentity,
];
