import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/config';
import { hashKey } from '../common/keys';
import { Problem } from '../common/problem';
import type { SqlValidator } from '../deployments/deployment-target';
import { MetricsService } from '../metrics/metrics.service';
import { SqliteResultsRepository } from '../results/results.repository';
import { Db, openDatabase } from '../store/database';
import type { StreamService } from '../stream/kinesis';
import { SqliteTenantsRepository, Tenant } from '../tenants/tenants.repository';
import { TenantsService } from '../tenants/tenants.service';
import { SqliteAnalysesRepository } from './analyses.repository';
import { AnalysesService } from './analyses.service';
import { AnalysisChanges } from './analysis-changes';

/**
 * The lifecycle API writes intent only (the reconciler acts): what it writes for a PUT and a
 * replay, on the real store. Flink's planner is the e2e tests' business; here it accepts all.
 */
describe('AnalysesService', () => {
  const HOUR = 3600_000;
  let dir: string;
  let db: Db;
  let service: AnalysesService;
  let analyses: SqliteAnalysesRepository;
  let results: SqliteResultsRepository;
  let changed: string[];
  let tenant: Tenant;
  /** Every script the validator was asked to plan. */
  let planned: string[];
  const oldestHeld = new Date(Date.now() - 24 * HOUR);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'analyses-'));
    db = openDatabase(dir);
    const config = loadConfig({ FLAGSTREAM_DATA_DIR: dir });
    const tenantsRepository = new SqliteTenantsRepository(db);
    const tenants = new TenantsService(tenantsRepository);
    analyses = new SqliteAnalysesRepository(db);
    results = new SqliteResultsRepository(db, config);
    planned = [];
    const validator: SqlValidator = {
      validate: async (sql) => {
        planned.push(sql);
        return sql.includes("'environment'") ? { valid: false, error: 'made up' } : { valid: true, plan: '' };
      },
      ping: async () => undefined,
    };
    const stream = { oldestHeld: async () => oldestHeld } as unknown as StreamService;
    const changes = new AnalysisChanges();
    changed = [];
    changes.onChange((id) => changed.push(id));
    service = new AnalysesService(config, analyses, results, validator, db, tenants, stream, changes, new MetricsService());
    const { apiKey } = tenants.createTenant({ key: 'acme', name: 'Acme' });
    tenant = tenantsRepository.findTenantByApiKeyHash(hashKey(apiKey))!;
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const storeRow = (id: string, generation: number) =>
    results.applyRow({ analysisId: id, generation, version: 1, dims: '[["flagKey","f"]]', row: { windowStart: '2026-11-26T04:00:00.000Z', windowEnd: '2026-11-26T04:00:10.000Z', flagKey: 'f', evaluations: 3 } });

  it('plans one script of each shape: definitions that differ only in values are not planned again, a refused shape always is', async () => {
    const def = (params: Record<string, unknown>) => ({ name: 'e', kind: 'flag-evaluations', params });
    await service.validate(tenant, def({ window: '10s', flagKeys: ['a', 'b'] }));
    await service.validate(tenant, def({ window: '1m', flagKeys: ['c', 'd'] }));
    expect(planned).toHaveLength(1);
    await service.validate(tenant, def({ window: '10s', flagKeys: ['a', 'b', 'c'] })); // another shape: three flags
    await service.validate(tenant, def({ window: '10s', groupBy: ['flagKey'] }));
    expect(planned).toHaveLength(3);
    for (let i = 0; i < 2; i++) {
      await expect(service.validate(tenant, def({ window: '10s', groupBy: ['environment'] }))).rejects.toMatchObject({ status: 400 });
    }
    expect(planned).toHaveLength(5);
  });

  it('creates an analysis as intent: PENDING, generation 1, reading from its creation window less 5 min, and tells the reconciler', async () => {
    const view = await service.create(tenant, { name: 'e', kind: 'flag-evaluations', params: { window: '10s' } });
    expect(view).toMatchObject({ status: 'PENDING', lateEvents: 0, lastResultAt: null });
    const stored = analyses.findById(view.id)!;
    expect(stored.generation).toBe(1);
    expect(Date.parse(stored.createdAt) - Date.parse(stored.readFrom!)).toBeGreaterThanOrEqual(5 * 60_000);
    expect(Date.parse(stored.createdAt) - Date.parse(stored.readFrom!)).toBeLessThan(5 * 60_000 + 10_000);
    expect(stored.sql).toContain("'scan.stream.initpos-timestamp'");
    expect(changed).toEqual([view.id]);
  });

  it('a PUT starts a new generation that recomputes from the creation window, dropping the old rows in the same step', async () => {
    const { id } = await service.create(tenant, { name: 'e', kind: 'flag-evaluations', params: { window: '10s' } });
    expect(storeRow(id, 1)).toBe('stored');
    const before = analyses.findById(id)!;
    await service.update(tenant, id, { name: 'e2', kind: 'flag-evaluations', params: { window: '20s' } });
    const after = analyses.findById(id)!;
    expect(after).toMatchObject({ generation: 2, status: 'PENDING', desiredState: 'RUNNING', resultsFrom: undefined });
    expect(Date.parse(after.readFrom!)).toBeLessThanOrEqual(Date.parse(before.createdAt) - 5 * 60_000);
    expect(results.query(tenant.id, id, { limit: 100 })).toEqual([]);
    expect(after.sql).toContain('CAST(2 AS BIGINT)');
  });

  it('a replay keeps the rows, starts a new generation, and refuses a time before what the stream holds, naming the earliest', async () => {
    const { id } = await service.create(tenant, { name: 'e', kind: 'flag-evaluations', params: { window: '10s' } });
    storeRow(id, 1);
    const from = new Date(Date.now() - HOUR + 3_000);
    await service.replay(tenant, id, { from: from.toISOString() });
    const replayed = analyses.findById(id)!;
    expect(replayed.generation).toBe(2);
    expect(replayed.resultsFrom).toBe(new Date(Math.floor(from.getTime() / 10_000) * 10_000).toISOString());
    expect(results.query(tenant.id, id, { limit: 100 })).toHaveLength(1);

    const tooEarly = service.replay(tenant, id, { from: new Date(oldestHeld.getTime() - 1000).toISOString() });
    await expect(tooEarly).rejects.toBeInstanceOf(Problem);
    await expect(tooEarly).rejects.toMatchObject({ status: 400 });
    await tooEarly.catch((problem: Problem) => expect(JSON.stringify(problem)).toContain(oldestHeld.toISOString()));
  });
});
