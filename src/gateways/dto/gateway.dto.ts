import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsDefined, IsOptional, IsString, MinLength } from 'class-validator';
import { computedStatus } from '../../agents/dto/agent.dto';
import type { Agent } from '../../agents/entities/agent.entity';
import { openGatewayToken, unreadableTokenMessage } from '../../common/secrets/gateway-token';
import {
  IsGatewayUrl,
  IsOptionalNonNull,
  MaxChars,
  Trim,
} from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import type { Gateway } from '../entities/gateway.entity';

const NOT_BLANK = { message: 'String should have at least 1 character' };

/** Upstream: the token is trimmed and a blank one is stored as null (no token). */
const blankToNull = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
};

/** The gateway's main agent as create/update/get report it (null: no row yet). */
export class GatewayMainAgent {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ description: 'Computed status (online, offline, updating, …)' }) status!: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'What the last provision run failed at; null after a success',
  })
  last_provision_error!: string | null;
}

export class GatewayRead {
  @ApiProperty() name!: string;
  @ApiProperty({ example: 'wss://gateway.example.com' }) url!: string;
  @ApiProperty({ example: '~/.openclaw' }) workspace_root!: string;
  @ApiProperty({ type: Boolean, nullable: true }) disable_device_pairing!: boolean | null;
  @ApiProperty({ type: Boolean, nullable: true }) allow_insecure_tls!: boolean | null;
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) organization_id!: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The gateway token (org admins only). Null when none, or when unreadable.',
  })
  token!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Set when the stored token does not decrypt with the configured SECRETS_KEY (then token ' +
      'is null and every call to this gateway fails until the token is saved again).',
  })
  token_error!: string | null;
  @ApiProperty({ type: GatewayMainAgent, nullable: true })
  main_agent!: GatewayMainAgent | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

export function toGatewayRead(
  gateway: Gateway,
  mainAgent: Agent | null = null,
  now: Date = new Date(),
): GatewayRead {
  const token = openGatewayToken(gateway.token);
  return {
    name: gateway.name,
    url: gateway.url,
    workspace_root: gateway.workspaceRoot,
    disable_device_pairing: gateway.disableDevicePairing,
    allow_insecure_tls: gateway.allowInsecureTls,
    id: gateway.id,
    organization_id: gateway.organizationId,
    token: token.token,
    token_error: token.unreadable ? unreadableTokenMessage(gateway) : null,
    main_agent: mainAgent
      ? {
          id: mainAgent.id,
          status: computedStatus(mainAgent, now),
          last_provision_error: mainAgent.lastProvisionError,
        }
      : null,
    created_at: gateway.createdAt.toISOString(),
    updated_at: gateway.updatedAt.toISOString(),
  };
}

/** The connection flags create and update validate alike. */
abstract class GatewayConnectionFlags {
  @ApiPropertyOptional({
    type: Boolean,
    nullable: true,
    description:
      'Connect with the shared token only, without the signed device identity. Loopback gateways ' +
      'accept this; remote gateways require a paired device.',
  })
  @IsOptional()
  @IsBoolean()
  disable_device_pairing?: boolean | null;

  @ApiPropertyOptional({
    type: Boolean,
    nullable: true,
    description: 'Accept a wss:// certificate that does not verify (self-signed).',
  })
  @IsOptional()
  @IsBoolean()
  allow_insecure_tls?: boolean | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Gateway auth token. Trimmed; blank means none.',
  })
  @IsOptional()
  @Transform(blankToNull)
  @IsString()
  @MaxChars(MAX_LENGTH.token)
  token?: string | null;
}

/** Name, URL and workspace root are trimmed and may not be blank (upstream accepted ""). */
export class GatewayCreate extends GatewayConnectionFlags {
  @ApiProperty({ minLength: 1 })
  @IsDefined()
  @Trim()
  @IsString()
  @MinLength(1, NOT_BLANK)
  @MaxChars(MAX_LENGTH.name)
  name!: string;

  @ApiProperty({ example: 'wss://gateway.example.com', description: 'ws:// or wss://' })
  @IsDefined()
  @Trim()
  @IsGatewayUrl()
  @MaxChars(MAX_LENGTH.url)
  url!: string;

  @ApiProperty({ example: '~/.openclaw', minLength: 1 })
  @IsDefined()
  @Trim()
  @IsString()
  @MinLength(1, NOT_BLANK)
  @MaxChars(MAX_LENGTH.url)
  workspace_root!: string;
}

/**
 * Only the keys sent are applied; name, url and workspace_root may be neither null (upstream
 * answered 500) nor blank.
 */
export class GatewayUpdate extends GatewayConnectionFlags {
  @ApiPropertyOptional({ minLength: 1 })
  @IsOptionalNonNull()
  @Trim()
  @IsString()
  @MinLength(1, NOT_BLANK)
  @MaxChars(MAX_LENGTH.name)
  name?: string;

  @ApiPropertyOptional({ description: 'ws:// or wss://' })
  @IsOptionalNonNull()
  @Trim()
  @IsGatewayUrl()
  @MaxChars(MAX_LENGTH.url)
  url?: string;

  @ApiPropertyOptional({ minLength: 1 })
  @IsOptionalNonNull()
  @Trim()
  @IsString()
  @MinLength(1, NOT_BLANK)
  @MaxChars(MAX_LENGTH.url)
  workspace_root?: string;
}
