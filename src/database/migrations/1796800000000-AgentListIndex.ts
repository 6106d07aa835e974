import { MigrationInterface, QueryRunner } from 'typeorm';

export class AgentListIndex1796800000000 implements MigrationInterface {
  name = 'AgentListIndex1796800000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE INDEX "ix_agents_organization_created" ON "agents" ("organization_id", "created_at", "id")
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_organization_created"
        `);
  }
}
