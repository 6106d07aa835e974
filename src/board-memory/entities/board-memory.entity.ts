import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Board } from '../../boards/entities/board.entity';
import { CreatedAt } from '../../database/columns';
import { Organization } from '../../organizations/entities/organization.entity';

/** The partial index the pause detection reads (created by migration BoardMemoryTenancy). */
export const PAUSE_COMMAND_INDEX = 'ix_board_memory_pause_commands';

@Entity('board_memory')
@Index('ix_board_memory_board_id_created_at', ['boardId', 'createdAt'])
// The board's latest `/pause` or `/resume` chat entry (template sync): an expression in a
// partial index TypeORM cannot describe, so not synchronised.
@Index(PAUSE_COMMAND_INDEX, { synchronize: false })
export class BoardMemory {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /**
   * The organization that owns the item. The board is referenced by (organization_id, id), so
   * the database refuses an item whose organization is not its board's, and every query can
   * filter on the tenant directly.
   */
  @Column({ type: 'uuid' })
  organizationId!: string;

  @ManyToOne(() => Organization, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_id' })
  organization?: Organization;

  @Index('ix_board_memory_board_id')
  @Column({ type: 'uuid' })
  boardId!: string;

  @ManyToOne(() => Board, { onDelete: 'CASCADE' })
  @JoinColumn([
    { name: 'organization_id', referencedColumnName: 'organizationId' },
    { name: 'board_id', referencedColumnName: 'id' },
  ])
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
