import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { Board } from '../boards/entities/board.entity';
import { ForbiddenError } from '../common/errors/app-error';
import { OrganizationBoardAccess } from '../organizations/entities/organization-board-access.entity';
import { OrganizationMember } from '../organizations/entities/organization-member.entity';
import { Organization } from '../organizations/entities/organization.entity';
import {
  OrganizationEnrollmentService,
  setActiveOrganization,
} from '../organizations/organization-enrollment.service';
import { User } from '../users/entities/user.entity';

export const DEFAULT_ORG_NAME = 'Personal';

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
  /**
   * The verified email of the current token (see verifiedEmailOf): a user without membership
   * joins the oldest pending invite for it. Never the stored email, which an earlier,
   * unverified token may have written.
   */
  inviteEmail?: string | null;
}

/**
 * Organization membership resolution (contract §3.2): the active membership, the oldest one as
 * a fallback, a pending invite for the current token's verified email, or a new "Personal"
 * organization. Creating organizations and accepting invites belong to the organizations module
 * (OrganizationEnrollmentService); authentication only asks for them.
 */
@Injectable()
export class MembershipService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly enrollment: OrganizationEnrollmentService,
  ) {}

  private get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /**
   * The member row (with its organization) of `userId` in `organizationId`, if any. One query:
   * (user, organization) is unique, so no LIMIT (findOne with a relation sends two, a DISTINCT
   * id query and then the rows, on every authenticated request).
   */
  memberOf(userId: string, organizationId: string, manager = this.manager) {
    return manager
      .createQueryBuilder(OrganizationMember, 'member')
      .innerJoinAndSelect('member.organization', 'organization')
      .where('member.user_id = :userId AND member.organization_id = :organizationId', {
        userId,
        organizationId,
      })
      .getOne();
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
      if (options.inviteEmail) {
        const invite = await this.enrollment.oldestPendingInvite(manager, options.inviteEmail);
        if (invite) return this.enrollment.acceptInvite(manager, invite, user);
      }
      return this.enrollment.createOwnedOrganization(manager, user, DEFAULT_ORG_NAME);
    });
    if (!member.organization) {
      member.organization = await this.manager.findOneByOrFail(Organization, {
        id: member.organizationId,
      });
    }
    return member;
  }

  async setActiveOrganization(
    user: User,
    organizationId: string | null,
    manager = this.manager,
  ): Promise<void> {
    await setActiveOrganization(manager, user, organizationId);
  }

  /**
   * §3.5 require_board_access: the membership in the *board's* organization (not the active one)
   * must grant access. Returns that membership. `activeMember`: the caller's active membership
   * already loaded for this request, used (no query) when it is in the board's organization.
   */
  async requireBoardAccess(
    user: User,
    board: Pick<Board, 'id' | 'organizationId'>,
    write: boolean,
    activeMember?: OrganizationMember | null,
  ): Promise<OrganizationMember> {
    // The request's active membership (read by the auth guard moments ago) when it is the one.
    const member =
      activeMember &&
      activeMember.userId === user.id &&
      activeMember.organizationId === board.organizationId
        ? activeMember
        : await this.memberOf(user.id, board.organizationId);
    if (!member) throw new ForbiddenError('No org access');
    if (!(await hasBoardAccess(this.manager, member, board, write))) {
      throw new ForbiddenError('Board access denied');
    }
    return member;
  }
}
