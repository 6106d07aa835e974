import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsOptional, IsString } from 'class-validator';
import { RequestValidationError } from '../../common/errors/app-error';
import {
  AbsentWhenNullish,
  IsGatewayUrl,
  IsUuid,
  MaxChars,
  NonEmptyString,
} from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';

/** Longest gateway session key accepted in a path (the gateway's own keys are far shorter). */
export const MAX_SESSION_KEY_LENGTH = 512;
/** Longest message sent to a session (the chat input of a person, not a file upload). */
export const MAX_SESSION_MESSAGE_LENGTH = 100_000;

/** Query flags as the frontend sends them (`true`/`false`, also `1`/`0`); anything else is a 422. */
function QueryBoolean(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => {
    if (value === 'null' || value === '' || value === undefined) return undefined;
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    return value;
  });
}

/** `?board_id=`: the board whose gateway to use. */
export class GatewayBoardQuery {
  @ApiPropertyOptional({ format: 'uuid', description: 'The board whose gateway is used' })
  @AbsentWhenNullish()
  @IsOptional()
  @IsUuid()
  board_id?: string;
}

/**
 * E1: a board's gateway, or (org admins testing a gateway before saving it) a URL with its
 * token and connection flags. The URL wins when both are given, as upstream.
 */
export class GatewayStatusQuery extends GatewayBoardQuery {
  @ApiPropertyOptional({ maxLength: MAX_LENGTH.url, example: 'ws://127.0.0.1:18789' })
  @AbsentWhenNullish()
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.url)
  @IsGatewayUrl()
  gateway_url?: string;

  @ApiPropertyOptional({ maxLength: MAX_LENGTH.token })
  @AbsentWhenNullish()
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.token)
  gateway_token?: string;

  @ApiPropertyOptional({ type: Boolean })
  @QueryBoolean()
  @IsOptional()
  @IsBoolean()
  gateway_disable_device_pairing?: boolean;

  @ApiPropertyOptional({ type: Boolean })
  @QueryBoolean()
  @IsOptional()
  @IsBoolean()
  gateway_allow_insecure_tls?: boolean;
}

export class GatewaySessionMessageRequest {
  @ApiProperty({ minLength: 1, maxLength: MAX_SESSION_MESSAGE_LENGTH })
  @NonEmptyString()
  @IsString()
  @MaxChars(MAX_SESSION_MESSAGE_LENGTH)
  content!: string;
}

/** Gateway payloads are passed through as the gateway sent them. */
const ANY = { type: 'object', additionalProperties: true } as const;

export class GatewaysStatusResponse {
  @ApiProperty() connected!: boolean;
  @ApiProperty() gateway_url!: string;
  @ApiProperty({ type: Number, nullable: true }) sessions_count!: number | null;
  @ApiProperty({ type: 'array', items: ANY, nullable: true }) sessions!: unknown[] | null;
  @ApiProperty({ ...ANY, nullable: true }) main_session!: unknown;
  @ApiProperty({ type: String, nullable: true }) main_session_error!: string | null;
  @ApiProperty({ type: String, nullable: true }) error!: string | null;
}

export class GatewaySessionsResponse {
  @ApiProperty({ type: 'array', items: ANY }) sessions!: unknown[];
  @ApiProperty({ ...ANY, nullable: true }) main_session!: unknown;
}

export class GatewaySessionResponse {
  @ApiProperty(ANY) session!: Record<string, unknown>;
}

export class GatewaySessionHistoryResponse {
  @ApiProperty({ type: 'array', items: ANY }) history!: unknown[];
}

export class GatewayCommandsResponse {
  @ApiProperty({ example: 4 }) protocol_version!: number;
  @ApiProperty({ type: [String] }) methods!: string[];
  @ApiProperty({ type: [String] }) events!: string[];
  @ApiProperty({
    enum: ['gateway', 'client'],
    description: "Whose lists these are: the board's gateway (hello-ok) or this client's own",
  })
  source!: 'gateway' | 'client';
}

/**
 * `:sessionId`: a gateway session key (`agent:<id>:main`, contains `:`), 1..512 characters of
 * printable text. Validated before anything reaches the gateway.
 */
@Injectable()
export class ParseSessionKeyPipe implements PipeTransform<unknown, string> {
  transform(value: unknown, metadata: ArgumentMetadata): string {
    const text = typeof value === 'string' ? value.trim() : '';
    const loc = ['path', 'session_id'];
    if (!text) {
      throw new RequestValidationError([
        {
          type: 'string_too_short',
          loc,
          msg: 'String should have at least 1 character',
          input: value,
        },
      ]);
    }
    if (text.length > MAX_SESSION_KEY_LENGTH) {
      throw new RequestValidationError([
        {
          type: 'string_too_long',
          loc,
          msg: `String should have at most ${MAX_SESSION_KEY_LENGTH} characters`,
          input: value,
          ctx: { max_length: MAX_SESSION_KEY_LENGTH },
        },
      ]);
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(text)) {
      throw new RequestValidationError([
        {
          type: 'string_pattern_mismatch',
          loc,
          msg: 'Session key holds control characters',
          input: value,
        },
      ]);
    }
    void metadata;
    return text;
  }
}
