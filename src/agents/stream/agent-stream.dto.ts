import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString } from 'class-validator';
import { AbsentWhenNullish } from '../../common/validation/decorators';
import { IsUuid, MaxChars } from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';

/** `GET /agents/stream` query: `null` / empty values are absent (the frontend sends `null`). */
export class AgentStreamQuery {
  @ApiPropertyOptional({
    type: String,
    format: 'uuid',
    nullable: true,
    description: 'Only this board (readable by the caller); `null` or empty: every readable board',
  })
  @AbsentWhenNullish()
  @IsOptional()
  @IsUuid()
  board_id?: string;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description:
      'ISO timestamp: first send the current state of the agents changed since then ' +
      '(a snapshot of all when older than the retained log). Blank, `null` or invalid: live only. ' +
      'A `Last-Event-ID` header wins over it.',
  })
  @AbsentWhenNullish()
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.shortText)
  since?: string;
}
