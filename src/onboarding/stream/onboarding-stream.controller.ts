import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { BoardAccess } from '../../auth/decorators/access.decorators';
import { CurrentBoard, CurrentUser } from '../../auth/decorators/context.decorators';
import type { Board } from '../../boards/entities/board.entity';
import { streamStart } from '../../change-log/change-stream.hub';
import type { User } from '../../users/entities/user.entity';
import { OnboardingStreamQuery } from './onboarding-stream.dto';
import { OnboardingStreamHub } from './onboarding-stream.hub';

/** A board's onboarding sessions, live: board read access, as `GET …/onboarding`. */
@ApiTags('board-onboarding')
@Controller('boards/:boardId/onboarding')
export class OnboardingStreamController {
  constructor(private readonly streams: OnboardingStreamHub) {}

  /**
   * Server-sent events: `event: onboarding` with `{"onboarding": BoardOnboardingRead}` per
   * change of one of the board's onboarding sessions (the agent's question arrives without
   * polling), each with `id:` (the change id to resume from), and a keep-alive comment every 15 s.
   */
  @Get('stream')
  @BoardAccess('read')
  @ApiParam({ name: 'boardId', format: 'uuid' })
  @ApiProduces('text/event-stream')
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description:
      'Resume after this event id: the current state of every session changed since, once. An ' +
      "id the change log no longer holds (or not an id we issued): the board's sessions.",
  })
  // `content` spelled out: @ApiProduces alone adds no media type to a response without a type.
  @ApiOkResponse({
    description: "text/event-stream of `onboarding` events: the board's onboarding sessions",
    content: {
      'text/event-stream': {
        schema: {
          type: 'string',
          description:
            '`id: <change id>`, `event: onboarding` + `data: {"onboarding": BoardOnboardingRead}`; ' +
            '`: ping` comments',
        },
      },
    },
  })
  async stream(
    @CurrentUser() user: User,
    @CurrentBoard() board: Board,
    @Query() query: OnboardingStreamQuery,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    await this.streams.serve(
      res,
      { userId: user.id, organizationId: board.organizationId, boardId: board.id },
      streamStart(lastEventId, query.since),
    );
  }
}
