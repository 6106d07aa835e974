/**
 * The gateway client against a real OpenClaw gateway (pinned npm `openclaw`, protocol 4),
 * through the application's own DI graph and a real PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import {
  GatewayAuthError,
  GatewayRpcError,
  GatewayUnavailableError,
} from '../../src/common/errors/gateway-errors';
import {
  agentConfigShape,
  agentHeartbeatPatch,
  isUnsupportedFileError,
  writableAgentFiles,
} from '../../src/openclaw/compat';
import { OpenClawDeviceIdentity } from '../../src/openclaw/entities/openclaw-device-identity.entity';
import type { ChatMessage, GatewayMethods } from '../../src/openclaw/gateway-methods';
import {
  OpenClawGatewayService,
  type GatewayRecord,
} from '../../src/openclaw/openclaw-gateway.service';
import type { EventFrame } from '../../src/openclaw/protocol';
import { uniqueSessionLabel } from '../../src/openclaw/session-label';
import { eventually } from '../support/eventually';
import { TcpProxy } from './support/tcp-proxy';
import { createTestApp, type TestApp } from '../support/test-app';

const gateway: GatewayRecord = {
  url: process.env.MC_IT_GATEWAY_URL ?? '',
  token: process.env.MC_IT_GATEWAY_TOKEN ?? null,
};
const MODEL_REPLY = process.env.MC_IT_FAKE_MODEL_REPLY ?? '';
const run = randomBytes(3).toString('hex');

let testApp: TestApp;
let service: OpenClawGatewayService;
let methods: GatewayMethods;

beforeAll(async () => {
  if (!gateway.url) throw new Error('run through `npm run test:gateway` (starts the gateway)');
  testApp = await createTestApp();
  service = testApp.app.get(OpenClawGatewayService);
  methods = service.methods(gateway);
});

afterAll(async () => {
  await testApp?.close();
});

/** The gateway applies some writes asynchronously (config hot reload, chat runs). */
const SETTLE = { timeoutMs: 30_000, intervalMs: 250 };
/**
 * One model turn against the local fake model: a few seconds here, but the turn runs through the
 * gateway's whole agent pipeline (workspace preparation, tool catalog, prompt build), which is
 * CPU-bound; on the loaded CI machine where this wait failed the gateway needed 59 s to start
 * (about 11 s here), so the same turn can take well over 30 s. Bounded all the same.
 */
const CHAT_TURN = { timeoutMs: 90_000, intervalMs: 250 };

type TurnOutcome = { kind: 'reply' | 'failed'; message: ChatMessage };

/**
 * How the turn started by the user message containing `marker` ended, if it has: the assistant's
 * reply, or the gateway's "run-failed-before-reply" entry (a run the gateway gave up on, e.g.
 * "prepared model runtime plugin generation was superseded" when a config hot reload lands
 * during the turn). Waiting only for a reply would wait out the whole budget for a turn that
 * already failed and report nothing about why.
 */
function turnOutcome(messages: ChatMessage[], marker: string): TurnOutcome | undefined {
  const sent = messages.findIndex((m) => m.role === 'user' && textOf(m.content).includes(marker));
  if (sent < 0) return undefined;
  for (const message of messages.slice(sent + 1)) {
    if (message.role === 'assistant') return { kind: 'reply', message };
    if (message.role === 'custom' && message.customType === 'run-failed-before-reply') {
      return { kind: 'failed', message };
    }
  }
  return undefined;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) =>
        typeof part === 'object' && part !== null && 'text' in part ? String(part.text) : '',
      )
      .join('');
  }
  return '';
}

describe('connecting', () => {
  it('negotiates protocol 4 with the signed device identity kept in the database', async () => {
    const server = await service.client(gateway).connect();
    expect(server.protocol).toBe(4);
    expect(server.version).toBe('2026.9.6');
    expect(server.grantedScopes).toEqual(
      expect.arrayContaining(['operator.read', 'operator.write', 'operator.admin']),
    );
    for (const method of [
      'sessions.list',
      'sessions.patch',
      'chat.send',
      'agents.files.set',
      'config.patch',
    ]) {
      expect(server.methods.has(method)).toBe(true);
    }
    const rows = await testApp.dataSource.getRepository(OpenClawDeviceIdentity).find();
    expect(rows).toHaveLength(1);
    expect(rows[0].deviceId).toMatch(/^[0-9a-f]{64}$/);
  });

  it('also connects token-only when device pairing is disabled for the gateway', async () => {
    const tokenOnly = service.methods({ ...gateway, disableDevicePairing: true });
    await expect(tokenOnly.health()).resolves.toMatchObject({ ok: true });
  });

  it('reuses one socket for sequential and concurrent calls', async () => {
    const client = service.client(gateway);
    await client.connect();
    const dials = client.dialCount;
    await Promise.all(Array.from({ length: 20 }, () => methods.sessionsList()));
    for (let i = 0; i < 5; i += 1) await methods.sessionsList();
    expect(client.dialCount).toBe(dials);
  });

  it('reports a wrong token as an auth error, not a retryable failure', async () => {
    const wrong = service.methods({ ...gateway, token: `wrong-${run}` });
    await expect(wrong.health()).rejects.toMatchObject({
      constructor: GatewayAuthError,
      reason: 'token_mismatch',
    });
  });

  it('reports a closed port as unavailable', async () => {
    const closed = service.methods({ url: 'ws://127.0.0.1:9', token: gateway.token });
    await expect(closed.health()).rejects.toBeInstanceOf(GatewayUnavailableError);
  });
});

describe('health and status', () => {
  it('answers health and status', async () => {
    await expect(methods.health()).resolves.toMatchObject({ ok: true });
    await expect(methods.status()).resolves.toMatchObject({ runtimeVersion: '2026.9.6' });
  });
});

describe('an agent from creation to deletion', () => {
  const name = `mc-it-${run}`;
  let agentId = '';
  let workspace = '';

  it('creates the agent and sees it listed', async () => {
    const created = await methods.agentsCreate({ name });
    expect(created).toMatchObject({ ok: true, agentId: name });
    agentId = created.agentId;
    workspace = created.workspace ?? '';
    // The create is applied through a config hot-reload: the list catches up shortly after.
    await eventually(async () => {
      const listed = await methods.agentsList();
      return listed.agents.some((agent) => agent.id === agentId) ? true : undefined;
    }, SETTLE);
  });

  it('renames it right after creation (the create lands through a config reload)', async () => {
    await expect(
      methods.agentsUpdate({ agentId, name: `MC IT ${run}` }, { afterCreate: true }),
    ).resolves.toMatchObject({ ok: true });
    await eventually(async () => {
      const listed = await methods.agentsList();
      const agent = listed.agents.find((entry) => entry.id === agentId);
      return agent?.name === `MC IT ${run}` ? agent : undefined;
    }, SETTLE);
  });

  it('writes and reads back every file the gateway accepts', async () => {
    for (const file of writableAgentFiles(service.client(gateway).server)) {
      const content = `# ${file}\n\nWritten by the Mission Control integration test ${run}.\n`;
      const written = await methods.agentFilesSet({ agentId, name: file, content });
      expect(written.file).toMatchObject({ name: file, content });
      const read = await methods.agentFilesGet(agentId, file);
      expect(read.file.content).toBe(content);
      expect(read.file.hash).toBe(written.file.hash);
    }
    const listed = await methods.agentFilesList(agentId);
    expect(listed.files.map((file) => file.name)).toEqual(
      expect.arrayContaining(['AGENTS.md', 'SOUL.md']),
    );
  });

  it('is refused files outside the allowlist with an unsupported-file error', async () => {
    const failure = methods.agentFilesSet({ agentId, name: 'TOOLS.md', content: 'x' });
    await expect(failure).rejects.toBeInstanceOf(GatewayRpcError);
    const error = await failure.catch((e: unknown) => e);
    expect(isUnsupportedFileError(error)).toBe(true);
  });

  it('patches its heartbeat config against the base hash', async () => {
    const heartbeat = { every: '10m', target: 'none', includeReasoning: false };
    await methods.configPatch((config) =>
      agentHeartbeatPatch(
        config,
        [{ agentId, workspace, heartbeat }],
        agentConfigShape(config, service.client(gateway).server),
      ),
    );
    const config = await eventually(async () => {
      const snapshot = await methods.configGet();
      const entries = (snapshot.config?.agents as { entries?: Record<string, unknown> })?.entries;
      const entry = entries?.[agentId] as { heartbeat?: Record<string, unknown> } | undefined;
      return entry?.heartbeat?.every === '10m' ? snapshot : undefined;
    }, SETTLE);
    expect(agentConfigShape(config.config ?? {}, null)).toBe('entries');
    const entry = (config.config?.agents as { entries: Record<string, { heartbeat: object }> })
      .entries[agentId];
    // includeReasoning is dropped for protocol-4 gateways (it would fail the whole patch).
    expect(entry.heartbeat).toEqual({ every: '10m', target: 'none' });
    // Applying the same config again is a no-op: nothing is sent.
    await expect(
      methods.configPatch((current) =>
        agentHeartbeatPatch(current, [{ agentId, workspace, heartbeat }], 'entries'),
      ),
    ).resolves.toMatchObject({ noop: true });
  });

  it('retries a config patch once when the config changed under it', async () => {
    const raw = service.client(gateway);
    let builds = 0;
    const result = await methods.configPatch(async (config, snapshot) => {
      builds += 1;
      if (builds === 1) {
        // Another writer patches between our read and our patch, moving the hash on.
        await raw.call('config.patch', {
          raw: JSON.stringify({
            agents: { entries: { [agentId]: { heartbeat: { every: '20m' } } } },
          }),
          baseHash: snapshot.hash,
        });
      }
      return agentHeartbeatPatch(
        config,
        [{ agentId, workspace, heartbeat: { every: '25m', target: 'none' } }],
        'entries',
      );
    });
    expect(builds).toBe(2);
    expect(result.ok).toBe(true);
    const snapshot = await eventually(async () => {
      const current = await methods.configGet();
      const entries = (
        current.config?.agents as { entries: Record<string, { heartbeat?: { every?: string } }> }
      ).entries;
      return entries[agentId]?.heartbeat?.every === '25m' ? current : undefined;
    }, SETTLE);
    expect(snapshot.hash).toBeDefined();
  });

  it('applies 8 parallel config patches (different agents) on one gateway without a conflict', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `mc-par-${run}-${i}`);
    try {
      const created = await Promise.all(ids.map((id) => methods.agentsCreate({ name: id })));
      const workspaces = created.map((agent) => agent.workspace ?? '');
      await eventually(async () => {
        const listed = await methods.agentsList();
        return ids.every((id) => listed.agents.some((a) => a.id === id)) ? true : undefined;
      }, SETTLE);
      const results = await Promise.all(
        ids.map((id, i) =>
          methods.configPatch((config) =>
            agentHeartbeatPatch(
              config,
              [
                {
                  agentId: id,
                  workspace: workspaces[i],
                  heartbeat: { every: `${11 + i}m`, target: 'none' },
                },
              ],
              'entries',
            ),
          ),
        ),
      );
      expect(results.every((result) => result.ok === true)).toBe(true);
      await eventually(async () => {
        const entries = (
          (await methods.configGet()).config?.agents as {
            entries: Record<string, { heartbeat?: { every?: string } }>;
          }
        ).entries;
        return ids.every((id, i) => entries[id]?.heartbeat?.every === `${11 + i}m`)
          ? true
          : undefined;
      }, SETTLE);
    } finally {
      await Promise.allSettled(
        ids.map((id) => methods.agentsDelete({ agentId: id, deleteFiles: true })),
      );
    }
    // 24 config writes, each started OPENCLAW_CONFIG_SETTLE_MS (2 s) after the previous one.
  }, 150_000);

  it('ensures, lists, chats in, resets and deletes a session', async () => {
    const key = `agent:${agentId}:mc-it`;
    const label = uniqueSessionLabel(`MC IT ${run}`, key);
    await expect(methods.sessionsPatch({ key, label })).resolves.toMatchObject({ ok: true, key });
    // Ensuring again with the same key and label is idempotent.
    await expect(methods.sessionsPatch({ key, label })).resolves.toMatchObject({ ok: true });

    const listed = await methods.sessionsList({ agentId });
    expect(listed.sessions.find((session) => session.key === key)?.label).toBe(label);

    const events: EventFrame[] = [];
    const unsubscribe = service.subscribe(gateway, { onEvent: (event) => events.push(event) });
    try {
      // The previous test's agent deletions reach the gateway as config hot reloads, which can
      // still be landing (later under load) and would supersede this turn: wait them out.
      await eventually(async () => {
        const listed = await methods.agentsList();
        return listed.agents.some((agent) => agent.id.startsWith(`mc-par-${run}-`))
          ? undefined
          : true;
      }, SETTLE);
      const turn = async (message: string) => {
        const started = await methods.chatSend({ sessionKey: key, message });
        expect(started.status).toBe('started');
        const outcome = await eventually(
          async () =>
            turnOutcome(
              (await methods.chatHistory({ sessionKey: key, limit: 20 })).messages,
              message,
            ),
          CHAT_TURN,
        );
        return { runId: started.runId, outcome };
      };
      let sent = await turn(`hello from ${run}`);
      // A hot reload landing mid-turn makes the gateway drop the turn ("... was superseded"): that
      // is the gateway's behaviour, not the client's, so such a turn is sent once more.
      if (
        sent.outcome.kind === 'failed' &&
        /superseded/.test(textOf(sent.outcome.message.content))
      ) {
        sent = await turn(`hello again from ${run}`);
      }
      // A failed turn fails here with the gateway's own reason, not with a timeout.
      expect(sent.outcome).toMatchObject({ kind: 'reply' });
      expect(textOf(sent.outcome.message.content)).toContain(MODEL_REPLY);

      // The same run was streamed to subscribers as chat events ending in `final`.
      await eventually(
        () =>
          events.find(
            (event) =>
              event.event === 'chat' &&
              (event.payload as { runId?: string; state?: string }).runId === sent.runId &&
              (event.payload as { state?: string }).state === 'final',
          ),
        SETTLE,
      );
    } finally {
      unsubscribe();
    }

    await expect(methods.sessionsReset(key)).resolves.toMatchObject({ ok: true });
    const afterReset = await methods.chatHistory({ sessionKey: key, limit: 20 });
    expect(afterReset.messages.some((m) => m.role === 'assistant')).toBe(false);

    await expect(methods.sessionsDelete(key)).resolves.toMatchObject({ deleted: true });
    await expect(methods.sessionsDelete(key)).resolves.toMatchObject({ deleted: false });
    // Bounds: SETTLE for the reloads, at most two CHAT_TURNs, SETTLE for the final event.
  }, 300_000);

  it('deletes the agent', async () => {
    await expect(methods.agentsDelete({ agentId, deleteFiles: true })).resolves.toMatchObject({
      ok: true,
      agentId,
    });
    await eventually(async () => {
      const listed = await methods.agentsList();
      return listed.agents.some((agent) => agent.id === agentId) ? undefined : true;
    }, SETTLE);
    await expect(methods.agentsDelete({ agentId })).rejects.toThrow(/not found/);
  });
});

describe('idempotent chat dispatch', () => {
  const userMessages = async (key: string, text: string) =>
    (await methods.chatHistory({ sessionKey: key, limit: 50 })).messages.filter(
      (m) => m.role === 'user' && textOf(m.content).includes(text),
    );

  /** Waits until the run answered (so a duplicate would have landed by now) and counts. */
  async function settledUserMessages(key: string, text: string) {
    await eventually(async () => {
      const history = await methods.chatHistory({ sessionKey: key, limit: 50 });
      return history.messages.some((m) => m.role === 'assistant') ? true : undefined;
    }, SETTLE);
    return userMessages(key, text);
  }

  it('delivers a message sent twice with one idempotency key once', async () => {
    const key = `agent:main:mc-idem-${run}`;
    await methods.sessionsPatch({ key, label: uniqueSessionLabel(`MC idem ${run}`, key) });
    const text = `dedup ${run}`;
    const idempotencyKey = `mc-idem-${run}`;
    const first = await methods.chatSend({ sessionKey: key, message: text, idempotencyKey });
    const second = await methods.chatSend({ sessionKey: key, message: text, idempotencyKey });
    expect(first).toMatchObject({ runId: idempotencyKey, status: 'started' });
    expect(second).toMatchObject({ runId: idempotencyKey, status: 'in_flight' });
    expect(await settledUserMessages(key, text)).toHaveLength(1);
  });

  it('retries a send whose answer was lost with the same key; it appears once', async () => {
    const [host, port] = new URL(gateway.url).host.split(':');
    const proxy = await TcpProxy.start(host, Number(port));
    try {
      const viaProxy = service.methods({ ...gateway, url: proxy.url });
      const key = `agent:main:mc-lost-${run}`;
      await viaProxy.sessionsPatch({ key, label: uniqueSessionLabel(`MC lost ${run}`, key) });
      const text = `lost answer ${run}`;
      proxy.cutAfter('chat.send');
      const sent = await viaProxy.chatSend({ sessionKey: key, message: text });
      expect(proxy.cuts).toBe(1);
      // The gateway had applied the first send: the retry is recognised as the same run, still
      // running ("in_flight") or already finished ("ok"), never a new one ("started").
      expect(sent.runId).toBeTruthy();
      expect(['in_flight', 'ok']).toContain(sent.status);
      expect(await settledUserMessages(key, text)).toHaveLength(1);
    } finally {
      await proxy.stop();
    }
  });
});

describe('session labels', () => {
  it('are unique on the gateway; the label helper keeps equal names apart', async () => {
    const first = `agent:main:mc-label-a-${run}`;
    const second = `agent:main:mc-label-b-${run}`;
    await methods.sessionsPatch({ key: first, label: `Lead Agent ${run}` });
    await expect(
      methods.sessionsPatch({ key: second, label: `Lead Agent ${run}` }),
    ).rejects.toThrow(/label already in use/);

    await expect(
      methods.sessionsPatch({ key: first, label: uniqueSessionLabel('Lead Agent', first) }),
    ).resolves.toMatchObject({ ok: true });
    await expect(
      methods.sessionsPatch({ key: second, label: uniqueSessionLabel('Lead Agent', second) }),
    ).resolves.toMatchObject({ ok: true });
    await methods.sessionsDelete(first);
    await methods.sessionsDelete(second);
  });
});

describe('closed parameter objects', () => {
  it('the gateway rejects unknown keys, which the typed methods never send', async () => {
    const raw = service.client(gateway);
    await expect(
      raw.call('chat.send', {
        sessionKey: 'agent:main:main',
        message: 'x',
        idempotencyKey: `k-${run}`,
        extra: true,
      }),
    ).rejects.toThrow(/unexpected property 'extra'/);
  });
});
