import { Module } from '@nestjs/common';
import { BoardSnapshotService } from './board-snapshot.service';
import { BoardsController } from './boards.controller';
import { BoardsService } from './boards.service';

@Module({
  controllers: [BoardsController],
  providers: [BoardsService, BoardSnapshotService],
  exports: [BoardsService],
})
export class BoardsModule {}
