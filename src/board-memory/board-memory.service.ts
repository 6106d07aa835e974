import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Actor } from '../auth/auth-context';
import type { Board } from '../boards/entities/board.entity';
import { page, type Page } from '../common/pagination/pagination';
import { BoardChatNotifier } from './board-chat-notifier';
import type { BoardMemoryCreate, BoardMemoryListQuery } from './dto/board-memory.dto';
import { toBoardMemoryRead, type BoardMemoryRead } from './dto/board-memory-read.dto';
import { BoardMemory } from './entities/board-memory.entity';

/** The tag that makes a memory item a chat message. */
export const CHAT_TAG = 'chat';

/** Who posted, as a chat item records it when it names no source (upstream's display name). */
export function actorDisplayName(actor: Actor): string {
  if (actor.type === 'agent') return actor.agent.name;
  return actor.user.preferredName || actor.user.name || 'User';
}

/** Board memory: the board's notes and chat, written by its users and agents. */
@Injectable()
export class BoardMemoryService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly chat: BoardChatNotifier,
  ) {}

  /**
   * The board's items, newest first. Items whose content is blank (older rows) are left out, as
   * upstream does (the read model requires content).
   */
  async list(board: Board, query: BoardMemoryListQuery): Promise<Page<BoardMemoryRead>> {
    const qb = this.dataSource
      .getRepository(BoardMemory)
      .createQueryBuilder('memory')
      .where('memory.organization_id = :organizationId', { organizationId: board.organizationId })
      .andWhere('memory.board_id = :boardId', { boardId: board.id })
      .andWhere('length(btrim(memory.content)) > 0');
    if (query.is_chat !== undefined) {
      qb.andWhere('memory.is_chat = :isChat', { isChat: query.is_chat });
    }
    const [items, total] = await qb
      .orderBy('memory.created_at', 'DESC')
      .addOrderBy('memory.id', 'DESC')
      .take(query.limit)
      .skip(query.offset)
      .getManyAndCount();
    return page(items.map(toBoardMemoryRead), total, query);
  }

  /**
   * Records an item. `is_chat` follows the tags; a chat item without a source records the
   * poster (agent name; user preferred name, name, or "User"), as upstream does. Once it is
   * committed, a chat item is sent to the board's agents in the background (BoardChatNotifier).
   */
  async create(board: Board, actor: Actor, body: BoardMemoryCreate): Promise<BoardMemory> {
    const tags = body.tags ?? null;
    const isChat = tags !== null && tags.includes(CHAT_TAG);
    const source = body.source || (isChat ? actorDisplayName(actor) : (body.source ?? null));
    const memory = await this.dataSource.getRepository(BoardMemory).save({
      organizationId: board.organizationId,
      boardId: board.id,
      content: body.content,
      tags,
      isChat,
      source,
    });
    if (isChat) this.chat.notify(board, memory, actor, actorDisplayName(actor));
    return memory;
  }
}
