/**
 * A fixed number of SQL statements per request on the hot read paths, whatever the amount of
 * data: the agent list (GET /agents, default page) for an admin who sees every board and for one
 * whose access is one board, and the board snapshot (GET /boards/{id}/snapshot) for the owner and
 * for a member who may read that one board. Statements are attributed to the request that sent
 * them (test/support/statement-counter.ts), so background work cannot change a count. When a
 * list or a count is off, the failure message is a line diff of the statement lists (`-` expected,
 * `+` received) with the statements background work sent meanwhile, so a CI log is enough to see
 * which statement came or went.
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
import {
  countStatementsPerRequest,
  diffStatements,
  StatementCounter,
} from '../support/statement-counter';
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

  /** What background work sent during each measured request, for failure messages. */
  const background = new Map<string[], string[]>();

  /**
   * The statements of one GET by `caller`, after checking it answered 200, that it was the only
   * request, and that nothing was sent in its context after its response.
   */
  async function statementsOf(caller: SignedInUser, path: string): Promise<string[]> {
    const recording = await counter.during(() =>
      t.http.get(`${API}${path}`).set(caller.headers).expect(200),
    );
    const describe = () =>
      recording.requests
        .map((r) => `${r.method} ${r.url}\n${[...r.statements, ...r.late].join('\n')}`)
        .join('\n\n');
    if (recording.requests.length !== 1) {
      throw new Error(
        `GET ${path}: expected 1 request, the server saw ${recording.requests.length}:\n${describe()}`,
      );
    }
    const [request] = recording.requests;
    if (request.late.length > 0) {
      throw new Error(
        `GET ${path}: statements sent in the request's context after its response ` +
          `(work it left running):\n${diffStatements([], request.late)}\n\nanswered with:\n` +
          request.statements.join('\n'),
      );
    }
    background.set(request.statements, recording.background);
    return request.statements;
  }

  /** `received` must be `expected`, statement for statement; the failure shows a line diff. */
  function expectSameStatements(
    what: string,
    received: Record<string, string[]>,
    expected: Record<string, string[]>,
  ) {
    const diffs = Object.keys(expected)
      .map((key) => {
        const diff = diffStatements(expected[key], received[key] ?? []);
        if (!diff) return '';
        const noise = [
          ...(background.get(expected[key]) ?? []),
          ...(background.get(received[key]) ?? []),
        ];
        return (
          `${key}: ${expected[key].length} expected, ${received[key]?.length ?? 0} received\n${diff}` +
          (noise.length > 0
            ? `\n  (background statements meanwhile, not counted:\n  ${noise.join('\n  ')})`
            : '')
        );
      })
      .filter(Boolean);
    if (diffs.length > 0) throw new Error(`${what}:\n${diffs.join('\n\n')}`);
  }

  /** `statements` must number `count`; the failure lists them. */
  function expectCount(what: string, statements: string[], count: number) {
    if (statements.length !== count) {
      throw new Error(
        `${what}: ${count} statements expected, ${statements.length} sent:\n` +
          statements.map((s, i) => `${String(i + 1).padStart(2)}. ${s.slice(0, 160)}`).join('\n'),
      );
    }
  }

  /** `n` more agents on the board (one statement; names unique on the board). */
  async function addAgents(boardId: string, n: number) {
    await t.dataSource.query(
      `INSERT INTO agents (organization_id, gateway_id, board_id, name, status, last_seen_at)
       SELECT $1, $2, $3, $4 || '-' || i, 'online', now() FROM generate_series(1, $5) AS i`,
      [orgId, gatewayId, boardId, `agent-${randomUUID().slice(0, 8)}`, n],
    );
  }

  it('reports a statement that came or went as a line diff (the failure message format)', () => {
    expect(diffStatements(['SELECT 1', 'SELECT 2'], ['SELECT 1', 'SELECT 2'])).toBe('');
    expect(diffStatements(['SELECT 1', 'SELECT 2'], ['SELECT 1', 'SELECT 3', 'SELECT 2'])).toBe(
      '  SELECT 1\n+ SELECT 3\n  SELECT 2',
    );
    expect(diffStatements(['SELECT 1', 'SELECT 2'], ['SELECT 2'])).toBe('- SELECT 1\n  SELECT 2');
  });

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
      expectSameStatements('GET /agents, 300 agents against 10 (- 10, + 300)', large, small);
      // The user, the membership with its organization, the count, the page.
      expectCount('GET /agents, all-boards admin', small.admin, 4);
      expectCount('GET /agents, one-board admin', small.oneBoard, 4);
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
      expectSameStatements(
        'GET /boards/{id}/snapshot, 150 agents against 1 (- 1, + 150)',
        largeCounts,
        smallCounts,
      );
      expectCount('snapshot, owner', smallCounts.owner, EXPECTED_SNAPSHOT_STATEMENTS.owner);
      expectCount('snapshot, reader', smallCounts.reader, EXPECTED_SNAPSHOT_STATEMENTS.reader);
    });
  });
});

/**
 * The user, the membership (reused for the board's organization), the board, the read-only
 * transaction (one statement to begin, one to commit) and its five reads; a member without the
 * all-boards flags adds the board access row.
 */
const EXPECTED_SNAPSHOT_STATEMENTS = { owner: 10, reader: 11 };
