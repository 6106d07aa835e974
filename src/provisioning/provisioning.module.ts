import { Module } from '@nestjs/common';
import { AgentCleanup } from './agent-cleanup';
import { AgentRowsService } from './agent-rows.service';
import { AgentRunLock } from './agent-run-lock';
import { AgentTokens } from './agent-tokens';
import { ProvisionRunner } from './provision-run';
import { ProvisionRunSweeper } from './provision-run-sweeper';
import { ProvisioningService } from './provisioning.service';
import { WorkspaceTemplates } from './templates';

/**
 * The provisioning engine. Depends only on the (global) OpenClawGatewayModule and the entities,
 * so the gateways, agents, coordination and onboarding modules can all provision without
 * importing one another.
 */
@Module({
  providers: [
    ProvisioningService,
    ProvisionRunner,
    ProvisionRunSweeper,
    AgentRunLock,
    AgentRowsService,
    AgentCleanup,
    AgentTokens,
    // Templates are read and compiled once, at boot: a broken template fails start-up.
    { provide: WorkspaceTemplates, useFactory: () => new WorkspaceTemplates() },
  ],
  exports: [ProvisioningService],
})
export class ProvisioningModule {}
