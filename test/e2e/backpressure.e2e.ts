import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { call, eventually } from './client';
import { ManagedProcess, portOpen } from './kill-processes';
import { kinesisClient, readRecords } from './stream';

/**
 * Backpressure, not collapse (issue 9, docs/ingest.md §2): with the events stream stalled (its
 * emulator stopped with SIGSTOP), the events API answers 503 with Retry-After once a payload's
 * write deadline has passed, and not before; what waits for the stream stays under
 * FLAGSTREAM_INGEST_MAX_INFLIGHT_BYTES; /metrics shows the queue, the waiting payloads and the
 * 503s. Once the stream moves again, the SDK-style retries (same payload IDs) are accepted and
 * the stream holds every event of every payload. A stream emulator and control plane of its own
 * (stopping the shared emulator would stall every other test file); Flink is the shared one
 * (no analysis runs here).
 */

const ROOT = join(__dirname, '..', '..');
const OFFSET = Number(process.env.FLAGSTREAM_TEST_PORT_OFFSET ?? 0);
/** test/setup/global-setup.mjs' EXTRA_TEST_PORTS backpressureApi and backpressureEmulator. */
const API_PORT = 18088 + OFFSET;
const EMULATOR_PORT = 18089 + OFFSET;
const API = `http://127.0.0.1:${API_PORT}`;
const DATA_DIR = mkdtempSync(join(process.env.FLAGSTREAM_TEST_DATA_DIR ?? tmpdir(), 'backpressure-'));
const RUN = Date.now().toString(36);
const ADMIN = `fs-admin-backpressure-${RUN}`;
const STREAM = `flagstream-events-backpressure-${RUN}`;
const DEADLINE_MS = 3000;
const INFLIGHT_LIMIT = 1024 * 1024;

const emulator = new ManagedProcess('emulator', [join(ROOT, 'scripts/kinesis-emulator.cjs')], {
  ...process.env,
  FLAGSTREAM_EMULATOR_PORT: String(EMULATOR_PORT),
  FLAGSTREAM_EMULATOR_DIR: join(DATA_DIR, 'kinesalite'),
}, join(DATA_DIR, 'logs'), ROOT);
const controlPlane = new ManagedProcess('control-plane', [join(ROOT, 'control-plane/dist/main.js')], {
  ...process.env,
  NODE_NO_WARNINGS: '1',
  PORT: String(API_PORT),
  FLAGSTREAM_DATA_DIR: join(DATA_DIR, 'control-plane'),
  FLAGSTREAM_ADMIN_KEY: ADMIN,
  FLAGSTREAM_KINESIS_ENDPOINT: `http://127.0.0.1:${EMULATOR_PORT}`,
  FLAGSTREAM_FLINK_URL: process.env.FLAGSTREAM_TEST_FLINK ?? 'http://127.0.0.1:18081',
  FLAGSTREAM_VALIDATOR_URL: process.env.FLAGSTREAM_TEST_VALIDATOR ?? 'http://127.0.0.1:18082',
  FLAGSTREAM_TARGET: 'local',
  FLAGSTREAM_EVENTS_STREAM: STREAM,
  FLAGSTREAM_RESULTS_STREAM: `flagstream-results-backpressure-${RUN}`,
  FLAGSTREAM_JOB_NAME_PREFIX: 'backpressure-',
  FLAGSTREAM_LAKE: 'off',
  FLAGSTREAM_WRITE_DEADLINE_MS: String(DEADLINE_MS),
  FLAGSTREAM_INGEST_MAX_INFLIGHT_BYTES: String(INFLIGHT_LIMIT),
}, join(DATA_DIR, 'logs'), ROOT);

/** A payload of `n` custom events of about 500 bytes each. */
function payload(tag: string, n: number) {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => ({ kind: 'custom', creationDate: now, key: `${tag}-${i}`, context: { kind: 'user', key: `user-${i % 50}` }, data: { pad: 'x'.repeat(400) } }));
}

function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

describe('backpressure: a stalled events stream', () => {
  let sdkKey = '';

  beforeAll(async () => {
    emulator.start();
    await eventually('the emulator to listen', async () => ((await portOpen(EMULATOR_PORT)) ? true : undefined), 30_000, 100);
    controlPlane.start();
    await eventually('the control plane to answer', async () => ((await call('GET', '/health', { base: API })).status === 200 ? true : undefined), 60_000, 250).catch((error) => {
      throw new Error(`${(error as Error).message}\n${controlPlane.tail()}`);
    });
    const tenant = await call('POST', '/v1/tenants', { base: API, key: ADMIN, body: { key: `bp${RUN}`, name: 'Backpressure' } });
    const env = await call('POST', '/v1/environments', { base: API, key: tenant.body.apiKey, body: { key: 'production' } });
    sdkKey = env.body.sdkKey;
  }, 120_000);

  afterAll(async () => {
    if (emulator.pid) process.kill(emulator.pid, 'SIGCONT');
    await controlPlane.stop();
    await emulator.stop();
    controlPlane.close();
    emulator.close();
  });

  it('answers 503 with Retry-After at the deadline, holds at most the in-flight limit, then takes every retry once it moves', async () => {
    const post = (body: unknown[], id: string) =>
      call('POST', '/bulk', { base: API, key: sdkKey, bareKey: true, body, headers: { 'x-launchdarkly-payload-id': id } });
    const started = new Date();
    expect((await post(payload('warm', 10), `warm-${RUN}`)).status).toBe(202);

    process.kill(emulator.pid!, 'SIGSTOP');
    // 10 payloads of ~0.3 MB of records each: three fit under the 1 MiB limit, the rest wait.
    const payloads = Array.from({ length: 10 }, (_, i) => ({ id: `stalled-${RUN}-${i}`, body: payload(`p${i}`, 600) }));
    const sent = Date.now();
    const answers = payloads.map(async (p) => {
      const reply = await post(p.body, p.id);
      return { reply, ms: Date.now() - sent };
    });
    // Meanwhile /metrics shows the queue under the limit and payloads waiting for room.
    await new Promise((r) => setTimeout(r, 1500));
    const during = (await call('GET', '/metrics', { base: API })).body as string;
    const held = metric(during, 'flagstream_stream_queue_bytes');
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(INFLIGHT_LIMIT);
    expect(metric(during, 'flagstream_ingest_waiting_payloads')).toBeGreaterThan(0);
    expect(metric(during, 'flagstream_stream_inflight_calls')).toBeGreaterThan(0);

    const replies = await Promise.all(answers);
    console.log(`[e2e] stalled stream: ${replies.map((r) => `${r.reply.status} after ${(r.ms / 1000).toFixed(1)} s`).join(', ')}`);
    for (const { reply, ms } of replies) {
      expect(reply.status).toBe(503);
      expect(reply.headers.get('retry-after')).toBe('1');
      // Not before the deadline, and not long after it: nothing hangs.
      expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 100);
      expect(ms).toBeLessThan(DEADLINE_MS + 3000);
    }
    const after = (await call('GET', '/metrics', { base: API })).body as string;
    const rejected = metric(after, 'flagstream_ingest_rejected_total{reason="deadline"}') + metric(after, 'flagstream_ingest_rejected_total{reason="inflight-limit"}');
    expect(rejected).toBe(payloads.length);
    expect(metric(after, 'flagstream_stream_queue_bytes')).toBe(0);

    // The stream moves again: every retry is accepted, and the stream holds each event of each payload.
    process.kill(emulator.pid!, 'SIGCONT');
    for (const p of payloads) {
      const reply = await post(p.body, p.id);
      expect([reply.status, reply.body]).toEqual([202, { accepted: 600, rejected: [] }]);
    }
    const client = kinesisClient(`http://127.0.0.1:${EMULATOR_PORT}`);
    try {
      const records = await readRecords(client, started, (json) => typeof json?.payloadId === 'string' && json.payloadId.startsWith('stalled-'), STREAM);
      const held = new Set(records.map((r) => `${r.json.payloadId.split('#')[0]}/${r.json.eventIndex}`));
      expect(held.size).toBe(payloads.length * 600);
      // The calls in flight at the 503s landed once the stream moved; the ledger learned of them, so the retries wrote only the rest.
      expect(records.length).toBe(held.size);
    } finally {
      client.destroy();
    }
  }, 120_000);
});
