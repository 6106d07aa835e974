import { forEachConcurrently } from '../common/async/concurrency';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, IsNull } from 'typeorm';
import { Agent } from '../agents/entities/agent.entity';
import { pausedBoardIds } from '../board-memory/board-pause';
import { Board } from '../boards/entities/board.entity';
import { withDeadline } from '../common/async/deadline';
import {
  GatewayError,
  GatewayTimeoutError,
  GatewayTokenUnreadableError,
  GatewayUnavailableError,
} from '../common/errors/gateway-errors';
import { APP_CONFIG } from '../config/app-config';
import type { AppConfig } from '../config/app-config';
import { OpenClawGatewayService } from '../openclaw/openclaw-gateway.service';
import { ProvisioningService } from '../provisioning/provisioning.service';
import type { ProvisionRequest } from '../provisioning/provisioning.service';
import type {
  GatewayTemplatesSyncError,
  GatewayTemplatesSyncEvent,
  GatewayTemplatesSyncQuery,
  GatewayTemplatesSyncResult,
} from './dto/gateway-sync.dto';
import { Gateway } from './entities/gateway.entity';

export type SyncOptions = Omit<GatewayTemplatesSyncQuery, 'stream'>;

export interface SyncObserver {
  /** Called once per agent, as soon as its outcome is known. Must not throw. */
  onAgent?(event: GatewayTemplatesSyncEvent): void;
  /** Aborted (client went away): no new agent is started; running ones finish. */
  signal?: AbortSignal;
}

interface SyncJob {
  agent: Agent;
  main: boolean;
  paused: boolean;
}

type JobOutcome = GatewayTemplatesSyncEvent['outcome'];

export const SYNC_TEXT = {
  noUrl: 'Gateway URL is not configured for this gateway.',
  boardNotOnGateway: 'Board does not belong to this gateway.',
  noMain: 'Gateway agent record not found; skipping gateway agent template sync.',
  noToken:
    'Skipping agent: unable to read AUTH_TOKEN from AGENTS.md (run with rotate_tokens=true to re-key).',
  mismatch:
    "Skipping agent: AUTH_TOKEN in AGENTS.md is not the agent's token (agent auth is broken); " +
    'run with rotate_tokens=true to re-key.',
  paused: 'Skipped: the board is paused.',
  failed: 'Template sync failed: internal error (see the server log).',
} as const;

/**
 * Template sync (contract §5.7, G5): re-renders every agent's workspace files on the gateway
 * through the provisioning engine (its run lock and pipeline; nothing is re-implemented here),
 * with bounded concurrency (TEMPLATE_SYNC_CONCURRENCY). Paused boards are skipped. Each agent's
 * token is read back from its AGENTS.md block: the engine re-renders with that token when it is
 * the agent's, and issues a new one only with `rotate_tokens`.
 *
 * A gateway that stops answering ends the sync in bounded time: the first failure that says the
 * gateway is unreachable or timed out opens a circuit, and agents not started by then are
 * reported as not reached rather than each waiting out its own timeout. Each agent's wait is
 * bounded as well (the engine's run deadline keeps running in the background and records its
 * own outcome).
 */
@Injectable()
export class TemplateSyncService {
  private readonly logger = new Logger('TemplateSync');

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly provisioning: ProvisioningService,
    private readonly openclaw: OpenClawGatewayService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Bound on one agent's token read-back + provision run, as this sync waits for it. */
  private get agentWaitMs(): number {
    const { connectTimeoutMs, requestTimeoutMs } = this.config.openclaw;
    return Math.min(this.config.provisioning.runTimeoutMs, connectTimeoutMs + 6 * requestTimeoutMs);
  }

  async sync(
    gateway: Gateway,
    options: SyncOptions,
    observer: SyncObserver = {},
  ): Promise<GatewayTemplatesSyncResult> {
    const result: GatewayTemplatesSyncResult = {
      gateway_id: gateway.id,
      include_main: options.include_main,
      reset_sessions: options.reset_sessions,
      agents_updated: 0,
      agents_skipped: 0,
      main_updated: false,
      errors: [],
      agents_not_reached: 0,
    };
    const fail = (message: string) =>
      result.errors.push({ agent_id: null, agent_name: null, board_id: null, message });
    try {
      await this.syncInto(result, fail, gateway, options, observer);
    } catch (error) {
      // A failure of our own (the database): the caller still gets the result so far, with the
      // error in it, so a stream that already began ends with its result event.
      this.logger.error(`template sync of gateway ${gateway.id} failed`, (error as Error).stack);
      fail(SYNC_TEXT.failed);
    }
    return result;
  }

  private async syncInto(
    result: GatewayTemplatesSyncResult,
    fail: (message: string) => void,
    gateway: Gateway,
    options: SyncOptions,
    observer: SyncObserver,
  ): Promise<void> {
    if (!gateway.url.trim()) {
      fail(SYNC_TEXT.noUrl);
      return;
    }
    const boards = await this.dataSource.getRepository(Board).find({
      where: { gatewayId: gateway.id, organizationId: gateway.organizationId },
    });
    if (options.board_id && !boards.some((board) => board.id === options.board_id)) {
      fail(SYNC_TEXT.boardNotOnGateway);
      return;
    }
    const jobs = await this.jobs(gateway, boards, options);

    // Ping (contract §5.7 step 3): one bounded attempt. A gateway that does not answer ends the
    // sync here, every agent reported as not reached.
    let deadGateway: string | null = null;
    try {
      await withDeadline(
        this.openclaw.methods(gateway).agentsList(),
        this.agentWaitMs,
        () => new GatewayTimeoutError(`agents.list did not answer within ${this.agentWaitMs} ms`),
      );
    } catch (error) {
      deadGateway = (error as Error).message;
      fail(deadGateway);
    }

    const report = (job: SyncJob, outcome: JobOutcome, error: string | null) => {
      if (outcome === 'updated') {
        if (job.main) result.main_updated = true;
        else result.agents_updated += 1;
      } else {
        if (!job.main || outcome !== 'failed') result.agents_skipped += 1;
        if (outcome === 'not_reached') result.agents_not_reached += 1;
        if (error !== null && !(outcome === 'skipped' && job.paused)) {
          result.errors.push(syncError(job.agent, error));
        }
      }
      try {
        observer.onAgent?.({
          agent_id: job.agent.id,
          agent_name: job.agent.name,
          board_id: job.agent.boardId,
          ok: outcome === 'updated',
          error,
          outcome,
        });
      } catch (failure) {
        this.logger.warn(`sync observer failed: ${(failure as Error).message}`);
      }
    };

    await forEachConcurrently(jobs, this.config.templateSync.concurrency, async (job) => {
      if (deadGateway !== null) {
        report(job, 'not_reached', `Not reached: the gateway stopped answering (${deadGateway})`);
        return;
      }
      if (observer.signal?.aborted) {
        report(job, 'not_reached', 'Not reached: the sync was cancelled (client disconnected)');
        return;
      }
      const { outcome, error, gatewayDown } = await this.syncOne(gateway, job, options);
      if (gatewayDown && deadGateway === null) deadGateway = error;
      report(job, outcome, error);
    });
    if (options.include_main && !jobs.some((job) => job.main)) fail(SYNC_TEXT.noMain);
  }

  /** The agents to sync, board agents oldest first, then the main agent. */
  private async jobs(gateway: Gateway, boards: Board[], options: SyncOptions): Promise<SyncJob[]> {
    const boardIds = boards
      .map((board) => board.id)
      .filter((id) => !options.board_id || id === options.board_id);
    const paused = await pausedBoardIds(this.dataSource, gateway.organizationId, boardIds);
    const repo = this.dataSource.getRepository(Agent);
    const boardAgents =
      boardIds.length === 0
        ? []
        : await repo.find({
            where: {
              organizationId: gateway.organizationId,
              gatewayId: gateway.id,
              boardId: In(boardIds),
              ...(options.lead_only ? { isBoardLead: true } : {}),
            },
            order: { createdAt: 'ASC', id: 'ASC' },
          });
    const jobs: SyncJob[] = boardAgents.map((agent) => ({
      agent,
      main: false,
      paused: paused.has(agent.boardId as string),
    }));
    if (options.include_main) {
      // The main agent is synced when it exists; creating it is create/update's job.
      const main = await repo.findOne({
        where: {
          organizationId: gateway.organizationId,
          gatewayId: gateway.id,
          boardId: IsNull(),
        },
        order: { createdAt: 'ASC' },
      });
      if (main) jobs.push({ agent: main, main: true, paused: false });
    }
    return jobs;
  }

  private async syncOne(
    gateway: Gateway,
    job: SyncJob,
    options: SyncOptions,
  ): Promise<{ outcome: JobOutcome; error: string | null; gatewayDown: boolean }> {
    if (job.paused) return { outcome: 'skipped', error: SYNC_TEXT.paused, gatewayDown: false };
    const ref = { organizationId: gateway.organizationId, agentId: job.agent.id };
    const label = job.main ? 'Failed to sync gateway agent templates' : 'Failed to sync templates';
    try {
      return await withDeadline(
        (async () => {
          const held = await this.provisioning.readWorkspaceToken(ref);
          let token: ProvisionRequest['token'];
          if (held.token !== null && held.matches !== 'none') token = { raw: held.token };
          else if (options.rotate_tokens) token = { rotate: true };
          else {
            return {
              outcome: 'skipped' as const,
              error: held.token === null ? SYNC_TEXT.noToken : SYNC_TEXT.mismatch,
              gatewayDown: false,
            };
          }
          await this.provisioning.provisionAgent(ref, {
            action: 'update',
            token,
            forceBootstrap: options.force_bootstrap,
            resetSession: options.reset_sessions,
            overwriteAgentFiles: options.overwrite,
            wake: false,
            raise: true,
          });
          return { outcome: 'updated' as const, error: null, gatewayDown: false };
        })(),
        this.agentWaitMs,
        () =>
          new GatewayTimeoutError(
            `agent sync did not finish within ${this.agentWaitMs} ms (the gateway stopped answering?)`,
          ),
      );
    } catch (error) {
      const message = (error as Error).message;
      return {
        outcome: 'failed',
        error: `${label}: ${message}`,
        gatewayDown: gatewayIsDown(error),
      };
    }
  }
}

/**
 * Whether a failure says the gateway as a whole is gone (unreachable, timed out, or its token is
 * unreadable), rather than something about this one agent. Follows the engine's wrappers
 * (GatewayOperationError → step error → gateway error).
 */
export function gatewayIsDown(error: unknown): boolean {
  for (let cause = error, depth = 0; cause && depth < 6; depth += 1) {
    if (
      cause instanceof GatewayUnavailableError ||
      cause instanceof GatewayTimeoutError ||
      cause instanceof GatewayTokenUnreadableError
    ) {
      return true;
    }
    if (cause instanceof GatewayError) return false;
    const next = cause as { original?: unknown; gatewayError?: unknown; cause?: unknown };
    cause = next.original ?? next.gatewayError ?? next.cause;
  }
  return false;
}

function syncError(agent: Agent, message: string): GatewayTemplatesSyncError {
  return { agent_id: agent.id, agent_name: agent.name, board_id: agent.boardId, message };
}
