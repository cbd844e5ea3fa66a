// The embedded local stack: the Kinesis-API emulator (kinesalite), a local Flink
// cluster with the warm SQL validator (one JVM), and the control plane; with
// FLAGSTREAM_TARGET=managed-flink also the Managed Flink stand-in, which runs the
// applications on the local cluster. Used by `npm start` and by the end-to-end tests.
// Every server binds to 127.0.0.1. Once the
// stack is up, a process that exits unexpectedly is started again (scripts/supervisor.mjs);
// stop() ends every process it started.
import { mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './bootstrap.mjs';
import { createSupervisor } from './supervisor.mjs';

/**
 * FLAGSTREAM_MAX_POOLS + FLAGSTREAM_MAX_CUSTOM_POOLS as the control plane reads them (it checks
 * the values; here a bad one falls back): every pool a job, two while it hands over.
 */
function maxPools(env) {
  const value = Number(env.FLAGSTREAM_MAX_POOLS || 8);
  const pools = Number.isInteger(value) && value >= 1 && value <= 9 ? value : 8;
  const custom = Number(env.FLAGSTREAM_MAX_CUSTOM_POOLS ?? Math.min(2, 9 - pools));
  return pools + (Number.isInteger(custom) && custom >= 0 && custom <= 9 - pools ? custom : 0);
}

export const DEFAULT_PORTS = { api: 8080, kinesis: 4568, flink: 8081, validator: 8082, managedFlink: 8083 };

/**
 * Node flags for the control plane's process (here, bench/ingest.mjs' own, control-plane/package.json's
 * `start` and cdk/control-plane.Dockerfile write the same). A young generation of 64 MiB semi-spaces
 * instead of V8's default 16: under ingest load a payload's parsed body, records and PutRecords body
 * outlive several scavenges of the small one, and copying them took about a ninth of the events
 * API's CPU (docs/ingest.md §5). It cannot be set once the process runs (v8.setFlagsFromString).
 */
export const CONTROL_PLANE_NODE_FLAGS = ['--max-semi-space-size=64'];
/** The code location the local stand-in maps to the runner JAR, unless FLAGSTREAM_MANAGED_FLINK_CODE says another. */
export const LOCAL_MANAGED_FLINK_CODE = 's3://flagstream-local/flagstream-runner.jar';
const LOCAL_ACCOUNT = '000000000000';

/**
 * What the control plane needs to drive the stand-in as it would drive Managed Flink: the SDK's
 * endpoint override and credentials (the stand-in checks that requests are signed, not by whom),
 * and the target's settings, each only where the caller did not set it.
 */
export function managedFlinkEnv(standInUrl, given = {}) {
  const region = given.AWS_REGION ?? process.env.AWS_REGION ?? 'us-east-1';
  const pick = (name, fallback) => given[name] ?? process.env[name] ?? fallback;
  const stream = (name, fallback) => `arn:aws:kinesis:${region}:${LOCAL_ACCOUNT}:stream/${pick(name, fallback)}`;
  return {
    FLAGSTREAM_TARGET: 'managed-flink',
    AWS_REGION: region,
    AWS_ENDPOINT_URL_KINESIS_ANALYTICS_V2: standInUrl,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    FLAGSTREAM_MANAGED_FLINK_ROLE_ARN: pick('FLAGSTREAM_MANAGED_FLINK_ROLE_ARN', `arn:aws:iam::${LOCAL_ACCOUNT}:role/flagstream-local`),
    FLAGSTREAM_MANAGED_FLINK_CODE: pick('FLAGSTREAM_MANAGED_FLINK_CODE', LOCAL_MANAGED_FLINK_CODE),
    FLAGSTREAM_EVENTS_STREAM_ARN: pick('FLAGSTREAM_EVENTS_STREAM_ARN', stream('FLAGSTREAM_EVENTS_STREAM', 'flagstream-events')),
    FLAGSTREAM_RESULTS_STREAM_ARN: pick('FLAGSTREAM_RESULTS_STREAM_ARN', stream('FLAGSTREAM_RESULTS_STREAM', 'flagstream-results')),
  };
}

/**
 * The stand-in's process (control-plane/src/standin): its applications run on the Flink
 * cluster at flinkUrl; `code` is the one S3 location it accepts, mapped to the runner JAR.
 */
export function standInCommand({ port, flinkUrl, dataDir, code = LOCAL_MANAGED_FLINK_CODE, region = process.env.AWS_REGION ?? 'us-east-1' }) {
  return {
    command: process.execPath,
    args: [join(ROOT, 'control-plane/dist/standin/managed-flink.main.js')],
    env: {
      STANDIN_PORT: String(port),
      STANDIN_FLINK_URL: flinkUrl,
      STANDIN_RUNNER_JAR: join(ROOT, 'flink-sql/runner/target/flagstream-runner.jar'),
      STANDIN_CODE: code,
      STANDIN_STATE_FILE: join(dataDir, 'managed-flink', 'applications.json'),
      AWS_REGION: region,
    },
  };
}

function portInUse(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

async function waitFor(what, check, { timeoutMs, isAlive }) {
  const started = Date.now();
  let lastError;
  while (Date.now() - started < timeoutMs) {
    if (isAlive && !isAlive()) throw new Error(`${what} exited while starting`);
    try {
      if (await check()) return Date.now() - started;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s${lastError ? `: ${lastError.message}` : ''}`);
}

const httpOk = (url) => async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;

/**
 * Starts the stack. `log(line)` gets progress lines; each process' output goes to
 * <dataDir>/logs/<name>.log, and to the console too for the names listed in `echo`.
 */
export async function startStack({
  dataDir = join(ROOT, '.flagstream'),
  ports = DEFAULT_PORTS,
  env = {},
  echo = [],
  log = (line) => console.log(line),
  javaHeap = '1536m',
} = {}) {
  const logsDir = join(dataDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  const target = env.FLAGSTREAM_TARGET ?? process.env.FLAGSTREAM_TARGET ?? 'local';
  const managed = target === 'managed-flink';
  if (managed && !ports.managedFlink) throw new Error('FLAGSTREAM_TARGET=managed-flink needs a port for the Managed Flink stand-in (ports.managedFlink)');
  for (const [name, port] of Object.entries(ports)) {
    if (name === 'managedFlink' && !managed) continue;
    if (await portInUse(port)) throw new Error(`port ${port} (${name}) is already in use on 127.0.0.1: stop what uses it or choose other ports`);
  }

  const supervisor = createSupervisor({ logsDir, pidsFile: join(dataDir, 'pids.json'), log, echo, cwd: ROOT });
  const services = [];
  const start = (name, command, args, childEnv) => {
    const service = supervisor.start(name, command, args, childEnv);
    services.push(service);
    return service;
  };
  /** While starting, any process that exits fails the start (no restarts yet): it would fail again. */
  const allAlive = () => services.every((s) => s.alive);
  const stop = () => supervisor.stop();

  try {
    const timings = {};
    const kinesisEndpoint = `http://127.0.0.1:${ports.kinesis}`;
    log(`starting the stream emulator (kinesalite) on ${kinesisEndpoint}`);
    start('kinesis', process.execPath, [join(ROOT, 'scripts/kinesis-emulator.cjs')], {
      FLAGSTREAM_EMULATOR_PORT: String(ports.kinesis),
      FLAGSTREAM_EMULATOR_DIR: join(dataDir, 'kinesalite'),
    });

    const flinkUrl = `http://127.0.0.1:${ports.flink}`;
    const validatorUrl = `http://127.0.0.1:${ports.validator}`;
    log(`starting the local Flink cluster on ${flinkUrl} and the SQL validator on ${validatorUrl}`);
    // -jar: the JAR's manifest carries the classpath and the JVM module flags Flink needs on Java 17.
    // AWS_CBOR_DISABLE: the Kinesis source's SDK v1 speaks JSON to the emulator, like every other
    // client here, instead of CBOR (which kinesalite decodes less faithfully). On AWS it keeps CBOR.
    start('flink', 'java', [
      `-Xmx${javaHeap}`,
      '-jar', join(ROOT, 'flink-sql/local-cluster/target/flagstream-local-cluster.jar'),
      '--rest-port', String(ports.flink),
      '--validator-port', String(ports.validator),
      '--data-dir', join(dataDir, 'flink'),
      '--runner-jar', join(ROOT, 'flink-sql/runner/target/flagstream-runner.jar'),
      // Two slots per pool (docs/pools.md: a pool's new job runs next to the one it replaces
      // until it caught up), and two to spare: the Managed Flink stand-in's applications run here too.
      '--slots', String(2 * maxPools({ ...process.env, ...env }) + 2),
    ], { AWS_CBOR_DISABLE: 'true' });

    let managedFlinkUrl;
    let targetEnv = {};
    if (managed) {
      managedFlinkUrl = `http://127.0.0.1:${ports.managedFlink}`;
      targetEnv = managedFlinkEnv(managedFlinkUrl, env);
      log(`starting the Managed Flink stand-in on ${managedFlinkUrl} (its applications run on the local cluster)`);
      const standIn = standInCommand({ port: ports.managedFlink, flinkUrl, dataDir, code: targetEnv.FLAGSTREAM_MANAGED_FLINK_CODE, region: targetEnv.AWS_REGION });
      start('managed-flink', standIn.command, standIn.args, standIn.env);
    }

    timings.emulator = await waitFor('the stream emulator', () => portInUse(ports.kinesis), { timeoutMs: 60000, isAlive: allAlive });
    if (managed) timings.managedFlink = await waitFor('the Managed Flink stand-in', () => portInUse(ports.managedFlink), { timeoutMs: 30000, isAlive: allAlive });
    const apiUrl = `http://127.0.0.1:${ports.api}`;
    log(`starting the control plane (target ${target})`);
    start('control-plane', process.execPath, [...CONTROL_PLANE_NODE_FLAGS, join(ROOT, 'control-plane/dist/main.js')], {
      NODE_NO_WARNINGS: '1',
      PORT: String(ports.api),
      FLAGSTREAM_DATA_DIR: dataDir,
      FLAGSTREAM_KINESIS_ENDPOINT: kinesisEndpoint,
      FLAGSTREAM_FLINK_URL: flinkUrl,
      FLAGSTREAM_VALIDATOR_URL: validatorUrl,
      ...env,
      ...targetEnv,
    });
    timings.flink = await waitFor('the Flink cluster', httpOk(`${flinkUrl}/overview`), { timeoutMs: 180000, isAlive: allAlive });
    timings.validator = await waitFor('the SQL validator', httpOk(`${validatorUrl}/health`), { timeoutMs: 180000, isAlive: allAlive });
    timings.api = await waitFor('the control plane', httpOk(`${apiUrl}/health`), { timeoutMs: 120000, isAlive: allAlive });
    supervisor.enableRestarts();
    return { apiUrl, kinesisEndpoint, flinkUrl, validatorUrl, managedFlinkUrl, target, dataDir, timings, pids: pidsOf(supervisor), pidsFile: join(dataDir, 'pids.json'), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The current pid of each process, following restarts: `stack.pids()` gives
 * {kinesis, flink, 'control-plane'}; `stack.pids.flink` (a getter) reads one.
 */
function pidsOf(supervisor) {
  const pids = () => supervisor.pids();
  for (const name of ['kinesis', 'flink', 'control-plane', 'managed-flink']) {
    Object.defineProperty(pids, name, { enumerable: true, get: () => supervisor.pids()[name] });
  }
  return pids;
}
