import type { DataSource } from 'typeorm';
import { Agent } from './entities/agent.entity';

/**
 * The entity from a raw `agents` row (`SELECT agent.*`, `RETURNING *`): the column values pg
 * already parsed, under their property names. Hot paths use it instead of the query builder's
 * hydration, which costs more CPU than the query on a heartbeat.
 */
export function agentFromRow(dataSource: DataSource, row: Record<string, unknown>): Agent {
  const agent = new Agent();
  for (const column of dataSource.getMetadata(Agent).columns) {
    column.setEntityValue(agent, row[column.databaseName]);
  }
  return agent;
}
