import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { SCHEMA_IDS } from '@flagstream/schemas';
import type { CreateEnvironmentRequest, CreateTenantRequest } from '@flagstream/schemas';
import { hashKey, newKey } from '../common/keys';
import { Problem } from '../common/problem';
import { assertValid } from '../common/schema-validator';
import { Tenant, TENANTS_REPOSITORY, TenantsRepository } from './tenants.repository';

@Injectable()
export class TenantsService {
  constructor(@Inject(TENANTS_REPOSITORY) private readonly repository: TenantsRepository) {}

  createTenant(body: unknown) {
    const request = assertValid<CreateTenantRequest>(SCHEMA_IDS.createTenant, body);
    const apiKey = newKey('fs-api');
    const tenant: Tenant = { id: randomUUID(), key: request.key, name: request.name, createdAt: new Date().toISOString() };
    if (!this.repository.createTenant(tenant, hashKey(apiKey))) throw Problem.conflict(`A tenant with key "${request.key}" already exists.`);
    return { key: tenant.key, name: tenant.name, apiKey };
  }

  createEnvironment(tenant: Tenant, body: unknown) {
    const request = assertValid<CreateEnvironmentRequest>(SCHEMA_IDS.createEnvironment, body);
    const sdkKey = newKey('sdk');
    const created = this.repository.createEnvironment(
      { id: randomUUID(), tenantId: tenant.id, key: request.key, createdAt: new Date().toISOString() },
      hashKey(sdkKey),
    );
    if (!created) throw Problem.conflict(`The environment "${request.key}" already exists.`);
    return { key: request.key, sdkKey };
  }

  listEnvironments(tenant: Tenant) {
    return { environments: this.repository.listEnvironments(tenant.id).map((e) => ({ key: e.key, createdAt: e.createdAt })) };
  }

  tenantKey(tenantId: string): string {
    const tenant = this.repository.findTenant(tenantId);
    if (!tenant) throw new Error(`no tenant ${tenantId}`);
    return tenant.key;
  }

  environmentExists(tenantId: string, key: string): boolean {
    return this.repository.findEnvironment(tenantId, key) !== undefined;
  }
}
