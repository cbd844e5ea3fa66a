// The embedded local stack: the Kinesis-API emulator (kinesis-local), a local Flink
// cluster with the warm SQL validator (one JVM), and the control plane. Used by
// `npm start` and by the end-to-end tests. Every server binds to 127.0.0.1. Once the
// stack is up, a process that exits unexpectedly is started again (scripts/supervisor.mjs);
// stop() ends every process it started.
import { mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './bootstrap.mjs';
import { createSupervisor } from './supervisor.mjs';

export const DEFAULT_PORTS = { api: 8080, kinesis: 4568, kinesisTls: 4567, flink: 8081, validator: 8082 };

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
  for (const [name, port] of Object.entries(ports)) {
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
    log(`starting the stream emulator (kinesis-local) on ${kinesisEndpoint}`);
    // Through a wrapper that binds it to 127.0.0.1: kinesis-local itself listens on every interface.
    start('kinesis', process.execPath, [join(ROOT, 'scripts/kinesis-loopback.cjs')], {
      KINESIS_MOCK_CERT_PATH: join(ROOT, 'node_modules/kinesis-local/server.json'),
      KINESIS_MOCK_PLAIN_PORT: String(ports.kinesis),
      KINESIS_MOCK_TLS_PORT: String(ports.kinesisTls),
      SHOULD_PERSIST_DATA: 'true',
      PERSIST_PATH: join(dataDir, 'kinesis'),
      PERSIST_INTERVAL: '2s',
      // Its WARN level logs a stack trace for every "stream not found" answer.
      LOG_LEVEL: 'ERROR',
      AWS_REGION: 'us-east-1',
    });

    const flinkUrl = `http://127.0.0.1:${ports.flink}`;
    const validatorUrl = `http://127.0.0.1:${ports.validator}`;
    log(`starting the local Flink cluster on ${flinkUrl} and the SQL validator on ${validatorUrl}`);
    // -jar: the JAR's manifest carries the classpath and the JVM module flags Flink needs on Java 17.
    start('flink', 'java', [
      `-Xmx${javaHeap}`,
      '-jar', join(ROOT, 'flink-sql/local-cluster/target/flagstream-local-cluster.jar'),
      '--rest-port', String(ports.flink),
      '--validator-port', String(ports.validator),
      '--data-dir', join(dataDir, 'flink'),
      '--runner-jar', join(ROOT, 'flink-sql/runner/target/flagstream-runner.jar'),
    ]);

    timings.emulator = await waitFor('the stream emulator', () => portInUse(ports.kinesis), { timeoutMs: 60000, isAlive: allAlive });
    const apiUrl = `http://127.0.0.1:${ports.api}`;
    log('starting the control plane');
    start('control-plane', process.execPath, [join(ROOT, 'control-plane/dist/main.js')], {
      NODE_NO_WARNINGS: '1',
      PORT: String(ports.api),
      FLAGSTREAM_DATA_DIR: dataDir,
      FLAGSTREAM_KINESIS_ENDPOINT: kinesisEndpoint,
      FLAGSTREAM_FLINK_URL: flinkUrl,
      FLAGSTREAM_VALIDATOR_URL: validatorUrl,
      ...env,
    });
    timings.flink = await waitFor('the Flink cluster', httpOk(`${flinkUrl}/overview`), { timeoutMs: 180000, isAlive: allAlive });
    timings.validator = await waitFor('the SQL validator', httpOk(`${validatorUrl}/health`), { timeoutMs: 180000, isAlive: allAlive });
    timings.api = await waitFor('the control plane', httpOk(`${apiUrl}/health`), { timeoutMs: 120000, isAlive: allAlive });
    supervisor.enableRestarts();
    return { apiUrl, kinesisEndpoint, flinkUrl, validatorUrl, dataDir, timings, pids: pidsOf(supervisor), pidsFile: join(dataDir, 'pids.json'), stop };
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
  for (const name of ['kinesis', 'flink', 'control-plane']) {
    Object.defineProperty(pids, name, { enumerable: true, get: () => supervisor.pids()[name] });
  }
  return pids;
}
