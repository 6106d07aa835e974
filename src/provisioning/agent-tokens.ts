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
  retirePendingAgentTokens,
  type SqlSession,
  withdrawPendingAgentToken,
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
export function runToken(request: ProvisionRequest): {
  token: string;
  digest: string;
  generated: boolean;
} {
  const raw = request.token && 'raw' in request.token ? request.token.raw : null;
  const token = raw ?? generateAgentToken();
  return { token, digest: agentTokenDigest(token), generated: raw === null };
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
  token: { digest: string; generated: boolean },
) {
  const { digest } = token;
  return {
    /**
     * Before registering: at the cap of unconfirmed tokens (the run's own `{ raw }` one not
     * counted: re-registering it needs no room), the carriers are read back. A token they hold
     * that is unconfirmed is confirmed, which retires the older ones. When they hold none of the
     * unconfirmed tokens (the token in force, the stock file, or a token the agent does not
     * have), none of those is in the workspace and all are retired. Both trust one read-back: a
     * write still on its way from a run that lost its answer may land later (the delayed-write
     * window documented above).
     */
    makeRoom: async (readWorkspaceTokens: () => Promise<string[]>) => {
      if ((await pendingAgentTokenCount(manager, agent.id, digest)) < MAX_PENDING_AGENT_TOKENS) {
        return;
      }
      let confirmed = false;
      for (const held of await readWorkspaceTokens()) {
        const heldDigest = agentTokenDigest(held);
        if ((await isAgentsToken(manager, agent.id, heldDigest)) !== 'pending') continue;
        await lease.transaction((tx) => promotePendingAgentTokenIn(tx, agent.id, heldDigest));
        confirmed = true;
      }
      if (!confirmed) {
        await lease.transaction((tx) => retirePendingAgentTokens(tx, agent.id, digest));
      }
    },
    beforeCarrierWrite: () =>
      lease.transaction((tx) => registerPendingAgentToken(tx, agent, digest)),
    /**
     * The first carrier write was refused by the gateway (an error answer: nothing written) or
     * never sent: the run's token is known not to be in the workspace, so it stops counting
     * against the cap. Only a token this run generated: a `{ raw }` token may be in the
     * workspace from an earlier run. Best effort: a run whose lock is gone leaves it.
     */
    notWritten: async () => {
      if (!token.generated) return;
      await lease
        .transaction((tx) => withdrawPendingAgentToken(tx, agent.id, digest))
        .catch(() => undefined);
    },
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
