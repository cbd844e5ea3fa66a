import { Inject, Injectable } from '@nestjs/common';
import { DATABASE, Db } from '../store/database';

export interface Tenant {
  id: string;
  key: string;
  name: string;
  createdAt: string;
}

export interface Environment {
  id: string;
  tenantId: string;
  /** The owning tenant's key, stamped on every event record of this environment. */
  tenantKey: string;
  key: string;
  createdAt: string;
}

/** Where tenants, environments and their key hashes live. */
export interface TenantsRepository {
  createTenant(tenant: Tenant, apiKeyHash: string): boolean;
  findTenantByApiKeyHash(hash: string): Tenant | undefined;
  findTenant(id: string): Tenant | undefined;
  createEnvironment(environment: Omit<Environment, 'tenantKey'>, sdkKeyHash: string): boolean;
  findEnvironmentBySdkKeyHash(hash: string): Environment | undefined;
  findEnvironment(tenantId: string, key: string): Environment | undefined;
  listEnvironments(tenantId: string): Environment[];
}
export const TENANTS_REPOSITORY = Symbol('TenantsRepository');

interface TenantRow { id: string; key: string; name: string; created_at: string }
interface EnvironmentRow { id: string; tenant_id: string; tenant_key: string; key: string; created_at: string }

const toTenant = (r: TenantRow): Tenant => ({ id: r.id, key: r.key, name: r.name, createdAt: r.created_at });
const toEnvironment = (r: EnvironmentRow): Environment => ({ id: r.id, tenantId: r.tenant_id, tenantKey: r.tenant_key, key: r.key, createdAt: r.created_at });

const ENVIRONMENT_SELECT =
  'SELECT e.id, e.tenant_id, t.key AS tenant_key, e.key, e.created_at FROM environments e JOIN tenants t ON t.id = e.tenant_id';

/** Environments kept by SDK key hash, at most (then it starts again). */
const MAX_CACHED_ENVIRONMENTS = 10_000;

@Injectable()
export class SqliteTenantsRepository implements TenantsRepository {
  /**
   * Environments found by their SDK key's hash: every events API request asks. Safe to keep,
   * because an environment never changes and its key is never revoked (nothing updates or
   * deletes one); a miss is not kept, since the key may be created next. Whatever comes to
   * rotate or revoke SDK keys must clear this.
   */
  private readonly environmentsBySdkKeyHash = new Map<string, Environment>();

  constructor(@Inject(DATABASE) private readonly db: Db) {}

  /** false when the key is taken. */
  createTenant(t: Tenant, apiKeyHash: string): boolean {
    const result = this.db
      .prepare('INSERT INTO tenants (id, key, name, api_key_hash, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING')
      .run(t.id, t.key, t.name, apiKeyHash, t.createdAt);
    return result.changes === 1;
  }

  findTenantByApiKeyHash(hash: string): Tenant | undefined {
    const row = this.db.prepare('SELECT id, key, name, created_at FROM tenants WHERE api_key_hash = ?').get(hash) as TenantRow | undefined;
    return row && toTenant(row);
  }

  findTenant(id: string): Tenant | undefined {
    const row = this.db.prepare('SELECT id, key, name, created_at FROM tenants WHERE id = ?').get(id) as TenantRow | undefined;
    return row && toTenant(row);
  }

  createEnvironment(e: Omit<Environment, 'tenantKey'>, sdkKeyHash: string): boolean {
    const result = this.db
      .prepare('INSERT INTO environments (id, tenant_id, key, sdk_key_hash, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, key) DO NOTHING')
      .run(e.id, e.tenantId, e.key, sdkKeyHash, e.createdAt);
    return result.changes === 1;
  }

  findEnvironmentBySdkKeyHash(hash: string): Environment | undefined {
    const known = this.environmentsBySdkKeyHash.get(hash);
    if (known) return known;
    const row = this.db.prepare(`${ENVIRONMENT_SELECT} WHERE e.sdk_key_hash = ?`).get(hash) as EnvironmentRow | undefined;
    if (!row) return undefined;
    const environment = Object.freeze(toEnvironment(row));
    if (this.environmentsBySdkKeyHash.size >= MAX_CACHED_ENVIRONMENTS) this.environmentsBySdkKeyHash.clear();
    this.environmentsBySdkKeyHash.set(hash, environment);
    return environment;
  }

  findEnvironment(tenantId: string, key: string): Environment | undefined {
    const row = this.db.prepare(`${ENVIRONMENT_SELECT} WHERE e.tenant_id = ? AND e.key = ?`).get(tenantId, key) as EnvironmentRow | undefined;
    return row && toEnvironment(row);
  }

  listEnvironments(tenantId: string): Environment[] {
    const rows = this.db.prepare(`${ENVIRONMENT_SELECT} WHERE e.tenant_id = ? ORDER BY e.key`).all(tenantId) as EnvironmentRow[];
    return rows.map(toEnvironment);
  }
}
