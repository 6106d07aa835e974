/**
 * Board memory as the reply channel, against a real OpenClaw gateway: the gateway's main agent,
 * authenticated with the token its AGENTS.md on the gateway holds, writes a non-chat reply to
 * `POST /agent/boards/{id}/memory`; the board's users read it (GET) and a memory stream opened
 * before it receives it.
 */
import { join } from 'node:path';
import { Gateway } from '../../src/gateways/entities/gateway.entity';
import type { GatewayMethods } from '../../src/openclaw/gateway-methods';
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { parseConnectionBlock } from '../../src/provisioning/connection-block';
import {
  buildBoard,
  grantBoard,
  signInMember,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { eventuallyExpect, waitUntil } from '../support/eventually';
import { listen, SseClient } from '../support/sse-client';
import { createTestApp, type TestApp } from '../support/test-app';

const RUN_DIR = process.env.MC_IT_GATEWAY_RUN_DIR ?? '';
const API = '/api/v1';
/** agents.list settles through the gateway's config hot-reload (~1.5 s). */
const SETTLE = { timeoutMs: 30_000, intervalMs: 250 };

let t: TestApp;
let url: string;
let owner: SignedInUser;
let orgId: string;
let gatewayId: string;
let methods: GatewayMethods;

beforeAll(async () => {
  t = await createTestApp();
  url = await listen(t.app);
  ({ owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Memory gateway'));
  const res = await t.http
    .post(`${API}/gateways`)
    .set(owner.headers)
    .send({
      name: 'Memory Gateway',
      url: process.env.MC_IT_GATEWAY_URL,
      token: process.env.MC_IT_GATEWAY_TOKEN,
      workspace_root: join(RUN_DIR, 'workspaces-board-memory'),
    })
    .expect(200);
  gatewayId = (res.body as { id: string }).id;
  expect(res.body).toMatchObject({ main_agent: { last_provision_error: null } });
  const gateway = await t.dataSource.getRepository(Gateway).findOneByOrFail({ id: gatewayId });
  methods = t.app.get(OpenClawGatewayService).methods(gateway);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

it("the gateway agent's reply written to board memory is read by the board's users and arrives on a stream opened before it", async () => {
  const mainGatewayAgent = `mc-gateway-${gatewayId}`;
  await eventuallyExpect(async () => {
    const agents = (await methods.agentsList()).agents;
    expect(agents.some((entry) => entry.id === mainGatewayAgent)).toBe(true);
  }, SETTLE);
  const agentsMd = (await methods.agentFilesGet(mainGatewayAgent, 'AGENTS.md')).file.content;
  const token = parseConnectionBlock(agentsMd ?? '').AUTH_TOKEN;
  expect(token).toBeTruthy();

  const board = await buildBoard(t.dataSource, orgId, gatewayId, { name: 'Reply board' });
  const reader = await signInMember(t.http, t.dataSource, orgId);
  await grantBoard(t.dataSource, reader.memberId, board.id);
  const stream = await SseClient.open(url, `${API}/boards/${board.id}/memory/stream`, {
    ...reader.headers,
  });
  try {
    expect(stream.status).toBe(200);
    const reply = 'The user says: ship it on Friday.';
    const posted = await t.http
      .post(`${API}/agent/boards/${board.id}/memory`)
      .set('X-Agent-Token', token)
      .send({ content: reply, tags: ['gateway_main', 'user_reply'] })
      .expect(200);
    expect(posted.body).toMatchObject({
      board_id: board.id,
      content: reply,
      tags: ['gateway_main', 'user_reply'],
      is_chat: false,
      source: null,
    });

    for (const user of [owner, reader]) {
      const list = await t.http
        .get(`${API}/boards/${board.id}/memory?is_chat=false`)
        .set(user.headers)
        .expect(200);
      expect(list.body.items).toEqual([posted.body]);
    }
    await waitUntil(() => stream.events.length >= 1, {
      timeoutMs: 10_000,
      what: () => JSON.stringify(stream.events),
    });
    expect(stream.events).toEqual([
      { id: expect.stringMatching(/^\d+$/), event: 'memory', data: { memory: posted.body } },
    ]);
  } finally {
    stream.close();
  }
}, 120_000);
