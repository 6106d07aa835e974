import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, IsNull } from 'typeorm';
import { deleteAgentRows } from '../agents/agent-removal';
import { Agent } from '../agents/entities/agent.entity';
import { Board } from '../boards/entities/board.entity';
import { ConflictError, NotFoundError, RequestValidationError } from '../common/errors/app-error';
import { Page, page, PageQuery } from '../common/pagination/pagination';
import { openGatewayToken, sealGatewayToken } from '../common/secrets/gateway-token';
import { OpenClawGatewayService, withoutUrlToken } from '../openclaw/openclaw-gateway.service';
import { ProvisioningService } from '../provisioning/provisioning.service';
import type { ProvisionAction } from '../provisioning/provisioning.service';
import type { User } from '../users/entities/user.entity';
import { GatewayCreate, GatewayRead, GatewayUpdate, toGatewayRead } from './dto/gateway.dto';
import type { GatewayDeleteResult } from './dto/gateway-sync.dto';
import { Gateway } from './entities/gateway.entity';

export const GATEWAY_NOT_FOUND = 'Gateway not found';

/** Changing any of these re-provisions the main agent (they shape its files or its connection). */
const PROVISIONING_FIELDS = [
  'name',
  'url',
  'token',
  'workspace_root',
  'disable_device_pairing',
  'allow_insecure_tls',
] as const;

/**
 * Gateway CRUD for org admins (contract §1.2 G1–G4, G6). GETs only read the database: no
 * provisioning, no token rotation, no gateway call (upstream re-provisioned on reads). Create
 * and update provision the main agent through the provisioning engine and report the outcome.
 * Tokens are stored sealed (SECRETS_KEY) and returned in clear to org admins, as upstream.
 */
@Injectable()
export class GatewaysService {
  private readonly logger = new Logger('Gateways');

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly provisioning: ProvisioningService,
    private readonly openclaw: OpenClawGatewayService,
  ) {}

  /** G1: newest first; each with its main agent (one query for the page). */
  async list(organizationId: string, query: PageQuery): Promise<Page<GatewayRead>> {
    const repo = this.dataSource.getRepository(Gateway);
    const [gateways, total] = await repo.findAndCount({
      where: { organizationId },
      order: { createdAt: 'DESC', id: 'ASC' },
      take: query.limit,
      skip: query.offset,
    });
    const mains = await this.mainAgents(
      organizationId,
      gateways.map((gateway) => gateway.id),
    );
    const now = new Date();
    return page(
      gateways.map((gateway) => toGatewayRead(gateway, mains.get(gateway.id) ?? null, now)),
      total,
      query,
    );
  }

  /** G3. */
  async get(organizationId: string, gatewayId: string): Promise<GatewayRead> {
    const gateway = await this.find(organizationId, gatewayId);
    return this.read(gateway);
  }

  /** The gateway of the organization, or 404 "Gateway not found". */
  async find(organizationId: string, gatewayId: string): Promise<Gateway> {
    const gateway = await this.dataSource
      .getRepository(Gateway)
      .findOneBy({ id: gatewayId, organizationId });
    if (!gateway) throw new NotFoundError(GATEWAY_NOT_FOUND);
    return gateway;
  }

  /** G2: insert, then provision the main agent; the response says how that went. */
  async create(organizationId: string, user: User, body: GatewayCreate): Promise<GatewayRead> {
    body = tokenOutOfUrl(body);
    await this.checkDialPolicy(body.url);
    const repo = this.dataSource.getRepository(Gateway);
    const gateway = await repo.save(
      repo.create({
        organizationId,
        name: body.name,
        url: body.url,
        workspaceRoot: body.workspace_root,
        token: sealGatewayToken(body.token ?? null),
        disableDevicePairing: body.disable_device_pairing ?? null,
        allowInsecureTls: body.allow_insecure_tls ?? null,
      }),
    );
    await this.provisionMainAgent(gateway, 'provision', user);
    return this.read(await this.find(organizationId, gateway.id));
  }

  /**
   * G4: applies the keys sent and bumps `updated_at` (upstream did not). The main agent is
   * provisioned again only when a field that shapes it changed (upstream always re-keyed it).
   * A plaintext token from before encryption is sealed by this write.
   */
  async update(
    organizationId: string,
    gatewayId: string,
    user: User,
    body: GatewayUpdate,
  ): Promise<GatewayRead> {
    body = tokenOutOfUrl(body);
    const gateway = await this.find(organizationId, gatewayId);
    const urlChanged = body.url !== undefined && sameUrl(body.url, gateway.url) === false;
    if (urlChanged) await this.checkDialPolicy(body.url as string);
    const stored = openGatewayToken(gateway.token);
    const current: Record<(typeof PROVISIONING_FIELDS)[number], unknown> = {
      name: gateway.name,
      url: gateway.url,
      token: stored.unreadable ? undefined : stored.token,
      workspace_root: gateway.workspaceRoot,
      disable_device_pairing: gateway.disableDevicePairing === true,
      allow_insecure_tls: gateway.allowInsecureTls === true,
    };
    const sent = body as Record<string, unknown>;
    const changed = PROVISIONING_FIELDS.some((field) => {
      if (sent[field] === undefined) return false;
      if (field === 'url') return urlChanged;
      const value =
        field.endsWith('_tls') || field.endsWith('_pairing') ? sent[field] === true : sent[field];
      return value !== current[field];
    });

    const patch: Partial<Gateway> = { updatedAt: new Date() };
    if (body.name !== undefined) patch.name = body.name;
    if (body.url !== undefined) patch.url = body.url;
    if (body.workspace_root !== undefined) patch.workspaceRoot = body.workspace_root;
    if (body.disable_device_pairing !== undefined) {
      patch.disableDevicePairing = body.disable_device_pairing;
    }
    if (body.allow_insecure_tls !== undefined) patch.allowInsecureTls = body.allow_insecure_tls;
    if (body.token !== undefined) patch.token = sealGatewayToken(body.token);
    else if (stored.legacyPlaintext) patch.token = sealGatewayToken(stored.token);

    const result = await this.dataSource
      .getRepository(Gateway)
      .update({ id: gateway.id, organizationId }, patch);
    if (!result.affected) throw new NotFoundError(GATEWAY_NOT_FOUND);
    const updated = await this.find(organizationId, gateway.id);
    if (changed) await this.provisionMainAgent(updated, 'update', user);
    return this.read(await this.find(organizationId, gateway.id));
  }

  /**
   * G6, changed on purpose: refused (409) while boards use the gateway (upstream failed with a
   * 500 on the foreign key). Otherwise the gateway's agents (its main agent; board agents can
   * only be left over from a board that moved away) are removed from the gateway, best effort,
   * then their rows (tasks back to the inbox, activity and approvals un-linked) and the gateway
   * are deleted, all in one transaction that holds the gateway row locked from the board check on.
   */
  async delete(organizationId: string, gatewayId: string): Promise<GatewayDeleteResult> {
    const gateway = await this.find(organizationId, gatewayId);
    await this.refuseWhileBoardsUse(gateway);

    // The gateway row stays locked (FOR UPDATE) from the board check through the removal from
    // the gateway to the delete: a board or agent attached meanwhile needs a key-share lock on
    // it, so it waits and then fails on the foreign key, rather than landing after the check
    // and turning this delete into a 409 after the main agent was already removed from the
    // gateway. The gateway calls are bounded (agent-cleanup's retry profile).
    const failures: string[] = [];
    let mainRemoved = true;
    await this.dataSource.transaction(async (manager) => {
      const locked = await manager
        .createQueryBuilder(Gateway, 'gateway')
        .setLock('pessimistic_write')
        .where('gateway.id = :id AND gateway.organization_id = :organizationId', {
          id: gateway.id,
          organizationId,
        })
        .getOne();
      if (!locked) throw new NotFoundError(GATEWAY_NOT_FOUND);
      await this.refuseWhileBoardsUse(locked, manager.getRepository(Board));
      const agents = await manager
        .getRepository(Agent)
        .find({ where: { organizationId, gatewayId: gateway.id }, order: { createdAt: 'ASC' } });
      for (const agent of agents) {
        try {
          await this.provisioning.cleanupAgent(agent, locked);
        } catch (error) {
          if (agent.boardId === null) mainRemoved = false;
          failures.push(`agent "${agent.name}" (${agent.id}): ${(error as Error).message}`);
        }
      }
      await deleteAgentRows(
        manager,
        organizationId,
        agents.map((agent) => agent.id),
      );
      await manager.delete(Gateway, { id: gateway.id, organizationId });
    });
    const warning =
      failures.length > 0
        ? `Deleted, but removing from the gateway failed for ${failures.join('; ')}. ` +
          'Remove those agents on the gateway by hand if it still has them.'
        : null;
    if (warning) this.logger.warn(`gateway ${gateway.id}: ${warning}`);
    return { ok: true, main_agent_removed: mainRemoved, warning };
  }

  private async refuseWhileBoardsUse(
    gateway: Gateway,
    boards = this.dataSource.getRepository(Board),
  ): Promise<void> {
    const count = await boards.count({
      where: { gatewayId: gateway.id, organizationId: gateway.organizationId },
    });
    if (count > 0) {
      throw new ConflictError(
        `Gateway is still used by ${count} board${count === 1 ? '' : 's'}; ` +
          'move them to another gateway or delete them first',
      );
    }
  }

  /**
   * Provisions the main agent. The engine records a failure on the row
   * (`last_provision_error`) and as an `agent.<action>.failed` activity; the response reads it
   * from there. Only an error of our own that escaped the engine is logged here.
   */
  private async provisionMainAgent(gateway: Gateway, action: ProvisionAction, user: User) {
    try {
      await this.provisioning.ensureMainAgent(gateway, { action, user, notify: true });
    } catch (error) {
      this.logger.warn(
        `main agent ${action} for gateway ${gateway.id} failed: ${(error as Error).message}`,
      );
    }
  }

  /** A URL the dial policy refuses can never be dialled: 422 on the url field. */
  private async checkDialPolicy(url: string): Promise<void> {
    const problem = await this.openclaw.dialPolicyProblem(url);
    if (problem === null) return;
    throw new RequestValidationError([
      {
        type: 'value_error',
        loc: ['body', 'url'],
        msg: `Value error, the gateway address is not allowed: ${problem}`,
        input: url,
      },
    ]);
  }

  private async read(gateway: Gateway): Promise<GatewayRead> {
    const mains = await this.mainAgents(gateway.organizationId, [gateway.id]);
    return toGatewayRead(gateway, mains.get(gateway.id) ?? null);
  }

  private async mainAgents(
    organizationId: string,
    gatewayIds: string[],
  ): Promise<Map<string, Agent>> {
    if (gatewayIds.length === 0) return new Map();
    const agents = await this.dataSource.getRepository(Agent).find({
      where: { organizationId, gatewayId: In(gatewayIds), boardId: IsNull() },
      order: { createdAt: 'ASC' },
    });
    const byGateway = new Map<string, Agent>();
    for (const agent of agents)
      if (!byGateway.has(agent.gatewayId)) byGateway.set(agent.gatewayId, agent);
    return byGateway;
  }
}

/**
 * Whether two gateway URLs name the same address as the URL parser normalises them (scheme and
 * host case, default port, empty path as `/`): `ws://GW:18789` re-sent as `ws://gw:18789/` is no
 * change and must not re-provision (which re-keys the main agent).
 */
function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a.trim()).href === new URL(b.trim()).href;
  } catch {
    return a.trim() === b.trim();
  }
}

/**
 * A token given in the URL (`?token=`, which the gateway client accepts as a fallback) is moved
 * to the token field, so that it is sealed at rest like any token and not stored (and returned)
 * in clear in `url`. A token sent in the body wins, as it does when dialling.
 */
function tokenOutOfUrl<T extends { url?: string; token?: string | null }>(body: T): T {
  if (body.url === undefined) return body;
  const { url, urlToken } = withoutUrlToken(body.url.trim());
  if (urlToken === null && url === body.url.trim()) return body;
  return { ...body, url, token: body.token ?? urlToken ?? body.token };
}
