import type { Request } from 'express';
import type { Agent } from '../agents/entities/agent.entity';
import type { Board } from '../boards/entities/board.entity';
import type { OrganizationMember } from '../organizations/entities/organization-member.entity';
import type { Organization } from '../organizations/entities/organization.entity';
import type { User } from '../users/entities/user.entity';
import type { VerifiedIdentity } from './user-auth.service';

/** The caller as resolved by the access guards, attached once per request. */
export interface RequestAuthContext {
  user?: User;
  /** What the user's bearer token says (its email is trusted only when verified). */
  identity?: VerifiedIdentity;
  agent?: Agent;
  /** The user's active membership, with its organization (org-scoped routes). */
  member?: OrganizationMember;
  organization?: Organization;
  /** The board named by the route, with the membership that grants access to it (board routes). */
  board?: Board;
  boardMember?: OrganizationMember;
}

export type Actor = { type: 'user'; user: User } | { type: 'agent'; agent: Agent };

const contexts = new WeakMap<Request, RequestAuthContext>();

export function authContextOf(req: Request): RequestAuthContext {
  let context = contexts.get(req);
  if (!context) {
    context = {};
    contexts.set(req, context);
  }
  return context;
}
