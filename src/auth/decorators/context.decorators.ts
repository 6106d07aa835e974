import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { Agent } from '../../agents/entities/agent.entity';
import type { Board } from '../../boards/entities/board.entity';
import type { OrganizationMember } from '../../organizations/entities/organization-member.entity';
import type { Organization } from '../../organizations/entities/organization.entity';
import type { User } from '../../users/entities/user.entity';
import { Actor, authContextOf, RequestAuthContext } from '../auth-context';
import { verifiedEmailOf } from '../user-auth.service';

function fromContext<T>(pick: (auth: RequestAuthContext) => T | undefined, what: string) {
  return createParamDecorator((_data: unknown, ctx: ExecutionContext): T => {
    const value = pick(authContextOf(ctx.switchToHttp().getRequest<Request>()));
    // A handler asking for context its access decorator does not provide is a programming error.
    if (value === undefined)
      throw new Error(`No ${what} on this request: check the route's access decorator`);
    return value;
  })();
}

/** The authenticated user. */
export const CurrentUser = (): ParameterDecorator => fromContext<User>((a) => a.user, 'user');

/**
 * The email the user's current token vouches for (verified, or AUTH_JWT_TRUST_EMAIL), or null.
 * Only on user-authenticated routes.
 */
export const CurrentVerifiedEmail = (): ParameterDecorator =>
  fromContext<string | null>(
    (a) => (a.identity ? verifiedEmailOf(a.identity) : undefined),
    'user identity',
  );

/** The active organization and the caller's membership in it. */
export const CurrentOrg = (): ParameterDecorator =>
  fromContext<{ organization: Organization; member: OrganizationMember }>(
    (a) =>
      a.organization && a.member ? { organization: a.organization, member: a.member } : undefined,
    'organization',
  );

/** The route's board, loaded once by the board guard. */
export const CurrentBoard = (): ParameterDecorator => fromContext<Board>((a) => a.board, 'board');

/** The authenticated agent. */
export const CurrentAgent = (): ParameterDecorator => fromContext<Agent>((a) => a.agent, 'agent');

/** The user or agent behind the request. */
export const CurrentActor = (): ParameterDecorator =>
  fromContext<Actor>(
    (a) =>
      a.user
        ? { type: 'user', user: a.user }
        : a.agent
          ? { type: 'agent', agent: a.agent }
          : undefined,
    'actor',
  );
