import { Module } from '@nestjs/common';
import { LakeModule } from '../lake/lake.module';
import { ResultsModule } from '../results/results.module';
import { AnalysesController } from './analyses.controller';
import { ANALYSES_REPOSITORY, SqliteAnalysesRepository } from './analyses.repository';
import { AnalysesService } from './analyses.service';
import { AnalysisChanges } from './analysis-changes';

@Module({
  imports: [ResultsModule, LakeModule],
  controllers: [AnalysesController],
  providers: [AnalysesService, AnalysisChanges, { provide: ANALYSES_REPOSITORY, useClass: SqliteAnalysesRepository }],
  exports: [AnalysesService, AnalysisChanges, ANALYSES_REPOSITORY],
})
export class AnalysesModule {}
