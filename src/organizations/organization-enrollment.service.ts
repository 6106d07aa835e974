import { Injectable } from '@nestjs/common';
import { EntityManager, IsNull } from 'typeorm';
import { User } from '../users/entities/user.entity';
import { OrganizationBoardAccess } from './entities/organization-board-access.entity';
import { OrganizationInviteBoardAccess } from './entities/organization-invite-board-access.entity';
import { OrganizationInvite } from './entities/organization-invite.entity';
import { OrganizationMember } from './entities/organization-member.entity';
import { Organization } from './entities/organization.entity';
import { roleRank } from './roles';

/** Makes `organizationId` (or none) the user's active organization, within `manager`. */
export async function setActiveOrganization(
  manager: EntityManager,
  user: User,
  organizationId: string | null,
): Promise<void> {
  await manager.update(User, { id: user.id }, { activeOrganizationId: organizationId });
  user.activeOrganizationId = organizationId;
}

/**
 * How a user comes to belong to an organization: by creating one (as its owner) or by accepting
 * an invite. Used by the organization routes and by authentication's first-request membership
 * resolution alike; every method runs inside the caller's transaction (`manager`).
 */
@Injectable()
export class OrganizationEnrollmentService {
  /**
   * A new organization with `user` as its owner (both all-boards flags), made the user's active
   * one: the "Personal" fallback of §3.2 and POST /organizations alike.
   */
  async createOwnedOrganization(
    manager: EntityManager,
    user: User,
    name: string,
  ): Promise<OrganizationMember> {
    const organization = await manager.save(manager.create(Organization, { name }));
    const owner = await manager.save(
      manager.create(OrganizationMember, {
        organizationId: organization.id,
        userId: user.id,
        role: 'owner',
        allBoardsRead: true,
        allBoardsWrite: true,
      }),
    );
    await setActiveOrganization(manager, user, organization.id);
    owner.organization = organization;
    return owner;
  }

  /** The oldest pending invite for `email`, if any (§3.2 step 4). */
  oldestPendingInvite(manager: EntityManager, email: string): Promise<OrganizationInvite | null> {
    return manager.findOne(OrganizationInvite, {
      where: { invitedEmail: email, acceptedAt: IsNull() },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  /**
   * Accepts an invite for `user` (T15 and §3.2 step 4). A new member gets the invite's role,
   * flags and board rows; an existing member is merged, never downgraded.
   */
  async acceptInvite(
    manager: EntityManager,
    invite: OrganizationInvite,
    user: User,
  ): Promise<OrganizationMember> {
    const inviteRows = await manager.find(OrganizationInviteBoardAccess, {
      where: { organizationInviteId: invite.id },
    });
    let member = await manager.findOne(OrganizationMember, {
      where: { userId: user.id, organizationId: invite.organizationId },
    });
    if (!member) {
      member = await manager.save(
        manager.create(OrganizationMember, {
          organizationId: invite.organizationId,
          userId: user.id,
          role: invite.role,
          allBoardsRead: invite.allBoardsRead,
          allBoardsWrite: invite.allBoardsWrite,
        }),
      );
      if (!invite.allBoardsRead && !invite.allBoardsWrite && inviteRows.length > 0) {
        await manager.insert(
          OrganizationBoardAccess,
          inviteRows.map((row) => ({
            organizationMemberId: member!.id,
            boardId: row.boardId,
            canRead: row.canRead,
            canWrite: row.canWrite,
          })),
        );
      }
    } else {
      if (roleRank(invite.role) > roleRank(member.role)) member.role = invite.role;
      if (invite.allBoardsRead || invite.allBoardsWrite) {
        member.allBoardsRead ||= invite.allBoardsRead || invite.allBoardsWrite;
        member.allBoardsWrite ||= invite.allBoardsWrite;
      } else {
        for (const row of inviteRows) {
          const existing = await manager.findOne(OrganizationBoardAccess, {
            where: { organizationMemberId: member.id, boardId: row.boardId },
          });
          const canRead = row.canRead || row.canWrite;
          if (existing) {
            existing.canRead ||= canRead;
            existing.canWrite ||= row.canWrite;
            await manager.save(existing);
          } else {
            await manager.insert(OrganizationBoardAccess, {
              organizationMemberId: member.id,
              boardId: row.boardId,
              canRead,
              canWrite: row.canWrite,
            });
          }
        }
      }
      member.updatedAt = new Date();
      member = await manager.save(member);
    }
    await manager.update(
      OrganizationInvite,
      { id: invite.id },
      { acceptedByUserId: user.id, acceptedAt: new Date(), updatedAt: new Date() },
    );
    const current = await manager.findOne(User, { where: { id: user.id } });
    if (current && !current.activeOrganizationId) {
      await setActiveOrganization(manager, user, invite.organizationId);
    }
    member.organization = await manager.findOneByOrFail(Organization, {
      id: invite.organizationId,
    });
    return member;
  }
}
