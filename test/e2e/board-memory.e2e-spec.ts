/**
 * Board memory (issue 12): the user and agent routes, their validation and access, the tenancy
 * and change-log triggers, and the pause detection's index.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { pausedBoardIds, PAUSED_BOARDS_SQL } from '../../src/board-memory/board-pause';
import { BoardMemory } from '../../src/board-memory/entities/board-memory.entity';
import { BoardMemoryTenancy1796200000000 } from '../../src/database/migrations/1796200000000-BoardMemoryTenancy';
import { User } from '../../src/users/entities/user.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  grantBoard,
  signInMember,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { ISO_Z } from '../support/expectations';
import { createTestApp, type TestApp } from '../support/test-app';

const memoryOf = (boardId: string) => `/api/v1/boards/${boardId}/memory`;
const agentMemoryOf = (boardId: string) => `/api/v1/agent/boards/${boardId}/memory`;
const agentHeader = (token: string) => ({ 'X-Agent-Token': token });

type MemoryRead = {
  id: string;
  board_id: string;
  content: string;
  tags: string[] | null;
  source: string | null;
  is_chat: boolean;
  created_at: string;
};
type Issue = { type: string; loc: (string | number)[]; msg: string; input?: unknown };

describe('board memory routes', () => {
  let t: TestApp;
  let sql: Client;
  let owner: SignedInUser;
  let orgId: string;
  let gatewayId: string;
  let boardId: string;
  let otherBoardId: string;
  let workerToken: string;
  let workerName: string;
  let mainToken: string;
  let otherBoardAgentToken: string;

  beforeAll(async () => {
    t = await createTestApp();
    sql = new Client({ connectionString: t.databaseUrl });
    await sql.connect();
    ({ owner, orgId } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Memory'));
    gatewayId = (await buildGateway(t.dataSource, orgId)).id;
    boardId = (await buildBoard(t.dataSource, orgId, gatewayId)).id;
    otherBoardId = (await buildBoard(t.dataSource, orgId, gatewayId)).id;
    const worker = await buildAgent(t.dataSource, gatewayId, boardId);
    workerToken = worker.token;
    workerName = worker.agent.name;
    mainToken = (await buildAgent(t.dataSource, gatewayId, null)).token;
    otherBoardAgentToken = (await buildAgent(t.dataSource, gatewayId, otherBoardId)).token;
  });

  afterAll(async () => {
    await sql.end();
    await t.close();
  });

  const post = (board: string, body: object, headers: Record<string, string> = owner.headers) =>
    t.http.post(memoryOf(board)).set(headers).send(body);

  describe('POST', () => {
    it('records an item and answers BoardMemoryRead; is_chat follows the `chat` tag', async () => {
      const res = await post(boardId, { content: '  a note  ', tags: ['ops'] }).expect(200);
      const read = res.body as MemoryRead;
      expect(read).toEqual({
        id: expect.any(String),
        board_id: boardId,
        content: 'a note',
        tags: ['ops'],
        source: null,
        is_chat: false,
        created_at: expect.stringMatching(ISO_Z),
      });
      const row = await t.dataSource.getRepository(BoardMemory).findOneByOrFail({ id: read.id });
      expect(row.organizationId).toBe(orgId);
      expect(row.isChat).toBe(false);
    });

    it("a user's chat post without a source records the user's preferred name, else name", async () => {
      const users = t.dataSource.getRepository(User);
      await users.update({ id: owner.userId }, { preferredName: 'Ada', name: 'Ada Lovelace' });
      const chat = { content: 'hello', tags: ['chat'] };
      expect((await post(boardId, chat).expect(200)).body).toMatchObject({
        is_chat: true,
        source: 'Ada',
      });
      await users.update({ id: owner.userId }, { preferredName: null });
      expect((await post(boardId, chat).expect(200)).body.source).toBe('Ada Lovelace');
      // "User" when neither is set: board-memory.spec.ts (a JWT user's name claim refills it).
      // A given source is kept; a non-chat item gets no default.
      expect((await post(boardId, { ...chat, source: 'pager' }).expect(200)).body.source).toBe(
        'pager',
      );
      expect((await post(boardId, { content: 'plain' }).expect(200)).body).toMatchObject({
        source: null,
        tags: null,
        is_chat: false,
      });
    });

    it("an agent's chat post without a source records the agent's name", async () => {
      const res = await t.http
        .post(agentMemoryOf(boardId))
        .set(agentHeader(workerToken))
        .send({ content: 'from the worker', tags: ['chat', 'x'] })
        .expect(200);
      expect(res.body).toMatchObject({
        board_id: boardId,
        content: 'from the worker',
        is_chat: true,
        source: workerName,
      });
    });

    it.each<[string, unknown, Partial<Issue>]>([
      ['content missing', { tags: ['chat'] }, { type: 'missing', loc: ['body', 'content'] }],
      [
        'content blank',
        { content: ' \n\t ' },
        { type: 'string_too_short', loc: ['body', 'content'] },
      ],
      ['content not a string', { content: 5 }, { type: 'string_type', loc: ['body', 'content'] }],
      [
        'content too long',
        { content: 'x'.repeat(20_001) },
        { type: 'string_too_long', loc: ['body', 'content'] },
      ],
      [
        'tags not a list',
        { content: 'c', tags: 'chat' },
        { type: 'list_type', loc: ['body', 'tags'] },
      ],
      [
        'too many tags',
        { content: 'c', tags: Array.from({ length: 51 }, (_, i) => `t${i}`) },
        { type: 'too_long', loc: ['body', 'tags'] },
      ],
      [
        'a tag too long',
        { content: 'c', tags: ['x'.repeat(101)] },
        { type: 'string_too_long', loc: ['body', 'tags'] },
      ],
      [
        'a tag not a string',
        { content: 'c', tags: [1] },
        { type: 'string_type', loc: ['body', 'tags'] },
      ],
      [
        'source too long',
        { content: 'c', source: 'x'.repeat(201) },
        { type: 'string_too_long', loc: ['body', 'source'] },
      ],
    ])('422 when %s (pydantic-style list), nothing written', async (_label, body, issue) => {
      const before = await t.dataSource.getRepository(BoardMemory).countBy({ boardId });
      const res = await post(boardId, body as object).expect(422);
      expect(res.body.detail).toEqual([expect.objectContaining(issue)]);
      expect(await t.dataSource.getRepository(BoardMemory).countBy({ boardId })).toBe(before);
    });
  });

  describe('GET', () => {
    let board: string;
    const contents = (res: { body: { items: MemoryRead[] } }) =>
      res.body.items.map((item) => item.content);

    beforeAll(async () => {
      board = (await buildBoard(t.dataSource, orgId, gatewayId)).id;
      for (const [content, tags] of [
        ['one', null],
        ['two', ['chat']],
        ['three', ['note']],
        ['four', ['chat']],
      ] as const) {
        await post(board, { content, tags }).expect(200);
      }
      // An older row with blank content (upstream excludes those from every read).
      await t.dataSource
        .getRepository(BoardMemory)
        .save({ organizationId: orgId, boardId: board, content: '   ', isChat: true });
    });

    it('lists newest first, without blank items, paginated', async () => {
      const all = await t.http.get(memoryOf(board)).set(owner.headers).expect(200);
      expect(contents(all)).toEqual(['four', 'three', 'two', 'one']);
      expect(all.body).toMatchObject({ total: 4, limit: 200, offset: 0 });
      const pageTwo = await t.http
        .get(`${memoryOf(board)}?limit=2&offset=1`)
        .set(owner.headers)
        .expect(200);
      expect(contents(pageTwo)).toEqual(['three', 'two']);
      expect(pageTwo.body).toMatchObject({ total: 4, limit: 2, offset: 1 });
    });

    it('filters by is_chat (true / false); null or empty is no filter; anything else 422', async () => {
      const get = (query: string) => t.http.get(`${memoryOf(board)}${query}`).set(owner.headers);
      expect(contents(await get('?is_chat=true').expect(200))).toEqual(['four', 'two']);
      expect(contents(await get('?is_chat=FALSE').expect(200))).toEqual(['three', 'one']);
      expect(contents(await get('?is_chat=null').expect(200))).toHaveLength(4);
      expect(contents(await get('?is_chat=').expect(200))).toHaveLength(4);
      const bad = await get('?is_chat=maybe').expect(422);
      expect(bad.body.detail).toEqual([
        expect.objectContaining({ type: 'bool_type', loc: ['query', 'is_chat'] }),
      ]);
      await get('?limit=0').expect(422);
    });

    it('agents read the same list', async () => {
      const res = await t.http
        .get(`${agentMemoryOf(boardId)}?is_chat=true&limit=1`)
        .set(agentHeader(mainToken))
        .expect(200);
      expect(res.body.items).toHaveLength(1);
      expect(res.body.items[0].is_chat).toBe(true);
    });
  });

  describe('access', () => {
    it('users: read needs board read, write needs board write; as the board routes answer elsewhere', async () => {
      const reader = await signInMember(t.http, t.dataSource, orgId);
      await grantBoard(t.dataSource, reader.memberId, boardId);
      const writer = await signInMember(t.http, t.dataSource, orgId);
      await grantBoard(t.dataSource, writer.memberId, boardId, { canWrite: true });
      const outsider = await signInMember(t.http, t.dataSource, orgId);
      const stranger = (await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Other')).owner;
      const allRead = await signInMember(t.http, t.dataSource, orgId, { allBoardsRead: true });

      await t.http.get(memoryOf(boardId)).set(reader.headers).expect(200);
      await post(boardId, { content: 'r' }, reader.headers).expect(403);
      await t.http.get(memoryOf(boardId)).set(writer.headers).expect(200);
      await post(boardId, { content: 'w' }, writer.headers).expect(200);
      await t.http.get(memoryOf(boardId)).set(allRead.headers).expect(200);
      await post(boardId, { content: 'a' }, allRead.headers).expect(403);
      for (const caller of [outsider, stranger]) {
        const boardStatus = (await t.http.get(`/api/v1/boards/${boardId}`).set(caller.headers))
          .status;
        expect([403, 404]).toContain(boardStatus);
        await t.http.get(memoryOf(boardId)).set(caller.headers).expect(boardStatus);
        await post(boardId, { content: 'x' }, caller.headers).expect(boardStatus);
        await t.http
          .get(`${memoryOf(boardId)}/stream`)
          .set(caller.headers)
          .expect(boardStatus);
      }
      await t.http.get(memoryOf(randomUUID())).set(owner.headers).expect(404);
      await t.http.get(memoryOf(boardId)).expect(401);
      // A body is validated after access: 403 before 422.
      await post(boardId, {}, reader.headers).expect(403);
    });

    it('agents: their own board, a main agent on its gateway’s boards; others 403', async () => {
      const foreign = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'Foreign');
      const foreignGateway = (await buildGateway(t.dataSource, foreign.orgId)).id;
      const foreignBoard = (await buildBoard(t.dataSource, foreign.orgId, foreignGateway)).id;
      const foreignAgent = (await buildAgent(t.dataSource, foreignGateway, foreignBoard)).token;
      const foreignMain = (await buildAgent(t.dataSource, foreignGateway, null)).token;
      const otherGateway = (await buildGateway(t.dataSource, orgId)).id;
      const otherGatewayMain = (await buildAgent(t.dataSource, otherGateway, null)).token;

      for (const token of [workerToken, mainToken]) {
        await t.http.get(agentMemoryOf(boardId)).set(agentHeader(token)).expect(200);
        await t.http
          .post(agentMemoryOf(boardId))
          .set(agentHeader(token))
          .send({ content: 'ok' })
          .expect(200);
      }
      for (const token of [otherBoardAgentToken, otherGatewayMain, foreignAgent, foreignMain]) {
        await t.http.get(agentMemoryOf(boardId)).set(agentHeader(token)).expect(403);
        await t.http
          .post(agentMemoryOf(boardId))
          .set(agentHeader(token))
          .send({ content: 'no' })
          .expect(403);
      }
      await t.http.get(agentMemoryOf(boardId)).set(agentHeader('nope')).expect(401);
      await t.http.get(agentMemoryOf(randomUUID())).set(agentHeader(workerToken)).expect(404);
      // Users are not agents, and agents are not users.
      await t.http.get(agentMemoryOf(boardId)).set(owner.headers).expect(401);
      await t.http.get(memoryOf(boardId)).set(agentHeader(workerToken)).expect(401);
    });
  });

  describe('tenancy and the change log', () => {
    it('an item records its board’s organization; another organization is refused by the key', async () => {
      const { orgId: otherOrg } = await signInOwnerOfNewOrganization(t.http, t.dataSource, 'T');
      // A writer naming only the board gets the board's organization.
      const row = await t.dataSource
        .getRepository(BoardMemory)
        .save({ boardId, content: 'board only' });
      expect(
        (await t.dataSource.getRepository(BoardMemory).findOneByOrFail({ id: row.id }))
          .organizationId,
      ).toBe(orgId);
      await expect(
        sql.query(
          `INSERT INTO board_memory (organization_id, board_id, content) VALUES ($1, $2, 'x')`,
          [otherOrg, boardId],
        ),
      ).rejects.toThrow(/foreign key/);
    });

    it('logs inserts, and the deletions of a board deletion, as board_memory changes', async () => {
      const board = (await buildBoard(t.dataSource, orgId, gatewayId)).id;
      const first = (await post(board, { content: 'a' }).expect(200)).body as MemoryRead;
      const second = (await post(board, { content: 'b', tags: ['chat'] }).expect(200))
        .body as MemoryRead;
      const logged = async () =>
        (
          await sql.query<{ entity_id: string; op: string; organization_id: string }>(
            `SELECT entity_id, op, organization_id FROM change_log
              WHERE kind = 'board_memory' AND board_id = $1 ORDER BY txid, id`,
            [board],
          )
        ).rows;
      expect(await logged()).toEqual([
        { entity_id: first.id, op: 'upsert', organization_id: orgId },
        { entity_id: second.id, op: 'upsert', organization_id: orgId },
      ]);
      await t.http.delete(`/api/v1/boards/${board}`).set(owner.headers).expect(200);
      const after = await logged();
      expect(
        after
          .slice(2)
          .map((row) => `${row.op}:${row.entity_id}`)
          .sort(),
      ).toEqual([`delete:${first.id}`, `delete:${second.id}`].sort());
    });
  });

  describe('migration BoardMemoryTenancy', () => {
    it('backfills organization_id of existing items from their boards, then logs new ones', async () => {
      const runner = t.dataSource.createQueryRunner();
      try {
        await new BoardMemoryTenancy1796200000000().down(runner);
        const board = (await buildBoard(t.dataSource, orgId, gatewayId)).id;
        const { rows } = await sql.query<{ id: string }>(
          `INSERT INTO board_memory (board_id, content) VALUES ($1, 'before'), ($1, 'also')
           RETURNING id`,
          [board],
        );
        await new BoardMemoryTenancy1796200000000().up(runner);
        const backfilled = await sql.query<{ organization_id: string }>(
          'SELECT organization_id FROM board_memory WHERE id = ANY($1)',
          [rows.map((row) => row.id)],
        );
        expect(backfilled.rows).toEqual([{ organization_id: orgId }, { organization_id: orgId }]);
        const logged = await post(board, { content: 'after' }).expect(200);
        const changes = await sql.query(
          `SELECT 1 FROM change_log WHERE kind = 'board_memory' AND entity_id = $1`,
          [logged.body.id],
        );
        expect(changes.rowCount).toBe(1);
      } finally {
        await runner.release();
      }
    });
  });

  describe('pause detection (template sync)', () => {
    it('reads the latest /pause or /resume chat entry per board through the partial index', async () => {
      const boards = await Promise.all(
        [0, 1, 2, 3].map(async () => (await buildBoard(t.dataSource, orgId, gatewayId)).id),
      );
      const [paused, resumed, untouched, noisy] = boards;
      // Plenty of ordinary memory, so a plan that scanned it would show.
      await sql.query(
        `INSERT INTO board_memory (organization_id, board_id, content, is_chat, tags)
         SELECT $1, b, 'note ' || i, i % 2 = 0, '["chat"]'::jsonb
           FROM unnest($2::uuid[]) AS b, generate_series(1, 3000) AS i`,
        [orgId, boards],
      );
      const say = (board: string, content: string, isChat = true) =>
        sql.query(
          `INSERT INTO board_memory (organization_id, board_id, content, is_chat) VALUES ($1, $2, $3, $4)`,
          [orgId, board, content, isChat],
        );
      await say(paused, '\t/Pause\n');
      await say(resumed, '/pause');
      await say(resumed, ' /RESUME ');
      await say(noisy, '/pause');
      await say(noisy, '/resume', false); // not a chat entry: does not count
      await sql.query('ANALYZE board_memory');

      expect(await pausedBoardIds(t.dataSource, orgId, boards)).toEqual(new Set([paused, noisy]));
      // Another organization's id never matches.
      expect(await pausedBoardIds(t.dataSource, randomUUID(), boards)).toEqual(new Set());
      expect(untouched).toBeDefined();

      // A sync of a gateway with many boards: still one index probe per board, no scan.
      const manyBoards = [...boards, ...Array.from({ length: 500 }, () => randomUUID())];
      const plan = await sql.query<{ 'QUERY PLAN': unknown }>(
        `EXPLAIN (FORMAT JSON) ${PAUSED_BOARDS_SQL}`,
        [orgId, manyBoards],
      );
      const text = JSON.stringify(plan.rows[0]['QUERY PLAN']);
      expect(text).toContain('"Index Name":"ix_board_memory_pause_commands"');
      const seqScans = collectNodes(plan.rows[0]['QUERY PLAN']).filter(
        (node) => node['Node Type'] === 'Seq Scan' && node['Relation Name'] === 'board_memory',
      );
      expect(seqScans).toEqual([]);
    });
  });
});

/** Every plan node of an EXPLAIN (FORMAT JSON) answer. */
function collectNodes(plan: unknown): Record<string, unknown>[] {
  const nodes: Record<string, unknown>[] = [];
  const stack: unknown[] = [plan];
  while (stack.length > 0) {
    const next = stack.pop();
    if (Array.isArray(next)) stack.push(...(next as unknown[]));
    else if (next && typeof next === 'object') {
      const node = next as Record<string, unknown>;
      if ('Node Type' in node) nodes.push(node);
      for (const value of Object.values(node)) if (typeof value === 'object') stack.push(value);
    }
  }
  return nodes;
}
