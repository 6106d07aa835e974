import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, IsNull } from 'typeorm';
import type { Board } from '../boards/entities/board.entity';
import { ForbiddenError } from '../common/errors/app-error';
import { OrganizationBoardAccess } from '../organizations/entities/organization-board-access.entity';
import { OrganizationInviteBoardAccess } from '../organizations/entities/organization-invite-board-access.entity';
import { OrganizationInvite } from '../organizations/entities/organization-invite.entity';
import { OrganizationMember } from '../organizations/entities/organization-member.entity';
import { Organization } from '../organizations/entities/organization.entity';
import { User } from '../users/entities/user.entity';

export const DEFAULT_ORG_NAME = 'Personal';
export const ADMIN_ROLES: ReadonlySet<string> = new Set(['owner', 'admin']);
const ROLE_RANK: Record<string, number> = { member: 0, admin: 1, owner: 2 };

export function roleRank(role: string): number {
  return ROLE_RANK[role] ?? 0;
}

export function isOrgAdmin(member: Pick<OrganizationMember, 'role'>): boolean {
  return ADMIN_ROLES.has(member.role);
}

/** Trim + lowercase; blank becomes `member`. */
export function normalizeRole(role: string): string {
  return role.trim().toLowerCase() || 'member';
}

/** §3.3: may this member read (or write) this board? */
export async function hasBoardAccess(
  manager: EntityManager,
  member: OrganizationMember,
  board: Pick<Board, 'id' | 'organizationId'>,
  write: boolean,
): Promise<boolean> {
  if (member.organizationId !== board.organizationId) return false;
  if (member.allBoardsWrite) return true;
  if (!write && member.allBoardsRead) return true;
  const row = await manager.findOne(OrganizationBoardAccess, {
    where: { organizationMemberId: member.id, boardId: board.id },
  });
  if (!row) return false;
  return write ? row.canWrite : row.canRead || row.canWrite;
}

export interface EnsureMemberOptions {
  /** Re-read the user row first (false when the caller has just loaded it). */
  reload?: boolean;
  /** Join a pending invite for the user's email: only when the email is verified. */
  acceptInviteForEmail?: boolean;
}

/**
 * Organization membership resolution (contract §3.2): the active membership, the oldest one as
 * a fallback, a pending invite for the user's email, or a new "Personal" organization.
 */
@Injectable()
export class MembershipService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  private get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /** The member row (with its organization) of `userId` in `organizationId`, if any. */
  memberOf(userId: string, organizationId: string, manager = this.manager) {
    return manager.findOne(OrganizationMember, {
      where: { userId, organizationId },
      relations: { organization: true },
    });
  }

  private oldestMembership(userId: string, manager: EntityManager) {
    return manager.findOne(OrganizationMember, {
      where: { userId },
      relations: { organization: true },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  /**
   * §3.2 get_active_membership: the active org's membership, else the oldest (made active).
   * `reload: false` skips re-reading the user row when the caller has just loaded it.
   */
  async getActiveMembership(
    user: User,
    { reload = true }: { reload?: boolean } = {},
  ): Promise<OrganizationMember | null> {
    if (reload) {
      const fresh = await this.manager.findOne(User, { where: { id: user.id } });
      if (!fresh) return null;
      user.activeOrganizationId = fresh.activeOrganizationId;
    }
    if (user.activeOrganizationId) {
      const active = await this.memberOf(user.id, user.activeOrganizationId);
      if (active) return active;
      await this.setActiveOrganization(user, null);
    }
    const oldest = await this.oldestMembership(user.id, this.manager);
    if (oldest) await this.setActiveOrganization(user, oldest.organizationId);
    return oldest;
  }

  /** §3.2 ensure_member_for_user: every authenticated user ends up in an organization. */
  async ensureMemberForUser(
    user: User,
    options: EnsureMemberOptions = {},
  ): Promise<OrganizationMember> {
    const active = await this.getActiveMembership(user, options);
    if (active) return active;
    const member = await this.dataSource.transaction(async (manager) => {
      // Serialise concurrent first requests of one user so only one "Personal" org is created.
      await manager
        .createQueryBuilder(User, 'u')
        .setLock('pessimistic_write')
        .where('u.id = :id', { id: user.id })
        .getOne();
      const oldest = await this.oldestMembership(user.id, manager);
      if (oldest) {
        await this.setActiveOrganization(user, oldest.organizationId, manager);
        return oldest;
      }
      // An unverified email claim is anyone's to write: it must not open someone's invite.
      if (user.email && options.acceptInviteForEmail) {
        const invite = await manager.findOne(OrganizationInvite, {
          where: { invitedEmail: user.email, acceptedAt: IsNull() },
          order: { createdAt: 'ASC', id: 'ASC' },
        });
        if (invite) return this.acceptInvite(manager, invite, user);
      }
      return this.createOwnedOrganization(manager, user, DEFAULT_ORG_NAME);
    });
    if (!member.organization) {
      member.organization = await this.manager.findOneByOrFail(Organization, {
        id: member.organizationId,
      });
    }
    return member;
  }

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
    await this.setActiveOrganization(user, organization.id, manager);
    owner.organization = organization;
    return owner;
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
      await this.setActiveOrganization(user, invite.organizationId, manager);
    }
    member.organization = await manager.findOneByOrFail(Organization, {
      id: invite.organizationId,
    });
    return member;
  }

  async setActiveOrganization(
    user: User,
    organizationId: string | null,
    manager = this.manager,
  ): Promise<void> {
    await manager.update(User, { id: user.id }, { activeOrganizationId: organizationId });
    user.activeOrganizationId = organizationId;
  }

  /**
   * §3.5 require_board_access: the membership in the *board's* organization (not the active one)
   * must grant access. Returns that membership.
   */
  async requireBoardAccess(
    user: User,
    board: Pick<Board, 'id' | 'organizationId'>,
    write: boolean,
  ): Promise<OrganizationMember> {
    const member = await this.memberOf(user.id, board.organizationId);
    if (!member) throw new ForbiddenError('No org access');
    if (!(await hasBoardAccess(this.manager, member, board, write))) {
      throw new ForbiddenError('Board access denied');
    }
    return member;
  }
}
