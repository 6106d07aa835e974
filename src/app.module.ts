import { DynamicModule, ForwardReference, Module, Type } from '@nestjs/common';
import { ActivityModule } from './activity/activity.module';
import { AgentApiModule } from './agent-api/agent-api.module';
import { AgentsModule } from './agents/agents.module';
import { AgentStreamModule } from './agents/stream/agent-stream.module';
import { AuthModule } from './auth/auth.module';
import { BoardMemoryModule } from './board-memory/board-memory.module';
import { BoardsModule } from './boards/boards.module';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { CoordinationModule } from './coordination/coordination.module';
import { DatabaseModule } from './database/database.module';
import { GatewaysModule } from './gateways/gateways.module';
import { HealthModule } from './health/health.module';
import { OnboardingModule } from './onboarding/onboarding.module';
import { OpenClawGatewayModule } from './openclaw/openclaw-gateway.module';
import { ProvisioningModule } from './provisioning/provisioning.module';
import { SessionsModule } from './sessions/sessions.module';
import { OrganizationsModule } from './organizations/organizations.module';
import { UsersModule } from './users/users.module';

export type ModuleImport = Type | DynamicModule | Promise<DynamicModule> | ForwardReference;

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, extraImports: ModuleImport[] = []): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        OpenClawGatewayModule,
        AuthModule,
        HealthModule,
        UsersModule,
        OrganizationsModule,
        BoardsModule,
        BoardMemoryModule,
        // Before GatewaysModule: /gateways/status|sessions|commands must not reach /gateways/:id.
        SessionsModule,
        // Before AgentsModule: GET /agents/stream must match before GET /agents/:agentId.
        AgentStreamModule,
        ActivityModule,
        AgentsModule,
        AgentApiModule,
        CoordinationModule,
        OnboardingModule,
        ProvisioningModule,
        // After the sessions module (its static /gateways/status, /sessions, /commands routes
        // must be registered before /gateways/:gatewayId).
        GatewaysModule,
        ...extraImports,
      ],
    };
  }
}
