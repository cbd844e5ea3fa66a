import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, deleteAnalysis, eventually, newTenant, waitForStatus } from './client';
import { Dimension, expectedEvaluationRows, projectRows, sortRows } from './reference';
import { kinesisClient, putAgain, readRecords } from './stream';

/**
 * The spine, end to end on the real stack: SDK payloads → /bulk → Kinesis emulator →
 * one Flink job per analysis → results stream → store → GET results. The expected
 * rows are computed here, independently, from the very payloads the test sends.
 */

const FIXTURES = join(__dirname, '../fixtures/launchdarkly-node-server-sdk-9.13.7');
const WINDOW_MS = 10_000;
const HOSTILE_KEY = `it's a "flag"\\ with\nnew line; DROP TABLE x; -- ünï 🚩 {{tenant}}`;

type Summary = { kind: 'summary'; startDate: number; endDate: number; features: Record<string, { default?: unknown; counters: { variation?: number; version?: number; count: number; value?: unknown }[] }> };

/** The SDK's real /bulk body, its summary moved to `endDate` and its counters replaced. */
function fixturePayload(endDate: number, counters: Record<string, [variation: number, count: number][]>): unknown[] {
  const recorded = JSON.parse(readFileSync(join(FIXTURES, 'bulk-summary-index-custom.jsonl'), 'utf8').split('\n')[0]).body as any[];
  return recorded.map((event) => {
    if (event.kind !== 'summary') return { ...event, creationDate: endDate - 2 };
    const features: Summary['features'] = {};
    for (const [flag, list] of Object.entries(counters)) {
      features[flag] = { default: false, counters: list.map(([variation, count]) => ({ value: variation === 1, count, variation, version: 3 })) };
    }
    return { ...event, startDate: endDate - 5000, endDate, features };
  });
}

const expectedRows = (payloads: unknown[][], groupBy: Dimension[]) =>
  expectedEvaluationRows(payloads.flat(), { windowMs: WINDOW_MS, groupBy, environment: 'production' }) as any[];

describe('flag-evaluations end to end', () => {
  jest.setTimeout(300_000);

  it('counts every evaluation of several SDK flushes exactly once, per window, flag and variation', async () => {
    const tenant = await newTenant(['production']);
    const other = await newTenant(['production']);
    const sdkKey = tenant.sdkKeys.production;

    const postedAt = Date.now();
    const created = await call('POST', '/v1/analyses', {
      key: tenant.apiKey,
      body: { name: 'Evaluations per 10 s', kind: 'flag-evaluations', params: { window: '10s' } },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Evaluations per 10 s', kind: 'flag-evaluations', environment: null, params: { window: '10s' } });
    const byEnv = await call('POST', '/v1/analyses', {
      key: tenant.apiKey,
      body: { name: 'Hostile flag by environment', kind: 'flag-evaluations', environment: 'production', params: { window: '10s', flagKeys: [HOSTILE_KEY], groupBy: ['environment', 'flagKey'] } },
    });
    expect(byEnv.status).toBe(201);

    await waitForStatus(tenant.apiKey, created.body.id, 'RUNNING');
    await waitForStatus(tenant.apiKey, byEnv.body.id, 'RUNNING');
    console.log(`[e2e] POST to RUNNING: ${((Date.now() - postedAt) / 1000).toFixed(1)} s for two analyses`);

    // Three flushes of one SDK a few seconds apart, so they may span two windows.
    const now = Date.now();
    const flushes = [
      fixturePayload(now, { 'new-checkout': [[0, 13], [1, 7]], [HOSTILE_KEY]: [[1, 4]] }),
      fixturePayload(now + 1500, { 'new-checkout': [[0, 2], [1, 5]], 'dark-mode': [[2, 11]] }),
      fixturePayload(now + 3000, { [HOSTILE_KEY]: [[0, 1], [1, 2]], 'dark-mode': [[2, 1]] }),
    ];
    // A multi-kind context and a feature event ride along; neither adds to the counts.
    flushes[1].push(
      { kind: 'index', creationDate: now + 1400, context: { kind: 'multi', user: { key: 'user-1' }, organization: { key: 'org-1' } } },
      { kind: 'feature', creationDate: now + 1400, key: 'new-checkout', variation: 1, value: true, default: false, version: 3, context: { kind: 'multi', user: { key: 'user-1' }, organization: { key: 'org-1' } } },
    );

    const sent = [];
    for (const [i, flush] of flushes.entries()) {
      const reply = await call('POST', '/bulk', {
        key: sdkKey, bareKey: true, body: flush, gzip: i === 2,
        headers: { 'X-LaunchDarkly-Event-Schema': '4', 'X-LaunchDarkly-Payload-ID': `payload-${i}-${now}` },
      });
      expect(reply.status).toBe(202);
      expect(reply.body).toEqual({ accepted: flush.length, rejected: [] });
      sent.push(reply);
    }
    // The SDK retries a payload with the same ID: it must count once.
    const retry = await call('POST', '/bulk', { key: sdkKey, bareKey: true, body: flushes[0], headers: { 'X-LaunchDarkly-Payload-ID': `payload-0-${now}` } });
    expect(retry.status).toBe(202);
    // Another tenant's events never reach this tenant's analysis.
    const foreign = await call('POST', '/bulk', { key: other.sdkKeys.production, bareKey: true, body: fixturePayload(now + 500, { 'new-checkout': [[0, 1000]] }) });
    expect(foreign.status).toBe(202);

    const expected = expectedRows(flushes, ['flagKey', 'variation']);
    const lastWindowEnd = Math.max(...expected.map((r) => Date.parse(r.windowEnd)));
    const rows = await eventually(
      'all windows in the results',
      async () => {
        const reply = await call('GET', `/v1/analyses/${created.body.id}/results`, { key: tenant.apiKey });
        expect(reply.status).toBe(200);
        // Rows grow while their window is open: compare once every window has closed.
        return reply.body.rows.length >= expected.length && reply.body.rows.every((r: any) => r.final) ? reply.body.rows : undefined;
      },
      120_000,
    );
    console.log(`[e2e] last window's rows final ${((Date.now() - lastWindowEnd) / 1000).toFixed(1)} s after it ended`);
    // The decided fields (final and updatedAt aside, CONTRACT §6).
    expect(projectRows(rows, ['flagKey', 'variation'])).toEqual(expected);
    // Ordered by windowStart.
    expect(rows.map((r: any) => r.windowStart)).toEqual([...rows.map((r: any) => r.windowStart)].sort());
    // The window closed without a later event: the rows came within 30 s of its end.
    expect(Date.now() - lastWindowEnd).toBeLessThan(30_000);

    const hostile = await eventually(
      'the hostile flag rows',
      async () => {
        const reply = await call('GET', `/v1/analyses/${byEnv.body.id}/results`, { key: tenant.apiKey });
        const want = expectedRows(flushes, ['flagKey', 'environment']).filter((r) => r.flagKey === HOSTILE_KEY);
        const closed = reply.body.rows.length >= want.length && reply.body.rows.every((r: any) => r.final);
        return closed ? { got: projectRows(reply.body.rows, ['flagKey', 'environment']), want } : undefined;
      },
      60_000,
    );
    expect(hostile.got).toEqual(hostile.want);

    // The stream delivers every record of this tenant a second time (a producer's retry after
    // a lost answer: Kinesis then holds the record twice), after its window has closed: nothing counts twice.
    const kinesis = kinesisClient();
    try {
      const records = await readRecords(kinesis, new Date(postedAt), (json) => json.tenant === tenant.key);
      expect(records.length).toBe(flushes.flat().length);
      await putAgain(kinesis, records);
      // A marker after the copies: its row is final only once the job has read, on every shard, a
      // heartbeat written after the marker (docs/counting.md §4), so it has read every copy too.
      const markerAt = Date.now();
      const marker = Array.from({ length: 8 }, () => ({ kind: 'summary', startDate: markerAt - 1000, endDate: markerAt, features: { marker: { counters: [{ variation: 0, version: 1, count: 1 }] } } }));
      expect((await call('POST', '/bulk', { key: sdkKey, bareKey: true, body: marker, headers: { 'X-LaunchDarkly-Payload-ID': `marker-${markerAt}` } })).status).toBe(202);
      const withMarker = expectedRows([...flushes, marker], ['flagKey', 'variation']);
      const settled = await eventually(
        'the marker row, final',
        async () => {
          const reply = await call('GET', `/v1/analyses/${created.body.id}/results`, { key: tenant.apiKey });
          const row = reply.body.rows.find((r: any) => r.flagKey === 'marker');
          return row?.evaluations === 8 && row.final === true ? reply.body.rows : undefined;
        },
        60_000,
      );
      expect(projectRows(settled, ['flagKey', 'variation'])).toEqual(withMarker);
    } finally {
      kinesis.destroy();
    }

    // Another tenant sees neither the analysis nor its results.
    expect((await call('GET', `/v1/analyses/${created.body.id}/results`, { key: other.apiKey })).status).toBe(404);
    expect((await call('GET', `/v1/analyses/${created.body.id}`, { key: other.apiKey })).status).toBe(404);

    // Free their Flink slots for the tests that follow.
    await deleteAnalysis(tenant.apiKey, created.body.id);
    await deleteAnalysis(tenant.apiKey, byEnv.body.id);
  });
});
