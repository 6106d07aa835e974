import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { AgentPendingToken } from '../agents/entities/agent-pending-token.entity';
import {
  agentTokenDigest,
  generateAgentToken,
  promotePendingAgentToken,
  registerPendingAgentToken,
} from '../auth/agent-token';
import { isUnsupportedFileError } from '../openclaw/compat';
import { OpenClawGatewayService } from '../openclaw/openclaw-gateway.service';
import { agentGatewayIdentity } from './agent-identity';
import { loadAgentTarget } from './agent-target';
import { parseConnectionBlock } from './connection-block';
import type { ProvisionRequest, TenantAgentRef } from './provisioning.types';

/** The token a run writes into the workspace: the one asked for, or a fresh one. */
export function runToken(request: ProvisionRequest): { token: string; digest: string } {
  const token = request.token && 'raw' in request.token ? request.token.raw : generateAgentToken();
  return { token, digest: agentTokenDigest(token) };
}

/**
 * A run's token bookkeeping. The rule: any token that may be in the agent's workspace keeps
 * working until a newer token is known to be written there. So the run's token becomes an
 * unconfirmed (pending) token only just before the first token-carrying write (a run failing
 * earlier, e.g. on a template or `agents.list`, leaves tokens alone), and becomes the agent's
 * token in force, retiring older ones, once the last carrier write is confirmed.
 */
export function runTokenLedger(
  manager: EntityManager,
  agent: { id: string; organizationId: string },
  digest: string,
) {
  return {
    beforeCarrierWrite: () => registerPendingAgentToken(manager, agent, digest),
    carrierWritten: () => promotePendingAgentToken(manager, agent.id, digest),
  };
}

/** Agent tokens as the workspace holds them (read back from the gateway). */
@Injectable()
export class AgentTokens {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly gateways: OpenClawGatewayService,
  ) {}

  /**
   * The token the agent's workspace holds (AGENTS.md's connection block; TOOLS.md on older
   * gateways), and whether it is the agent's token in force or an unconfirmed one. For template
   * sync.
   */
  async readWorkspaceToken(
    ref: TenantAgentRef,
  ): Promise<{ token: string | null; matches: 'current' | 'pending' | 'none' }> {
    const { agent, gateway } = await loadAgentTarget(this.dataSource.manager, ref);
    const identity = agentGatewayIdentity(agent, gateway);
    const methods = this.gateways.methods(gateway);
    let token: string | null = null;
    for (const name of ['AGENTS.md', 'TOOLS.md']) {
      try {
        const { file } = await methods.agentFilesGet(identity.gatewayAgentId, name);
        token = parseConnectionBlock(file.content ?? '').AUTH_TOKEN?.trim() || null;
      } catch (error) {
        if (!isUnsupportedFileError(error)) throw error;
      }
      if (token) break;
    }
    if (!token) return { token: null, matches: 'none' };
    const digest = agentTokenDigest(token);
    if (digest === agent.agentTokenHash) return { token, matches: 'current' };
    const pending = await this.dataSource
      .getRepository(AgentPendingToken)
      .existsBy({ agentId: agent.id, tokenHash: digest });
    const matches = pending ? 'pending' : 'none';
    return { token, matches };
  }
}
