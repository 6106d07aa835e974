import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsDefined, IsOptional, IsString, ValidateBy } from 'class-validator';
import { IsOptionalNonNull, MaxChars } from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import type { Gateway } from '../entities/gateway.entity';

/** Upstream: the token is trimmed and a blank one is stored as null (no token). */
const blankToNull = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
};

/**
 * A gateway URL is empty (not configured yet, as upstream allows) or a ws:// / wss:// URL:
 * anything else could never be dialled, so it is refused here instead of failing later.
 */
function IsGatewayUrl(): PropertyDecorator {
  return ValidateBy({
    name: 'isGatewayUrl',
    validator: {
      validate: (value: unknown) => {
        if (typeof value !== 'string') return false;
        if (value.trim() === '') return true;
        try {
          const url = new URL(value.trim());
          return (url.protocol === 'ws:' || url.protocol === 'wss:') && url.hostname !== '';
        } catch {
          return false;
        }
      },
      defaultMessage: () => 'URL should be a ws:// or wss:// URL',
    },
  });
}

export class GatewayRead {
  @ApiProperty() name!: string;
  @ApiProperty({ example: 'wss://gateway.example.com' }) url!: string;
  @ApiProperty({ example: '~/.openclaw' }) workspace_root!: string;
  @ApiProperty({ type: Boolean, nullable: true }) disable_device_pairing!: boolean | null;
  @ApiProperty({ type: Boolean, nullable: true }) allow_insecure_tls!: boolean | null;
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) organization_id!: string;
  @ApiProperty({ type: String, nullable: true }) token!: string | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

export function toGatewayRead(gateway: Gateway): GatewayRead {
  return {
    name: gateway.name,
    url: gateway.url,
    workspace_root: gateway.workspaceRoot,
    disable_device_pairing: gateway.disableDevicePairing,
    allow_insecure_tls: gateway.allowInsecureTls,
    id: gateway.id,
    organization_id: gateway.organizationId,
    token: gateway.token,
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

export class GatewayCreate extends GatewayConnectionFlags {
  @ApiProperty()
  @IsDefined()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  name!: string;

  @ApiProperty({ example: 'wss://gateway.example.com', description: 'ws:// or wss://, or empty.' })
  @IsDefined()
  @IsGatewayUrl()
  @MaxChars(MAX_LENGTH.url)
  url!: string;

  @ApiProperty({ example: '~/.openclaw' })
  @IsDefined()
  @IsString()
  @MaxChars(MAX_LENGTH.url)
  workspace_root!: string;
}

/** Only the keys sent are applied; name, url and workspace_root may not be null. */
export class GatewayUpdate extends GatewayConnectionFlags {
  @ApiPropertyOptional()
  @IsOptionalNonNull()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  name?: string;

  @ApiPropertyOptional({ description: 'ws:// or wss://, or empty.' })
  @IsOptionalNonNull()
  @IsGatewayUrl()
  @MaxChars(MAX_LENGTH.url)
  url?: string;

  @ApiPropertyOptional()
  @IsOptionalNonNull()
  @IsString()
  @MaxChars(MAX_LENGTH.url)
  workspace_root?: string;
}
