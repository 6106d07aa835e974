import { toBoardOnboardingRead } from '../dto/board-onboarding-read.dto';
import type { BoardOnboardingSession } from '../entities/board-onboarding-session.entity';

/**
 * The `data:` of an `onboarding` event: `{"onboarding": BoardOnboardingRead}`, the session as
 * the onboarding routes answer it.
 */
export function onboardingEventData(session: BoardOnboardingSession): string {
  return JSON.stringify({ onboarding: toBoardOnboardingRead(session) });
}
