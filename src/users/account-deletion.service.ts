import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { ConflictError } from '../common/errors/app-error';
import { OrganizationMember } from '../organizations/entities/organization-member.entity';
import { Organization } from '../organizations/entities/organization.entity';
import {
  OrganizationDeletionService,
  type AgentCleanupReport,
  type GatewayAgents,
} from '../organizations/organization-deletion.service';
import { User } from './entities/user.entity';

export const MEMBERSHIPS_CHANGED_DETAIL =
  'Your organization memberships changed while the account was being deleted; try again';

export function lastOwnerDetail(organizationName: string): string {
  return (
    `You are the last owner of the organization "${organizationName}", which has other ` +
    'members: make another member an owner, or remove the other members, before deleting ' +
    'your account'
  );
}

/** What the account deletion must do with each of the user's organizations. */
interface AccountPlan {
  /** Organizations the user is the only member of: deleted with the account. */
  soleOrganizationIds: string[];
}

/**
 * DELETE /users/me. The user's memberships go with the account; an organization the user is
 * the only member of is deleted entirely (its agents removed from their gateways, best effort,
 * once its rows are deleted), as upstream does, since nobody could reach it any more; an
 * organization with other members is refused (409) while the user is its last owner. Rows
 * that only mention the user (tasks' `created_by_user_id`, invites' `created_by_user_id` /
 * `accepted_by_user_id`) keep their history with the reference cleared (ON DELETE SET NULL).
 */
@Injectable()
export class AccountDeletionService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly organizations: OrganizationDeletionService,
  ) {}

  async deleteAccount(
    user: User,
  ): Promise<{ report: AgentCleanupReport; deletedOrganizationIds: string[] }> {
    // Refuses (409) before anything is touched.
    const planned = await this.plan(this.dataSource.manager, user.id, false);
    // The sole organizations' agents leave their gateways only once their rows are deleted:
    // removing them first (as DELETE /organizations/me does) would strip the agents of an
    // organization that someone joined meanwhile, which the re-check below then keeps.
    const targets = await this.dataSource.transaction(async (manager) => {
      await manager
        .createQueryBuilder(User, 'u')
        .setLock('pessimistic_write')
        .where('u.id = :id', { id: user.id })
        .getOne();
      // Checked again under locks: a member who joined meanwhile changes what may be deleted.
      const plan = await this.plan(manager, user.id, true);
      if (!sameIds(plan.soleOrganizationIds, planned.soleOrganizationIds)) {
        throw new ConflictError(MEMBERSHIPS_CHANGED_DETAIL);
      }
      const removed: GatewayAgents = { agents: [], gateways: [] };
      for (const organizationId of plan.soleOrganizationIds) {
        // Locks the organization (and its boards) before reading its agents: every agent
        // deleted with it is collected, also one created meanwhile.
        await this.organizations.deleteOrganizationRows(manager, organizationId, removed);
      }
      // Memberships and their board rows cascade; tasks and invites keep a NULL reference.
      await manager.delete(User, { id: user.id });
      return removed;
    });
    const report = await this.organizations.removeFromGateways(
      targets,
      planned.soleOrganizationIds,
    );
    return { report, deletedOrganizationIds: planned.soleOrganizationIds };
  }

  /**
   * The user's organizations, split into those the user is alone in and the others; refuses
   * (409) when the user is the last owner of an organization that has other members. With
   * `lock`, each organization row is locked FOR UPDATE: owner demotions and removals (FOR NO
   * KEY UPDATE) wait for this transaction, and so does a membership being inserted (its key
   * share lock), which the member count below then sees; FOR NO KEY UPDATE would let an
   * uncommitted acceptance through, and the organization would be deleted under its new member.
   */
  private async plan(manager: EntityManager, userId: string, lock: boolean): Promise<AccountPlan> {
    const memberships = await manager.find(OrganizationMember, {
      where: { userId },
      relations: { organization: true },
      order: { organizationId: 'ASC' },
    });
    const soleOrganizationIds: string[] = [];
    for (const membership of memberships) {
      const organizationId = membership.organizationId;
      if (lock) {
        await manager
          .createQueryBuilder(Organization, 'o')
          .setLock('pessimistic_write')
          .where('o.id = :organizationId', { organizationId })
          .getOne();
      }
      const [{ others, other_owners: otherOwners }] = await manager.query<
        { others: number; other_owners: number }[]
      >(
        `SELECT count(*)::int AS others, count(*) FILTER (WHERE role = 'owner')::int AS other_owners
           FROM organization_members WHERE organization_id = $1 AND user_id <> $2`,
        [organizationId, userId],
      );
      if (others === 0) soleOrganizationIds.push(organizationId);
      else if (membership.role === 'owner' && otherOwners === 0) {
        throw new ConflictError(lastOwnerDetail(membership.organization?.name ?? organizationId));
      }
    }
    return { soleOrganizationIds };
  }
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}
