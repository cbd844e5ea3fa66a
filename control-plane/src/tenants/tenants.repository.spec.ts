import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Db, openDatabase } from '../store/database';
import { SqliteTenantsRepository } from './tenants.repository';

describe('SqliteTenantsRepository: environments by SDK key hash', () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-tenants-'));
    db = openDatabase(dir);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds a key created after it was asked for in vain, and the same environment every time after', () => {
    const repo = new SqliteTenantsRepository(db);
    expect(repo.createTenant({ id: 't1', key: 'acme', name: 'Acme', createdAt: '2026-01-01T00:00:00Z' }, 'api-hash')).toBe(true);
    expect(repo.findEnvironmentBySdkKeyHash('sdk-hash')).toBeUndefined();
    expect(repo.createEnvironment({ id: 'e1', tenantId: 't1', key: 'production', createdAt: '2026-01-01T00:00:00Z' }, 'sdk-hash')).toBe(true);
    const expected = { id: 'e1', tenantId: 't1', tenantKey: 'acme', key: 'production', createdAt: '2026-01-01T00:00:00Z' };
    expect(repo.findEnvironmentBySdkKeyHash('sdk-hash')).toEqual(expected);
    expect(repo.findEnvironmentBySdkKeyHash('sdk-hash')).toEqual(expected);
    // Another tenant's key finds only its own environment.
    repo.createTenant({ id: 't2', key: 'other', name: 'Other', createdAt: '2026-01-01T00:00:00Z' }, 'api-hash-2');
    repo.createEnvironment({ id: 'e2', tenantId: 't2', key: 'production', createdAt: '2026-01-01T00:00:00Z' }, 'sdk-hash-2');
    expect(repo.findEnvironmentBySdkKeyHash('sdk-hash-2')).toMatchObject({ id: 'e2', tenantKey: 'other' });
    expect(repo.findEnvironmentBySdkKeyHash('sdk-hash')).toMatchObject({ id: 'e1', tenantKey: 'acme' });
  });
});
