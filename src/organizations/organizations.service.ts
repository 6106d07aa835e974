import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { DataSource, EntityManager, In, IsNull, Not } from 'typeorm';
import { MembershipService } from '../auth/membership.service';
import { Board } from '../boards/entities/board.entity';
import {
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
} from '../common/errors/app-error';
import { Page, page, PageQuery } from '../common/pagination/pagination';
import { User } from '../users/entities/user.entity';
import { OrganizationInviteCreate } from './dto/invite.dto';
import {
  OrganizationBoardAccessSpec,
  OrganizationMemberAccessUpdate,
  OrganizationMemberUpdate,
} from './dto/member.dto';
import { OrganizationBoardAccess } from './entities/organization-board-access.entity';
import { OrganizationInviteBoardAccess } from './entities/organization-invite-board-access.entity';
import { OrganizationInvite } from './entities/organization-invite.entity';
import { OrganizationMember } from './entities/organization-member.entity';
import { Organization } from './entities/organization.entity';
import { OrganizationEnrollmentService } from './organization-enrollment.service';
import { isOrgAdmin, normalizeRole } from './roles';

export const OWNER_ROLE = 'owner';
export const LAST_OWNER_DETAIL = 'Organization must have at least one owner';
export const DUPLICATE_BOARD_DETAIL = 'Duplicate board_id in board_access';
export const OWNER_ROLE_DETAIL = 'Only owners can grant or revoke the owner role';

/** Only an owner may make someone an owner or change an owner's role (403 otherwise). */
function requireOwnerForOwnerRole(
  caller: Pick<OrganizationMember, 'role'>,
  newRole: string,
  currentRole?: string,
): void {
  if (caller.role === OWNER_ROLE) return;
  if (newRole === OWNER_ROLE || currentRole === OWNER_ROLE) {
    throw new ForbiddenError(OWNER_ROLE_DETAIL);
  }
}

/**
 * Whether `caller` may see an invite's token: the token is the invite (whoever holds it and the
 * invited email may accept it), and an owner invite makes an owner, which only owners grant.
 */
export function mayRevealInviteToken(
  caller: Pick<OrganizationMember, 'role'>,
  invite: Pick<OrganizationInvite, 'role'>,
): boolean {
  return caller.role === OWNER_ROLE || invite.role !== OWNER_ROLE;
}

/** A member with its user loaded and, where a route shows them, its per-board rows. */
export interface MemberView {
  member: OrganizationMember;
  boardAccess: OrganizationBoardAccess[];
}

/** An organization the caller belongs to, as listed by GET /organizations/me/list. */
export interface MembershipListing {
  organization: Organization;
  role: string;
  isActive: boolean;
}

/** `secrets.token_urlsafe(24)`: 32 URL-safe characters. */
export function generateInviteToken(): string {
  return randomBytes(24).toString('base64url');
}

export function normalizeInvitedEmail(email: string): string {
  return email.trim().toLowerCase();
}

/**
 * Organization, membership and invite rules (tenancy-api.md §3). Every query is scoped by the
 * organization it acts on; multi-row writes run in one transaction.
 */
@Injectable()
export class OrganizationsService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly membership: MembershipService,
    private readonly enrollment: OrganizationEnrollmentService,
  ) {}

  private get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /** T1: a new organization owned by the caller, made active. Names are unique ignoring case. */
  async createOrganization(user: User, rawName: string): Promise<Organization> {
    const name = rawName.trim();
    if (!name) throw new InvalidRequestError();
    return this.dataSource.transaction(async (manager) => {
      // No unique index on names ("Personal" orgs repeat): serialise creations of one name.
      await manager.query(
        `SELECT pg_advisory_xact_lock(hashtext('organization-name:' || lower($1)))`,
        [name],
      );
      const taken = await manager
        .createQueryBuilder(Organization, 'o')
        .where('lower(o.name) = lower(:name)', { name })
        .getExists();
      if (taken) throw new ConflictError();
      const owner = await this.enrollment.createOwnedOrganization(manager, user, name);
      return owner.organization!;
    });
  }

  /** T2: every organization of the caller, by lower(name), flagging the (normalised) active one. */
  async listOrganizations(user: User): Promise<MembershipListing[]> {
    const active = await this.membership.getActiveMembership(user);
    const members = await this.manager
      .createQueryBuilder(OrganizationMember, 'm')
      .innerJoinAndSelect('m.organization', 'o')
      .where('m.userId = :userId', { userId: user.id })
      .orderBy('lower(o.name)', 'ASC')
      .addOrderBy('o.id', 'ASC')
      .getMany();
    return members.map((member) => ({
      organization: member.organization!,
      role: member.role,
      isActive: member.organizationId === active?.organizationId,
    }));
  }

  /** T3: switch the caller's active organization to one they belong to. */
  async setActiveOrganization(user: User, organizationId: string): Promise<Organization> {
    const member = await this.membership.memberOf(user.id, organizationId);
    if (!member) throw new ForbiddenError('No org access');
    // The auth guard has just resolved the user's active organization.
    if (user.activeOrganizationId !== organizationId) {
      await this.membership.setActiveOrganization(user, organizationId);
    }
    if (!member.organization) throw new NotFoundError();
    return member.organization;
  }

  /** T6: the caller's own membership, with every board row. */
  async ownMembership(member: OrganizationMember): Promise<MemberView> {
    return this.memberView(member.organizationId, member.id, true);
  }

  /** T7: members of the organization by lower(email), then name (NULLs last). */
  async listMembers(organizationId: string, query: PageQuery): Promise<Page<OrganizationMember>> {
    const base = this.manager
      .createQueryBuilder(OrganizationMember, 'm')
      .innerJoinAndSelect('m.user', 'u')
      .where('m.organizationId = :organizationId', { organizationId });
    const total = await base.clone().getCount();
    const items = await base
      .orderBy('lower(u.email)', 'ASC')
      .addOrderBy('u.name', 'ASC')
      .addOrderBy('m.id', 'ASC')
      .offset(query.offset)
      .limit(query.limit)
      .getMany();
    return page(items, total, query);
  }

  /** T8: any member for an admin, only oneself otherwise. The 404 comes before the 403. */
  async getMember(caller: OrganizationMember, memberId: string): Promise<MemberView> {
    const view = await this.memberView(caller.organizationId, memberId, true);
    if (!isOrgAdmin(caller) && view.member.id !== caller.id) throw new ForbiddenError();
    return view;
  }

  /**
   * T9: change a member's role; only owners grant or revoke `owner`, and the last owner cannot
   * be demoted.
   */
  async updateMember(
    caller: OrganizationMember,
    memberId: string,
    update: OrganizationMemberUpdate,
  ): Promise<MemberView> {
    const organizationId = caller.organizationId;
    await this.dataSource.transaction(async (manager) => {
      await this.lockOwners(manager, organizationId);
      const member = await this.findMember(manager, organizationId, memberId);
      const changes: Partial<OrganizationMember> = { updatedAt: new Date() };
      if (update.role !== undefined) {
        const role = normalizeRole(update.role);
        requireOwnerForOwnerRole(caller, role, member.role);
        if (member.role === OWNER_ROLE && role !== OWNER_ROLE) {
          await this.requireAnotherOwner(manager, organizationId);
        }
        changes.role = role;
      }
      await manager.update(OrganizationMember, { id: member.id, organizationId }, changes);
    });
    return this.memberView(organizationId, memberId, false);
  }

  /** T10: replace a member's flags and per-board rows. */
  async updateMemberAccess(
    organizationId: string,
    memberId: string,
    update: OrganizationMemberAccessUpdate,
  ): Promise<MemberView> {
    await this.dataSource.transaction(async (manager) => {
      const member = await this.findMember(manager, organizationId, memberId);
      await this.requireOrgBoards(manager, organizationId, update.board_access);
      await manager.update(
        OrganizationMember,
        { id: member.id, organizationId },
        {
          allBoardsRead: update.all_boards_read,
          allBoardsWrite: update.all_boards_write,
          updatedAt: new Date(),
        },
      );
      await manager.delete(OrganizationBoardAccess, { organizationMemberId: member.id });
      if (!update.all_boards_read && !update.all_boards_write && update.board_access.length > 0) {
        await manager.insert(
          OrganizationBoardAccess,
          update.board_access.map((spec) => ({
            organizationMemberId: member.id,
            boardId: spec.board_id,
            canRead: spec.can_read,
            canWrite: spec.can_write,
          })),
        );
      }
    });
    return this.memberView(organizationId, memberId, false);
  }

  /** T11: remove a member (never oneself; owners only by owners; never the last owner). */
  async removeMember(caller: OrganizationMember, memberId: string): Promise<void> {
    const organizationId = caller.organizationId;
    await this.dataSource.transaction(async (manager) => {
      await this.lockOwners(manager, organizationId);
      const target = await this.findMember(manager, organizationId, memberId);
      if (target.userId === caller.userId) {
        throw new ForbiddenError('You cannot remove yourself from the organization');
      }
      if (target.role === OWNER_ROLE) {
        if (caller.role !== OWNER_ROLE) throw new ForbiddenError('Only owners can remove owners');
        await this.requireAnotherOwner(manager, organizationId);
      }
      await manager.delete(OrganizationBoardAccess, { organizationMemberId: target.id });
      const user = await manager.findOne(User, { where: { id: target.userId } });
      if (user?.activeOrganizationId === organizationId) {
        const next = await manager.findOne(OrganizationMember, {
          where: { userId: target.userId, organizationId: Not(organizationId) },
          order: { createdAt: 'ASC', id: 'ASC' },
        });
        await manager.update(
          User,
          { id: target.userId },
          { activeOrganizationId: next?.organizationId ?? null },
        );
      }
      await manager.delete(OrganizationMember, { id: target.id, organizationId });
    });
  }

  /** T12: pending invites, newest first. */
  async listInvites(organizationId: string, query: PageQuery): Promise<Page<OrganizationInvite>> {
    const [items, total] = await this.manager.findAndCount(OrganizationInvite, {
      where: { organizationId, acceptedAt: IsNull() },
      order: { createdAt: 'DESC', id: 'DESC' },
      skip: query.offset,
      take: query.limit,
    });
    return page(items, total, query);
  }

  /**
   * T13: invite an email (no email is sent); board rows are kept only without the flags. Only
   * owners may invite an owner.
   */
  async createInvite(
    caller: OrganizationMember,
    createdBy: User,
    body: OrganizationInviteCreate,
  ): Promise<OrganizationInvite> {
    const organizationId = caller.organizationId;
    const invitedEmail = normalizeInvitedEmail(body.invited_email);
    if (!invitedEmail) throw new InvalidRequestError();
    const role = normalizeRole(body.role);
    requireOwnerForOwnerRole(caller, role);
    return this.dataSource.transaction(async (manager) => {
      const alreadyMember = await manager
        .createQueryBuilder(OrganizationMember, 'm')
        .innerJoin('m.user', 'u')
        .where('m.organizationId = :organizationId', { organizationId })
        .andWhere('lower(u.email) = :email', { email: invitedEmail })
        .getExists();
      if (alreadyMember) throw new ConflictError();
      await this.requireOrgBoards(manager, organizationId, body.board_access);
      const invite = await manager.save(
        manager.create(OrganizationInvite, {
          organizationId,
          invitedEmail,
          token: generateInviteToken(),
          role,
          allBoardsRead: body.all_boards_read,
          allBoardsWrite: body.all_boards_write,
          createdByUserId: createdBy.id,
          acceptedByUserId: null,
          acceptedAt: null,
        }),
      );
      if (!body.all_boards_read && !body.all_boards_write && body.board_access.length > 0) {
        await manager.insert(
          OrganizationInviteBoardAccess,
          body.board_access.map((spec) => ({
            organizationInviteId: invite.id,
            boardId: spec.board_id,
            canRead: spec.can_read,
            canWrite: spec.can_write,
          })),
        );
      }
      return invite;
    });
  }

  /** T14: delete an invite (pending or accepted) and its board rows; returns what was deleted. */
  async revokeInvite(organizationId: string, inviteId: string): Promise<OrganizationInvite> {
    return this.dataSource.transaction(async (manager) => {
      const invite = await manager.findOne(OrganizationInvite, {
        where: { id: inviteId, organizationId },
      });
      if (!invite) throw new NotFoundError();
      await manager.delete(OrganizationInviteBoardAccess, { organizationInviteId: invite.id });
      await manager.delete(OrganizationInvite, { id: invite.id, organizationId });
      return invite;
    });
  }

  /**
   * T15: accept a pending invite by its token. Unlike upstream (which lets a caller without an
   * email accept any invite, and compares a stored, unverified email), the caller's current token
   * must carry the invited email, verified (`verifiedEmail`, see verifiedEmailOf): otherwise 403.
   * A token alone (admins can list them) must not let anyone else join or raise their role.
   */
  async acceptInvite(user: User, verifiedEmail: string | null, token: string): Promise<MemberView> {
    const member = await this.dataSource.transaction(async (manager) => {
      // The row lock makes a concurrent second acceptance of one token see it accepted (404).
      const invite = await manager
        .createQueryBuilder(OrganizationInvite, 'i')
        .setLock('pessimistic_write')
        .where('i.token = :token', { token })
        .andWhere('i.acceptedAt IS NULL')
        .getOne();
      if (!invite) throw new NotFoundError();
      const invitedEmail = normalizeInvitedEmail(invite.invitedEmail);
      const callerEmail = normalizeInvitedEmail(verifiedEmail ?? '');
      if (!invitedEmail || invitedEmail !== callerEmail) throw new ForbiddenError();
      return this.enrollment.acceptInvite(manager, invite, user);
    });
    return this.memberView(member.organizationId, member.id, false);
  }

  /** The member of `organizationId` with its user, and its board rows when `withAccess`. */
  private async memberView(
    organizationId: string,
    memberId: string,
    withAccess: boolean,
  ): Promise<MemberView> {
    const member = await this.manager.findOne(OrganizationMember, {
      where: { id: memberId, organizationId },
      relations: { user: true },
    });
    if (!member) throw new NotFoundError();
    const boardAccess = withAccess
      ? await this.manager.find(OrganizationBoardAccess, {
          where: { organizationMemberId: member.id },
          order: { createdAt: 'ASC', id: 'ASC' },
        })
      : [];
    return { member, boardAccess };
  }

  private async findMember(
    manager: EntityManager,
    organizationId: string,
    memberId: string,
  ): Promise<OrganizationMember> {
    const member = await manager.findOne(OrganizationMember, {
      where: { id: memberId, organizationId },
    });
    if (!member) throw new NotFoundError();
    return member;
  }

  /**
   * Serialises owner changes within one organization (demotion, removal), so two concurrent
   * requests cannot each see "another owner" and leave none. FOR NO KEY UPDATE does not block
   * inserts of rows referencing the organization.
   */
  private async lockOwners(manager: EntityManager, organizationId: string): Promise<void> {
    await manager
      .createQueryBuilder(Organization, 'o')
      .setLock('for_no_key_update')
      .where('o.id = :organizationId', { organizationId })
      .getOne();
  }

  private async requireAnotherOwner(manager: EntityManager, organizationId: string): Promise<void> {
    const owners = await manager.count(OrganizationMember, {
      where: { organizationId, role: OWNER_ROLE },
    });
    if (owners <= 1) throw new InvalidRequestError(LAST_OWNER_DETAIL);
  }

  /** Board ids must be distinct boards of the organization (422 otherwise; nothing is written). */
  private async requireOrgBoards(
    manager: EntityManager,
    organizationId: string,
    specs: OrganizationBoardAccessSpec[],
  ): Promise<void> {
    const boardIds = new Set(specs.map((spec) => spec.board_id));
    if (boardIds.size !== specs.length) throw new InvalidRequestError(DUPLICATE_BOARD_DETAIL);
    if (boardIds.size === 0) return;
    const found = await manager.count(Board, {
      where: { id: In([...boardIds]), organizationId },
    });
    if (found !== boardIds.size) throw new InvalidRequestError();
  }
}
