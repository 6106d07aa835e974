import { Module } from '@nestjs/common';
import { ChangeLogModule } from '../../change-log/change-log.module';
import { OnboardingStreamController } from './onboarding-stream.controller';
import { OnboardingStreamHub } from './onboarding-stream.hub';

/** `GET /boards/{id}/onboarding/stream`: the board's onboarding sessions over the change log. */
@Module({
  imports: [ChangeLogModule],
  controllers: [OnboardingStreamController],
  providers: [OnboardingStreamHub],
  exports: [OnboardingStreamHub],
})
export class OnboardingStreamModule {}
