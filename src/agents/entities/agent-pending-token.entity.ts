import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Organization } from '../../organizations/entities/organization.entity';
import { Agent } from './agent.entity';

/**
 * An agent token a (re)provision issued and may have written into the agent's workspace, but
 * has not seen confirmed there (see auth/agent-token.ts). It authenticates like the agent's
 * token in force (`agents.agent_token_hash`) until a newer token is known to be in the
 * workspace. Registered just before the run's first token-carrying write, so a run that fails
 * earlier never touches tokens.
 */
@Entity('agent_pending_tokens')
@Index('ix_agent_pending_tokens_agent_id_created_at', ['agentId', 'createdAt'])
export class AgentPendingToken {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** The agent's organization (tenant-owned rows record it). */
  @Index('ix_agent_pending_tokens_organization_id')
  @Column({ type: 'uuid' })
  organizationId!: string;

  @ManyToOne(() => Organization, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'organization_id' })
  organization?: Organization;

  @Column({ type: 'uuid' })
  agentId!: string;

  @ManyToOne(() => Agent, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'agent_id' })
  agent?: Agent;

  /** Digest of the token (auth/agent-token.ts), unique: authentication is one indexed lookup. */
  @Index('ux_agent_pending_tokens_token_hash', { unique: true })
  @Column({ type: 'varchar' })
  tokenHash!: string;

  /**
   * Issue order: a token proven in the workspace retires only older ones. `clock_timestamp()`,
   * not the transaction start, so two registrations in one transaction still order.
   */
  @Column({ type: 'timestamptz', default: () => 'clock_timestamp()' })
  createdAt!: Date;
}
