import { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1795504638889 implements MigrationInterface {
  name = 'Init1795504638889';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            CREATE TABLE "organizations" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "name" character varying NOT NULL,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_6b031fcd0863e3f6b44230163f9" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organizations_name" ON "organizations" ("name")
        `);
    await queryRunner.query(`
            CREATE TABLE "gateways" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "organization_id" uuid NOT NULL,
                "name" character varying NOT NULL,
                "url" character varying NOT NULL,
                "token" character varying,
                "workspace_root" character varying NOT NULL,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_b53153080a6907017cf44cb7f58" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_gateways_organization_id" ON "gateways" ("organization_id")
        `);
    await queryRunner.query(`
            CREATE TABLE "board_groups" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "organization_id" uuid NOT NULL,
                "name" character varying NOT NULL,
                "slug" character varying NOT NULL,
                "description" text,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_75f104e6e4f1ad83c130f2f3670" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_board_groups_organization_id" ON "board_groups" ("organization_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_board_groups_slug" ON "board_groups" ("slug")
        `);
    await queryRunner.query(`
            CREATE TABLE "boards" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "organization_id" uuid NOT NULL,
                "name" character varying NOT NULL,
                "slug" character varying NOT NULL,
                "gateway_id" uuid,
                "board_group_id" uuid,
                "board_type" character varying NOT NULL DEFAULT 'goal',
                "objective" text,
                "success_metrics" jsonb,
                "target_date" TIMESTAMP WITH TIME ZONE,
                "goal_confirmed" boolean NOT NULL DEFAULT false,
                "goal_source" character varying,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_606923b0b068ef262dfdcd18f44" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_boards_organization_id" ON "boards" ("organization_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_boards_slug" ON "boards" ("slug")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_boards_gateway_id" ON "boards" ("gateway_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_boards_board_group_id" ON "boards" ("board_group_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_boards_board_type" ON "boards" ("board_type")
        `);
    await queryRunner.query(`
            CREATE TABLE "agents" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "board_id" uuid,
                "gateway_id" uuid NOT NULL,
                "name" character varying NOT NULL,
                "status" character varying NOT NULL DEFAULT 'provisioning',
                "openclaw_session_id" character varying,
                "agent_token_hash" character varying,
                "heartbeat_config" jsonb,
                "identity_profile" jsonb,
                "identity_template" text,
                "soul_template" text,
                "provision_requested_at" TIMESTAMP WITH TIME ZONE,
                "provision_confirm_token_hash" character varying,
                "provision_action" character varying,
                "delete_requested_at" TIMESTAMP WITH TIME ZONE,
                "delete_confirm_token_hash" character varying,
                "last_seen_at" TIMESTAMP WITH TIME ZONE,
                "is_board_lead" boolean NOT NULL DEFAULT false,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_9c653f28ae19c5884d5baf6a1d9" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_board_id" ON "agents" ("board_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_gateway_id" ON "agents" ("gateway_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_name" ON "agents" ("name")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_status" ON "agents" ("status")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_openclaw_session_id" ON "agents" ("openclaw_session_id")
        `);
    await queryRunner.query(`
            CREATE UNIQUE INDEX "ix_agents_agent_token_hash" ON "agents" ("agent_token_hash")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_provision_confirm_token_hash" ON "agents" ("provision_confirm_token_hash")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_provision_action" ON "agents" ("provision_action")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_delete_confirm_token_hash" ON "agents" ("delete_confirm_token_hash")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_agents_is_board_lead" ON "agents" ("is_board_lead")
        `);
    await queryRunner.query(`
            CREATE TABLE "users" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "clerk_user_id" character varying NOT NULL,
                "email" character varying,
                "name" character varying,
                "preferred_name" character varying,
                "pronouns" character varying,
                "timezone" character varying,
                "notes" text,
                "context" text,
                "is_super_admin" boolean NOT NULL DEFAULT false,
                "active_organization_id" uuid,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "uq_users_clerk_user_id" UNIQUE ("clerk_user_id"),
                CONSTRAINT "PK_a3ffb1c0c8416b9fc6f907b7433" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_users_email" ON "users" ("email")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_users_active_organization_id" ON "users" ("active_organization_id")
        `);
    await queryRunner.query(`
            CREATE TABLE "tasks" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "board_id" uuid,
                "title" character varying NOT NULL,
                "description" text,
                "status" character varying NOT NULL DEFAULT 'inbox',
                "priority" character varying NOT NULL DEFAULT 'medium',
                "due_at" TIMESTAMP WITH TIME ZONE,
                "in_progress_at" TIMESTAMP WITH TIME ZONE,
                "created_by_user_id" uuid,
                "assigned_agent_id" uuid,
                "auto_created" boolean NOT NULL DEFAULT false,
                "auto_reason" character varying,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_8d12ff38fcc62aaba2cab748772" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_tasks_board_id" ON "tasks" ("board_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_tasks_status" ON "tasks" ("status")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_tasks_priority" ON "tasks" ("priority")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_tasks_created_by_user_id" ON "tasks" ("created_by_user_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_tasks_assigned_agent_id" ON "tasks" ("assigned_agent_id")
        `);
    await queryRunner.query(`
            CREATE TABLE "activity_events" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "event_type" character varying NOT NULL,
                "message" text,
                "agent_id" uuid,
                "task_id" uuid,
                "board_id" uuid,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_f8e8d9dbf64f93f58ae52b4a9e4" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_activity_events_event_type" ON "activity_events" ("event_type")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_activity_events_agent_id" ON "activity_events" ("agent_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_activity_events_task_id" ON "activity_events" ("task_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_activity_events_board_id_created_at" ON "activity_events" ("board_id", "created_at")
        `);
    await queryRunner.query(`
            CREATE TABLE "approvals" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "board_id" uuid NOT NULL,
                "task_id" uuid,
                "agent_id" uuid,
                "action_type" character varying NOT NULL,
                "payload" jsonb,
                "confidence" integer NOT NULL,
                "rubric_scores" jsonb,
                "status" character varying NOT NULL DEFAULT 'pending',
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "resolved_at" TIMESTAMP WITH TIME ZONE,
                CONSTRAINT "PK_690417aaefa84d18b1a59e2a499" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_approvals_board_id" ON "approvals" ("board_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_approvals_task_id" ON "approvals" ("task_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_approvals_agent_id" ON "approvals" ("agent_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_approvals_status" ON "approvals" ("status")
        `);
    await queryRunner.query(`
            CREATE TABLE "board_memory" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "board_id" uuid NOT NULL,
                "content" text NOT NULL,
                "tags" jsonb,
                "is_chat" boolean NOT NULL DEFAULT false,
                "source" character varying,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_aa7d136ad6b583ad15593346ee9" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_board_memory_board_id" ON "board_memory" ("board_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_board_memory_is_chat" ON "board_memory" ("is_chat")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_board_memory_board_id_created_at" ON "board_memory" ("board_id", "created_at")
        `);
    await queryRunner.query(`
            CREATE TABLE "board_onboarding_sessions" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "board_id" uuid NOT NULL,
                "session_key" character varying NOT NULL,
                "status" character varying NOT NULL DEFAULT 'active',
                "messages" jsonb,
                "draft_goal" jsonb,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "PK_7dea702193754520f9c80008700" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_board_onboarding_sessions_board_id" ON "board_onboarding_sessions" ("board_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_board_onboarding_sessions_status" ON "board_onboarding_sessions" ("status")
        `);
    await queryRunner.query(`
            CREATE TABLE "organization_members" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "organization_id" uuid NOT NULL,
                "user_id" uuid NOT NULL,
                "role" character varying NOT NULL DEFAULT 'member',
                "all_boards_read" boolean NOT NULL DEFAULT false,
                "all_boards_write" boolean NOT NULL DEFAULT false,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "uq_organization_members_org_user" UNIQUE ("organization_id", "user_id"),
                CONSTRAINT "PK_c2b39d5d072886a4d9c8105eb9a" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_members_organization_id" ON "organization_members" ("organization_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_members_user_id" ON "organization_members" ("user_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_members_role" ON "organization_members" ("role")
        `);
    await queryRunner.query(`
            CREATE TABLE "organization_board_access" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "organization_member_id" uuid NOT NULL,
                "board_id" uuid NOT NULL,
                "can_read" boolean NOT NULL DEFAULT true,
                "can_write" boolean NOT NULL DEFAULT false,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "uq_org_board_access_member_board" UNIQUE ("organization_member_id", "board_id"),
                CONSTRAINT "PK_d4bdab0b7221908a37b40cd61f6" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_board_access_organization_member_id" ON "organization_board_access" ("organization_member_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_board_access_board_id" ON "organization_board_access" ("board_id")
        `);
    await queryRunner.query(`
            CREATE TABLE "organization_invites" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "organization_id" uuid NOT NULL,
                "invited_email" character varying NOT NULL,
                "token" character varying NOT NULL,
                "role" character varying NOT NULL DEFAULT 'member',
                "all_boards_read" boolean NOT NULL DEFAULT false,
                "all_boards_write" boolean NOT NULL DEFAULT false,
                "created_by_user_id" uuid,
                "accepted_by_user_id" uuid,
                "accepted_at" TIMESTAMP WITH TIME ZONE,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "uq_org_invites_token" UNIQUE ("token"),
                CONSTRAINT "PK_e0799bee14bf23b82851d55fd05" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_invites_organization_id" ON "organization_invites" ("organization_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_invites_invited_email" ON "organization_invites" ("invited_email")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_invites_created_by_user_id" ON "organization_invites" ("created_by_user_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_invites_accepted_by_user_id" ON "organization_invites" ("accepted_by_user_id")
        `);
    await queryRunner.query(`
            CREATE TABLE "organization_invite_board_access" (
                "id" uuid NOT NULL DEFAULT gen_random_uuid(),
                "organization_invite_id" uuid NOT NULL,
                "board_id" uuid NOT NULL,
                "can_read" boolean NOT NULL DEFAULT true,
                "can_write" boolean NOT NULL DEFAULT false,
                "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
                CONSTRAINT "uq_org_invite_board_access_invite_board" UNIQUE ("organization_invite_id", "board_id"),
                CONSTRAINT "PK_8c5423eae45e2d4f5f76a71b1cc" PRIMARY KEY ("id")
            )
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_invite_board_access_organization_invite_id" ON "organization_invite_board_access" ("organization_invite_id")
        `);
    await queryRunner.query(`
            CREATE INDEX "ix_organization_invite_board_access_board_id" ON "organization_invite_board_access" ("board_id")
        `);
    await queryRunner.query(`
            ALTER TABLE "gateways"
            ADD CONSTRAINT "FK_c7ce9a2a4a67398fb797eb2dcf1" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "board_groups"
            ADD CONSTRAINT "FK_2a70f0ffaecad075c2686bdc60c" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD CONSTRAINT "FK_04f09f02e060efc41c2e239bd9d" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD CONSTRAINT "FK_3cefed683cbe504f4c9f39f1faa" FOREIGN KEY ("gateway_id") REFERENCES "gateways"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "boards"
            ADD CONSTRAINT "FK_573203127e1e906ee81a17428aa" FOREIGN KEY ("board_group_id") REFERENCES "board_groups"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD CONSTRAINT "FK_9b6d46769271ee7e2be2e78c683" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "agents"
            ADD CONSTRAINT "FK_417f1bb41b03dc239ccbd21ab62" FOREIGN KEY ("gateway_id") REFERENCES "gateways"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "users"
            ADD CONSTRAINT "FK_b6efb6c252106821c8bd822af86" FOREIGN KEY ("active_organization_id") REFERENCES "organizations"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "tasks"
            ADD CONSTRAINT "FK_2680b7f3ecd70b05030ce6b4aef" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "tasks"
            ADD CONSTRAINT "FK_932b7ae90148e482bc27b0a6d65" FOREIGN KEY ("created_by_user_id") REFERENCES "users"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "tasks"
            ADD CONSTRAINT "FK_395999b4285a1c9be648b44f47d" FOREIGN KEY ("assigned_agent_id") REFERENCES "agents"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events"
            ADD CONSTRAINT "FK_d372d729411d91eccc7abd1fd62" FOREIGN KEY ("agent_id") REFERENCES "agents"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events"
            ADD CONSTRAINT "FK_0b513e66239f3a9619cef7ca1fe" FOREIGN KEY ("task_id") REFERENCES "tasks"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events"
            ADD CONSTRAINT "FK_1f7dd1874e2e82babbae59d0429" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "approvals"
            ADD CONSTRAINT "FK_16e9445f7939210068ed87cf076" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "approvals"
            ADD CONSTRAINT "FK_a58525528c251b82c7372c8229d" FOREIGN KEY ("task_id") REFERENCES "tasks"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "approvals"
            ADD CONSTRAINT "FK_ad2b0cb140ff2bdde399a4e59d6" FOREIGN KEY ("agent_id") REFERENCES "agents"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "board_memory"
            ADD CONSTRAINT "FK_1a298157559a4417d2a93058903" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions"
            ADD CONSTRAINT "FK_554dcc878d9e151b2f1b4888141" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_members"
            ADD CONSTRAINT "FK_7062a4fbd9bab22ffd918e5d3d9" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_members"
            ADD CONSTRAINT "FK_89bde91f78d36ca41e9515d91c6" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_board_access"
            ADD CONSTRAINT "FK_0285a6ef785724034df6b29e9df" FOREIGN KEY ("organization_member_id") REFERENCES "organization_members"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_board_access"
            ADD CONSTRAINT "FK_4a3772cf0fb7fb5c0a940c5f746" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_invites"
            ADD CONSTRAINT "FK_86ee44dc17238efe40601b14540" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_invites"
            ADD CONSTRAINT "FK_4a24bea80fad6847aa503b18a5e" FOREIGN KEY ("created_by_user_id") REFERENCES "users"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_invites"
            ADD CONSTRAINT "FK_22a93611a824b7938d4b1119818" FOREIGN KEY ("accepted_by_user_id") REFERENCES "users"("id") ON DELETE
            SET NULL ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_invite_board_access"
            ADD CONSTRAINT "FK_44a7f9c179a3191093a2307a4f4" FOREIGN KEY ("organization_invite_id") REFERENCES "organization_invites"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_invite_board_access"
            ADD CONSTRAINT "FK_9e4be960a96087d1d1128f9217b" FOREIGN KEY ("board_id") REFERENCES "boards"("id") ON DELETE CASCADE ON UPDATE NO ACTION
        `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
            ALTER TABLE "organization_invite_board_access" DROP CONSTRAINT "FK_9e4be960a96087d1d1128f9217b"
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_invite_board_access" DROP CONSTRAINT "FK_44a7f9c179a3191093a2307a4f4"
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_invites" DROP CONSTRAINT "FK_22a93611a824b7938d4b1119818"
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_invites" DROP CONSTRAINT "FK_4a24bea80fad6847aa503b18a5e"
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_invites" DROP CONSTRAINT "FK_86ee44dc17238efe40601b14540"
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_board_access" DROP CONSTRAINT "FK_4a3772cf0fb7fb5c0a940c5f746"
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_board_access" DROP CONSTRAINT "FK_0285a6ef785724034df6b29e9df"
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_members" DROP CONSTRAINT "FK_89bde91f78d36ca41e9515d91c6"
        `);
    await queryRunner.query(`
            ALTER TABLE "organization_members" DROP CONSTRAINT "FK_7062a4fbd9bab22ffd918e5d3d9"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_onboarding_sessions" DROP CONSTRAINT "FK_554dcc878d9e151b2f1b4888141"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_memory" DROP CONSTRAINT "FK_1a298157559a4417d2a93058903"
        `);
    await queryRunner.query(`
            ALTER TABLE "approvals" DROP CONSTRAINT "FK_ad2b0cb140ff2bdde399a4e59d6"
        `);
    await queryRunner.query(`
            ALTER TABLE "approvals" DROP CONSTRAINT "FK_a58525528c251b82c7372c8229d"
        `);
    await queryRunner.query(`
            ALTER TABLE "approvals" DROP CONSTRAINT "FK_16e9445f7939210068ed87cf076"
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events" DROP CONSTRAINT "FK_1f7dd1874e2e82babbae59d0429"
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events" DROP CONSTRAINT "FK_0b513e66239f3a9619cef7ca1fe"
        `);
    await queryRunner.query(`
            ALTER TABLE "activity_events" DROP CONSTRAINT "FK_d372d729411d91eccc7abd1fd62"
        `);
    await queryRunner.query(`
            ALTER TABLE "tasks" DROP CONSTRAINT "FK_395999b4285a1c9be648b44f47d"
        `);
    await queryRunner.query(`
            ALTER TABLE "tasks" DROP CONSTRAINT "FK_932b7ae90148e482bc27b0a6d65"
        `);
    await queryRunner.query(`
            ALTER TABLE "tasks" DROP CONSTRAINT "FK_2680b7f3ecd70b05030ce6b4aef"
        `);
    await queryRunner.query(`
            ALTER TABLE "users" DROP CONSTRAINT "FK_b6efb6c252106821c8bd822af86"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP CONSTRAINT "FK_417f1bb41b03dc239ccbd21ab62"
        `);
    await queryRunner.query(`
            ALTER TABLE "agents" DROP CONSTRAINT "FK_9b6d46769271ee7e2be2e78c683"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP CONSTRAINT "FK_573203127e1e906ee81a17428aa"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP CONSTRAINT "FK_3cefed683cbe504f4c9f39f1faa"
        `);
    await queryRunner.query(`
            ALTER TABLE "boards" DROP CONSTRAINT "FK_04f09f02e060efc41c2e239bd9d"
        `);
    await queryRunner.query(`
            ALTER TABLE "board_groups" DROP CONSTRAINT "FK_2a70f0ffaecad075c2686bdc60c"
        `);
    await queryRunner.query(`
            ALTER TABLE "gateways" DROP CONSTRAINT "FK_c7ce9a2a4a67398fb797eb2dcf1"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_invite_board_access_board_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_invite_board_access_organization_invite_id"
        `);
    await queryRunner.query(`
            DROP TABLE "organization_invite_board_access"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_invites_accepted_by_user_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_invites_created_by_user_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_invites_invited_email"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_invites_organization_id"
        `);
    await queryRunner.query(`
            DROP TABLE "organization_invites"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_board_access_board_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_board_access_organization_member_id"
        `);
    await queryRunner.query(`
            DROP TABLE "organization_board_access"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_members_role"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_members_user_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organization_members_organization_id"
        `);
    await queryRunner.query(`
            DROP TABLE "organization_members"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_board_onboarding_sessions_status"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_board_onboarding_sessions_board_id"
        `);
    await queryRunner.query(`
            DROP TABLE "board_onboarding_sessions"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_board_memory_board_id_created_at"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_board_memory_is_chat"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_board_memory_board_id"
        `);
    await queryRunner.query(`
            DROP TABLE "board_memory"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_approvals_status"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_approvals_agent_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_approvals_task_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_approvals_board_id"
        `);
    await queryRunner.query(`
            DROP TABLE "approvals"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_activity_events_board_id_created_at"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_activity_events_task_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_activity_events_agent_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_activity_events_event_type"
        `);
    await queryRunner.query(`
            DROP TABLE "activity_events"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_tasks_assigned_agent_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_tasks_created_by_user_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_tasks_priority"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_tasks_status"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_tasks_board_id"
        `);
    await queryRunner.query(`
            DROP TABLE "tasks"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_users_active_organization_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_users_email"
        `);
    await queryRunner.query(`
            DROP TABLE "users"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_is_board_lead"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_delete_confirm_token_hash"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_provision_action"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_provision_confirm_token_hash"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_agent_token_hash"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_openclaw_session_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_status"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_name"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_gateway_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_agents_board_id"
        `);
    await queryRunner.query(`
            DROP TABLE "agents"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_boards_board_type"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_boards_board_group_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_boards_gateway_id"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_boards_slug"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_boards_organization_id"
        `);
    await queryRunner.query(`
            DROP TABLE "boards"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_board_groups_slug"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_board_groups_organization_id"
        `);
    await queryRunner.query(`
            DROP TABLE "board_groups"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_gateways_organization_id"
        `);
    await queryRunner.query(`
            DROP TABLE "gateways"
        `);
    await queryRunner.query(`
            DROP INDEX "public"."ix_organizations_name"
        `);
    await queryRunner.query(`
            DROP TABLE "organizations"
        `);
  }
}
