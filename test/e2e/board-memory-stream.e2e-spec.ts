/**
 * GET /boards/{board_id}/memory/stream: new memory items over the change log, on two app
 * instances sharing one database.
 */
import { Client } from 'pg';
import { BoardMemoryStreamHub } from '../../src/board-memory/stream/board-memory-stream.hub';
import { ChangeLogMaintenance } from '../../src/change-log/change-log.maintenance';
import { OrganizationBoardAccess } from '../../src/organizations/entities/organization-board-access.entity';
import {
  buildAgent,
  buildBoard,
  buildGateway,
  grantBoard,
  signInMember,
  signInOwnerOfNewOrganization,
  type SignedInUser,
} from '../support/builders';
import { waitUntil } from '../support/eventually';
import { listen, SseClient, type SseEvent } from '../support/sse-client';
import { createTestApp, type TestApp } from '../support/test-app';

jest.setTimeout(30_000);

/** Sweeps and prunes run only when a test calls them. */
const QUIET = { PRESENCE_SWEEP_INTERVAL_MS: '600000', PROVISION_RUN_TIMEOUT_MS: '3600000' };
/** Instance B bounds a catch-up at 3 items and pings every 100 ms. */
const B_MAX_PENDING = 3;

type MemoryRead = {
  id: string;
  board_id: string;
  content: string;
  tags: string[] | null;
  source: string | null;
  is_chat: boolean;
  created_at: string;
};

const memoryOf = (event: SseEvent) => (event.data as { memory: MemoryRead }).memory;
const contents = (client: SseClient) => client.events.map((event) => memoryOf(event).content);

describe('GET /boards/{board_id}/memory/stream', () => {
  let a: TestApp;
  let b: TestApp;
  let urlA: string;
  let urlB: string;
  let sql: Client;
  let owner: SignedInUser;
  let orgId: string;
  let gatewayId: string;
  const open: SseClient[] = [];

  const newBoard = async () => (await buildBoard(a.dataSource, orgId, gatewayId)).id;
  const path = (boardId: string, query = '') => `/api/v1/boards/${boardId}/memory/stream${query}`;

  const stream = async (
    baseUrl: string,
    user: SignedInUser,
    boardId: string,
    query = '',
    headers: Record<string, string> = {},
  ) => {
    // A live stream starts at the log's final frontier: start once every committed change is
    // final, so an item committed just before does not count as new (see agent-stream tests).
    if (!headers['Last-Event-ID'] && !query.includes('since=2')) {
      await waitUntil(async () => {
        const { rows } = await sql.query<{ pending: number }>(
          `SELECT count(*)::int AS pending FROM change_log
            WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())`,
        );
        return rows[0].pending === 0;
      });
    }
    const client = await SseClient.open(baseUrl, path(boardId, query), {
      ...user.headers,
      ...headers,
    });
    open.push(client);
    return client;
  };

  /** Posts an item through an instance's API; answers its BoardMemoryRead. */
  const say = async (
    boardId: string,
    content: string,
    tags: string[] | null = null,
    via: TestApp = a,
  ): Promise<MemoryRead> =>
    (
      await via.http
        .post(`/api/v1/boards/${boardId}/memory`)
        .set(owner.headers)
        .send({ content, tags })
        .expect(200)
    ).body as MemoryRead;

  /** Waits until every client has received an item with this content. */
  const received = async (clients: SseClient[], content: string) => {
    for (const client of clients) {
      await waitUntil(() => contents(client).includes(content), {
        timeoutMs: 10_000,
        what: () => `${content} in ${JSON.stringify(contents(client))} (ended: ${client.ended})`,
      });
    }
  };

  /** The change id the log gave an item's insert. */
  const changeIdOf = async (memoryId: string) =>
    (
      await sql.query<{ id: string }>(
        `SELECT id::text FROM change_log WHERE kind = 'board_memory' AND entity_id = $1 AND op = 'upsert'`,
        [memoryId],
      )
    ).rows[0].id;

  beforeAll(async () => {
    a = await createTestApp(QUIET);
    b = await createTestApp(
      {
        ...QUIET,
        STREAM_MAX_PENDING_EVENTS: String(B_MAX_PENDING),
        STREAM_KEEPALIVE_MS: '100',
      },
      { sharedDatabaseUrl: a.databaseUrl },
    );
    urlA = await listen(a.app);
    urlB = await listen(b.app);
    sql = new Client({ connectionString: a.databaseUrl });
    await sql.connect();
    ({ owner, orgId } = await signInOwnerOfNewOrganization(a.http, a.dataSource, 'MemStream'));
    gatewayId = (await buildGateway(a.dataSource, orgId)).id;
  });

  afterEach(() => {
    for (const client of open.splice(0)) client.close();
  });

  afterAll(async () => {
    await sql.end();
    await b.close();
    await a.close();
  });

  it('an item posted through instance A reaches clients of A and B once, as `memory` with the change id', async () => {
    const board = await newBoard();
    const other = await newBoard();
    const onA = await stream(urlA, owner, board);
    const onB = await stream(urlB, owner, board);
    expect(onA.status).toBe(200);

    const first = await say(board, 'first', ['chat']);
    await say(other, 'elsewhere');
    const worker = await buildAgent(a.dataSource, gatewayId, board);
    await b.http
      .post(`/api/v1/agent/boards/${board}/memory`)
      .set('X-Agent-Token', worker.token)
      .send({ content: 'from the agent' })
      .expect(200);
    await received([onA, onB], 'from the agent');

    for (const client of [onA, onB]) {
      expect(contents(client)).toEqual(['first', 'from the agent']);
      expect(client.events.map((event) => event.event)).toEqual(['memory', 'memory']);
      expect(memoryOf(client.events[0])).toEqual(first);
      expect(client.events[0].id).toBe(await changeIdOf(first.id));
    }
  });

  it('answers text/event-stream; null/empty query values are absent; bad input 422, 401, 404', async () => {
    const board = await newBoard();
    const nulls = await stream(urlA, owner, board, '?since=null&is_chat=null');
    const empty = await stream(urlB, owner, board, '?since=&is_chat=');
    expect([nulls.status, empty.status]).toEqual([200, 200]);
    await say(board, 'x');
    await received([nulls, empty], 'x');

    const bad = await SseClient.open(urlA, path(board, '?is_chat=perhaps'), owner.headers);
    expect(bad.status).toBe(422);
    expect(JSON.parse(bad.body).detail[0]).toMatchObject({
      type: 'bool_type',
      loc: ['query', 'is_chat'],
    });
    expect((await SseClient.open(urlA, path(board))).status).toBe(401);
    expect(
      (await SseClient.open(urlA, path('5b0c2c4a-1d7e-4a43-9b52-8d0b4e1f7a11'), owner.headers))
        .status,
    ).toBe(404);
    const doc = await a.http.get('/openapi.json').expect(200);
    const op = doc.body.paths['/api/v1/boards/{boardId}/memory/stream'].get;
    expect(Object.keys(op.responses['200'].content)).toEqual(['text/event-stream']);
  });

  it('sends keep-alive comments (STREAM_KEEPALIVE_MS)', async () => {
    const client = await stream(urlB, owner, await newBoard());
    await waitUntil(() => client.comments >= 3, { what: () => `${client.comments} comments` });
  });

  it('a client resuming with Last-Event-ID gets exactly the items it missed, then live', async () => {
    const board = await newBoard();
    const client = await stream(urlA, owner, board);
    await say(board, 'seen');
    await received([client], 'seen');
    const lastId = client.lastEventId as string;
    client.close();

    await say(board, 'missed 1');
    await say(board, 'missed 2', ['chat']);
    await say(await newBoard(), 'another board');
    const resumed = await stream(urlA, owner, board, '', { 'Last-Event-ID': lastId });
    await received([resumed], 'missed 2');
    await say(board, 'live', null, b);
    await received([resumed], 'live');
    expect(contents(resumed)).toEqual(['missed 1', 'missed 2', 'live']);
    const ids = resumed.events.map((event) => Number(event.id));
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    expect(ids[0]).toBeGreaterThan(Number(lastId));
  });

  it('a catch-up is bounded: past STREAM_MAX_PENDING_EVENTS the client gets the first ones, ends, and resumes by id', async () => {
    const board = await newBoard();
    const client = await stream(urlB, owner, board);
    await say(board, 'start');
    await received([client], 'start');
    const lastId = client.lastEventId as string;
    client.close();
    const missed = ['m1', 'm2', 'm3', 'm4', 'm5'];
    for (const content of missed) await say(board, content);

    const first = await stream(urlB, owner, board, '', { 'Last-Event-ID': lastId });
    await first.waitForEnd();
    expect(contents(first)).toEqual(missed.slice(0, B_MAX_PENDING));
    expect(b.app.get(BoardMemoryStreamHub).closed.partial).toBeGreaterThanOrEqual(1);
    const rest = await stream(urlB, owner, board, '', {
      'Last-Event-ID': first.lastEventId as string,
    });
    await received([rest], 'm5');
    await say(board, 'after');
    await received([rest], 'after');
    expect(contents(rest)).toEqual(['m4', 'm5', 'after']);
  });

  it('closes a client that stopped reading (bounded buffer); it resumes by id from what it got', async () => {
    const board = await newBoard();
    const slow = await stream(urlB, owner, board);
    await say(board, 'read');
    await received([slow], 'read');
    slow.pause();
    // 400 items of 40 KB: far more than the socket buffers hold.
    await sql.query(
      `INSERT INTO board_memory (organization_id, board_id, content)
       SELECT $1, $2, 'big ' || lpad(i::text, 3, '0') || repeat('x', 40000)
         FROM generate_series(1, 400) AS i`,
      [orgId, board],
    );
    const hub = b.app.get(BoardMemoryStreamHub);
    const behindBefore = hub.closed.behind;
    await say(board, 'next');
    await waitUntil(() => hub.closed.behind > behindBefore, { timeoutMs: 10_000 });
    const lastId = slow.lastEventId as string;
    slow.close();

    const resumed = await stream(urlB, owner, board, '', { 'Last-Event-ID': lastId });
    await resumed.waitForEnd();
    const got = contents(resumed).map((content) => content.slice(0, 7));
    const seen = contents(slow).length;
    // Exactly the items after the last one the slow client received, bounded per connection.
    expect(got).toEqual(
      Array.from({ length: B_MAX_PENDING }, (_, i) => `big ${String(seen + i).padStart(3, '0')}`),
    );
  });

  it('?since= (as upstream) sends the items created since then, then live', async () => {
    const board = await newBoard();
    await say(board, 'before');
    const from = await say(board, 'from here');
    await say(board, 'next', ['chat']);
    const client = await stream(
      urlB,
      owner,
      board,
      `?since=${encodeURIComponent(from.created_at)}`,
    );
    await received([client], 'next');
    await say(board, 'live');
    await received([client], 'live');
    expect(contents(client)).toEqual(['from here', 'next', 'live']);
  });

  it('?since= older than the retention window: the items created since then that the log still holds, never older ones', async () => {
    const board = await newBoard();
    const before = await say(board, 'before since');
    const after = await say(board, 'after since');
    // As if the log had not been pruned yet: an item (and its change) from 3 days ago, past
    // the retention window (1 day) and before `since` (2 days ago), and one from an hour ago.
    const age = (id: string, interval: string) =>
      Promise.all(
        ['board_memory', 'change_log'].map((table) =>
          sql.query(
            `UPDATE ${table} SET created_at = now() - $2::interval
              WHERE ${table === 'board_memory' ? 'id' : 'entity_id'} = $1`,
            [id, interval],
          ),
        ),
      );
    await age(before.id, '3 days');
    await age(after.id, '1 hour');
    const since = new Date(Date.now() - 2 * 86_400_000).toISOString();
    const client = await stream(urlB, owner, board, `?since=${encodeURIComponent(since)}`);
    await received([client], 'after since');
    await say(board, 'live');
    await received([client], 'live');
    expect(contents(client)).toEqual(['after since', 'live']);
  });

  it('blank items (older rows) follow the list’s rule live and on resume alike: only spaces is blank, a tab is not', async () => {
    const board = await newBoard();
    const live = await stream(urlA, owner, board);
    await say(board, 'start');
    await received([live], 'start');
    const startId = live.lastEventId as string;
    await sql.query(
      `INSERT INTO board_memory (organization_id, board_id, content) VALUES ($1, $2, '   '), ($1, $2, E'\t')`,
      [orgId, board],
    );
    await say(board, 'end');
    await received([live], 'end');
    const resumed = await stream(urlB, owner, board, '', { 'Last-Event-ID': startId });
    await received([resumed], 'end');
    const listed = await a.http.get(`/api/v1/boards/${board}/memory`).set(owner.headers);
    const listedContents = (listed.body as { items: MemoryRead[] }).items
      .map((item) => item.content)
      .reverse();
    expect(listedContents).toEqual(['start', '\t', 'end']);
    expect(contents(live)).toEqual(listedContents);
    expect(contents(resumed)).toEqual(['\t', 'end']);
  });

  it('?is_chat= filters live items and the catch-up', async () => {
    const board = await newBoard();
    const chatOnly = await stream(urlA, owner, board, '?is_chat=true');
    const notesOnly = await stream(urlB, owner, board, '?is_chat=false');
    await say(board, 'note 1');
    await say(board, 'chat 1', ['chat']);
    await say(board, 'note 2', ['x']);
    await received([chatOnly], 'chat 1');
    await received([notesOnly], 'note 2');
    const lastChatId = chatOnly.lastEventId as string;
    chatOnly.close();
    await say(board, 'note 3');
    await say(board, 'chat 2', ['chat']);
    const resumed = await stream(urlA, owner, board, '?is_chat=true', {
      'Last-Event-ID': lastChatId,
    });
    await received([resumed], 'chat 2');
    await received([notesOnly], 'note 3');
    expect(contents(chatOnly)).toEqual(['chat 1']);
    expect(contents(resumed)).toEqual(['chat 2']);
    expect(contents(notesOnly)).toEqual(['note 1', 'note 2', 'note 3']);
  });

  it('an id the log does not hold gets the items the log still holds for the board (since the retention start), then live', async () => {
    const board = await newBoard();
    const old = await stream(urlA, owner, board);
    await say(board, 'pruned');
    await received([old], 'pruned');
    const oldId = old.lastEventId as string;
    old.close();
    await a.app.get(ChangeLogMaintenance).prune(new Date(Date.now() + 60_000));
    await say(board, 'kept 1');
    await say(board, 'kept 2');

    const resumed = await stream(urlB, owner, board, '', { 'Last-Event-ID': oldId });
    await received([resumed], 'kept 2');
    const garbage = await stream(urlA, owner, board, '', { 'Last-Event-ID': 'not-an-id' });
    await received([garbage], 'kept 2');
    await say(board, 'live');
    await received([resumed, garbage], 'live');
    expect(contents(resumed)).toEqual(['kept 1', 'kept 2', 'live']);
    expect(contents(garbage)).toEqual(['kept 1', 'kept 2', 'live']);
  });

  it('a member whose board access is revoked stops receiving at the next item; removed from the organization, the stream ends', async () => {
    const board = await newBoard();
    const revoked = await signInMember(a.http, a.dataSource, orgId);
    await grantBoard(a.dataSource, revoked.memberId, board);
    const removed = await signInMember(a.http, a.dataSource, orgId);
    await grantBoard(a.dataSource, removed.memberId, board);
    const revokedClient = await stream(urlA, revoked, board);
    const removedClient = await stream(urlB, removed, board);
    await say(board, 'visible');
    await received([revokedClient, removedClient], 'visible');

    await a.dataSource
      .getRepository(OrganizationBoardAccess)
      .delete({ organizationMemberId: revoked.memberId, boardId: board });
    await sql.query('DELETE FROM organization_members WHERE id = $1', [removed.memberId]);
    await say(board, 'hidden');
    await revokedClient.waitForEnd();
    await removedClient.waitForEnd();
    expect(contents(revokedClient)).toEqual(['visible']);
    expect(contents(removedClient)).toEqual(['visible']);
    // And it cannot reopen.
    expect((await SseClient.open(urlA, path(board), revoked.headers)).status).toBe(403);
  });

  it('ends when its board is deleted (with or without memory), on every instance; reopening is 404', async () => {
    const empty = await newBoard();
    const withItems = await newBoard();
    const survivor = await newBoard();
    await say(withItems, 'will go');
    const onEmptyA = await stream(urlA, owner, empty);
    const onEmptyB = await stream(urlB, owner, empty);
    const onItems = await stream(urlB, owner, withItems);
    const onSurvivor = await stream(urlA, owner, survivor);

    await a.http.delete(`/api/v1/boards/${empty}`).set(owner.headers).expect(200);
    await a.http.delete(`/api/v1/boards/${withItems}`).set(owner.headers).expect(200);
    await onEmptyA.waitForEnd();
    await onEmptyB.waitForEnd();
    await onItems.waitForEnd();
    // Other boards' streams go on.
    await say(survivor, 'still here');
    await received([onSurvivor], 'still here');
    expect(onSurvivor.ended).toBe(false);
    expect((await SseClient.open(urlA, path(empty), owner.headers)).status).toBe(404);
  });

  it('does the same database work per item with 1 and with 20 connected clients', async () => {
    const board = await newBoard();
    const reader = await signInMember(a.http, a.dataSource, orgId, { allBoardsRead: true });
    const hub = a.app.get(BoardMemoryStreamHub);
    // The streams of earlier tests are closed: wait until the hub saw them go.
    await waitUntil(() => hub.clientCount === 0, { what: () => `${hub.clientCount} clients` });
    const baseClients = 0;

    /** Queries sent by every pg client in this process while one item reaches every stream. */
    const queriesPerItem = async (clients: SseClient[]): Promise<number> => {
      const counts: number[] = [];
      for (let round = 0; round < 3; round++) {
        // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound below
        const original = Client.prototype.query;
        let count = 0;
        const counting = function (this: Client, ...args: unknown[]) {
          count++;
          return (original as (...a: unknown[]) => unknown).apply(this, args);
        };
        Client.prototype.query = counting as typeof original;
        const content = `item ${clients.length} ${round}`;
        try {
          await sql.query(
            `INSERT INTO board_memory (organization_id, board_id, content) VALUES ($1, $2, $3)`,
            [orgId, board, content],
          );
          await received(clients, content);
        } finally {
          Client.prototype.query = original;
        }
        counts.push(count);
      }
      // Unrelated background work can only add: the minimum is the item's.
      return Math.min(...counts);
    };

    const single = [await stream(urlA, owner, board)];
    await waitUntil(() => hub.clientCount === baseClients + 1, {
      what: () => `${hub.clientCount} clients, one expected`,
    });
    const withOne = await queriesPerItem(single);
    const many: SseClient[] = [...single];
    for (let i = 1; i < 20; i++) many.push(await stream(urlA, i % 2 ? reader : owner, board));
    await waitUntil(() => hub.clientCount === baseClients + 20, {
      what: () => `${hub.clientCount} clients: ${JSON.stringify(many.map((c) => c.status))}`,
    });
    const withTwenty = await queriesPerItem(many);

    expect(withOne).toBeGreaterThan(0);
    expect(withTwenty).toBe(withOne);
    for (const client of many) client.close();
    await waitUntil(() => hub.clientCount === baseClients, {
      what: () => `${hub.clientCount} clients`,
    });
  });
});
