// Starts one real local stack (emulator, Flink + validator, control plane) for every
// end-to-end test, on ports of its own and in a fresh data dir.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack } from '../../scripts/local-stack.mjs';

/** FLAGSTREAM_TEST_PORT_OFFSET moves every port, so two test runs can share a machine. */
const OFFSET = Number(process.env.FLAGSTREAM_TEST_PORT_OFFSET ?? 0);
export const TEST_PORTS = Object.fromEntries(
  Object.entries({ api: 18080, kinesis: 14568, flink: 18081, validator: 18082 }).map(([name, port]) => [name, port + OFFSET]),
);
/** Ports of what a test starts itself: the Managed Flink stand-in and a second control plane (test/e2e/managed-flink.e2e.ts), the backfill test's control plane, the kill test's control plane and stream emulator (test/e2e/kill.e2e.ts). */
export const EXTRA_TEST_PORTS = { managedFlink: 18083 + OFFSET, secondApi: 18084 + OFFSET, backfillApi: 18085 + OFFSET, killApi: 18086 + OFFSET, killEmulator: 18087 + OFFSET, backpressureApi: 18088 + OFFSET, backpressureEmulator: 18089 + OFFSET, emulatorBridges: 18090 + OFFSET };
/** Small, so the 413 tests need no huge bodies; the pipeline tests stay far below it. */
export const TEST_MAX_BODY_BYTES = 512 * 1024;

export default async function globalSetup() {
  const dataDir = mkdtempSync(join(tmpdir(), 'flagstream-e2e-'));
  const adminKey = `fs-admin-test-${Date.now()}`;
  const started = Date.now();
  console.log(`\n[e2e] starting the local stack in ${dataDir}`);
  const stack = await startStack({
    dataDir,
    ports: TEST_PORTS,
    env: {
      FLAGSTREAM_ADMIN_KEY: adminKey,
      FLAGSTREAM_MAX_BODY_BYTES: String(TEST_MAX_BODY_BYTES),
      FLAGSTREAM_HEALTH_INTERVAL_MS: '1000',
      // The self-healing tests wait out real backoffs: 2 s doubling instead of 10 s.
      FLAGSTREAM_RESTART_BACKOFF_MS: '2000',
    },
    log: (line) => console.log(`[e2e] ${line}`),
  });
  console.log(`[e2e] stack ready in ${Math.round((Date.now() - started) / 1000)} s (${JSON.stringify(stack.timings)})`);
  globalThis.__flagstreamStack = stack;
  Object.assign(process.env, {
    FLAGSTREAM_TEST_API: stack.apiUrl,
    FLAGSTREAM_TEST_ADMIN_KEY: adminKey,
    FLAGSTREAM_TEST_KINESIS: stack.kinesisEndpoint,
    FLAGSTREAM_TEST_FLINK: stack.flinkUrl,
    FLAGSTREAM_TEST_VALIDATOR: stack.validatorUrl,
    FLAGSTREAM_TEST_MANAGED_FLINK_PORT: String(EXTRA_TEST_PORTS.managedFlink),
    FLAGSTREAM_TEST_SECOND_API_PORT: String(EXTRA_TEST_PORTS.secondApi),
    FLAGSTREAM_TEST_BACKFILL_API_PORT: String(EXTRA_TEST_PORTS.backfillApi),
    FLAGSTREAM_TEST_DATA_DIR: dataDir,
    // {kinesis, flink, 'control-plane'}: the current pids, rewritten whenever the stack restarts a process.
    FLAGSTREAM_TEST_PIDS_FILE: stack.pidsFile,
    FLAGSTREAM_TEST_MAX_BODY_BYTES: String(TEST_MAX_BODY_BYTES),
  });
}
