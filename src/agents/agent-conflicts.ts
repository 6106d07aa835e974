import { QueryFailedError } from 'typeorm';
import { ConflictError } from '../common/errors/app-error';
import { AGENT_NAME_INDEX, AGENT_ROLE_INDEX } from './entities/agent.entity';

export const NAME_TAKEN_ON_BOARD = 'An agent with this name already exists on this board.';
export const NAME_TAKEN_ON_GATEWAY =
  'An agent with this name already exists in this gateway workspace.';
export const GATEWAY_HAS_MAIN = 'This gateway already has a main agent.';
export const BOARD_HAS_LEAD = 'This board already has a lead agent.';

/** The 409 detail for each unique index an agent row can run into. */
const CONFLICT_BY_INDEX: Record<string, string> = {
  [AGENT_NAME_INDEX.board]: NAME_TAKEN_ON_BOARD,
  [AGENT_NAME_INDEX.gateway]: NAME_TAKEN_ON_GATEWAY,
  [AGENT_ROLE_INDEX.gatewayMain]: GATEWAY_HAS_MAIN,
  [AGENT_ROLE_INDEX.boardLead]: BOARD_HAS_LEAD,
};

/**
 * Runs `write`, turning a violation of an agent unique index into its 409. Shared by the agents
 * routes and the engine's lead / main rows, so every writer of agent names answers alike.
 */
export async function mappingAgentConflicts<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const driver = (
      error as QueryFailedError & { driverError?: { code?: string; constraint?: string } }
    ).driverError;
    if (error instanceof QueryFailedError && driver?.code === '23505') {
      const detail = driver.constraint ? CONFLICT_BY_INDEX[driver.constraint] : undefined;
      if (detail) throw new ConflictError(detail);
    }
    throw error;
  }
}
