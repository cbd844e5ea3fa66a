import { gzipSync } from 'node:zlib';
import { ADMIN_KEY, call, newTenant } from './client';

/** Bad input answers as CONTRACT section 3 says: problem+json naming the offending field. */

const MAX_BODY = Number(process.env.FLAGSTREAM_TEST_MAX_BODY_BYTES ?? 524288);

function expectProblem(reply: { status: number; headers: Headers; body: any }, status: number, paths: string[] = []) {
  expect(reply.status).toBe(status);
  expect(reply.headers.get('content-type')).toContain('application/problem+json');
  expect(reply.body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  expect(JSON.stringify(reply.body)).not.toMatch(/\bat .*\.(js|ts):\d+/); // no stack trace
  for (const path of paths) expect(reply.body.errors.map((e: any) => e.path)).toContain(path);
}

describe('API errors', () => {
  let tenant: Awaited<ReturnType<typeof newTenant>>;
  const definition = (params: unknown, extra: object = {}) => ({ name: 'bad', kind: 'flag-evaluations', params, ...extra });

  beforeAll(async () => {
    tenant = await newTenant(['production']);
  });

  it.each([
    ['an unknown kind', { name: 'x', kind: 'flag-counts', params: { window: '10s' } }, '/kind'],
    ['a zero window', definition({ window: '0s' }), '/params/window'],
    ['a window in words', definition({ window: 'ten' }), '/params/window'],
    ['a missing window', definition({}), '/params/window'],
    ['an unknown groupBy field', definition({ window: '10s', groupBy: ['flagKey', 'color'] }), '/params/groupBy/1'],
    ['an unknown param', definition({ window: '10s', colour: 'red' }), '/params/colour'],
    ['an unknown environment', definition({ window: '10s' }, { environment: 'staging' }), '/environment'],
    ['a missing name', { kind: 'flag-evaluations', params: { window: '10s' } }, '/name'],
  ])('rejects %s with 400 naming the field, and deploys nothing', async (_what, body, path) => {
    const before = await call('GET', '/v1/analyses', { key: tenant.apiKey });
    expectProblem(await call('POST', '/v1/analyses', { key: tenant.apiKey, body }), 400, [path]);
    expectProblem(await call('POST', '/v1/analyses/validate', { key: tenant.apiKey, body }), 400, [path]);
    const after = await call('GET', '/v1/analyses', { key: tenant.apiKey });
    expect(after.body.analyses).toHaveLength(before.body.analyses.length);
  });

  it('validates a good definition and shows its SQL', async () => {
    const reply = await call('POST', '/v1/analyses/validate', { key: tenant.apiKey, body: definition({ window: '1m' }) });
    expect(reply.status).toBe(200);
    expect(reply.body.valid).toBe(true);
    expect(reply.body.sql).toContain('GROUP BY windowStart, flagKey, variation;');
  });

  it('answers 400 when the /bulk body is not an array, and 400 for broken JSON', async () => {
    const sdk = tenant.sdkKeys.production;
    expectProblem(await call('POST', '/bulk', { key: sdk, bareKey: true, body: { kind: 'summary' } }), 400, ['/']);
    expectProblem(await call('POST', '/v1/events/bulk', { key: sdk, raw: '[{"kind":', headers: { 'content-type': 'application/json' } }), 400);
  });

  it('answers 413 when the body, decompressed, is over the limit, also behind gzip', async () => {
    const sdk = tenant.sdkKeys.production;
    const big = JSON.stringify([{ kind: 'custom', creationDate: 1, key: 'x', data: 'a'.repeat(MAX_BODY) }]);
    expectProblem(await call('POST', '/bulk', { key: sdk, bareKey: true, raw: big }), 413);
    const bomb = gzipSync(Buffer.from(big));
    expect(bomb.length).toBeLessThan(MAX_BODY);
    expectProblem(await call('POST', '/bulk', { key: sdk, bareKey: true, raw: bomb, headers: { 'content-encoding': 'gzip' } }), 413);
  });

  it('keeps the valid events of a payload and lists the invalid ones', async () => {
    const reply = await call('POST', '/bulk', {
      key: tenant.sdkKeys.production, bareKey: true,
      body: [{ kind: 'identify', creationDate: 1, context: { kind: 'user', key: 'u1' } }, { kind: 'summary' }, { kind: 'teleport' }],
    });
    expect(reply.status).toBe(202);
    expect(reply.body.accepted).toBe(1);
    expect(reply.body.rejected.map((r: any) => r.index)).toEqual([1, 2]);
    expect(reply.body.rejected[1].error).toContain('/kind');
  });

  it('answers 401 for no key or an unknown key, 403 for the wrong kind of key', async () => {
    expectProblem(await call('GET', '/v1/analyses'), 401);
    expectProblem(await call('GET', '/v1/analyses', { key: 'fs-api-not-a-key' }), 401);
    expectProblem(await call('POST', '/bulk', { key: 'sdk-wrong', bareKey: true, body: [] }), 401);
    expectProblem(await call('POST', '/v1/tenants', { key: tenant.apiKey, body: { key: 'evil', name: 'Evil' } }), 403);
    expectProblem(await call('GET', '/v1/analyses', { key: tenant.sdkKeys.production }), 403);
    expectProblem(await call('POST', '/bulk', { key: tenant.apiKey, body: [] }), 403);
    expectProblem(await call('POST', '/bulk', { key: ADMIN_KEY, body: [] }), 403);
  });

  it("answers 404 for another tenant's analysis, exactly as for a missing one", async () => {
    const created = await call('POST', '/v1/analyses/validate', { key: tenant.apiKey, body: definition({ window: '10s' }) });
    expect(created.status).toBe(200);
    const mine = await call('POST', '/v1/analyses', { key: tenant.apiKey, body: definition({ window: '10s' }) });
    expect(mine.status).toBe(201);
    const other = await newTenant([]);
    const theirs = await call('GET', `/v1/analyses/${mine.body.id}`, { key: other.apiKey });
    const missing = await call('GET', '/v1/analyses/00000000-0000-4000-8000-000000000000', { key: other.apiKey });
    expectProblem(theirs, 404);
    expectProblem(missing, 404);
    expect({ ...theirs.body, detail: undefined }).toEqual({ ...missing.body, detail: undefined });
    for (const [method, path] of [['DELETE', ''], ['POST', '/stop'], ['GET', '/sql'], ['GET', '/results']]) {
      expectProblem(await call(method, `/v1/analyses/${mine.body.id}${path}`, { key: other.apiKey }), 404);
    }
    expect((await call('DELETE', `/v1/analyses/${mine.body.id}`, { key: tenant.apiKey })).status).toBe(204);
    expectProblem(await call('GET', `/v1/analyses/${mine.body.id}`, { key: tenant.apiKey }), 404);
  });

  it('answers 400 naming the earliest time for a replay before the retention', async () => {
    const mine = await call('POST', '/v1/analyses', { key: tenant.apiKey, body: definition({ window: '10s' }) });
    const reply = await call('POST', `/v1/analyses/${mine.body.id}/replay`, { key: tenant.apiKey, body: { from: '2000-01-01T00:00:00Z' } });
    expectProblem(reply, 400, ['/from']);
    expect(reply.body.errors[0].message).toMatch(/earliest time is \d{4}-\d{2}-\d{2}T/);
    await call('DELETE', `/v1/analyses/${mine.body.id}`, { key: tenant.apiKey });
  });

  it('serves /health, /openapi.json and /metrics', async () => {
    const health = await call('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', components: { stream: { status: 'ok' }, flink: { status: 'ok' }, store: { status: 'ok' } } });
    const openapi = await call('GET', '/openapi.json');
    expect(openapi.body.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/bulk', '/v1/analyses', '/v1/analyses/{id}/results', '/health']));
    const metrics = await call('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('flagstream_events_accepted_total');
  });
});
