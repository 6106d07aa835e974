import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { ForbiddenError, UnauthorizedError } from '../../common/errors/app-error';
import { authContextOf } from '../auth-context';
import { isOrgAdmin } from '../../organizations/roles';

export type OrgRoleRequirement = 'member' | 'admin';
export const ORG_ROLE_KEY = 'mc:org-role';
export const RequireOrgRole = (role: OrgRoleRequirement) => SetMetadata(ORG_ROLE_KEY, role);

/** Runs after UserAuthGuard: the active membership must exist, and be owner/admin for `admin`. */
@Injectable()
export class OrgAccessGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const role = this.reflector.getAllAndOverride<OrgRoleRequirement | undefined>(ORG_ROLE_KEY, [
      context.getHandler(),
      context.getClass(),
    ]);
    const auth = authContextOf(context.switchToHttp().getRequest<Request>());
    if (!auth.user) throw new UnauthorizedError();
    if (!auth.member || !auth.organization) throw new ForbiddenError();
    if (role === 'admin' && !isOrgAdmin(auth.member)) throw new ForbiddenError();
    return true;
  }
}
