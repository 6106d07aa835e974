import { Module } from '@nestjs/common';
import { CoordinationModule } from '../coordination/coordination.module';
import { ProvisioningModule } from '../provisioning/provisioning.module';
import { AgentOnboardingController, OnboardingController } from './onboarding.controller';
import { OnboardingService } from './onboarding.service';

/**
 * Board onboarding (contract §1.5, C10, §6): the gateway agent interviews the user about the
 * board's goal and lead over the coordination dispatch path; the confirmation sets the goal and
 * ensures the lead through the provisioning engine.
 */
@Module({
  imports: [CoordinationModule, ProvisioningModule],
  controllers: [OnboardingController, AgentOnboardingController],
  providers: [OnboardingService],
  exports: [OnboardingService],
})
export class OnboardingModule {}
