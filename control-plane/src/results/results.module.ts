import { Module } from '@nestjs/common';
import { ResultsController } from './results.controller';
import { ResultsIngestor } from './results-ingestor.service';
import { RESULTS_REPOSITORY, SqliteResultsRepository } from './results.repository';
import { ResultsService } from './results.service';
import { GuardrailWatcher } from './guardrail-watcher.service';
import { GUARDRAIL_STATES, SqliteGuardrailStatesRepository } from './guardrail-states.repository';

@Module({
  controllers: [ResultsController],
  providers: [
    ResultsIngestor,
    ResultsService,
    GuardrailWatcher,
    { provide: RESULTS_REPOSITORY, useClass: SqliteResultsRepository },
    { provide: GUARDRAIL_STATES, useClass: SqliteGuardrailStatesRepository },
  ],
  exports: [RESULTS_REPOSITORY, ResultsIngestor],
})
export class ResultsModule {}
