import type { BoardOnboardingSession } from '../entities/board-onboarding-session.entity';

/**
 * The `data:` of an `onboarding` event: `{"onboarding": BoardOnboardingRead}`, the session as
 * the onboarding routes answer it.
 */
export function onboardingEventData(session: BoardOnboardingSession): string {
  // Provisional until the onboarding module's BoardOnboardingRead lands (then its mapper).
  return JSON.stringify({
    onboarding: {
      id: session.id,
      board_id: session.boardId,
      session_key: session.sessionKey,
      status: session.status,
      messages: session.messages,
      draft_goal: session.draftGoal,
      created_at: session.createdAt.toISOString(),
      updated_at: session.updatedAt.toISOString(),
    },
  });
}
