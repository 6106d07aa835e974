import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The board settings today's frontend sends and shows (description, max_agents and the five
 * workflow flags). Every column is NOT NULL with upstream's default, so existing boards get the
 * defaults as the columns are added.
 */
export class BoardSettings1796300000000 implements MigrationInterface {
  name = 'BoardSettings1796300000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD "description" text NOT NULL DEFAULT ''
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD "require_approval_for_done" boolean NOT NULL DEFAULT true
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD "require_review_before_done" boolean NOT NULL DEFAULT false
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD "comment_required_for_review" boolean NOT NULL DEFAULT false
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD "block_status_changes_with_pending_approval" boolean NOT NULL DEFAULT false
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD "only_lead_can_change_status" boolean NOT NULL DEFAULT false
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD "max_agents" integer NOT NULL DEFAULT '1'
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD CONSTRAINT "ck_boards_max_agents_positive" CHECK ("max_agents" >= 1)
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "boards" DROP CONSTRAINT "ck_boards_max_agents_positive"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP COLUMN "max_agents"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP COLUMN "only_lead_can_change_status"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP COLUMN "block_status_changes_with_pending_approval"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP COLUMN "comment_required_for_review"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP COLUMN "require_review_before_done"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP COLUMN "require_approval_for_done"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP COLUMN "description"
        `);
  }
}
