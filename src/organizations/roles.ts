import type { OrganizationMember } from './entities/organization-member.entity';

/** Member roles are free text; these two administer the organization. */
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
