import { ActivityEvent } from '../../src/activity/entities/activity-event.entity';
import { Agent } from '../../src/agents/entities/agent.entity';
import { agentTokenDigest, generateAgentToken } from '../../src/auth/agent-token';
import {
  addPendingAgentToken,
  buildAgent,
  buildBoardOnGateway,
  pendingAgentTokenDigests,
} from '../support/builders';
import { ISO_Z, REQUEST_ID } from '../support/expectations';
import { createTestApp, TestApp } from '../support/test-app';

const HEARTBEAT = '/api/v1/agent/heartbeat';

describe('POST /agent/heartbeat (C3) and pending provision tokens', () => {
  let t: TestApp;
  let gatewayId: string;
  let boardId: string;

  beforeAll(async () => {
    t = await createTestApp();
    const { gateway, board } = await buildBoardOnGateway(t.dataSource);
    gatewayId = gateway.id;
    boardId = board.id;
  });
  afterAll(async () => {
    await t.close();
  });

  const reload = (id: string) => t.dataSource.getRepository(Agent).findOneByOrFail({ id });

  it('marks a provisioning agent online and seen, records the activity, returns AgentRead', async () => {
    const { agent, token } = await buildAgent(t.dataSource, gatewayId, boardId, {
      lastProvisionError: 'agents.list: connect ECONNREFUSED',
    });
    const res = await t.http.post(HEARTBEAT).set('X-Agent-Token', token).send({}).expect(200);
    expect(res.body).toEqual({
      board_id: boardId,
      name: agent.name,
      status: 'online',
      heartbeat_config: null,
      identity_profile: null,
      identity_template: null,
      soul_template: null,
      id: agent.id,
      gateway_id: gatewayId,
      is_board_lead: false,
      is_gateway_main: false,
      openclaw_session_id: null,
      last_seen_at: expect.stringMatching(ISO_Z) as unknown,
      last_provision_error: 'agents.list: connect ECONNREFUSED',
      created_at: expect.stringMatching(ISO_Z) as unknown,
      updated_at: expect.stringMatching(ISO_Z) as unknown,
    });
    const events = await t.dataSource.getRepository(ActivityEvent).findBy({ agentId: agent.id });
    expect(events.map((event) => [event.eventType, event.message])).toEqual([
      ['agent.heartbeat', `Heartbeat received from ${agent.name}.`],
    ]);
  });

  it('stores a given status, takes a Bearer token and needs no body', async () => {
    const { agent, token } = await buildAgent(t.dataSource, gatewayId, boardId);
    await t.http
      .post(HEARTBEAT)
      .set('Authorization', `Bearer ${token}`)
      .send({ status: 'busy', name: 'ignored' })
      .expect(200);
    expect((await reload(agent.id)).status).toBe('busy');
    const bare = await t.http.post(HEARTBEAT).set('X-Agent-Token', token).expect(200);
    expect(bare.body.status).toBe('busy');
  });

  it('rejects a missing or unknown token (401) and a bad body (422)', async () => {
    const { token } = await buildAgent(t.dataSource, gatewayId, boardId);
    const missing = await t.http.post(HEARTBEAT).send({}).expect(401);
    expect(missing.body).toEqual({ detail: 'Unauthorized', request_id: REQUEST_ID });
    await t.http.post(HEARTBEAT).set('X-Agent-Token', generateAgentToken()).send({}).expect(401);
    const bad = await t.http
      .post(HEARTBEAT)
      .set('X-Agent-Token', token)
      .send({ status: 'x'.repeat(65) })
      .expect(422);
    expect(JSON.stringify(bad.body.detail)).toContain('status');
  });

  it('accepts a pending provision token and promotes it, after which the old one stops working', async () => {
    const { agent, token: oldToken } = await buildAgent(t.dataSource, gatewayId, boardId);
    const pending = await addPendingAgentToken(t.dataSource, agent.id);
    // Both work while the provision's outcome is unknown.
    await t.http.post(HEARTBEAT).set('X-Agent-Token', oldToken).send({}).expect(200);
    await t.http.post(HEARTBEAT).set('X-Agent-Token', pending).send({}).expect(200);
    const stored = await reload(agent.id);
    expect(stored.agentTokenHash).toBe(agentTokenDigest(pending));
    expect(await pendingAgentTokenDigests(t.dataSource, agent.id)).toEqual([]);
    await t.http.post(HEARTBEAT).set('X-Agent-Token', oldToken).send({}).expect(401);
    await t.http.post(HEARTBEAT).set('X-Agent-Token', pending).send({}).expect(200);
  });
});
