/**
 * A fixed number of SQL statements per request on the hot read paths, whatever the amount of
 * data: the agent list (GET /agents, default page) for an admin who sees every board and for one
 * whose access is one board, and the board snapshot (GET /boards/{id}/snapshot) for the owner and
 * for a member who may read that one board. Statements are attributed to the request that sent
 * them (test/support/statement-counter.ts), so background work cannot change a count; the
 * statement texts are in the failure message.
 */
import { randomUUID } from 'node:crypto';
import {
  buildBoard,
  buildGateway,
  buildMainAgent,
  grantBoard,
  signIn,
  SignedInUser,
  signInMember,
} from '../support/builders';
import { countStatementsPerRequest, StatementCounter } from '../support/statement-counter';
import { createTestApp, TestApp } from '../support/test-app';

const API = '/api/v1';

describe('SQL statements per request', () => {
  let t: TestApp;
  let counter: StatementCounter;
  let owner: SignedInUser;
  let orgId: string;
  let gatewayId: string;

  beforeAll(async () => {
    t = await createTestApp();
    counter = countStatementsPerRequest(t.app.getHttpServer());
    owner = await signIn(t.http, t.dataSource);
    orgId = owner.organizationId;
    gatewayId = (await buildGateway(t.dataSource, orgId)).id;
  });
  afterAll(async () => {
    counter.uninstall();
    await t.close();
  });

  /** The statements of one GET by `caller`, after checking it answered 200. */
  async function statementsOf(caller: SignedInUser, path: string): Promise<string[]> {
    const requests = await counter.during(() =>
      t.http.get(`${API}${path}`).set(caller.headers).expect(200),
    );
    expect(requests).toHaveLength(1);
    return requests[0].statements;
  }

  /** `n` more agents on the board (one statement; names unique on the board). */
  async function addAgents(boardId: string, n: number) {
    await t.dataSource.query(
      `INSERT INTO agents (organization_id, gateway_id, board_id, name, status, last_seen_at)
       SELECT $1, $2, $3, $4 || '-' || i, 'online', now() FROM generate_series(1, $5) AS i`,
      [orgId, gatewayId, boardId, `agent-${randomUUID().slice(0, 8)}`, n],
    );
  }

  describe('GET /agents (default page)', () => {
    let admin: SignedInUser;
    let oneBoardAdmin: SignedInUser;
    let board: string;
    let otherBoard: string;

    beforeAll(async () => {
      board = (await buildBoard(t.dataSource, orgId, gatewayId)).id;
      otherBoard = (await buildBoard(t.dataSource, orgId, gatewayId)).id;
      await buildMainAgent(t.dataSource, gatewayId);
      admin = await signInMember(t.http, t.dataSource, orgId, {
        role: 'admin',
        allBoardsRead: true,
      });
      // The route is ORG-ADMIN; an admin's board access is still the flags or the grants.
      oneBoardAdmin = await signInMember(t.http, t.dataSource, orgId, { role: 'admin' });
      await grantBoard(t.dataSource, oneBoardAdmin.memberId, board);
    });

    it('sends the same statements for 10 and for 300 agents, for both callers', async () => {
      await addAgents(board, 5);
      await addAgents(otherBoard, 4);
      const small = {
        admin: await statementsOf(admin, '/agents'),
        oneBoard: await statementsOf(oneBoardAdmin, '/agents'),
      };
      await addAgents(board, 145);
      await addAgents(otherBoard, 145);
      const adminList = await t.http.get(`${API}/agents`).set(admin.headers).expect(200);
      expect(adminList.body.total).toBe(300); // 299 board agents and the gateway's main agent
      const large = {
        admin: await statementsOf(admin, '/agents'),
        oneBoard: await statementsOf(oneBoardAdmin, '/agents'),
      };
      expect(large).toEqual(small);
      // The user, the membership with its organization, the count, the page.
      expect(small.admin).toHaveLength(4);
      expect(small.oneBoard).toHaveLength(4);
    });
  });

  describe('GET /boards/{id}/snapshot', () => {
    let reader: SignedInUser;

    /** A board with `n` agents, 2n tasks (every other assigned and with an approval), n chat messages. */
    async function boardOf(n: number): Promise<string> {
      const boardId = (await buildBoard(t.dataSource, orgId, gatewayId, { maxAgents: n + 1 })).id;
      await addAgents(boardId, n);
      await t.dataSource.query(
        `INSERT INTO tasks (board_id, title, status, assigned_agent_id)
         SELECT $1, 'task ' || i, 'inbox',
                CASE WHEN i % 2 = 0 THEN
                  (SELECT id FROM agents WHERE board_id = $1 ORDER BY name OFFSET (i / 2) % $3 LIMIT 1)
                END
           FROM generate_series(1, $2) AS i`,
        [boardId, 2 * n, n],
      );
      await t.dataSource.query(
        `INSERT INTO approvals (board_id, task_id, action_type, confidence, status)
         SELECT board_id, id, 'mark_done', 80, 'pending' FROM tasks
          WHERE board_id = $1 AND assigned_agent_id IS NOT NULL`,
        [boardId],
      );
      await t.dataSource.query(
        `INSERT INTO board_memory (organization_id, board_id, content, tags, is_chat, source)
         SELECT $1, $2, 'message ' || i, '["chat"]'::jsonb, true, 'test'
           FROM generate_series(1, $3) AS i`,
        [orgId, boardId, n],
      );
      return boardId;
    }

    it('sends the same statements for a board of 1 agent and one of 150, for owner and reader', async () => {
      const small = await boardOf(1);
      const large = await boardOf(150);
      reader = await signInMember(t.http, t.dataSource, orgId);
      await grantBoard(t.dataSource, reader.memberId, small);
      await grantBoard(t.dataSource, reader.memberId, large);

      const bigSnapshot = await t.http
        .get(`${API}/boards/${large}/snapshot`)
        .set(owner.headers)
        .expect(200);
      expect(bigSnapshot.body.agents).toHaveLength(150);
      expect(bigSnapshot.body.tasks).toHaveLength(300);
      expect(bigSnapshot.body.approvals).toHaveLength(150);
      expect(bigSnapshot.body.chat_messages).toHaveLength(150);

      const counts = async (boardId: string) => ({
        owner: await statementsOf(owner, `/boards/${boardId}/snapshot`),
        reader: await statementsOf(reader, `/boards/${boardId}/snapshot`),
      });
      const smallCounts = await counts(small);
      const largeCounts = await counts(large);
      console.log(
        smallCounts.owner.map((s) => s.slice(0, 150)).join('\n'),
        '\n---\n',
        smallCounts.reader.map((s) => s.slice(0, 150)).join('\n'),
      );
      expect(largeCounts).toEqual(smallCounts);
      expect(smallCounts.owner.length).toBe(EXPECTED_SNAPSHOT_STATEMENTS.owner);
      expect(smallCounts.reader.length).toBe(EXPECTED_SNAPSHOT_STATEMENTS.reader);
    });
  });
});

/**
 * The user, the membership (reused for the board's organization), the board, the read-only
 * transaction (one statement to begin, one to commit) and its five reads; a member without the
 * all-boards flags adds the board access row.
 */
const EXPECTED_SNAPSHOT_STATEMENTS = { owner: 10, reader: 11 };
