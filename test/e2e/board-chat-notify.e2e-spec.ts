/**
 * A chat item posted to board memory is sent to the board's agents after the commit (upstream's
 * BOARD CHAT notification), on the in-process OpenClaw fake: the lead and the mentioned agents,
 * `/pause` and `/resume` to every agent, never the poster; a gateway failure never fails the POST.
 */
import {
  BoardChatNotifier,
  extractMentions,
  mentionsAgent,
} from '../../src/board-memory/board-chat-notifier';
import { BoardMemory } from '../../src/board-memory/entities/board-memory.entity';
import { Board } from '../../src/boards/entities/board.entity';
import { Like } from 'typeorm';
import { buildAgent, buildBoard, signInMember, type SignedInUser } from '../support/builders';
import { waitUntil } from '../support/eventually';
import { FakeGateway, FakeRpcError } from '../support/fake-gateway';
import { boardOnOpenClawFake } from '../support/fake-openclaw-state';
import { createTestApp, type TestApp } from '../support/test-app';

/** Chat items notified at once, and waiting, by this suite's instance. */
const NOTIFY_CONCURRENCY = 2;
const NOTIFY_QUEUE = 3;

describe('board chat notifications (POST …/memory with the chat tag)', () => {
  let t: TestApp;
  let fake: FakeGateway;
  let boardId: string;
  let organizationId: string;
  let gatewayId: string;
  let boardName: string;
  let user: SignedInUser;
  let lead: { id: string; session: string };
  let alice: { id: string; session: string };
  let bob: { id: string; session: string; token: string };
  const sends = () =>
    fake.requests
      .filter((request) => request.method === 'chat.send')
      .map(
        (request) => request.params as { sessionKey: string; message: string; deliver: boolean },
      );
  const settled = () => t.app.get(BoardChatNotifier).idle();

  beforeAll(async () => {
    t = await createTestApp({
      BASE_URL: 'https://mc.example.com/',
      BOARD_CHAT_NOTIFY_CONCURRENCY: String(NOTIFY_CONCURRENCY),
      BOARD_CHAT_NOTIFY_QUEUE: String(NOTIFY_QUEUE),
    });
    const setup = await boardOnOpenClawFake(t.dataSource);
    fake = setup.fake;
    boardId = setup.boardId;
    organizationId = setup.organizationId;
    gatewayId = setup.gatewayId;
    boardName = (await t.dataSource.getRepository(Board).findOneByOrFail({ id: boardId })).name;
    user = await signInMember(t.http, t.dataSource, setup.organizationId, {
      allBoardsRead: true,
      allBoardsWrite: true,
    });
    const agent = async (name: string, fields = {}) => {
      const built = await buildAgent(t.dataSource, setup.gatewayId, boardId, { name, ...fields });
      const session = `agent:mc-${built.agent.id}:main`;
      await t.dataSource.query('UPDATE agents SET openclaw_session_id = $2 WHERE id = $1', [
        built.agent.id,
        session,
      ]);
      return { id: built.agent.id, session, token: built.token };
    };
    lead = await agent('Lead Agent', { isBoardLead: true });
    alice = await agent('Alice Cooper');
    bob = await agent('Bob');
    // Without a session: never messaged.
    await buildAgent(t.dataSource, setup.gatewayId, boardId, { name: 'Sessionless' });
  });
  beforeEach(() => {
    fake.requests.length = 0;
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });

  /** Posts a chat item as the user, or as an agent (its token) on the agent route. */
  const chat = (content: string, agentToken?: string) =>
    t.http
      .post(`/api/v1/${agentToken ? 'agent/' : ''}boards/${boardId}/memory`)
      .set(agentToken ? { 'X-Agent-Token': agentToken } : user.headers)
      .send({ content, tags: ['chat'] })
      .expect(200);

  it('a user chat goes to the lead (BOARD CHAT) and the mentioned agents (BOARD CHAT MENTION)', async () => {
    const res = await chat('  Ship it, @alice!  ');
    await settled();
    const byKey = new Map(sends().map((send) => [send.sessionKey, send]));
    expect([...byKey.keys()].sort()).toEqual([lead.session, alice.session].sort());
    const from = res.body.source as string;
    expect(byKey.get(lead.session)).toEqual({
      sessionKey: lead.session,
      deliver: false,
      idempotencyKey: expect.any(String),
      message:
        `BOARD CHAT\nBoard: ${boardName}\nFrom: ${from}\n\nShip it, @alice!\n\n` +
        'Reply via board chat:\n' +
        `POST https://mc.example.com/api/v1/agent/boards/${boardId}/memory\n` +
        'Body: {"content":"...","tags":["chat"]}',
    });
    expect(byKey.get(alice.session)?.message).toMatch(/^BOARD CHAT MENTION\n/);
  });

  it('an agent’s chat is not sent back to it; @lead mentions the lead', async () => {
    await chat('@lead please review', bob.token);
    await settled();
    expect(sends().map((send) => [send.sessionKey, send.message.split('\n')[0]])).toEqual([
      [lead.session, 'BOARD CHAT MENTION'],
    ]);
    expect(sends()[0].message).toContain('From: Bob\n');
  });

  it('/pause and /resume go verbatim (delivered) to every agent of the board but the poster', async () => {
    await chat(' /PAUSE ', bob.token);
    await settled();
    expect(
      sends()
        .map((send) => [send.sessionKey, send.message, send.deliver])
        .sort(),
    ).toEqual(
      [
        [lead.session, '/pause', true],
        [alice.session, '/pause', true],
      ].sort(),
    );
  });

  it('a non-chat item notifies nobody', async () => {
    await t.http
      .post(`/api/v1/boards/${boardId}/memory`)
      .set(user.headers)
      .send({ content: '@alice a note' })
      .expect(200);
    await settled();
    expect(sends()).toEqual([]);
  });

  it('a gateway that refuses the send never fails the POST: the item is stored', async () => {
    const original = fake.methods['chat.send'];
    fake.methods['chat.send'] = () => {
      throw new FakeRpcError({ code: 'INVALID_REQUEST', message: 'no such session' });
    };
    try {
      const res = await chat('still here @alice');
      await settled();
      expect(sends()).toHaveLength(2);
      expect(
        await t.dataSource.getRepository(BoardMemory).existsBy({ id: res.body.id as string }),
      ).toBe(true);
    } finally {
      fake.methods['chat.send'] = original;
    }
  });

  it('the POST does not wait for the gateway: it answers while the sends are still held', async () => {
    const original = fake.methods['chat.send'];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let arrived = 0;
    fake.methods['chat.send'] = async (params, socket) => {
      arrived++;
      await held;
      return original(params, socket);
    };
    try {
      const res = await chat('while the gateway is slow @alice');
      expect(res.body.is_chat).toBe(true);
      release();
      await settled();
      expect(arrived).toBe(2);
    } finally {
      release();
      fake.methods['chat.send'] = original;
    }
  });

  it('background work is bounded: BOARD_CHAT_NOTIFY_CONCURRENCY items at once, BOARD_CHAT_NOTIFY_QUEUE waiting, later ones dropped (logged)', async () => {
    const notifier = t.app.get(BoardChatNotifier);
    const original = fake.methods['chat.send'];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inFlight = 0;
    let maxInFlight = 0;
    const messages: string[] = [];
    fake.methods['chat.send'] = async (params, socket) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      messages.push((params as { message: string }).message);
      try {
        await held;
        return await original(params, socket);
      } finally {
        inFlight--;
      }
    };
    const dropped = () => notifier.stats.dropped;
    const droppedBefore = dropped();
    // One item per board (a board's items are sent one after the other): boards with a lead.
    const total = NOTIFY_CONCURRENCY + NOTIFY_QUEUE + 3;
    const boards: string[] = [];
    for (let i = 0; i < total; i++) {
      const board = (await buildBoard(t.dataSource, organizationId, gatewayId)).id;
      const built = await buildAgent(t.dataSource, gatewayId, board, {
        name: `Burst Lead ${i}`,
        isBoardLead: true,
      });
      await t.dataSource.query('UPDATE agents SET openclaw_session_id = $2 WHERE id = $1', [
        built.agent.id,
        `agent:mc-${built.agent.id}:main`,
      ]);
      boards.push(board);
    }
    try {
      // Each item goes to its board's lead only (no mention): one send per item.
      for (let i = 0; i < total; i++) {
        await t.http
          .post(`/api/v1/boards/${boards[i]}/memory`)
          .set(user.headers)
          .send({ content: `burst ${i}`, tags: ['chat'] })
          .expect(200);
      }
      await waitUntil(() => inFlight >= NOTIFY_CONCURRENCY, {
        what: () => `${inFlight} sends in flight`,
      });
      expect(dropped() - droppedBefore).toBe(3);
      release();
      await settled();
      expect(maxInFlight).toBe(NOTIFY_CONCURRENCY);
      // The first ones, in order of arrival; the 3 past the queue are dropped (best effort).
      expect(messages.map((message) => message.split('\n')[4]).sort()).toEqual(
        Array.from({ length: NOTIFY_CONCURRENCY + NOTIFY_QUEUE }, (_, i) => `burst ${i}`).sort(),
      );
      // The items themselves are all stored.
      const stored = await t.dataSource
        .getRepository(BoardMemory)
        .countBy({ content: Like('burst %') });
      expect(stored).toBe(total);
    } finally {
      release();
      fake.methods['chat.send'] = original;
    }
  }, 30_000);

  it('one board’s chat items reach each agent in the order they were posted, also when a send is retried', async () => {
    const original = fake.methods['chat.send'];
    const refusedOnce = new Set<string>();
    const applied: string[][] = [];
    fake.methods['chat.send'] = async (params, socket) => {
      const { sessionKey, message } = params as { sessionKey: string; message: string };
      // The gateway is briefly busy for the first command: the send is retried after a backoff.
      if (message === '/pause' && !refusedOnce.has(sessionKey)) {
        refusedOnce.add(sessionKey);
        throw new FakeRpcError({ code: 'UNAVAILABLE', message: 'busy', retryable: true });
      }
      const answer = await original(params, socket);
      applied.push([sessionKey, message]);
      return answer;
    };
    try {
      await chat('/pause');
      await chat('/resume');
      await settled();
      for (const session of [lead.session, alice.session, bob.session]) {
        expect(applied.filter(([key]) => key === session).map(([, message]) => message)).toEqual([
          '/pause',
          '/resume',
        ]);
      }
    } finally {
      fake.methods['chat.send'] = original;
    }
  }, 30_000);

  it('mention rules as upstream', () => {
    expect(extractMentions('hi @Alice-B and @lead, not @1x or a@b')).toEqual(
      new Set(['alice-b', 'lead', 'b']),
    );
    const mentions = new Set(['alice']);
    expect(mentionsAgent({ name: 'Alice Cooper', isBoardLead: false }, mentions)).toBe(true);
    expect(mentionsAgent({ name: 'alice', isBoardLead: false }, mentions)).toBe(true);
    expect(mentionsAgent({ name: 'Bob', isBoardLead: false }, mentions)).toBe(false);
    expect(mentionsAgent({ name: 'Lead', isBoardLead: true }, new Set(['lead']))).toBe(true);
    expect(mentionsAgent({ name: 'lead', isBoardLead: false }, new Set(['lead']))).toBe(false);
  });
});
