import { ApiProperty } from '@nestjs/swagger';
import type { BoardMemory } from '../entities/board-memory.entity';

/**
 * One board memory item as every reader sees it: the memory routes, the memory stream and the
 * board snapshot's chat messages. `is_chat` is true when the tags contain `chat`.
 */
export class BoardMemoryRead {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) board_id!: string;
  @ApiProperty() content!: string;
  @ApiProperty({ type: [String], nullable: true }) tags!: string[] | null;
  @ApiProperty({ type: String, nullable: true }) source!: string | null;
  @ApiProperty() is_chat!: boolean;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
}

export function toBoardMemoryRead(memory: BoardMemory): BoardMemoryRead {
  return {
    id: memory.id,
    board_id: memory.boardId,
    content: memory.content,
    tags: memory.tags,
    source: memory.source,
    is_chat: memory.isChat,
    created_at: memory.createdAt.toISOString(),
  };
}
