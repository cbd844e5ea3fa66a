import { Global, Module } from '@nestjs/common';
import { CONFIG, Config } from '../config/config';
import { DEPLOYMENT_TARGET, SQL_VALIDATOR } from './deployment-target';
import { FlinkRestTarget } from './flink-rest.target';
import { HttpSqlValidator } from './sql-validator.client';

@Global()
@Module({
  providers: [
    {
      provide: DEPLOYMENT_TARGET,
      inject: [CONFIG],
      useFactory: (config: Config) => new FlinkRestTarget(config.flinkRestUrl, config.runnerJar, { checkpointsDir: config.flinkCheckpointsDir }),
    },
    { provide: SQL_VALIDATOR, inject: [CONFIG], useFactory: (config: Config) => new HttpSqlValidator(config.validatorUrl) },
  ],
  exports: [DEPLOYMENT_TARGET, SQL_VALIDATOR],
})
export class DeploymentsModule {}
