import { DynamicModule, Global, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { AnalysesModule } from './analyses/analyses.module';
import { CONFIG, Config } from './config/config';
import { DeploymentsModule } from './deployments/deployments.module';
import { EventsModule } from './events/events.module';
import { HealthModule } from './health/health.module';
import { LakeModule } from './lake/lake.module';
import { MetricsModule } from './metrics/metrics.module';
import { OpenApiModule } from './openapi/openapi.module';
import { ResultsModule } from './results/results.module';
import { DATABASE, openDatabase } from './store/database';
import { StreamModule } from './stream/stream.module';
import { TenantsModule } from './tenants/tenants.module';

/** Settings and the store, available to every module. */
@Global()
@Module({})
class CoreModule {
  static with(config: Config): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: DATABASE, useFactory: () => openDatabase(config.dataDir) },
      ],
      exports: [CONFIG, DATABASE],
    };
  }
}

/** One module per capability; the folder tree is the architecture. */
@Module({})
export class AppModule {
  static with(config: Config): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.with(config),
        ScheduleModule.forRoot(),
        MetricsModule,
        StreamModule,
        TenantsModule,
        DeploymentsModule,
        EventsModule,
        AnalysesModule,
        ResultsModule,
        LakeModule,
        HealthModule,
        OpenApiModule,
      ],
    };
  }
}
