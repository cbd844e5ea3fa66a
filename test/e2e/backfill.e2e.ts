import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, eventually } from './client';
import { RecordingProxy, sleep } from './proxy';
import { deliveredPayloads, Dimension, expectedResults, projectRows } from './reference';
import { SdkHost } from './sdk-host';
import { kinesisClient, putAgain, readRecords } from './stream';

/**
 * Backfill from the data lake (CONTRACT §9): a replay whose `from` is older than what the
 * events stream holds reads the lake up to where the stream begins, then the stream, every
 * event counted once. A control plane of its own (its own events and results streams, data
 * dir and job names; the shared emulator, Flink cluster and validator):
 *
 * 1. The real SDK's payloads (timer flushes, through the recording proxy) go to stream S1;
 *    the lake writer commits them under the data dir's lake/.
 * 2. The control plane stops and starts again on a FRESH events stream S2 (same store and
 *    lake): the stream now begins after every one of those events.
 * 3. A third of S1's records are put on S2 as well (lake and stream overlap at the seam, as
 *    they do wherever both hold an event); the SDK sends more, to S2.
 * 4. An analysis replays from before the first event: its rows are exactly those of every
 *    accepted payload, counted once, and final.
 */

const ROOT = join(__dirname, '..', '..');
const KINESIS = process.env.FLAGSTREAM_TEST_KINESIS ?? 'http://127.0.0.1:14568';
const FLINK = process.env.FLAGSTREAM_TEST_FLINK ?? 'http://127.0.0.1:18081';
const VALIDATOR = process.env.FLAGSTREAM_TEST_VALIDATOR ?? 'http://127.0.0.1:18082';
const PORT = Number(process.env.FLAGSTREAM_TEST_BACKFILL_API_PORT ?? 18085);
const API = `http://127.0.0.1:${PORT}`;
const DATA_DIR = join(process.env.FLAGSTREAM_TEST_DATA_DIR ?? join(ROOT, '.flagstream-test'), 'backfill');
const RUN = Date.now().toString(36);
const ADMIN = `fs-admin-backfill-${RUN}`;
const STREAM_1 = `flagstream-events-backfill-${RUN}-1`;
const STREAM_2 = `flagstream-events-backfill-${RUN}-2`;
const WINDOW = '10s';
const WINDOW_MS = 10_000;
const GROUP_BY: Dimension[] = ['flagKey', 'variation'];
const FLAGS = ['new-checkout', 'search-v2', 'dark-mode'];

let controlPlane: { child: ChildProcess; log: string } | undefined;

function startControlPlane(eventsStream: string): void {
  mkdirSync(join(DATA_DIR, 'logs'), { recursive: true });
  const log = join(DATA_DIR, 'logs', `control-plane-${eventsStream}.log`);
  const out = createWriteStream(log, { flags: 'a' });
  const child = spawn(process.execPath, [join(ROOT, 'control-plane/dist/main.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_NO_WARNINGS: '1',
      PORT: String(PORT),
      FLAGSTREAM_DATA_DIR: join(DATA_DIR, 'control-plane'),
      FLAGSTREAM_ADMIN_KEY: ADMIN,
      FLAGSTREAM_KINESIS_ENDPOINT: KINESIS,
      FLAGSTREAM_FLINK_URL: FLINK,
      FLAGSTREAM_VALIDATOR_URL: VALIDATOR,
      FLAGSTREAM_TARGET: 'local',
      FLAGSTREAM_EVENTS_STREAM: eventsStream,
      FLAGSTREAM_RESULTS_STREAM: `flagstream-results-backfill-${RUN}`,
      // Its jobs share the test stack's cluster: the stack's control plane must not take them for orphans.
      FLAGSTREAM_JOB_NAME_PREFIX: 'backfill-',
      FLAGSTREAM_MAX_POOLS: '1',
      FLAGSTREAM_MAX_CUSTOM_POOLS: '0',
      FLAGSTREAM_HEALTH_INTERVAL_MS: '1000',
      FLAGSTREAM_LAKE_FLUSH_MS: '1000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  controlPlane = { child, log };
}

async function stopControlPlane(): Promise<void> {
  const running = controlPlane;
  controlPlane = undefined;
  if (!running || running.child.exitCode !== null || running.child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    running.child.once('exit', () => resolve());
    running.child.kill('SIGTERM'); // a stop: the lake writer commits what it read
  });
}

const logTail = () => {
  try {
    return readFileSync(controlPlane!.log, 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '';
  }
};

async function ready(): Promise<void> {
  try {
    await eventually('the backfill control plane to answer /health', async () => ((await call('GET', '/health', { base: API, key: ADMIN })).status === 200 ? true : undefined), 60_000, 300);
  } catch (error) {
    console.log(`[backfill] control plane log:\n${logTail()}`);
    throw error;
  }
}

describe('backfill: a replay older than the events stream reads the data lake, then the stream', () => {
  jest.setTimeout(240_000);
  const kinesis = kinesisClient();
  let proxy: RecordingProxy;

  beforeAll(async () => {
    startControlPlane(STREAM_1);
    await ready();
    proxy = await new RecordingProxy({ target: API }).start();
  });

  afterAll(async () => {
    await stopControlPlane();
    await proxy?.stop();
    kinesis.destroy();
  });

  it('counts every accepted event once: those only the lake holds, those only the fresh stream holds, and those both hold', async () => {
    const tenantReply = await call('POST', '/v1/tenants', { base: API, key: ADMIN, body: { key: `bf${RUN}`, name: 'Backfill' } });
    expect(tenantReply.status).toBe(201);
    const apiKey = tenantReply.body.apiKey as string;
    const env = await call('POST', '/v1/environments', { base: API, key: apiKey, body: { key: 'production' } });
    expect(env.status).toBe(201);
    const sdkKey = env.body.sdkKey as string;
    const from = new Date(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS - WINDOW_MS).toISOString();

    // 1. Into S1 (and from it the lake).
    const evaluate = async (host: SdkHost, rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        await host.run(FLAGS.map((flagKey, f) => ({ type: 'evaluate' as const, flagKey, context: { kind: 'user', key: `u${(i + f) % 7}` }, times: 1 + ((i * 3 + f) % 5) })));
        await sleep(700);
      }
    };
    const first = await SdkHost.start({ name: 'bf-1', sdkKey, eventsUri: proxy.eventsUri('bf-1'), flushIntervalSeconds: 1 });
    await evaluate(first, 12);
    await first.close();
    await proxy.idle();
    const phase1 = deliveredPayloads(proxy.recordsOf('bf-1'));
    expect(phase1.length).toBeGreaterThan(3);
    const s1 = await readRecords(kinesis, new Date(Date.now() - 5 * 60_000), (j) => j.tenant === `bf${RUN}`, STREAM_1);
    const phase1Events = phase1.reduce((n, d) => n + d.events.length, 0);
    expect(s1.length).toBe(phase1Events);

    // 2. The lake has them all once the writer committed them (every 1 s): wait for that, since the
    // next control plane reads another stream and would never read what this one had not. Then a fresh stream.
    await eventually('the lake writer to commit every event of S1', async () => {
      const metrics = (await call('GET', '/metrics', { base: API })).body as string;
      const written = Number(/^flagstream_lake_records_written_total (\d+)$/m.exec(metrics)?.[1] ?? 0);
      return written >= phase1Events ? true : undefined;
    }, 60_000, 250);
    await stopControlPlane();
    startControlPlane(STREAM_2);
    await ready();

    // 3. The overlap: a third of S1's records on S2 too; then more of the SDK's events, to S2 only.
    const overlap = s1.filter((_, i) => i % 3 === 0);
    await putAgain(kinesis, overlap, STREAM_2);
    const second = await SdkHost.start({ name: 'bf-2', sdkKey, eventsUri: proxy.eventsUri('bf-2'), flushIntervalSeconds: 1 });
    await evaluate(second, 8);
    await second.close();
    await proxy.idle();
    const deliveries = deliveredPayloads(proxy.records);
    expect(deliveries.length).toBeGreaterThan(phase1.length);

    // 4. An analysis, replayed from before the first event: before S2 began, only the lake holds them.
    const created = await call('POST', '/v1/analyses', { base: API, key: apiKey, body: { name: 'backfill', kind: 'flag-evaluations', params: { window: WINDOW, groupBy: GROUP_BY } } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await eventually('the analysis RUNNING', async () => ((await call('GET', `/v1/analyses/${id}`, { base: API, key: apiKey })).body?.status === 'RUNNING' ? true : undefined), 120_000);
    const replayAt = Date.now();
    const replay = await call('POST', `/v1/analyses/${id}/replay`, { base: API, key: apiKey, body: { from } });
    expect({ status: replay.status, body: replay.body?.status }).toEqual({ status: 200, body: 'PENDING' });

    // The replay's job serves alone once it caught up (its lake part read: progress waits for it) and the older job is cancelled.
    const running = async () =>
      ((await (await fetch(`${FLINK}/jobs/overview`)).json()) as { jobs: { jid: string; name: string; state: string; 'start-time': number }[] }).jobs
        .filter((j) => j.name.startsWith('backfill-pool-') && j.state === 'RUNNING');
    const job = await eventually('the replay\'s job serving alone, the analysis RUNNING', async () => {
      const jobs = await running();
      const a = (await call('GET', `/v1/analyses/${id}`, { base: API, key: apiKey })).body;
      return jobs.length === 1 && jobs[0]['start-time'] > replayAt && a?.status === 'RUNNING' ? jobs[0] : undefined;
    }, 120_000).catch(async (error) => {
      const jobs = await running();
      const details = await Promise.all(jobs.map(async (j) => {
        const vertices = ((await (await fetch(`${FLINK}/jobs/${j.jid}`)).json()) as { vertices: { name: string; status: string; parallelism: number; tasks: unknown; metrics: Record<string, unknown> }[] }).vertices;
        const exceptions = JSON.stringify(await (await fetch(`${FLINK}/jobs/${j.jid}/exceptions`)).json()).slice(0, 1500);
        return `${j.name}: ${vertices.map((v) => `${v.name.slice(0, 60)} ${v.status} p${v.parallelism} ${JSON.stringify(v.tasks)} out ${v.metrics['write-records']}`).join('\n  ')}\n  exceptions ${exceptions}`;
      }));
      const health = (await call('GET', `/v1/analyses/${id}/health`, { base: API, key: apiKey })).body;
      console.log(`[backfill] jobs:\n${details.join('\n')}\nhealth ${JSON.stringify(health).slice(0, 1500)}\ncontrol plane log:\n${logTail()}`);
      throw error;
    });
    const expected = expectedResults(deliveries, { windowMs: WINDOW_MS, groupBy: GROUP_BY });
    expect(expected.ambiguous).toEqual([]);
    expect(expected.rows.length).toBeGreaterThan(2);
    let last: Record<string, any>[] = [];
    try {
      await eventually('the replayed rows exact and final', async () => {
        last = (await call('GET', `/v1/analyses/${id}/results?limit=10000`, { base: API, key: apiKey })).body?.rows ?? [];
        const exact = JSON.stringify(projectRows(last, GROUP_BY)) === JSON.stringify(expected.rows);
        return exact && last.every((r) => r.final === true) ? true : undefined;
      }, 150_000, 1000);
    } catch (error) {
      console.log(`[backfill] want ${JSON.stringify(expected.rows)}\n got ${JSON.stringify(projectRows(last, GROUP_BY))}\n final ${last.map((r) => r.final).join(',')}\ncontrol plane log:\n${logTail()}`);
      throw error;
    }
    // The job that counted them read the lake beside the stream (its plan has both sources).
    const vertices = ((await (await fetch(`${FLINK}/jobs/${job.jid}`)).json()) as { vertices: { name: string }[] }).vertices.map((v) => v.name);
    expect({ lake: vertices.some((v) => v.includes('events_lake')), stream: vertices.some((v) => v.includes('events_stream')) }).toEqual({ lake: true, stream: true });
    const analysis = (await call('GET', `/v1/analyses/${id}`, { base: API, key: apiKey })).body;
    expect({ status: analysis.status, lateEvents: analysis.lateEvents }).toEqual({ status: 'RUNNING', lateEvents: 0 });
    const lakeOnly = phase1Events - overlap.length;
    console.log(`[backfill] ${phase1.length} payloads (${phase1Events} events) before the fresh stream, ${lakeOnly} of their events only in the lake, ${overlap.length} in both; ${deliveries.length - phase1.length} payloads after; ${expected.rows.length} rows exact and final`);

    const removed = await call('DELETE', `/v1/analyses/${id}`, { base: API, key: apiKey });
    expect(removed.status).toBe(204);
    // Its job leaves the shared cluster before this control plane stops.
    await eventually('no backfill- job left running', async () => {
      const jobs = ((await (await fetch(`${FLINK}/jobs/overview`)).json()) as { jobs: { name: string; state: string }[] }).jobs;
      return jobs.some((j) => j.name.startsWith('backfill-') && !['FINISHED', 'CANCELED', 'FAILED'].includes(j.state)) ? undefined : true;
    }, 60_000);
  });
});
