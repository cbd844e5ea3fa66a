import { Module } from '@nestjs/common';
import { ResultsModule } from '../results/results.module';
import { AnalysesController } from './analyses.controller';
import { ANALYSES_REPOSITORY, SqliteAnalysesRepository } from './analyses.repository';
import { AnalysesService } from './analyses.service';

@Module({
  imports: [ResultsModule],
  controllers: [AnalysesController],
  providers: [AnalysesService, { provide: ANALYSES_REPOSITORY, useClass: SqliteAnalysesRepository }],
  exports: [AnalysesService, ANALYSES_REPOSITORY],
})
export class AnalysesModule {}
