import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Agent } from '../agents/entities/agent.entity';
import type { Actor } from '../auth/auth-context';
import { findBoardGateway } from '../boards/board-gateway';
import type { Board } from '../boards/entities/board.entity';
import { forEachConcurrently } from '../common/async/concurrency';
import { withDeadline } from '../common/async/deadline';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { OpenClawGatewayService } from '../openclaw/openclaw-gateway.service';
import type { BoardMemory } from './entities/board-memory.entity';

/** Upstream's snippet bound: a longer chat message is cut to this many characters. */
const MAX_SNIPPET_LENGTH = 800;
/** Agents messaged at once for one chat item. */
const NOTIFY_CONCURRENCY = 4;
/** The whole notification of one chat item (each send also has the client's own budget). */
const NOTIFY_BUDGET_MS = 60_000;
/** How long shutdown waits for notifications in flight. */
const SHUTDOWN_WAIT_MS = 2_000;
/** Upstream's mention tokens: `@` then a letter and up to 31 word characters or hyphens. */
const MENTION = /@([A-Za-z][\p{L}\p{N}_-]{0,31})/gu;
const CONTROL_COMMANDS: ReadonlySet<string> = new Set(['/pause', '/resume']);

/** The lower-cased handles a message mentions (upstream `extract_mentions`). */
export function extractMentions(message: string): Set<string> {
  return new Set([...message.matchAll(MENTION)].map((match) => match[1].toLowerCase()));
}

/**
 * Does a mention set target the agent (upstream `matches_agent_mention`)? `@lead` is the board
 * lead; otherwise the agent's name, or its first word, lower-cased.
 */
export function mentionsAgent(
  agent: Pick<Agent, 'name' | 'isBoardLead'>,
  mentions: ReadonlySet<string>,
): boolean {
  if (mentions.size === 0) return false;
  if (mentions.has('lead') && agent.isBoardLead) return true;
  const name = agent.name.trim().toLowerCase();
  if (!name) return false;
  const others = new Set([...mentions].filter((mention) => mention !== 'lead'));
  return others.has(name) || others.has(name.split(/\s+/)[0]);
}

/** The message a chat item sends its targets (upstream's text). */
export function boardChatMessage(params: {
  board: Pick<Board, 'id' | 'name'>;
  from: string;
  content: string;
  mentioned: boolean;
  baseUrl: string;
}): string {
  let snippet = params.content.trim();
  if (snippet.length > MAX_SNIPPET_LENGTH) {
    snippet = `${snippet.slice(0, MAX_SNIPPET_LENGTH - 3)}...`;
  }
  return (
    `${params.mentioned ? 'BOARD CHAT MENTION' : 'BOARD CHAT'}\n` +
    `Board: ${params.board.name}\n` +
    `From: ${params.from}\n\n` +
    `${snippet}\n\n` +
    'Reply via board chat:\n' +
    `POST ${params.baseUrl}/api/v1/agent/boards/${params.board.id}/memory\n` +
    'Body: {"content":"...","tags":["chat"]}'
  );
}

interface Dispatch {
  agent: Agent;
  message: string;
  deliver: boolean;
}

/** One chat item to notify. */
interface Notification {
  readonly board: Board;
  readonly memory: BoardMemory;
  readonly actor: Actor;
  readonly from: string;
}

/**
 * Tells the board's agents about a new chat item, as upstream does, after the item is
 * committed and without holding up the POST: the board lead and the mentioned agents get
 * `BOARD CHAT` / `BOARD CHAT MENTION` with a snippet; `/pause` and `/resume` go verbatim to
 * every agent of the board. The poster (an agent) is never messaged. Best effort: a gateway
 * failure is logged and never fails the POST.
 *
 * A board's items are sent one after the other, in the order they were posted (upstream sends
 * them within the POST): a `/resume` never overtakes the `/pause` before it, even when that
 * send is retried. Bounded per instance: at most BOARD_CHAT_NOTIFY_CONCURRENCY boards are being
 * notified at once (each item to at most NOTIFY_CONCURRENCY agents at a time), at most
 * BOARD_CHAT_NOTIFY_QUEUE items wait, and a burst past that is dropped and logged (the items
 * are stored all the same). Nothing is kept that another instance would need: a notification
 * lost to a restart is not resent, and two instances do not order each other's items.
 */
@Injectable()
export class BoardChatNotifier implements OnModuleDestroy {
  private readonly logger = new Logger('BoardChat');
  /** One worker per board being notified; it sends that board's items in order. */
  private readonly running = new Set<Promise<void>>();
  /** Items not started yet, per board; a board is here while it has a worker or awaits one. */
  private readonly pending = new Map<string, Notification[]>();
  /** Boards with items waiting for a worker, in order of arrival. */
  private readonly waitingBoards: string[] = [];
  /** Items in `pending` (bounded by BOARD_CHAT_NOTIFY_QUEUE). */
  private waiting = 0;
  private stopped = false;
  /** Observability (and tests): notifications dropped because the queue was full. */
  readonly stats = { dropped: 0 };

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly gateways: OpenClawGatewayService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Starts (or queues) the notification in the background; never throws. */
  notify(board: Board, memory: BoardMemory, actor: Actor, from: string): void {
    if (this.stopped) return;
    const item: Notification = { board, memory, actor, from };
    const { notifyConcurrency, notifyQueue } = this.config.boardChat;
    const queue = this.pending.get(board.id);
    if (!queue && this.running.size < notifyConcurrency) {
      this.pending.set(board.id, []);
      this.startWorker(board.id, item);
    } else if (this.waiting >= notifyQueue) {
      this.stats.dropped++;
      this.logger.warn(
        `board chat notification for ${memory.id} dropped: ${this.waiting} notifications already waiting`,
      );
    } else if (queue) {
      // After the board's earlier items (its worker, or its turn for one, takes it).
      queue.push(item);
      this.waiting++;
    } else {
      this.pending.set(board.id, [item]);
      this.waiting++;
      this.waitingBoards.push(board.id);
    }
  }

  /** Notifications in flight or waiting (tests wait for them). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.waiting > 0) {
      this.logger.warn(`${this.waiting} board chat notifications not sent: shutting down`);
    }
    await withDeadline(this.idle(), SHUTDOWN_WAIT_MS, () => new Error('shutdown')).catch(
      () => undefined,
    );
  }

  /**
   * Sends the board's items one after the other, then gives its slot to the next waiting
   * board. Never rejects (notifyNow does not).
   */
  private startWorker(boardId: string, first: Notification): void {
    const work = (async () => {
      let item: Notification | undefined = first;
      while (item && !this.stopped) {
        await this.notifyNow(item);
        item = this.pending.get(boardId)?.shift();
        if (item) this.waiting--;
      }
      this.pending.delete(boardId);
    })();
    this.running.add(work);
    void work.finally(() => {
      this.running.delete(work);
      if (this.stopped) return;
      const next = this.waitingBoards.shift();
      const nextItem = next === undefined ? undefined : this.pending.get(next)?.shift();
      if (next !== undefined && nextItem) {
        this.waiting--;
        this.startWorker(next, nextItem);
      }
    });
  }

  /**
   * One item's notification; never rejects. It ends when the sends really end (each bounded by
   * the chat-send budget), not just at the deadline, so the board's next item and the slot
   * wait for it: work past the deadline still counts against the bound.
   */
  private async notifyNow({ board, memory, actor, from }: Notification): Promise<void> {
    const sending = this.send(board, memory, actor, from);
    try {
      await withDeadline(
        sending,
        NOTIFY_BUDGET_MS,
        () => new Error(`not done within ${NOTIFY_BUDGET_MS} ms`),
      );
    } catch (error) {
      this.logger.warn(`board chat notification for ${memory.id} failed: ${describe(error)}`);
    }
    await sending.catch(() => undefined);
  }

  private async send(board: Board, memory: BoardMemory, actor: Actor, from: string) {
    const gateway = await findBoardGateway(this.dataSource, board);
    if (!gateway) return;
    const agents = await this.dataSource.getRepository(Agent).find({
      where: { organizationId: board.organizationId, boardId: board.id },
      order: { createdAt: 'ASC' },
    });
    const posterId = actor.type === 'agent' ? actor.agent.id : null;
    const recipients = agents.filter((agent) => agent.id !== posterId && agent.openclawSessionId);
    const dispatches = this.dispatches(board, memory, recipients, from);
    if (dispatches.length === 0) return;
    const methods = this.gateways.methods(gateway);
    await forEachConcurrently(dispatches, NOTIFY_CONCURRENCY, async (dispatch) => {
      try {
        await methods.chatSend({
          sessionKey: dispatch.agent.openclawSessionId!,
          message: dispatch.message,
          deliver: dispatch.deliver,
        });
      } catch (error) {
        this.logger.warn(
          `board chat to agent ${dispatch.agent.id} on board ${board.id} failed: ${describe(error)}`,
        );
      }
    });
  }

  private dispatches(
    board: Board,
    memory: BoardMemory,
    recipients: Agent[],
    from: string,
  ): Dispatch[] {
    const command = memory.content.trim().toLowerCase();
    if (CONTROL_COMMANDS.has(command)) {
      return recipients.map((agent) => ({ agent, message: command, deliver: true }));
    }
    const mentions = extractMentions(memory.content);
    return recipients
      .filter((agent) => agent.isBoardLead || mentionsAgent(agent, mentions))
      .map((agent) => ({
        agent,
        deliver: false,
        message: boardChatMessage({
          board,
          from,
          content: memory.content,
          mentioned: mentionsAgent(agent, mentions),
          baseUrl: this.config.baseUrl,
        }),
      }));
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
