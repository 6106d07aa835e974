import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { authContextOf } from '../auth/auth-context';
import type { AgentsCaller } from './agents.service';

/**
 * The user (with the active membership) or the agent behind a `@UserOrAgent()` request. A user
 * always has an active membership (membership resolution creates one).
 */
export const CurrentAgentsCaller = (): ParameterDecorator =>
  createParamDecorator((_data: unknown, ctx: ExecutionContext): AgentsCaller => {
    const auth = authContextOf(ctx.switchToHttp().getRequest<Request>());
    if (auth.agent) return { type: 'agent', agent: auth.agent };
    if (auth.user && auth.member) return { type: 'user', user: auth.user, member: auth.member };
    throw new Error('No caller on this request: check the route access decorator');
  })();
