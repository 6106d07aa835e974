import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMinSize,
  IsArray,
  IsDefined,
  IsOptional,
  IsString,
  ValidateNested,
} from 'class-validator';
import {
  MaxChars,
  MaxItems,
  NonEmptyString,
  ValidateModel,
} from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import { BoardRead } from '../../boards/dto/board.dto';
import { BoardOnboardingRead, goalRule, OnboardingGoalFields } from './board-onboarding-read.dto';

/** Bounds of the conversation (upstream sets none). */
export const ONBOARDING_TEXT_LIMITS = {
  /** A question of the agent, or a user's answer (an option label or a short reply). */
  question: 2_000,
  answer: 2_000,
  /** The free text a user types after choosing an "I'll type it" option. */
  otherText: 10_000,
  /** Options of one question, and one option's id and label. */
  options: 20,
  optionId: MAX_LENGTH.keyword,
  optionLabel: 500,
  /** Messages of one session (prompt, questions, answers, completions), and their JSON size. */
  messages: 200,
  messagesBytes: 1_000_000,
} as const;

/** O2 body: empty, but a JSON body is required (`{}`). */
export class BoardOnboardingStart {}

/** O2 response: the session, and whether this start re-sent the pending message. */
export class BoardOnboardingStartRead extends BoardOnboardingRead {
  @ApiProperty({
    description:
      'True when a session was already active and its last (unanswered) user message was sent ' +
      'to the gateway agent again',
  })
  resent!: boolean;
}

/** O3 body. */
export class BoardOnboardingAnswer {
  @ApiProperty({ description: 'Stripped; at least one character' })
  @NonEmptyString()
  @IsString()
  @MaxChars(ONBOARDING_TEXT_LIMITS.answer)
  answer!: string;

  @ApiPropertyOptional({ type: String, nullable: true, description: 'Not stripped' })
  @IsOptional()
  @IsString()
  @MaxChars(ONBOARDING_TEXT_LIMITS.otherText)
  other_text?: string | null;
}

export class BoardOnboardingQuestionOption {
  @ApiProperty({ description: 'Stripped; at least one character' })
  @NonEmptyString()
  @IsString()
  @MaxChars(ONBOARDING_TEXT_LIMITS.optionId)
  id!: string;

  @ApiProperty({ description: 'Stripped; at least one character' })
  @NonEmptyString()
  @IsString()
  @MaxChars(ONBOARDING_TEXT_LIMITS.optionLabel)
  label!: string;
}

/** The `Question` branch of the agent update. */
export class BoardOnboardingAgentQuestion {
  @ApiProperty({ description: 'Stripped; at least one character' })
  @NonEmptyString()
  @IsString()
  @MaxChars(ONBOARDING_TEXT_LIMITS.question)
  question!: string;

  @ApiProperty({ type: [BoardOnboardingQuestionOption], minItems: 1 })
  @IsDefined()
  @IsArray()
  @ArrayMinSize(1, { message: 'List should have at least 1 item after validation, not 0' })
  @MaxItems(ONBOARDING_TEXT_LIMITS.options)
  // An option that is not an object is one issue at its index (pydantic's model_type): nested
  // validation reports it there; a list in an option's place (which nested validation would
  // walk into and accept) is made null for it. The input is still what was sent.
  @Transform(({ value }: { value: unknown }) =>
    Array.isArray(value)
      ? value.map((option: unknown) => (Array.isArray(option) ? null : option))
      : value,
  )
  @ValidateNested({
    each: true,
    message: 'Input should be a valid dictionary or instance of BoardOnboardingQuestionOption',
  })
  @Type(() => BoardOnboardingQuestionOption)
  options!: BoardOnboardingQuestionOption[];
}

/** O5 body: the goal the user confirms (the same goal rule as the completion). */
@ValidateModel(goalRule)
export class BoardOnboardingConfirm extends OnboardingGoalFields {}

/** O5 response: the board, and what became of its lead. */
export class BoardOnboardingConfirmRead extends BoardRead {
  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: "The board's lead" })
  lead_agent_id!: string | null;

  @ApiProperty({ description: 'Whether this confirm created the lead (else it was updated)' })
  lead_created!: boolean;

  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Why creating or re-provisioning the lead failed (the goal is confirmed all the same; ' +
      'the failure is also on the agent row and in the activity feed), else null',
  })
  lead_error!: string | null;
}
