import { call, eventually, newTenant, waitForStatus } from './client';
import { expectedEvaluationRows, sortRows } from './reference';

/**
 * A job that starts behind — a replay, a recomputation after a PUT, a restore after
 * downtime — reads a backlog, faster on one shard than on the other. Nothing of it may be
 * lost or counted twice (this replaces the manual flink-sql/scripts/verify-backlog.cjs,
 * which showed whole windows lost when windows were closed by a watermark). The backlog
 * is 30 s of payloads written in real time, their records spread over both shards.
 */

const WINDOW_MS = 5_000;

function summary(endDate: number, flag: string, count: number) {
  return { kind: 'summary', startDate: endDate - 500, endDate, features: { [flag]: { default: false, counters: [{ variation: 0, version: 1, value: false, count }] } } };
}

describe('a backlog', () => {
  jest.setTimeout(300_000);

  it('is counted exactly by a replay and by a new analysis that starts behind it', async () => {
    const tenant = await newTenant(['production']);
    const sdk = tenant.sdkKeys.production;
    // The stream is shared with other tenants and heartbeats, so the first analysis runs
    // (and writes heartbeats) while the backlog builds; the second is created after it.
    const first = await call('POST', '/v1/analyses', { key: tenant.apiKey, body: { name: 'live', kind: 'flag-evaluations', params: { window: '5s', groupBy: ['flagKey'] } } });
    expect(first.status).toBe(201);
    await waitForStatus(tenant.apiKey, first.body.id, 'RUNNING');

    const sent: ReturnType<typeof summary>[] = [];
    const started = Date.now();
    for (let i = 0; Date.now() - started < 30_000; i++) {
      const now = Date.now();
      const payload = [summary(now, 'busy', 1 + (i % 5)), summary(now - 700, 'busy', 2), summary(now - 1400, 'quiet', 3)];
      const reply = await call('POST', '/bulk', { key: sdk, bareKey: true, body: payload, headers: { 'X-LaunchDarkly-Payload-ID': `backlog-${started}-${i}` } });
      expect(reply.status).toBe(202);
      sent.push(...payload);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const want = expectedEvaluationRows(sent, { windowMs: WINDOW_MS, groupBy: ['flagKey'] });
    const counts = async (id: string) =>
      sortRows(((await call('GET', `/v1/analyses/${id}/results?limit=10000`, { key: tenant.apiKey })).body.rows as Record<string, unknown>[]).map(({ final: _f, updatedAt: _u, ...r }) => r));
    const exact = (id: string, what: string) =>
      eventually(what, async () => (JSON.stringify(await counts(id)) === JSON.stringify(want) ? true : undefined), 120_000).catch(async (error: Error) => {
        throw new Error(`${error.message}\nwant ${JSON.stringify(want)}\ngot  ${JSON.stringify(await counts(id))}`);
      });
    await exact(first.body.id, 'the live rows');

    // A replay reads the whole backlog again: the same rows, nothing twice.
    const replay = await call('POST', `/v1/analyses/${first.body.id}/replay`, { key: tenant.apiKey, body: { from: new Date(started - 10_000).toISOString() } });
    expect(replay.status).toBe(200);
    await waitForStatus(tenant.apiKey, first.body.id, 'RUNNING');
    await exact(first.body.id, 'the replayed rows');

    // A new analysis created after the backlog reads its creation window and the 5 min before.
    const second = await call('POST', '/v1/analyses', { key: tenant.apiKey, body: { name: 'late starter', kind: 'flag-evaluations', params: { window: '5s', groupBy: ['flagKey'] } } });
    expect(second.status).toBe(201);
    await waitForStatus(tenant.apiKey, second.body.id, 'RUNNING');
    await exact(second.body.id, 'the rows of the analysis that started behind');
    // Every window has closed: all rows final.
    await eventually('every row final', async () => {
      const rows = (await call('GET', `/v1/analyses/${second.body.id}/results?limit=10000`, { key: tenant.apiKey })).body.rows as { final: boolean }[];
      return rows.length > 0 && rows.every((r) => r.final) ? true : undefined;
    }, 60_000);
    // Each analysis holds a slot of the local cluster.
    for (const id of [first.body.id, second.body.id]) expect((await call('DELETE', `/v1/analyses/${id}`, { key: tenant.apiKey })).status).toBe(204);
  });
});
