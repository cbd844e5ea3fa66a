import { Module } from '@nestjs/common';
import { AnalysesModule } from '../analyses/analyses.module';
import { AnalysisHealthController } from './analysis-health.controller';
import { HEALTH_HISTORY, SqliteHealthHistory } from './health-history.repository';
import { HealthController } from './health.controller';
import { POOLS_REPOSITORY, SqlitePoolsRepository } from './pools.repository';
import { Reconciler } from './reconciler.service';

@Module({
  imports: [AnalysesModule],
  controllers: [HealthController, AnalysisHealthController],
  providers: [Reconciler, { provide: HEALTH_HISTORY, useClass: SqliteHealthHistory }, { provide: POOLS_REPOSITORY, useClass: SqlitePoolsRepository }],
})
export class HealthModule {}
