import { Module } from '@nestjs/common';
import { AnalysesModule } from '../analyses/analyses.module';
import { EventsController } from './events.controller';
import { EventsService } from './events.service';
import { HeartbeatService } from './heartbeat.service';
import { PAYLOAD_LEDGER, SqlitePayloadLedger } from './payload-ledger.repository';
import { StreamWriter } from './stream-writer';

@Module({
  imports: [AnalysesModule],
  controllers: [EventsController],
  providers: [EventsService, StreamWriter, HeartbeatService, { provide: PAYLOAD_LEDGER, useClass: SqlitePayloadLedger }],
  exports: [EventsService],
})
export class EventsModule {}
