/**
 * Migration AgentNameUniqueness on a database that already holds duplicate names (upstream never
 * checked renames or heartbeat-creates, and compared with ILIKE): the oldest agent keeps its
 * name, every later duplicate gets its id appended, leads keep the default name on every board,
 * main agents are untouched, and both unique indexes are created.
 */
import { AGENT_NAME_INDEX, Agent } from '../../src/agents/entities/agent.entity';
import { AgentNameUniqueness1796040000000 } from '../../src/database/migrations/1796040000000-AgentNameUniqueness';
import { buildAgent, buildBoard, buildGateway, buildOrganization } from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';

describe('migration AgentNameUniqueness on existing duplicates', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('renames later duplicates per board and per gateway, then enforces both indexes', async () => {
    const ds = t.dataSource;
    await ds.query(`DROP INDEX "${AGENT_NAME_INDEX.board}"`);
    await ds.query(`DROP INDEX "${AGENT_NAME_INDEX.gateway}"`);
    const orgId = (await buildOrganization(ds)).id;
    const gatewayId = (await buildGateway(ds, orgId)).id;
    const otherGatewayId = (await buildGateway(ds, orgId)).id;
    const boardA = (await buildBoard(ds, orgId, gatewayId)).id;
    const boardB = (await buildBoard(ds, orgId, gatewayId)).id;
    const boardC = (await buildBoard(ds, orgId, otherGatewayId)).id;
    let minute = 0;
    const agent = async (boardId: string | null, name: string, isBoardLead = false) => {
      const { agent: row } = await buildAgent(
        ds,
        boardId === boardC ? otherGatewayId : gatewayId,
        boardId,
        {
          name,
          isBoardLead,
        },
      );
      minute += 1;
      await ds.query(`UPDATE agents SET created_at = $2 WHERE id = $1`, [
        row.id,
        new Date(Date.UTC(2026, 0, 1, 0, minute)),
      ]);
      return row.id;
    };
    const oldest = await agent(boardA, 'Scout');
    const sameBoard = await agent(boardA, 'scout');
    const sameGateway = await agent(boardB, 'SCOUT');
    const otherGateway = await agent(boardC, 'Scout');
    const main = await agent(null, 'Scout');
    const leadA = await agent(boardA, 'Lead Agent', true);
    const leadB = await agent(boardB, 'lead agent', true);
    const workerNamedLikeLead = await agent(boardB, 'LEAD AGENT');

    const runner = ds.createQueryRunner();
    try {
      await new AgentNameUniqueness1796040000000().up(runner);
    } finally {
      await runner.release();
    }

    const names = new Map(
      (await ds.getRepository(Agent).findBy({ organizationId: orgId })).map((a) => [a.id, a.name]),
    );
    expect(Object.fromEntries(names)).toEqual({
      [oldest]: 'Scout',
      [sameBoard]: `scout (${sameBoard})`,
      [sameGateway]: `SCOUT (${sameGateway})`,
      [otherGateway]: 'Scout',
      [main]: 'Scout',
      [leadA]: 'Lead Agent',
      [leadB]: 'lead agent',
      [workerNamedLikeLead]: `LEAD AGENT (${workerNamedLikeLead})`,
    });
    const indexes = (
      await ds.query<{ indexname: string }[]>(
        `SELECT indexname FROM pg_indexes WHERE tablename = 'agents' AND indexname = ANY($1)`,
        [[AGENT_NAME_INDEX.board, AGENT_NAME_INDEX.gateway]],
      )
    ).map((row) => row.indexname);
    expect(indexes.sort()).toEqual([AGENT_NAME_INDEX.board, AGENT_NAME_INDEX.gateway].sort());
    await expect(buildAgent(ds, gatewayId, boardA, { name: 'scout' })).rejects.toThrow(
      new RegExp(AGENT_NAME_INDEX.board),
    );
  });
});
