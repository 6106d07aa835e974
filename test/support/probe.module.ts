/**
 * Test-only routes that exercise the cross-cutting machinery (error filters, access decorators
 * not yet used by a feature route) through the real HTTP stack.
 */
import { Body, Controller, Get, Module, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { IsDefined, IsInt, IsString, Min, ValidateNested } from 'class-validator';
import { Type } from 'class-transformer';
import type { Actor } from '../../src/auth/auth-context';
import { AgentAuth, UserOrAgent } from '../../src/auth/decorators/access.decorators';
import { CurrentActor, CurrentAgent } from '../../src/auth/decorators/context.decorators';
import type { Agent } from '../../src/agents/entities/agent.entity';
import { ServiceBusyError } from '../../src/common/errors/app-error';
import {
  GatewayOperationError,
  GatewayRpcError,
  GatewayUnavailableError,
  ProvisioningError,
} from '../../src/common/errors/gateway-errors';

class ProbeItem {
  @IsDefined() @IsString() label!: string;
}

export class ProbeBody {
  @IsDefined() @IsString() name!: string;
  @IsDefined() @IsInt() @Min(1) count!: number;
  @IsDefined() @ValidateNested({ each: true }) @Type(() => ProbeItem) items!: ProbeItem[];
}

@Controller('probe')
export class ProbeController {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Takes advisory lock 912001 then 912002 in one transaction (a test deadlocks it). */
  @Get('deadlock')
  async deadlock(): Promise<{ ok: true }> {
    await this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock(912001)');
      await manager.query('SELECT pg_advisory_xact_lock(912002)');
    });
    return { ok: true };
  }

  @Get('busy')
  busy(): never {
    throw new ServiceBusyError('Too many things are waiting; retry shortly.');
  }

  @Get('boom')
  boom(): never {
    throw new Error('password=hunter2 at /srv/secret/path.ts:12');
  }

  @Get('gateway-nudge')
  nudgeFailure(): never {
    throw new GatewayOperationError('nudge', new GatewayUnavailableError('connection refused'));
  }

  @Get('gateway-rpc')
  rpcFailure(): never {
    throw new GatewayRpcError('sessions.list', 'INVALID_REQUEST', 'unknown session key');
  }

  @Get('provisioning')
  provisioningFailure(): never {
    throw new ProvisioningError('update', new Error('template variable "agent_name" is undefined'));
  }

  @Post('echo')
  echo(@Body() body: ProbeBody): ProbeBody {
    return body;
  }

  @Get('actor')
  @UserOrAgent()
  actor(@CurrentActor() actor: Actor) {
    return actor.type === 'user'
      ? { type: 'user', id: actor.user.id }
      : { type: 'agent', id: actor.agent.id };
  }

  @Get('agent')
  @AgentAuth()
  agent(@CurrentAgent() agent: Agent) {
    return { id: agent.id, status: agent.status };
  }
}

@Module({ controllers: [ProbeController] })
export class ProbeModule {}
