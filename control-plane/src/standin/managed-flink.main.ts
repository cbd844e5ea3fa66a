/**
 * The managed-flink stand-in as a process (scripts/local-stack.mjs starts it for
 * FLAGSTREAM_TARGET=managed-flink; the e2e tests start their own):
 *
 *   node control-plane/dist/standin/managed-flink.main.js
 *
 * Settings (environment): STANDIN_PORT (port on 127.0.0.1), STANDIN_FLINK_URL (the Flink
 * cluster it runs applications on), STANDIN_RUNNER_JAR (the JAR behind the code location),
 * STANDIN_CODE (`s3://bucket/key`: the one code location it "can read"), STANDIN_STATE_FILE
 * (applications across restarts), AWS_REGION (for ARNs), STANDIN_MODEL (the API model;
 * default: botocore's, fetched by the bootstrap).
 */
import { FlinkRestJobs } from './flink-rest-jobs';
import { ManagedFlinkStandIn } from './managed-flink.standin';
import { loadServiceModel } from './service-model';

async function main() {
  const env = process.env;
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new Error(`${name} must be set`);
    return value;
  };
  const standIn = new ManagedFlinkStandIn({
    model: loadServiceModel(env.STANDIN_MODEL || undefined),
    flink: new FlinkRestJobs(need('STANDIN_FLINK_URL').replace(/\/$/, ''), need('STANDIN_RUNNER_JAR')),
    codeLocations: [need('STANDIN_CODE')],
    region: env.AWS_REGION || 'us-east-1',
    stateFile: env.STANDIN_STATE_FILE || undefined,
    log: (line) => console.log(`${new Date().toISOString()} ${line}`),
  });
  const url = await standIn.listen(Number(need('STANDIN_PORT')));
  console.log(`${new Date().toISOString()} Managed Flink stand-in listening on ${url}`);
  const stop = () => void standIn.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
