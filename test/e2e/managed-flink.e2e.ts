import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DescribeApplicationCommand,
  KinesisAnalyticsV2Client,
  ListApplicationsCommand,
  ListApplicationSnapshotsCommand,
} from '@aws-sdk/client-kinesis-analytics-v2';
import { call, eventually } from './client';
import { Delivery, Dimension, expectedEvaluationRows, sortRows } from './reference';
import { armsOf, experimentRows, expectedFeatureCounts, expectedUniqueContexts, projectUniqueContextsRows, unitsOf } from './catalog-reference';

/**
 * The `managed-flink` target end to end (CONTRACT §8): a second control plane with
 * FLAGSTREAM_TARGET=managed-flink drives the Managed Flink stand-in through the AWS SDK (its
 * endpoint from AWS_ENDPOINT_URL_KINESIS_ANALYTICS_V2 only); the stand-in checks every
 * request against the service's API model and runs the applications on the shared test
 * stack's Flink cluster, reading the shared events stream. The lifecycle: create → RUNNING →
 * the SDK's own /bulk payloads → exact rows → stop (a snapshot) → start (restored from it) →
 * more events → exact → PUT (a new application recomputes) → exact → delete (no application
 * left). The stand-in's Flink jobs are named `mf-…`, so the first control plane's orphan
 * sweep leaves them alone (it would cancel `flagstream-…` jobs it does not know).
 */

const ROOT = join(__dirname, '..', '..');
const FLINK = process.env.FLAGSTREAM_TEST_FLINK ?? 'http://127.0.0.1:18081';
const KINESIS = process.env.FLAGSTREAM_TEST_KINESIS ?? 'http://127.0.0.1:14568';
const VALIDATOR = process.env.FLAGSTREAM_TEST_VALIDATOR ?? 'http://127.0.0.1:18082';
const STANDIN_PORT = Number(process.env.FLAGSTREAM_TEST_MANAGED_FLINK_PORT ?? 18083);
const API_PORT = Number(process.env.FLAGSTREAM_TEST_SECOND_API_PORT ?? 18084);
const DATA_DIR = join(process.env.FLAGSTREAM_TEST_DATA_DIR ?? join(ROOT, '.flagstream-test'), 'managed-flink');
const API = `http://127.0.0.1:${API_PORT}`;
const STANDIN = `http://127.0.0.1:${STANDIN_PORT}`;
const ADMIN = `fs-admin-managed-flink-${Date.now()}`;
const CODE = 's3://flagstream-e2e/runner/flagstream-runner.jar';
/** Its own results stream (the events stream is shared): it need not read every other test's rows first. */
const RESULTS_STREAM = 'flagstream-results-managed-flink';
const FIXTURES = join(__dirname, '../fixtures/launchdarkly-node-server-sdk-9.13.7');
const WINDOW_MS = 5_000;

const processes: { name: string; child: ChildProcess; log: string }[] = [];
/** Deletions still owed by a test that failed before its own clean-up. */
const cleanup: (() => Promise<void>)[] = [];

function launch(name: string, script: string, env: Record<string, string>) {
  mkdirSync(join(DATA_DIR, 'logs'), { recursive: true });
  const log = join(DATA_DIR, 'logs', `${name}.log`);
  const out = createWriteStream(log, { flags: 'a' });
  const child = spawn(process.execPath, [join(ROOT, script)], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  processes.push({ name, child, log });
}

const tail = (file: string) => {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '';
  }
};

/** The SDK's real /bulk body (index, custom, summary events), its summary at `endDate` with these counters. */
function sdkPayload(endDate: number, counters: Record<string, [variation: number, count: number][]>): any[] {
  const recorded = JSON.parse(readFileSync(join(FIXTURES, 'bulk-summary-index-custom.jsonl'), 'utf8').split('\n')[0]).body as any[];
  return recorded.map((event) => {
    if (event.kind !== 'summary') return { ...event, creationDate: endDate - 2 };
    const features: Record<string, unknown> = {};
    for (const [flag, list] of Object.entries(counters)) {
      features[flag] = { default: false, counters: list.map(([variation, count]) => ({ value: variation === 1, count, variation, version: 3 })) };
    }
    return { ...event, startDate: endDate - 5000, endDate, features };
  });
}

describe('the managed-flink target, end to end on the stand-in', () => {
  jest.setTimeout(240_000);
  const kinesisAnalytics = new KinesisAnalyticsV2Client({ region: 'us-east-1', endpoint: STANDIN, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

  beforeAll(async () => {
    const started = Date.now();
    launch('managed-flink', 'control-plane/dist/standin/managed-flink.main.js', {
      STANDIN_PORT: String(STANDIN_PORT),
      STANDIN_FLINK_URL: FLINK,
      STANDIN_RUNNER_JAR: join(ROOT, 'flink-sql/runner/target/flagstream-runner.jar'),
      STANDIN_CODE: CODE,
      STANDIN_STATE_FILE: join(DATA_DIR, 'applications.json'),
      AWS_REGION: 'us-east-1',
    });
    launch('control-plane', 'control-plane/dist/main.js', {
      NODE_NO_WARNINGS: '1',
      PORT: String(API_PORT),
      FLAGSTREAM_DATA_DIR: join(DATA_DIR, 'control-plane'),
      FLAGSTREAM_ADMIN_KEY: ADMIN,
      FLAGSTREAM_KINESIS_ENDPOINT: KINESIS,
      FLAGSTREAM_VALIDATOR_URL: VALIDATOR,
      // Nothing of Flink's REST API is used by this target: an address where nothing answers.
      FLAGSTREAM_FLINK_URL: 'http://127.0.0.1:9',
      FLAGSTREAM_HEALTH_INTERVAL_MS: '1000',
      FLAGSTREAM_RESULTS_STREAM: RESULTS_STREAM,
      FLAGSTREAM_TARGET: 'managed-flink',
      // Two applications for the catalog test: its kinds share one pool, custom-sql has its own.
      FLAGSTREAM_MAX_POOLS: '1',
      FLAGSTREAM_MAX_CUSTOM_POOLS: '1',
      // The stack's own control plane writes the lake; a second writer would re-read the whole stream.
      FLAGSTREAM_LAKE: 'off',
      FLAGSTREAM_MANAGED_FLINK_ROLE_ARN: 'arn:aws:iam::123456789012:role/flagstream-e2e',
      FLAGSTREAM_MANAGED_FLINK_CODE: CODE,
      FLAGSTREAM_EVENTS_STREAM_ARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/flagstream-events',
      FLAGSTREAM_RESULTS_STREAM_ARN: `arn:aws:kinesis:us-east-1:123456789012:stream/${RESULTS_STREAM}`,
      AWS_REGION: 'us-east-1',
      // The SDK finds the stand-in by itself (CONTRACT §8's endpoint override) and signs with these.
      AWS_ENDPOINT_URL_KINESIS_ANALYTICS_V2: STANDIN,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
    });
    try {
      await eventually('the second control plane to answer /health', async () => {
        const reply = await call('GET', '/health', { base: API, key: ADMIN });
        return reply.status === 200 ? reply.body : undefined;
      }, 60_000, 300);
    } catch (error) {
      for (const p of processes) console.log(`[e2e] ${p.name} log:\n${tail(p.log)}`);
      throw error;
    }
    console.log(`[e2e] stand-in and managed-flink control plane up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  afterAll(async () => {
    // A failed test's analyses are deleted while this control plane still runs, so their jobs leave the shared cluster.
    const owed = cleanup.splice(0);
    for (const undo of owed) await undo().catch(() => undefined);
    if (owed.length) await new Promise((r) => setTimeout(r, 5000)); // its health checks stop and delete the applications
    kinesisAnalytics.destroy();
    await Promise.all(
      processes.map(({ child }) => new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      })),
    );
  });

  const applications = async () => (await kinesisAnalytics.send(new ListApplicationsCommand({ Limit: 50 }))).ApplicationSummaries ?? [];
  const flinkJobs = async () => ((await (await fetch(`${FLINK}/jobs/overview`)).json()) as { jobs: { jid: string; name: string; state: string }[] }).jobs;

  it('creates, counts exactly, stops with a snapshot, restores it, recomputes after a PUT and deletes', async () => {
    const timings: string[] = [];
    const t = Date.now();
    const lap = (what: string, since: number) => timings.push(`${what} ${((Date.now() - since) / 1000).toFixed(1)} s`);

    // A tenant and an environment on the managed-flink control plane.
    const tenant = await call('POST', '/v1/tenants', { base: API, key: ADMIN, body: { key: `mf${Date.now().toString(36)}`, name: 'Managed Flink tenant' } });
    expect(tenant.status).toBe(201);
    const apiKey = tenant.body.apiKey as string;
    const environment = await call('POST', '/v1/environments', { base: API, key: apiKey, body: { key: 'production' } });
    const sdkKey = environment.body.sdkKey as string;
    const get = async (id: string) => (await call('GET', `/v1/analyses/${id}`, { base: API, key: apiKey })).body;
    const waitFor = (id: string, status: string) =>
      eventually(`analysis ${id} to be ${status}`, async () => {
        const analysis = await get(id);
        if (analysis.status === 'FAILED') throw new Error(`analysis FAILED: ${analysis.statusMessage}`);
        return analysis.status === status ? analysis : undefined;
      }, 120_000, 300);
    const results = async (id: string) =>
      sortRows(((await call('GET', `/v1/analyses/${id}/results?limit=10000`, { base: API, key: apiKey })).body.rows as Record<string, unknown>[]).map(({ final: _f, updatedAt: _u, ...row }) => row));
    const exact = (id: string, payloads: any[][], groupBy: Dimension[], what: string) => {
      const want = expectedEvaluationRows(payloads.flat(), { windowMs: WINDOW_MS, groupBy });
      return eventually(what, async () => {
        const rows = await results(id);
        return JSON.stringify(rows) === JSON.stringify(want) ? rows : undefined;
      }, 60_000, 500);
    };
    const sent: any[][] = [];
    let seq = 0;
    const send = async (payload: any[]) => {
      const reply = await call('POST', '/bulk', { base: API, key: sdkKey, bareKey: true, body: payload, headers: { 'X-LaunchDarkly-Event-Schema': '4', 'X-LaunchDarkly-Payload-ID': `mf-${t}-${seq++}` } });
      expect(reply.status).toBe(202);
      sent.push(payload);
    };

    // Create: one application for generation 1, running on the local cluster as mf-<application>.
    let since = Date.now();
    const created = await call('POST', '/v1/analyses', { base: API, key: apiKey, body: { name: 'Evaluations on Managed Flink', kind: 'flag-evaluations', params: { window: '5s' } } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await waitFor(id, 'RUNNING');
    lap('POST → RUNNING', since);
    // One application per pool generation: this control plane's first analysis is alone in its pool.
    const pool = (await call('GET', `/v1/analyses/${id}`, { base: API, key: apiKey })).body.pool as string;
    const ofPool = (name: string | undefined) => Boolean(name?.startsWith(`flagstream-pool-${pool}-`));
    const first = `flagstream-pool-${pool}-g1`;
    expect((await applications()).filter((a) => ofPool(a.ApplicationName))).toEqual([
      expect.objectContaining({ ApplicationName: first, ApplicationStatus: 'RUNNING', RuntimeEnvironment: 'FLINK-1_20', ApplicationVersionId: 1 }),
    ]);
    expect((await flinkJobs()).filter((j) => j.name === `mf-${first}`).map((j) => j.state)).toEqual(['RUNNING']);

    // The SDK's payloads, a few seconds apart: exact per window, flag and variation.
    const now = Date.now();
    await send(sdkPayload(now, { 'new-checkout': [[0, 13], [1, 7]], 'dark-mode': [[2, 4]] }));
    await send(sdkPayload(now + 1500, { 'new-checkout': [[0, 2]], 'dark-mode': [[2, 11]] }));
    since = Date.now();
    await exact(id, sent, ['flagKey', 'variation'], 'the first rows');
    lap('rows exact', since);

    // Stop: the stand-in takes a snapshot of the application (a Flink savepoint).
    since = Date.now();
    expect((await call('POST', `/v1/analyses/${id}/stop`, { base: API, key: apiKey })).status).toBe(200);
    const stopped = await waitFor(id, 'STOPPED');
    lap('stop → STOPPED', since);
    expect(stopped.statusMessage).toBe(`savepoint ${first}-1`);
    expect((await applications()).find((a) => a.ApplicationName === first)?.ApplicationStatus).toBe('READY');
    const snapshots = (await kinesisAnalytics.send(new ListApplicationSnapshotsCommand({ ApplicationName: first }))).SnapshotSummaries ?? [];
    expect(snapshots.map((s) => [s.SnapshotName, s.SnapshotStatus])).toEqual([[`${first}-1`, 'READY']]);

    // Start: the same application, restored from that snapshot.
    since = Date.now();
    expect((await call('POST', `/v1/analyses/${id}/start`, { base: API, key: apiKey })).status).toBe(200);
    await waitFor(id, 'RUNNING');
    lap('start from the snapshot → RUNNING', since);
    const detail = (await kinesisAnalytics.send(new DescribeApplicationCommand({ ApplicationName: first }))).ApplicationDetail!;
    expect(detail.ApplicationConfigurationDescription?.RunConfigurationDescription?.ApplicationRestoreConfigurationDescription).toEqual({
      ApplicationRestoreType: 'RESTORE_FROM_CUSTOM_SNAPSHOT', SnapshotName: `${first}-1`,
    });
    // Its new job name came with new properties: version 2.
    expect(detail.ApplicationVersionId).toBe(2);

    // More events, one of them for a window the restored state already counts in.
    await send(sdkPayload(now + 500, { 'dark-mode': [[2, 5]] }));
    await send(sdkPayload(Date.now(), { 'new-checkout': [[1, 3]] }));
    await exact(id, sent, ['flagKey', 'variation'], 'the rows after the restore');

    // PUT: a new generation of the member is a new pool generation, so a new application; the old one is deleted.
    since = Date.now();
    const updated = await call('PUT', `/v1/analyses/${id}`, { base: API, key: apiKey, body: { name: 'Per flag', kind: 'flag-evaluations', params: { window: '5s', groupBy: ['flagKey'] } } });
    expect(updated.status).toBe(200);
    await waitFor(id, 'RUNNING');
    const second = `flagstream-pool-${pool}-g2`;
    await eventually('the first application to be deleted', async () => {
      const mine = (await applications()).filter((a) => ofPool(a.ApplicationName)).map((a) => a.ApplicationName);
      return JSON.stringify(mine) === JSON.stringify([second]) ? true : undefined;
    }, 30_000, 500);
    await exact(id, sent, ['flagKey'], 'the history recomputed per flag after the PUT');
    lap('PUT → recomputed rows exact', since);

    // Delete: the application goes, and its Flink job with it.
    expect((await call('DELETE', `/v1/analyses/${id}`, { base: API, key: apiKey })).status).toBe(204);
    await eventually('no application of its pool to be left', async () => ((await applications()).some((a) => ofPool(a.ApplicationName)) ? undefined : true), 30_000, 500);
    await eventually('its Flink jobs to end', async () => {
      const jobs = (await flinkJobs()).filter((j) => j.name.startsWith(`mf-flagstream-pool-${pool}-`));
      return jobs.every((j) => ['CANCELED', 'FINISHED', 'FAILED'].includes(j.state)) ? true : undefined;
    }, 30_000, 500);
    console.log(`[e2e] managed-flink lifecycle in ${((Date.now() - t) / 1000).toFixed(1)} s: ${timings.join('; ')}`);
  });

  it('runs the rest of the catalog on it as on any target: unique contexts, an experiment and custom SQL, exact', async () => {
    const tenant = await call('POST', '/v1/tenants', { base: API, key: ADMIN, body: { key: `mfc${Date.now().toString(36)}`, name: 'Managed Flink catalog' } });
    const apiKey = tenant.body.apiKey as string;
    const sdkKey = (await call('POST', '/v1/environments', { base: API, key: apiKey, body: { key: 'production' } })).body.sdkKey as string;
    const experiment = { flagKey: 'mf-exp', metric: { eventKey: 'mf-buy', type: 'value' as const } };
    const definitions = {
      contexts: { name: 'Users', kind: 'unique-contexts', params: { window: '5s' } },
      experiment: { name: 'Experiment', kind: 'experiment', params: experiment },
      sql: { name: 'Feature counts', kind: 'custom-sql', params: { sql: "SELECT flagKey, variation, COUNT(*) AS n FROM events WHERE kind = 'feature' GROUP BY flagKey, variation" } },
    };
    const ids: Record<string, string> = {};
    for (const [name, body] of Object.entries(definitions)) {
      const created = await call('POST', '/v1/analyses', { base: API, key: apiKey, body });
      expect({ name, status: created.status }).toEqual({ name, status: 201 });
      ids[name] = created.body.id;
      cleanup.push(async () => void (await call('DELETE', `/v1/analyses/${created.body.id}`, { base: API, key: apiKey })));
    }
    for (const id of Object.values(ids)) {
      await eventually(`analysis ${id} to run`, async () => {
        const a = (await call('GET', `/v1/analyses/${id}`, { base: API, key: apiKey })).body;
        if (a.status === 'FAILED') throw new Error(`FAILED: ${a.statusMessage}`);
        return a.status === 'RUNNING' ? a : undefined;
      }, 180_000, 500);
    }
    const pools = await Promise.all(Object.values(ids).map(async (id) => (await call('GET', `/v1/analyses/${id}`, { base: API, key: apiKey })).body.pool));
    expect(pools).toEqual(['p0', 'p0', 'c0']);
    // One application per pool generation; while a pool hands over to a new generation, the old one serves too.
    const mine = (await applications()).map((a) => a.ApplicationName ?? '').filter((n) => /^flagstream-pool-(p0|c0)-g\d+$/.test(n));
    for (const pool of ['p0', 'c0']) expect(mine.filter((n) => n.startsWith(`flagstream-pool-${pool}-`)).length).toBeGreaterThanOrEqual(1);
    expect(mine.length).toBeLessThanOrEqual(4);

    // Exposures (a multi-kind context among them), conversions before and after, one unit seeing both variations.
    const deliveries: Delivery[] = [];
    const now = Date.now();
    const user = (i: number) => (i % 4 === 0 ? { kind: 'multi', user: { key: `mf-u${i}` }, organization: { key: `mf-o${i % 3}` } } : { kind: 'user', key: `mf-u${i}` });
    const events: any[] = [];
    for (let i = 0; i < 40; i++) {
      if (i % 6 === 0) events.push({ kind: 'custom', creationDate: now - 10, key: 'mf-buy', context: user(i), metricValue: 100 }); // before exposure
      events.push({ kind: 'feature', creationDate: now + i, key: 'mf-exp', variation: i % 2, value: i % 2 === 1, default: false, context: user(i) });
      if (i % 3 !== 0) events.push({ kind: 'custom', creationDate: now + 100 + i, key: 'mf-buy', context: user(i), metricValue: 10 + (i % 7) + (i % 2) * 3 });
    }
    events.push({ kind: 'feature', creationDate: now + 200, key: 'mf-exp', variation: 0, value: false, default: false, context: user(1) }); // mf-u1 saw 1, then 0
    events.push({ kind: 'index', creationDate: now, context: { kind: 'user', key: 'mf-indexed' } });
    for (const [i, chunk] of [events.slice(0, 50), events.slice(50)].entries()) {
      const payloadId = `mfc-${now}-${i}`;
      const reply = await call('POST', '/bulk', { base: API, key: sdkKey, bareKey: true, body: chunk, headers: { 'X-LaunchDarkly-Event-Schema': '4', 'X-LaunchDarkly-Payload-ID': payloadId } });
      expect(reply.status).toBe(202);
      const at = Number(reply.headers.get('x-flagstream-received-at'));
      deliveries.push({ payloadId, host: 'mf', events: chunk, receivedFrom: at, receivedTo: at, attempts: 1 });
    }

    const rows = async (id: string) => (await call('GET', `/v1/analyses/${id}/results?limit=10000`, { base: API, key: apiKey })).body.rows as Record<string, any>[];
    const wantContexts = expectedUniqueContexts(deliveries, { windowMs: 5000, contextKind: 'user' }).rows;
    await eventually('unique contexts exact', async () => (JSON.stringify(projectUniqueContextsRows(await rows(ids.contexts))) === JSON.stringify(wantContexts) ? true : undefined), 90_000, 500);
    const wantExperiment = experimentRows(armsOf(unitsOf(deliveries, experiment)), experiment);
    const close = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' ? Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)) : JSON.stringify(a) === JSON.stringify(b));
    const sameExperiment = (got: Record<string, any>[]) =>
      got.length === wantExperiment.length &&
      wantExperiment.every((want, i) => ['variation', 'units', 'valueSum', 'multipleExposures', 'mean', 'stdDev', 'relativeLift', 'pValue', 'chanceToBeatControl'].every((k) => close(got[i][k], (want as any)[k])));
    await eventually('experiment exact', async () => (sameExperiment(await rows(ids.experiment)) ? true : undefined), 90_000, 500);
    const wantCounts = expectedFeatureCounts(deliveries);
    const project = (got: Record<string, any>[]) => got.map((r) => ({ flagKey: r.flagKey, variation: r.variation ?? null, n: r.n })).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    await eventually('custom SQL exact', async () => (JSON.stringify(project(await rows(ids.sql))) === JSON.stringify(project(wantCounts)) ? true : undefined), 90_000, 500);
    expect(wantExperiment.map((r) => r.multipleExposures)).toEqual([0, 1]);

    for (const id of Object.values(ids)) expect((await call('DELETE', `/v1/analyses/${id}`, { base: API, key: apiKey })).status).toBe(204);
    cleanup.length = 0;
  });

  it('answers /health through the target (ListApplications)', async () => {
    const health = await call('GET', '/health', { base: API, key: ADMIN });
    expect(health.status).toBe(200);
    expect(health.body.components.flink.status).toBe('ok');
  });
});
