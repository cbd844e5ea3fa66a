import { Module } from '@nestjs/common';
import { AnalysesModule } from '../analyses/analyses.module';
import { HealthController } from './health.controller';
import { StatusReconciler } from './status-reconciler.service';

@Module({ imports: [AnalysesModule], controllers: [HealthController], providers: [StatusReconciler] })
export class HealthModule {}
