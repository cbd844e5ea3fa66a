import { call, eventually, newTenant, poolJobsOf, waitForStatus } from './client';
import { expectedEvaluationRows, sortRows } from './reference';

/**
 * A bad analysis fixed and its history re-ingested: PUT a new definition (old rows
 * go), replay from before the first events (the windows come back, computed the new
 * way, nothing counted twice), stop with a savepoint, start again, delete.
 */

const WINDOW_MS = 5_000;
const FLINK = process.env.FLAGSTREAM_TEST_FLINK ?? 'http://127.0.0.1:18081';

function summary(endDate: number, counters: Record<string, [variation: number, count: number][]>) {
  const features: Record<string, unknown> = {};
  for (const [flag, list] of Object.entries(counters)) features[flag] = { default: 'off', counters: list.map(([variation, count]) => ({ variation, count, version: 1, value: `v${variation}` })) };
  return { kind: 'summary', startDate: endDate - 1000, endDate, features };
}

const expected = (events: ReturnType<typeof summary>[], byVariation: boolean) =>
  expectedEvaluationRows(events, { windowMs: WINDOW_MS, groupBy: byVariation ? ['flagKey', 'variation'] : ['flagKey'] });
const sort = sortRows;

describe('analysis lifecycle', () => {
  jest.setTimeout(400_000);

  it('updates, replays history exactly once, stops with a savepoint, starts again and deletes', async () => {
    const tenant = await newTenant(['production']);
    const sdk = tenant.sdkKeys.production;
    // The counts only: `final` and `updatedAt` are about when, asserted elsewhere.
    const results = async (id: string) =>
      sort(((await call('GET', `/v1/analyses/${id}/results`, { key: tenant.apiKey })).body.rows as Record<string, unknown>[]).map(({ final: _f, updatedAt: _u, ...row }) => row));
    const resultsEqual = (id: string, want: unknown[], what: string) =>
      eventually(what, async () => {
        const rows = await results(id);
        return JSON.stringify(rows) === JSON.stringify(want) ? rows : undefined;
      }, 90_000);

    const created = await call('POST', '/v1/analyses', { key: tenant.apiKey, body: { name: 'per flag', kind: 'flag-evaluations', params: { window: '5s', groupBy: ['flagKey'] } } });
    expect(created.status).toBe(201);
    const id = created.body.id;
    await waitForStatus(tenant.apiKey, id, 'RUNNING');

    const t0 = Date.now();
    const history = [summary(t0, { alpha: [[0, 3], [1, 4]], beta: [[2, 5]] }), summary(t0 + 1000, { alpha: [[1, 6]] })];
    for (const [i, event] of history.entries()) {
      const reply = await call('POST', '/bulk', { key: sdk, bareKey: true, body: [event], headers: { 'X-LaunchDarkly-Payload-ID': `h${i}-${t0}` } });
      expect(reply.status).toBe(202);
    }
    await resultsEqual(id, expected(history, false), 'the per-flag rows');

    // The fix: also by variation. The old rows go with the old definition, and the
    // analysis' history comes back computed the new way (CONTRACT §6).
    const updated = await call('PUT', `/v1/analyses/${id}`, { key: tenant.apiKey, body: { name: 'per flag and variation', kind: 'flag-evaluations', params: { window: '5s' } } });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ id, name: 'per flag and variation', params: { groupBy: ['flagKey', 'variation'] } });
    expect(await results(id)).toEqual([]);
    await waitForStatus(tenant.apiKey, id, 'RUNNING');
    expect((await call('GET', `/v1/analyses/${id}/sql`, { key: tenant.apiKey })).body.sql).toMatch(/GROUP BY windowStart, flagKey, variation;/);
    await resultsEqual(id, expected(history, true), 'the history recomputed by variation after the PUT');

    // Re-ingest the history once more: the same events, each still counted once.
    const replay = await call('POST', `/v1/analyses/${id}/replay`, { key: tenant.apiKey, body: { from: new Date(t0 - 60_000).toISOString() } });
    expect(replay.status).toBe(200);
    await waitForStatus(tenant.apiKey, id, 'RUNNING');
    await resultsEqual(id, expected(history, true), 'the replayed rows by variation');

    // Stop with a savepoint, then start again from it.
    const before = (await call('GET', `/v1/analyses/${id}`, { key: tenant.apiKey })).body;
    const stopping = await call('POST', `/v1/analyses/${id}/stop`, { key: tenant.apiKey });
    expect(stopping.status).toBe(200);
    expect(['STOPPING', 'STOPPED']).toContain(stopping.body.status);
    const stopped = await waitForStatus(tenant.apiKey, id, 'STOPPED');
    expect(Date.parse(stopped.statusChangedAt)).toBeGreaterThan(Date.parse(before.statusChangedAt));
    // Alone in its pool it stops with a savepoint; with other members the pool restarts without it.
    expect(stopped.statusMessage).toMatch(/savepoint|restarted without it/);

    expect((await call('POST', `/v1/analyses/${id}/start`, { key: tenant.apiKey })).status).toBe(200);
    await waitForStatus(tenant.apiKey, id, 'RUNNING');
    const later = summary(Date.now(), { gamma: [[0, 2]] });
    expect((await call('POST', '/bulk', { key: sdk, bareKey: true, body: [later] })).status).toBe(202);
    await resultsEqual(id, expected([...history, later], true), 'the rows after the restart');

    // Delete: the analysis, its rows and its pool's job computing it go.
    const [computing] = await poolJobsOf(FLINK, tenant.apiKey, id);
    expect(computing).toBeDefined();
    expect((await call('DELETE', `/v1/analyses/${id}`, { key: tenant.apiKey })).status).toBe(204);
    expect((await call('GET', `/v1/analyses/${id}`, { key: tenant.apiKey })).status).toBe(404);
    await eventually('the job that computed it to end', async () => {
      const jobs = (await (await fetch(`${FLINK}/jobs/${computing.jid}`)).json()) as { state: string };
      return ['CANCELED', 'FINISHED'].includes(jobs.state) ? true : undefined;
    }, 30_000);
  });

  it('shows a job that ended behind its back as FAILED, saying why, and when that changed', async () => {
    const tenant = await newTenant(['production']);
    const created = await call('POST', '/v1/analyses', { key: tenant.apiKey, body: { name: 'victim', kind: 'flag-evaluations', params: { window: '1m' } } });
    const running = await waitForStatus(tenant.apiKey, created.body.id, 'RUNNING');
    const job = (await poolJobsOf(FLINK, tenant.apiKey, created.body.id)).find((j) => j.state === 'RUNNING');
    expect(job).toBeDefined();
    await fetch(`${FLINK}/jobs/${job!.jid}?mode=cancel`, { method: 'PATCH' });
    const failed = await waitForStatus(tenant.apiKey, created.body.id, 'FAILED', 30_000);
    expect(failed.statusMessage).toContain('CANCELED');
    expect(Date.parse(failed.statusChangedAt)).toBeGreaterThan(Date.parse(running.statusChangedAt));
    expect((await call('DELETE', `/v1/analyses/${created.body.id}`, { key: tenant.apiKey })).status).toBe(204);
  });
});
