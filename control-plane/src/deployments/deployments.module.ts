import { Global, Module } from '@nestjs/common';
import { CONFIG, Config } from '../config/config';
import { DEPLOYMENT_TARGET, DeploymentTarget, SQL_VALIDATOR } from './deployment-target';
import { FlinkRestTarget } from './flink-rest.target';
import { ManagedFlinkTarget } from './managed-flink.target';
import { HttpSqlValidator } from './sql-validator.client';

/** The one place the target is picked (FLAGSTREAM_TARGET, CONTRACT §8). */
export function createTarget(config: Config): DeploymentTarget {
  switch (config.target) {
    case 'managed-flink':
      return new ManagedFlinkTarget(config.managedFlink!, ManagedFlinkTarget.client(config.awsRegion), { jobNamePrefix: config.jobNamePrefix });
    case 'flink':
      return new FlinkRestTarget(config.flinkRestUrl, config.runnerJar, { checkpointsDir: config.flinkCheckpointsDir });
    case 'local':
      // The local cluster's checkpoints are on this disk: a job it forgot restores from its last one.
      return new FlinkRestTarget(config.flinkRestUrl, config.runnerJar, { checkpointsDir: config.flinkCheckpointsDir });
  }
}

@Global()
@Module({
  providers: [
    { provide: DEPLOYMENT_TARGET, inject: [CONFIG], useFactory: createTarget },
    { provide: SQL_VALIDATOR, inject: [CONFIG], useFactory: (config: Config) => new HttpSqlValidator(config.validatorUrl) },
  ],
  exports: [DEPLOYMENT_TARGET, SQL_VALIDATOR],
})
export class DeploymentsModule {}
