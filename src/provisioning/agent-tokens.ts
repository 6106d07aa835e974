import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import {
  agentTokenDigest,
  generateAgentToken,
  isAgentsToken,
  MAX_PENDING_AGENT_TOKENS,
  pendingAgentTokenCount,
  promotePendingAgentTokenIn,
  registerPendingAgentToken,
  type SqlSession,
} from '../auth/agent-token';
import { InvalidRequestError } from '../common/errors/app-error';
import { isUnsupportedFileError } from '../openclaw/compat';
import { OpenClawGatewayService } from '../openclaw/openclaw-gateway.service';
import { agentGatewayIdentity } from './agent-identity';
import type { RunLease } from './agent-run-lock';
import { loadAgentTarget } from './agent-target';
import { parseConnectionBlock } from './connection-block';
import type { ProvisionRequest, TenantAgentRef } from './provisioning.types';

/** The token a run writes into the workspace: the one asked for, or a fresh one. */
export function runToken(request: ProvisionRequest): { token: string; digest: string } {
  const token = request.token && 'raw' in request.token ? request.token.raw : generateAgentToken();
  return { token, digest: agentTokenDigest(token) };
}

/**
 * A run may write a token it was given (`{ raw }`) only when that token is already the agent's
 * (in force or unconfirmed): anything else would make a string planted in a workspace, or
 * another agent's token, valid for this agent.
 */
export async function checkRequestedToken(
  db: SqlSession,
  agentId: string,
  request: ProvisionRequest,
): Promise<void> {
  if (!request.token || !('raw' in request.token)) return;
  const known = await isAgentsToken(db, agentId, agentTokenDigest(request.token.raw));
  if (known === 'none') {
    throw new InvalidRequestError(
      "The token given is not this agent's token (neither in force nor unconfirmed); " +
        'provision with a new token instead',
    );
  }
}

/** A run's token is not in force after its carriers were written: a newer one was confirmed. */
export class RunTokenSupersededError extends Error {
  constructor() {
    super(
      "the run's token was not made the agent's token (a newer token was confirmed meanwhile); " +
        'provision the agent again',
    );
    this.name = 'RunTokenSupersededError';
  }
}

/**
 * A run's token bookkeeping. The rule: any token that may be in the agent's workspace keeps
 * working until a newer token is known to be written there. So the run's token becomes an
 * unconfirmed (pending) token only just before the first token-carrying write (a run failing
 * earlier, e.g. on a template or `agents.list`, leaves tokens alone), and becomes the agent's
 * token in force, retiring older ones, once the last carrier write is confirmed. Registering
 * and promoting run in the run lock's session (RunLease): once the lock is lost they cannot
 * commit, so a run that no longer holds the lock never retires a token.
 *
 * Left open on purpose: a carrier write whose answer was lost but which the gateway applies only
 * after a LATER run's write was confirmed (a delayed write) leaves a retired token in the
 * workspace. Gateway writes are not conditional, so no read-back closes that window (the write
 * can land after any read); it needs a write to outlive its own request timeout and a whole later
 * run. The agent then gets 401, its files tell it to stop and tell its human, and provisioning it
 * again repairs it.
 */
export function runTokenLedger(
  manager: EntityManager,
  lease: RunLease,
  agent: { id: string; organizationId: string },
  digest: string,
) {
  return {
    /**
     * Before registering: at the cap of unconfirmed tokens, the token the workspace holds (read
     * back) is confirmed when it is one of them, which retires the older ones and makes room.
     */
    makeRoom: async (readWorkspaceToken: () => Promise<string | null>) => {
      if ((await pendingAgentTokenCount(manager, agent.id)) < MAX_PENDING_AGENT_TOKENS) return;
      const token = await readWorkspaceToken();
      if (!token) return;
      const held = agentTokenDigest(token);
      if ((await isAgentsToken(manager, agent.id, held)) !== 'pending') return;
      await lease.transaction((tx) => promotePendingAgentTokenIn(tx, agent.id, held));
    },
    beforeCarrierWrite: () =>
      lease.transaction((tx) => registerPendingAgentToken(tx, agent, digest)),
    carrierWritten: async () => {
      const promoted = await lease.transaction((tx) =>
        promotePendingAgentTokenIn(tx, agent.id, digest),
      );
      if (promoted) return;
      // Not promoted: fine when it already is the token in force (a `{ raw }` run, or the agent
      // presented it meanwhile); otherwise a newer token won and the files hold a retired one.
      if ((await isAgentsToken(manager, agent.id, digest)) !== 'current') {
        throw new RunTokenSupersededError();
      }
    },
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
    return {
      token,
      matches: await isAgentsToken(this.dataSource.manager, agent.id, agentTokenDigest(token)),
    };
  }
}
