import { ApiProperty } from '@nestjs/swagger';
import type { AgentCleanupReport } from '../organization-deletion.service';

/** An agent that may still exist on its gateway: its rows are deleted all the same. */
export class AgentCleanupFailureRead {
  @ApiProperty({ format: 'uuid' }) agent_id!: string;
  @ApiProperty() agent_name!: string;
  @ApiProperty({ format: 'uuid' }) gateway_id!: string;
  @ApiProperty() gateway_name!: string;
  @ApiProperty({ description: 'Why the agent could not be removed from the gateway' })
  error!: string;
}

/**
 * `OkResponse` plus the gateway clean-up: how many agents were removed from their gateways and
 * which could not be (remove those by hand on the gateway host).
 */
export class OrganizationDeleteResponse {
  @ApiProperty({ example: true }) ok!: true;
  @ApiProperty({ description: 'Agents removed from their gateways' }) agents_removed!: number;
  @ApiProperty({ type: [AgentCleanupFailureRead] })
  agent_cleanup_failures!: AgentCleanupFailureRead[];
}

/** DELETE /users/me: the organizations deleted with the account (those it was alone in). */
export class AccountDeleteResponse extends OrganizationDeleteResponse {
  @ApiProperty({ type: [String], description: 'Organizations the user was the only member of' })
  deleted_organization_ids!: string[];
}

export function toOrganizationDeleteResponse(
  report: AgentCleanupReport,
): OrganizationDeleteResponse {
  return { ok: true, agents_removed: report.removed.length, agent_cleanup_failures: report.failed };
}
