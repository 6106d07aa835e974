import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { createHash } from 'node:crypto';
import {
  GatewayTimeoutError,
  GatewayTokenUnreadableError,
  GatewayUnavailableError,
} from '../common/errors/gateway-errors';
import { openGatewayToken, unreadableTokenMessage } from '../common/secrets/gateway-token';
import { withDeadline } from '../common/async/deadline';
import { sleep } from './retry';
import { APP_CONFIG } from '../config/app-config';
import type { AppConfig } from '../config/app-config';
import { DeviceIdentityStore } from './device-identity.store';
import { DialPolicy } from './dial-policy';
import {
  GatewayClient,
  type GatewayClientSettings,
  type GatewayEventSubscriber,
  type GatewayTarget,
} from './gateway-client';
import { CONFIG_WRITE_QUEUE_LIMIT, GatewayMethods } from './gateway-methods';
import {
  KeyedMutex,
  LockQueueFullError,
  LockReentryError,
  LockWaitTimeoutError,
} from './keyed-mutex';
import { displayUrl } from './protocol';

/** The gateway columns a connection is made from. */
export interface GatewayRecord {
  /** Named in errors when given (a gateway row has them). */
  id?: string;
  name?: string;
  url: string;
  /** As stored: `v1:` ciphertext, or a plaintext token from before encryption. */
  token: string | null;
  /**
   * The token is a caller's plaintext, not a stored value: never decrypted (the URL form that
   * tests an unsaved gateway), so nobody can have the server open a sealed token for them.
   */
  tokenIsPlain?: boolean;
  disableDevicePairing?: boolean | null;
  allowInsecureTls?: boolean | null;
}

/**
 * The dial target of a gateway row. A `?token=` left in a stored URL (upstream kept it there)
 * is moved into `auth.token` and off the URL: the gateway ignores it in the URL, and a URL
 * ends up in logs and proxies. The token column wins when both are set.
 *
 * The stored token is decrypted here (SECRETS_KEY). One that does not decrypt throws
 * {@link GatewayTokenUnreadableError} naming the gateway and the fix: no call is made with it.
 */
export function gatewayTarget(gateway: GatewayRecord): GatewayTarget {
  const { url, urlToken } = withoutUrlToken(gateway.url.trim());
  const stored = gateway.tokenIsPlain
    ? { token: gateway.token, unreadable: false }
    : openGatewayToken(gateway.token);
  if (stored.unreadable) throw new GatewayTokenUnreadableError(unreadableTokenMessage(gateway));
  return {
    url,
    token: stored.token?.trim() || urlToken,
    disableDevicePairing: gateway.disableDevicePairing === true,
    allowInsecureTls: gateway.allowInsecureTls === true,
  };
}

export function withoutUrlToken(url: string): { url: string; urlToken: string | null } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, urlToken: null };
  }
  const urlToken = parsed.searchParams.get('token')?.trim() || null;
  if (!parsed.searchParams.has('token')) return { url, urlToken: null };
  parsed.searchParams.delete('token');
  return { url: parsed.toString(), urlToken };
}

/**
 * The gateway a URL names, for turns on its config: scheme, host (lower case, default port
 * dropped) and path as the URL parser normalises them, without query or fragment, so
 * `ws://GW:18789` and `ws://gw:18789/` are one gateway.
 */
export function gatewayIdentity(url: string): string {
  try {
    const parsed = new URL(url.trim());
    return `${parsed.protocol}//${parsed.host}${parsed.pathname || '/'}`;
  } catch {
    return url.trim();
  }
}

/** Pool key: one client per url + credentials + connection flags. The token is hashed. */
export function targetKey(target: GatewayTarget): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        target.url,
        target.token ?? '',
        target.disableDevicePairing,
        target.allowInsecureTls,
      ]),
    )
    .digest('hex');
}

/**
 * The only way the rest of the service talks to OpenClaw gateways: typed methods over one
 * pooled, persistent connection per gateway, and event subscriptions. Holds no state another
 * instance would need; every socket is re-creatable from the gateway row.
 */
@Injectable()
export class OpenClawGatewayService implements OnApplicationShutdown {
  private readonly clients = new Map<string, GatewayClient>();
  /** Config writers per gateway take turns (GatewayMethods.configPatch, agents.create…). */
  private readonly configWriters = new KeyedMutex(CONFIG_WRITE_QUEUE_LIMIT);
  /**
   * When each gateway's last config write of this instance ended. The gateway applies a write
   * by noticing its config file changed (about 1 s later) and hot-reloading it (up to about
   * 0.6 s more); a write that lands during a reload supersedes it, and on 2026.9.6 a few
   * superseded reloads in a row end in "config change requires gateway restart" (seen with 8
   * writes 0.6 s apart: the gateway restarted and dropped every connection). So a config write
   * starts no sooner than `configSettleMs` after the previous one ended.
   */
  private readonly lastConfigWriteEnd = new Map<string, number>();
  private readonly configSettleMs: number;
  private readonly settings: GatewayClientSettings;
  private shuttingDown = false;
  /** One-off test connections (probe) open now. */
  private probes = 0;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly deviceStore: DeviceIdentityStore,
  ) {
    this.configSettleMs = config.openclaw.configSettleMs;
    this.settings = {
      connectTimeoutMs: config.openclaw.connectTimeoutMs,
      requestTimeoutMs: config.openclaw.requestTimeoutMs,
      idleCloseMs: config.openclaw.idleCloseMs,
      clientVersion: CLIENT_VERSION,
      reconnectBaseMs: 250,
      reconnectMaxMs: 15_000,
      maxPayloadBytes: config.openclaw.maxPayloadBytes,
      dialPolicy: new DialPolicy(config.openclaw.allowedNetworks),
    };
  }

  /** Typed methods on the gateway's shared connection. */
  methods(gateway: GatewayRecord): GatewayMethods {
    // Resolve the pooled client per call (a held GatewayMethods outlives an idle close), from
    // a target and key worked out once here rather than on every call.
    let target: GatewayTarget;
    try {
      target = gatewayTarget(gateway);
    } catch (error) {
      // An unreadable token fails every call (as a rejection, like any gateway failure).
      const failure = error instanceof Error ? error : new Error(String(error));
      return new GatewayMethods({
        call: () => Promise.reject(failure),
        server: null,
      });
    }
    const key = targetKey(target);
    const clients = this.clients;
    // One gateway, whatever token, flags or URL spelling a record carries: one config file.
    const gatewayKey = gatewayIdentity(target.url);
    const configWriters = this.configWriters;
    const requestTimeoutMs = this.settings.requestTimeoutMs;
    return new GatewayMethods({
      call: (method, params, options) => this.pooled(target, key).call(method, params, options),
      get server() {
        return clients.get(key)?.server ?? null;
      },
      exclusive: (name, work, options) =>
        configWriters
          .run(`${name} ${gatewayKey}`, work, {
            waitMs: options?.timeoutMs ?? requestTimeoutMs,
          })
          .catch((error: unknown) => {
            throw turnError(error, name, target.url);
          }),
      spacedConfigWrite: (write) => this.spacedConfigWrite(gatewayKey, write),
    });
  }

  /**
   * Runs `work` over a one-off connection that is closed right after and never pooled: for a
   * gateway URL being tested before it is saved. Every distinct URL/token/flags would otherwise
   * leave a pooled client (and its socket) open for the idle time, so arbitrary test calls
   * could grow sockets and memory without bound. At most MAX_CONCURRENT_PROBES run at once.
   */
  async probe<T>(
    gateway: GatewayRecord,
    work: (methods: GatewayMethods) => Promise<T>,
  ): Promise<T> {
    const target = gatewayTarget(gateway);
    if (this.shuttingDown) throw new GatewayUnavailableError('gateway client is shut down');
    if (this.probes >= MAX_CONCURRENT_PROBES) {
      throw new GatewayUnavailableError(
        `${MAX_CONCURRENT_PROBES} gateway connection tests are already running; try again`,
        { retryable: true },
      );
    }
    this.probes += 1;
    const client = new GatewayClient(target, this.settings, () => this.deviceStore.get());
    try {
      return await work(
        new GatewayMethods({
          call: (method, params, options) => client.call(method, params, options),
          get server() {
            return client.server;
          },
        }),
      );
    } finally {
      this.probes -= 1;
      client.close('gateway connection test finished');
    }
  }

  /**
   * `write` once the gateway's last config write (of this instance) has settled; records when
   * this one ends. Reads and no-op patches in the config turn do not wait and are not recorded.
   */
  private async spacedConfigWrite<T>(gatewayKey: string, write: () => Promise<T>): Promise<T> {
    const now = Date.now();
    for (const [key, endedAt] of this.lastConfigWriteEnd) {
      if (now - endedAt >= this.configSettleMs) this.lastConfigWriteEnd.delete(key);
    }
    const endedAt = this.lastConfigWriteEnd.get(gatewayKey);
    if (endedAt !== undefined) {
      // Until the wall clock says so: a timer runs on the event loop's millisecond clock and can
      // fire a fraction of a millisecond before Date.now() gets there.
      const notBefore = endedAt + this.configSettleMs;
      for (let left = notBefore - now; left > 0; left = notBefore - Date.now()) await sleep(left);
    }
    try {
      return await write();
    } finally {
      if (this.configSettleMs > 0) this.lastConfigWriteEnd.set(gatewayKey, Date.now());
    }
  }

  /**
   * Why the dial policy refuses a gateway URL, or null: allowed, or its host name does not
   * resolve (yet) within a few seconds, in which case the policy still applies at every dial.
   * For saving a gateway: a URL that could never be dialled is refused up front.
   */
  async dialPolicyProblem(url: string): Promise<string | null> {
    let host: string;
    try {
      host = new URL(url.trim()).hostname;
    } catch {
      return null;
    }
    const policy = this.settings.dialPolicy ?? new DialPolicy();
    try {
      const verdict = await withDeadline(
        policy.resolve(host),
        DIAL_CHECK_LOOKUP_MS,
        () => new Error('lookup timed out'),
      );
      return verdict.allowed ? null : verdict.reason;
    } catch {
      return null;
    }
  }

  /** Gateway events (chat, agent, sessions.changed, shutdown…) until the returned call. */
  subscribe(gateway: GatewayRecord, subscriber: GatewayEventSubscriber): () => void {
    return this.client(gateway).subscribe(subscriber);
  }

  /** The pooled client for a gateway (created on first use). */
  client(gateway: GatewayRecord): GatewayClient {
    const target = gatewayTarget(gateway);
    return this.pooled(target, targetKey(target));
  }

  private pooled(target: GatewayTarget, key: string): GatewayClient {
    let client = this.clients.get(key);
    if (!client || client.state === 'closed') {
      client = new GatewayClient(
        target,
        this.settings,
        () => this.deviceStore.get(),
        (idle) => {
          if (this.clients.get(key) === idle) this.clients.delete(key);
        },
      );
      if (this.shuttingDown) client.close();
      else this.clients.set(key, client);
    }
    return client;
  }

  get openClients(): number {
    return this.clients.size;
  }

  onApplicationShutdown(): void {
    this.shuttingDown = true;
    for (const client of this.clients.values()) client.close('application shutting down');
    this.clients.clear();
  }
}

/**
 * A turn that could not be had, as a gateway error naming the gateway: busy is retryable (the
 * queue drains); asking again from inside the turn is a bug in the caller.
 */
function turnError(error: unknown, name: string, url: string): unknown {
  const gateway = displayUrl(url);
  if (error instanceof LockWaitTimeoutError) {
    return new GatewayTimeoutError(
      `gateway ${gateway} is busy: no turn for a ${name} write within ${error.waitedMs} ms`,
      { retryable: true },
    );
  }
  if (error instanceof LockQueueFullError) {
    return new GatewayUnavailableError(
      `gateway ${gateway} is busy: ${error.limit} ${name} writes already waiting in this process`,
      { retryable: true },
    );
  }
  if (error instanceof LockReentryError) {
    return new Error(
      `${name} write on gateway ${gateway} re-entered by the ${name} write holding the turn`,
    );
  }
  return error;
}

/** One-off gateway connection tests (probe) running at once in this process. */
export const MAX_CONCURRENT_PROBES = 8;

/** Bound on the host lookup of a dial-policy check at save time. */
const DIAL_CHECK_LOOKUP_MS = 5_000;

/** Sent as `client.version` in `connect`. */
const CLIENT_VERSION = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
