import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Board } from '../../boards/entities/board.entity';
import { CreatedAt } from '../../database/columns';

@Entity('board_memory')
@Index('ix_board_memory_board_id_created_at', ['boardId', 'createdAt'])
export class BoardMemory {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index('ix_board_memory_board_id')
  @Column({ type: 'uuid' })
  boardId!: string;

  @ManyToOne(() => Board, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'board_id' })
  board?: Board;

  @Column({ type: 'text' })
  content!: string;

  @Column({ type: 'jsonb', nullable: true })
  tags!: string[] | null;

  @Index('ix_board_memory_is_chat')
  @Column({ type: 'boolean', default: false })
  isChat!: boolean;

  @Column({ type: 'varchar', nullable: true })
  source!: string | null;

  @CreatedAt()
  createdAt!: Date;
}
