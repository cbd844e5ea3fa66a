import { Module } from '@nestjs/common';
import { ResultsController } from './results.controller';
import { ResultsIngestor } from './results-ingestor.service';
import { RESULTS_REPOSITORY, SqliteResultsRepository } from './results.repository';

@Module({
  controllers: [ResultsController],
  providers: [ResultsIngestor, { provide: RESULTS_REPOSITORY, useClass: SqliteResultsRepository }],
  exports: [RESULTS_REPOSITORY, ResultsIngestor],
})
export class ResultsModule {}
