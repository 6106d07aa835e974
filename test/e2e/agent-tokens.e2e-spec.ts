/**
 * Issue 9 item 2, the token rules on their own: every token that may be in an agent's workspace
 * authenticates until a newer one is known to be there; promoting a token retires only older
 * ones, and a promotion counts only when it happened, also under concurrency.
 */
import { Agent } from '../../src/agents/entities/agent.entity';
import {
  agentTokenDigest,
  generateAgentToken,
  promotePendingAgentToken,
  registerPendingAgentToken,
} from '../../src/auth/agent-token';
import {
  addPendingAgentToken,
  buildAgent,
  buildBoardOnGateway,
  pendingAgentTokenDigests,
} from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';

const HEARTBEAT = '/api/v1/agent/heartbeat';

describe('agent tokens: in force and unconfirmed', () => {
  let t: TestApp;
  let gatewayId: string;
  let boardId: string;
  let organizationId: string;

  beforeAll(async () => {
    t = await createTestApp();
    const target = await buildBoardOnGateway(t.dataSource);
    ({ organizationId } = target);
    gatewayId = target.gateway.id;
    boardId = target.board.id;
  });
  afterAll(() => t.close());

  const status = async (token: string) =>
    (await t.http.post(HEARTBEAT).set('X-Agent-Token', token).send({})).status;
  const inForce = async (agentId: string) =>
    (await t.dataSource.getRepository(Agent).findOneByOrFail({ id: agentId })).agentTokenHash;

  it('every unconfirmed token works; proving one retires only older ones', async () => {
    const { agent, token: t0 } = await buildAgent(t.dataSource, gatewayId, boardId);
    const t1 = await addPendingAgentToken(t.dataSource, agent.id);
    const t2 = await addPendingAgentToken(t.dataSource, agent.id);
    const t3 = await addPendingAgentToken(t.dataSource, agent.id);
    expect(await status(t2)).toBe(200);
    expect(await inForce(agent.id)).toBe(agentTokenDigest(t2));
    expect(await pendingAgentTokenDigests(t.dataSource, agent.id)).toEqual([agentTokenDigest(t3)]);
    expect([await status(t0), await status(t1), await status(t2), await status(t3)]).toEqual([
      401, 401, 200, 200,
    ]);
  });

  it('a promotion counts only when it happened', async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    const t1 = await addPendingAgentToken(t.dataSource, agent.id);
    const t2 = await addPendingAgentToken(t.dataSource, agent.id);
    const manager = t.dataSource.manager;
    await expect(promotePendingAgentToken(manager, agent.id, agentTokenDigest(t2))).resolves.toBe(
      true,
    );
    // T1 is older than the token now proven: retired, so promoting it changes nothing.
    await expect(promotePendingAgentToken(manager, agent.id, agentTokenDigest(t1))).resolves.toBe(
      false,
    );
    await expect(promotePendingAgentToken(manager, agent.id, agentTokenDigest(t2))).resolves.toBe(
      false,
    );
    expect(await inForce(agent.id)).toBe(agentTokenDigest(t2));
  });

  it('concurrent promotions never retire the newer token one of them proved', async () => {
    for (let round = 0; round < 8; round++) {
      const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
      const older = await addPendingAgentToken(t.dataSource, agent.id);
      const newer = await addPendingAgentToken(t.dataSource, agent.id);
      // The agent presents the newer token while a run confirms the older one's write.
      const [heartbeat] = await Promise.all([
        status(newer),
        promotePendingAgentToken(t.dataSource.manager, agent.id, agentTokenDigest(older)),
      ]);
      expect(heartbeat).toBe(200);
      expect(await inForce(agent.id)).toBe(agentTokenDigest(newer));
      expect(await status(newer)).toBe(200);
      expect(await status(older)).toBe(401);
    }
  });

  it('an unknown token is refused, and digests are not part of what agents read back', async () => {
    const { token } = await buildAgent(t.dataSource, gatewayId, boardId);
    expect(await status('not-a-token')).toBe(401);
    const res = await t.http.post(HEARTBEAT).set('X-Agent-Token', token).send({}).expect(200);
    expect(JSON.stringify(res.body)).not.toMatch(/sha256:|token_hash|TokenHash/);
  });
  it('review 3: registering a token again makes it the newest unconfirmed one', async () => {
    const { agent } = await buildAgent(t.dataSource, gatewayId, boardId);
    const owner = { id: agent.id, organizationId };
    const manager = t.dataSource.manager;
    const [a, b] = [generateAgentToken(), generateAgentToken()];
    await registerPendingAgentToken(manager, owner, agentTokenDigest(a));
    await registerPendingAgentToken(manager, owner, agentTokenDigest(b));
    // A run is about to write A again: A may now be newer in the workspace than B.
    await registerPendingAgentToken(manager, owner, agentTokenDigest(a));
    await expect(promotePendingAgentToken(manager, agent.id, agentTokenDigest(b))).resolves.toBe(
      true,
    );
    expect(await status(a)).toBe(200);
  });
});
