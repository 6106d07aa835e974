import { Injectable, Logger } from '@nestjs/common';
import type { Agent } from '../agents/entities/agent.entity';
import { GatewayOperationError } from '../common/errors/gateway-errors';
import type { Gateway } from '../gateways/entities/gateway.entity';
import { isAgentNotFoundError } from '../openclaw/compat';
import type { GatewayMethods } from '../openclaw/gateway-methods';
import { OpenClawGatewayService } from '../openclaw/openclaw-gateway.service';
import { isTransientGatewayError, withGatewayRetry, type RetryProfile } from '../openclaw/retry';
import { agentGatewayIdentity } from './agent-identity';

/** Busy refusals of `agents.delete` worth waiting out. */
const BUSY = /drain|busy|in use|locked/i;
const AGENT_DELETE: RetryProfile = {
  timeoutMs: 10_000,
  baseDelayMs: 1_000,
  maxDelayMs: 4_000,
  jitter: 0.1,
  context: 'agent delete',
};

/** Removes agents from their gateway. */
@Injectable()
export class AgentCleanup {
  private readonly logger = new Logger('Provisioning');

  constructor(private readonly gateways: OpenClawGatewayService) {}

  /**
   * Removes the agent from its gateway: `agents.delete` with its files, then its session. Both
   * tolerate "not found" (already gone); the main session goes with the agent on today's
   * gateway, which refuses to delete it separately.
   */
  async cleanupAgent(agent: Agent, gateway: Gateway): Promise<void> {
    if (!gateway.url.trim()) return;
    const identity = agentGatewayIdentity(agent, gateway);
    const methods = this.gateways.methods(gateway);
    await this.deleteGatewayAgent(methods, identity.gatewayAgentId);
    try {
      await methods.sessionsDelete(identity.sessionKey);
    } catch (error) {
      this.logger.debug(
        `sessions.delete ${identity.sessionKey} after agents.delete: ${(error as Error).message}`,
      );
    }
  }

  /**
   * `agents.delete` with its files; "not found" means already gone. The gateway can refuse while
   * it winds down a run of the agent ("Agent database resource drainage failed", seen on
   * 2026.9.6 right after a wake-up), so transient and busy refusals are retried, spaced, within
   * a bound.
   */
  private async deleteGatewayAgent(methods: GatewayMethods, agentId: string): Promise<void> {
    try {
      await withGatewayRetry(
        AGENT_DELETE,
        async () => {
          try {
            await methods.agentsDelete({ agentId, deleteFiles: true });
          } catch (error) {
            if (!isAgentNotFoundError(error)) throw error;
          }
        },
        undefined,
        {
          retryIf: (error) =>
            isTransientGatewayError(error) || (error instanceof Error && BUSY.test(error.message)),
          // The gateway's own refusal, not our retry wrapper, names the cause.
          exhausted: 'last',
        },
      );
    } catch (error) {
      throw new GatewayOperationError(
        'cleanup',
        error instanceof Error ? error : new Error(String(error)),
      );
    }
  }
}
