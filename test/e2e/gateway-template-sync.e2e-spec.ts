/**
 * Template sync (POST /gateways/{id}/templates/sync) on the in-process OpenClaw fake: paused
 * boards, tokens read back from AGENTS.md (mismatch reported, rotated only on request),
 * overwrite of agent-edited files, bounded concurrency, a gateway that stops answering
 * mid-sync, the SSE stream and cancellation.
 */
import { randomUUID } from 'node:crypto';
import { IsNull } from 'typeorm';
import { Agent } from '../../src/agents/entities/agent.entity';
import { generateAgentToken } from '../../src/auth/agent-token';
import { BoardMemory } from '../../src/board-memory/entities/board-memory.entity';
import type {
  GatewayTemplatesSyncEvent,
  GatewayTemplatesSyncResult,
} from '../../src/gateways/dto/gateway-sync.dto';
import { Gateway } from '../../src/gateways/entities/gateway.entity';
import { TemplateSyncService } from '../../src/gateways/template-sync.service';
import { parseConnectionBlock } from '../../src/provisioning/connection-block';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import {
  buildAgent,
  buildBoard,
  signInOwnerOfNewOrganization,
  SignedInUser,
} from '../support/builders';
import { waitUntil } from '../support/eventually';
import { FakeGateway, NEVER } from '../support/fake-gateway';
import { FAKE_GATEWAY_TOKEN, Gate, startOpenClawFake } from '../support/fake-openclaw-state';
import { createTestApp, TestApp } from '../support/test-app';

jest.setTimeout(30_000);

type State = Awaited<ReturnType<typeof startOpenClawFake>>['state'];

const SYNC_OPTIONS = {
  include_main: true,
  lead_only: false,
  reset_sessions: false,
  rotate_tokens: false,
  force_bootstrap: false,
  overwrite: false,
};

/** Parses a text/event-stream body into its events. */
function sseEvents(text: string): { event: string; data: unknown }[] {
  return text
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
      const data = lines
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      return { event, data: JSON.parse(data) as unknown };
    });
}

describe('gateway template sync (in-process gateway)', () => {
  let t: TestApp;
  let owner: SignedInUser;
  let orgId: string;
  let provisioning: ProvisioningService;
  const fakes: FakeGateway[] = [];

  beforeAll(async () => {
    t = await createTestApp({
      TEMPLATE_SYNC_CONCURRENCY: '2',
      OPENCLAW_REQUEST_TIMEOUT_MS: '1500',
    });
    ({ owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Sync'));
    provisioning = t.app.get(ProvisioningService);
  });
  afterAll(async () => {
    await t.close();
    for (const fake of fakes) await fake.stop();
  });

  /** A gateway (through the API, so its main agent is provisioned) with boards of agents. */
  async function fleet(boardSizes: number[], options: { gate?: Gate } = {}) {
    const { fake, state } = await startOpenClawFake(options);
    fakes.push(fake);
    const res = await t.http
      .post('/api/v1/gateways')
      .set(owner.headers)
      .send({
        name: `Fleet ${randomUUID().slice(0, 6)}`,
        url: fake.url,
        token: FAKE_GATEWAY_TOKEN,
        workspace_root: '/srv/openclaw',
        disable_device_pairing: true,
      })
      .expect(200);
    const gatewayId = (res.body as { id: string }).id;
    const boards = [];
    for (const size of boardSizes) {
      const board = await buildBoard(t.dataSource, orgId, gatewayId);
      const agents: Agent[] = [];
      for (let i = 0; i < size; i += 1) {
        const { agent } = await buildAgent(t.dataSource, gatewayId, board.id, {
          isBoardLead: i === 0,
        });
        const outcome = await provisioning.provisionAgent(
          { organizationId: orgId, agentId: agent.id },
          { action: 'provision', raise: true },
        );
        agents.push(outcome.agent);
      }
      boards.push({ board, agents });
    }
    return { fake, state, gatewayId, boards };
  }

  const sync = (gatewayId: string, query = '') =>
    t.http
      .post(`/api/v1/gateways/${gatewayId}/templates/sync${query}`)
      .set(owner.headers)
      .expect(200);
  /** The agent's files on the gateway (a lead is `lead-<board>`, others `mc-<agent>`). */
  const filesOf = (state: State, agent: Agent) =>
    state.files.get(agent.isBoardLead ? `lead-${agent.boardId}` : `mc-${agent.id}`)!;
  const workspaceToken = (state: State, agent: Agent) =>
    parseConnectionBlock(filesOf(state, agent).get('AGENTS.md') ?? '').AUTH_TOKEN;
  const heartbeat = (token: string) =>
    t.http.post('/api/v1/agent/heartbeat').set('X-Agent-Token', token).send({});
  const pause = (boardId: string, command: string) =>
    t.dataSource.getRepository(BoardMemory).save({ boardId, content: command, isChat: true });

  it('skips paused boards, reports a tampered token, rotates it only with rotate_tokens', async () => {
    const { state, gatewayId, boards } = await fleet([2, 1, 1]);
    const [active, paused, resumed] = boards;
    await pause(paused.board.id, '/pause');
    await pause(resumed.board.id, ' /PAUSE ');
    await pause(resumed.board.id, '/resume');
    const tampered = active.agents[1];
    const files = filesOf(state, tampered);
    const original = workspaceToken(state, tampered);
    files.set('AGENTS.md', files.get('AGENTS.md')!.replace(original, generateAgentToken()));
    filesOf(state, paused.agents[0]).set('SOUL.md', 'untouched while paused');

    const plain = (await sync(gatewayId)).body as GatewayTemplatesSyncResult;
    expect(plain).toMatchObject({
      gateway_id: gatewayId,
      include_main: true,
      reset_sessions: false,
      agents_updated: 2, // active[0] and resumed[0]
      agents_skipped: 2, // paused[0] (no error) and the tampered one
      main_updated: true,
      agents_not_reached: 0,
    });
    expect(plain.errors).toEqual([
      {
        agent_id: tampered.id,
        agent_name: tampered.name,
        board_id: active.board.id,
        message: expect.stringContaining('rotate_tokens=true'),
      },
    ]);
    expect(filesOf(state, paused.agents[0]).get('SOUL.md')).toBe('untouched while paused');
    // The token the agent held is kept (re-rendered, not re-keyed) and still authenticates.
    const kept = workspaceToken(state, active.agents[0]);
    await heartbeat(kept).expect(200);

    const rotated = (await sync(gatewayId, '?rotate_tokens=true&include_main=false'))
      .body as GatewayTemplatesSyncResult;
    expect(rotated).toMatchObject({ agents_updated: 3, agents_skipped: 1, main_updated: false });
    expect(rotated.errors).toEqual([]);
    const fresh = workspaceToken(state, tampered);
    await heartbeat(fresh).expect(200);
  });

  it('a /pause chat entry with surrounding whitespace (newline, tab) pauses the board, as upstream strips it', async () => {
    const { gatewayId, boards } = await fleet([1, 1]);
    await pause(boards[0].board.id, '\t/Pause\n');
    const res = await sync(gatewayId);
    expect(res.body).toMatchObject({
      agents_updated: 1,
      agents_skipped: 1,
      main_updated: true,
      errors: [],
    });
  });

  it('overwrite replaces an agent-edited USER.md; without it the edit stays', async () => {
    const { state, gatewayId, boards } = await fleet([1]);
    const files = filesOf(state, boards[0].agents[0]);
    files.set('USER.md', 'edited by the agent');
    await sync(gatewayId);
    expect(files.get('USER.md')).toBe('edited by the agent');
    const res = (await sync(gatewayId, '?overwrite=true')).body as GatewayTemplatesSyncResult;
    expect(res.errors).toEqual([]);
    expect(files.get('USER.md')).toContain('USER');
    expect(files.get('USER.md')).not.toBe('edited by the agent');
  });

  it('board_id limits the sync to one board of this gateway; another board is refused in the result', async () => {
    const { gatewayId, boards } = await fleet([1, 1]);
    const one = (await sync(gatewayId, `?board_id=${boards[1].board.id}&include_main=false`))
      .body as GatewayTemplatesSyncResult;
    expect(one).toMatchObject({ agents_updated: 1, agents_skipped: 0, errors: [] });
    const foreign = await buildBoard(t.dataSource, orgId, null);
    const refused = (await sync(gatewayId, `?board_id=${foreign.id}`))
      .body as GatewayTemplatesSyncResult;
    expect(refused.errors).toEqual([
      expect.objectContaining({ message: 'Board does not belong to this gateway.' }),
    ]);
    await t.http
      .post(`/api/v1/gateways/${gatewayId}/templates/sync?rotate_tokens=maybe`)
      .set(owner.headers)
      .expect(422);
  });

  it('syncs agents concurrently, never more than TEMPLATE_SYNC_CONCURRENCY (2) at once', async () => {
    const gate = new Gate();
    const { fake, gatewayId } = await fleet([3, 2], { gate });
    let inFlight = 0;
    let most = 0;
    const read = fake.methods['agents.files.get'];
    fake.methods['agents.files.get'] = async (params, socket) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      try {
        return await read(params, socket);
      } finally {
        inFlight -= 1;
      }
    };
    gate.close('agents.files.get');
    // supertest sends on then(): start it now.
    const running = sync(gatewayId, '?include_main=false').then((res) => res);
    // Two token read-backs held at the gate at once: not one by one.
    await waitUntil(() => gate.held >= 2);
    gate.open();
    const result = (await running).body as GatewayTemplatesSyncResult;
    expect(result).toMatchObject({ agents_updated: 5, errors: [] });
    expect(most).toBe(2);
  });

  it('a gateway that stops answering mid-sync ends the sync, reporting the agents not reached', async () => {
    const { fake, gatewayId, boards } = await fleet([6]);
    let silent = false;
    for (const [method, handler] of Object.entries(fake.methods)) {
      fake.methods[method] = (params, socket) => {
        if (method === 'agents.files.get') silent = true;
        return silent ? NEVER : handler(params, socket);
      };
    }
    const result = (await sync(gatewayId)).body as GatewayTemplatesSyncResult;
    const agents = [...boards[0].agents];
    expect(result.agents_updated).toBe(0);
    expect(result.main_updated).toBe(false);
    // The two in flight (concurrency 2) timed out; the rest were never tried.
    const reads = fake.requests.filter((r) => r.method === 'agents.files.get').length;
    expect(reads).toBe(2);
    expect(result.agents_not_reached).toBe(agents.length + 1 - 2);
    expect(result.agents_skipped).toBe(agents.length + 1);
    const notReached = result.errors.filter((e) => e.message.startsWith('Not reached'));
    expect(notReached).toHaveLength(result.agents_not_reached);
    expect(notReached[0].message).toMatch(/stopped answering/);
  });

  it('streams one SSE event per agent and a final result; Accept: text/event-stream does too', async () => {
    const { gatewayId, boards } = await fleet([2, 1]);
    await pause(boards[1].board.id, '/pause');
    const res = await t.http
      .post(`/api/v1/gateways/${gatewayId}/templates/sync?stream=true`)
      .set(owner.headers)
      .buffer(true)
      .parse((response, done) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => done(null, text));
      })
      .expect(200)
      .expect('Content-Type', /text\/event-stream/);
    const events = sseEvents(res.body as string);
    const agentEvents = events.filter((e) => e.event === 'agent').map((e) => e.data);
    expect(agentEvents).toHaveLength(4);
    const byId = new Map((agentEvents as GatewayTemplatesSyncEvent[]).map((e) => [e.agent_id, e]));
    for (const agent of boards[0].agents) {
      expect(byId.get(agent.id)).toMatchObject({
        agent_name: agent.name,
        board_id: boards[0].board.id,
        ok: true,
        error: null,
      });
    }
    expect(byId.get(boards[1].agents[0].id)).toMatchObject({ ok: false, outcome: 'skipped' });
    const main = await t.dataSource
      .getRepository(Agent)
      .findOneByOrFail({ gatewayId, boardId: IsNull() });
    expect(byId.get(main.id)).toMatchObject({ ok: true, board_id: null });
    expect(events.at(-1)).toMatchObject({
      event: 'result',
      data: { agents_updated: 2, agents_skipped: 1, main_updated: true, errors: [] },
    });

    const viaAccept = await t.http
      .post(`/api/v1/gateways/${gatewayId}/templates/sync`)
      .set(owner.headers)
      .set('Accept', 'text/event-stream')
      .buffer(true)
      .parse((response, done) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => done(null, text));
      })
      .expect(200);
    expect(sseEvents(viaAccept.body as string).at(-1)?.event).toBe('result');
  });

  it('a streamed sync that fails inside still ends with a result event carrying the error', async () => {
    const { gatewayId } = await fleet([1]);
    // A real database failure inside the sync (its paused-board query), after the stream began.
    await t.dataSource.query('ALTER TABLE board_memory RENAME COLUMN is_chat TO is_chat_gone');
    try {
      const res = await t.http
        .post(`/api/v1/gateways/${gatewayId}/templates/sync?stream=true`)
        .set(owner.headers)
        .buffer(true)
        .parse((response, done) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => done(null, text));
        })
        .expect(200);
      const events = sseEvents(res.body as string);
      expect(events.at(-1)).toMatchObject({
        event: 'result',
        data: {
          gateway_id: gatewayId,
          agents_updated: 0,
          main_updated: false,
          errors: [{ agent_id: null, message: expect.stringContaining('Template sync failed') }],
        },
      });
    } finally {
      await t.dataSource.query('ALTER TABLE board_memory RENAME COLUMN is_chat_gone TO is_chat');
    }
  });

  it('a cancelled sync (client gone) starts no further agent and reports the rest as not reached', async () => {
    const gate = new Gate();
    const { fake, gatewayId, boards } = await fleet([5], { gate });
    const gateway = await t.dataSource.getRepository(Gateway).findOneByOrFail({ id: gatewayId });
    const cancel = new AbortController();
    const seen: GatewayTemplatesSyncEvent[] = [];
    gate.close('agents.files.get');
    const running = t.app.get(TemplateSyncService).sync(gateway, SYNC_OPTIONS, {
      signal: cancel.signal,
      onAgent: (event) => seen.push(event),
    });
    await waitUntil(() => gate.held >= 2);
    cancel.abort();
    gate.open();
    const result = await running;
    expect(result.agents_updated).toBe(2);
    expect(result.agents_not_reached).toBe(boards[0].agents.length + 1 - 2);
    expect(fake.requests.filter((r) => r.method === 'agents.files.get')).toHaveLength(2);
    expect(seen.filter((e) => e.outcome === 'not_reached')).toHaveLength(result.agents_not_reached);
  });
});
