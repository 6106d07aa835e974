import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Board } from '../../boards/entities/board.entity';
import { CreatedAt, UpdatedAt } from '../../database/columns';
import { Gateway } from '../../gateways/entities/gateway.entity';
import { Organization } from '../../organizations/entities/organization.entity';

export const AGENT_STATUS = {
  provisioning: 'provisioning',
  online: 'online',
  offline: 'offline',
  updating: 'updating',
  deleting: 'deleting',
} as const;

/** The unique indexes on agent names (see the entity) and on one main agent / one lead. */
export const AGENT_NAME_INDEX = {
  board: 'ux_agents_board_lower_name',
  gateway: 'ux_agents_gateway_worker_lower_name',
} as const;
export const AGENT_ROLE_INDEX = {
  gatewayMain: 'ux_agents_gateway_main',
  boardLead: 'ux_agents_board_lead',
} as const;

@Entity('agents')
// One main agent per gateway and one lead per board: both are keyed by a fixed session key
// (agent:mc-gateway-<gateway>:main, agent:lead-<board>:main), so a second row would share the
// first one's gateway agent. Also makes concurrent ensure-calls from several instances safe.
@Index('ux_agents_gateway_main', ['gatewayId'], { unique: true, where: '"board_id" IS NULL' })
@Index('ux_agents_board_lead', ['boardId'], { unique: true, where: '"is_board_lead"' })
// The agent list's order (newest first) within an organization: its default page is an index scan.
@Index('ix_agents_organization_created', ['organizationId', 'createdAt', 'id'])
// Agent names are unique ignoring case on a board (lead included) and among the board agents of
// one gateway (leads excepted: every board's lead may keep the default "Lead Agent"). Expression
// indexes TypeORM cannot describe: created by migration AgentNameUniqueness, not synchronised.
@Index(AGENT_NAME_INDEX.board, { synchronize: false })
@Index(AGENT_NAME_INDEX.gateway, { synchronize: false })
export class Agent {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /**
   * The organization that owns the agent. Its gateway and its board are keyed by
   * (organization_id, id), so the database refuses an agent whose gateway or board belongs to
   * another organization, and every tenant query can filter on this column directly.
   */
  @Index('ix_agents_organization_id')
  @Column({ type: 'uuid' })
  organizationId!: string;

  @ManyToOne(() => Organization, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'organization_id' })
  organization?: Organization;

  /** Null for a gateway's main agent; otherwise the board the agent works on. */
  @Index('ix_agents_board_id')
  @Column({ type: 'uuid', nullable: true })
  boardId!: string | null;

  @ManyToOne(() => Board, { onDelete: 'RESTRICT' })
  @JoinColumn([
    { name: 'organization_id', referencedColumnName: 'organizationId' },
    { name: 'board_id', referencedColumnName: 'id' },
  ])
  board?: Board | null;

  @Index('ix_agents_gateway_id')
  @Column({ type: 'uuid' })
  gatewayId!: string;

  @ManyToOne(() => Gateway, { onDelete: 'RESTRICT' })
  @JoinColumn([
    { name: 'organization_id', referencedColumnName: 'organizationId' },
    { name: 'gateway_id', referencedColumnName: 'id' },
  ])
  gateway?: Gateway;

  @Index('ix_agents_name')
  @Column({ type: 'varchar' })
  name!: string;

  @Index('ix_agents_status')
  @Column({ type: 'varchar', default: AGENT_STATUS.provisioning })
  status!: string;

  /** The gateway session key, e.g. `agent:mc-<id>:main`. */
  @Index('ix_agents_openclaw_session_id')
  @Column({ type: 'varchar', nullable: true })
  openclawSessionId!: string | null;

  /**
   * Digest of the agent token in force (see auth/agent-token.ts), unique so that a token
   * resolves to its agent with one indexed lookup. Tokens a (re)provision issued but has not seen
   * confirmed in the workspace wait in `agent_pending_tokens` (AgentPendingToken).
   */
  @Index('ix_agents_agent_token_hash', { unique: true })
  @Column({ type: 'varchar', nullable: true })
  agentTokenHash!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  heartbeatConfig!: Record<string, unknown> | null;

  @Column({ type: 'jsonb', nullable: true })
  identityProfile!: Record<string, string> | null;

  @Column({ type: 'text', nullable: true })
  identityTemplate!: string | null;

  @Column({ type: 'text', nullable: true })
  soulTemplate!: string | null;

  @Column({ type: 'timestamptz', nullable: true })
  provisionRequestedAt!: Date | null;

  @Index('ix_agents_provision_confirm_token_hash')
  @Column({ type: 'varchar', nullable: true })
  provisionConfirmTokenHash!: string | null;

  @Index('ix_agents_provision_action')
  @Column({ type: 'varchar', nullable: true })
  provisionAction!: string | null;

  @Column({ type: 'timestamptz', nullable: true })
  deleteRequestedAt!: Date | null;

  @Index('ix_agents_delete_confirm_token_hash')
  @Column({ type: 'varchar', nullable: true })
  deleteConfirmTokenHash!: string | null;

  @Column({ type: 'timestamptz', nullable: true })
  lastSeenAt!: Date | null;

  /** Why the last (re)provision failed; null after a success. */
  @Column({ type: 'text', nullable: true })
  lastProvisionError!: string | null;

  @Index('ix_agents_is_board_lead')
  @Column({ type: 'boolean', default: false })
  isBoardLead!: boolean;

  @CreatedAt()
  createdAt!: Date;

  @UpdatedAt()
  updatedAt!: Date;
}
