import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { AgentAuthService } from '../agent-auth.service';
import { authContextOf } from '../auth-context';
import { agentTokenHeaderOf } from '../credentials';
import { MembershipService } from '../membership.service';
import { UserAuthService } from '../user-auth.service';
import { authenticateAgent } from './agent-auth.guard';
import { authenticateUser } from './user-auth.guard';

/**
 * USER-OR-AGENT (contract §2.3): a request carrying `X-Agent-Token` is an agent request (an
 * unknown token is 401, never a silent fall-through to the user path); otherwise a user bearer
 * token is required.
 */
@Injectable()
export class ActorGuard implements CanActivate {
  constructor(
    private readonly userAuth: UserAuthService,
    private readonly agentAuth: AgentAuthService,
    private readonly membership: MembershipService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    const auth = authContextOf(req);
    if (auth.user || auth.agent) return true;
    const agentToken = agentTokenHeaderOf(req);
    if (agentToken) {
      await authenticateAgent(req, this.agentAuth, agentToken);
      return true;
    }
    await authenticateUser(req, this.userAuth, this.membership);
    return true;
  }
}
