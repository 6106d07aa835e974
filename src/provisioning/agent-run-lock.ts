import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';

/**
 * Serialises provision runs on one agent across every instance: a session-level advisory
 * lock on a connection of its own, which also carries the run's queries (one pooled
 * connection per run, so concurrent runs cannot starve the pool of the connections they need).
 */
@Injectable()
export class AgentRunLock {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async run<T>(agentId: string, run: (manager: EntityManager) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    const key = `mission-control:agent-provision:${agentId}`;
    try {
      await runner.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
      try {
        return await run(runner.manager);
      } finally {
        await runner.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
      }
    } finally {
      await runner.release();
    }
  }
}
