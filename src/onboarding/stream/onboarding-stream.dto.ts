import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString } from 'class-validator';
import { AbsentWhenNullish, MaxChars } from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';

/** `GET /boards/{id}/onboarding/stream` query: `null` / empty values are absent. */
export class OnboardingStreamQuery {
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description:
      'ISO timestamp: first send the current state of the sessions changed since then (the ' +
      "board's sessions when older than the retained log), then live. Blank, `null` or " +
      'invalid: live only. A `Last-Event-ID` header wins over it.',
  })
  @AbsentWhenNullish()
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.shortText)
  since?: string;
}
