import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import {
  agentTokenDigest,
  generateAgentToken,
  promotePendingAgentToken,
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

export { promotePendingAgentToken };

/** Agent tokens as the workspace holds them (read back from the gateway). */
@Injectable()
export class AgentTokens {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly gateways: OpenClawGatewayService,
  ) {}

  /**
   * The token the agent's workspace holds (AGENTS.md's connection block; TOOLS.md on older
   * gateways), and whether it matches the stored or pending digest. For template sync.
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
    const matches =
      digest === agent.agentTokenHash
        ? 'current'
        : digest === agent.pendingAgentTokenHash
          ? 'pending'
          : 'none';
    return { token, matches };
  }
}
