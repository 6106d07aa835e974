import { Module } from '@nestjs/common';
import { ChangeLogListener } from './change-log.listener';
import { ChangeLogMaintenance } from './change-log.maintenance';

/**
 * The durable change log: an outbox table written in the same transaction as each change (by
 * triggers, see the ChangeLog migration), announced with NOTIFY, read by one listener per
 * instance. Agents use it today; board memory and activity are further kinds.
 */
@Module({
  providers: [ChangeLogListener, ChangeLogMaintenance],
  exports: [ChangeLogListener, ChangeLogMaintenance],
})
export class ChangeLogModule {}
