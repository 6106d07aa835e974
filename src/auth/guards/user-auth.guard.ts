import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { UnauthorizedError } from '../../common/errors/app-error';
import { authContextOf } from '../auth-context';
import { bearerTokenOf } from '../credentials';
import { MembershipService } from '../membership.service';
import { UserAuthService, verifiedEmailOf } from '../user-auth.service';

/**
 * A user bearer token (local shared token or JWT) is required: 401 otherwise. Resolving the user
 * also ensures a membership (§3.2), so every authenticated user has an active organization.
 */
@Injectable()
export class UserAuthGuard implements CanActivate {
  constructor(
    private readonly userAuth: UserAuthService,
    private readonly membership: MembershipService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    await authenticateUser(
      context.switchToHttp().getRequest<Request>(),
      this.userAuth,
      this.membership,
    );
    return true;
  }
}

/** Resolves the bearer user and their active membership onto the request, or throws 401. */
export async function authenticateUser(
  req: Request,
  userAuth: UserAuthService,
  membership: MembershipService,
): Promise<void> {
  const auth = authContextOf(req);
  if (auth.user) return;
  const authenticated = await userAuth.authenticate(bearerTokenOf(req));
  if (!authenticated) throw new UnauthorizedError();
  const { user, identity } = authenticated;
  // The user row was read by authenticate() just now.
  const member = await membership.ensureMemberForUser(user, {
    reload: false,
    inviteEmail: verifiedEmailOf(identity),
  });
  auth.user = user;
  auth.identity = identity;
  auth.member = member;
  auth.organization = member.organization;
}
