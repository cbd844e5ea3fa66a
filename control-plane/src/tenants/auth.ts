import { CanActivate, ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { CONFIG, Config } from '../config/config';
import { hashKey, sameHash } from '../common/keys';
import { Problem } from '../common/problem';
import { Environment, Tenant, TENANTS_REPOSITORY, TenantsRepository } from './tenants.repository';

export type Caller =
  | { role: 'admin' }
  | { role: 'tenant'; tenant: Tenant }
  | { role: 'sdk'; environment: Environment };

export type Role = Caller['role'];
const ROLE = 'flagstream:role';
/** The one kind of key an endpoint accepts; any other valid key answers 403. */
export const Requires = (role: Role) => SetMetadata(ROLE, role);

export type AuthedRequest = Request & { caller?: Caller };

/** Resolves the caller from its key (only hashes are stored) and checks the endpoint's role. */
@Injectable()
export class KeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(TENANTS_REPOSITORY) private readonly tenants: TenantsRepository,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const role = this.reflector.getAllAndOverride<Role | undefined>(ROLE, [context.getHandler(), context.getClass()]);
    if (!role) return true;
    const req = context.switchToHttp().getRequest<AuthedRequest>();
    const key = keyOf(req.headers.authorization, role === 'sdk');
    if (!key) throw new Problem(401, 'Unauthorized', 'Send your key as "Authorization: Bearer <key>".');
    const caller = this.identify(key, role);
    if (!caller) throw new Problem(401, 'Unauthorized', 'The key is not valid.');
    if (caller.role !== role) throw new Problem(403, 'Forbidden', `This endpoint needs ${article(role)} key; ${article(caller.role)} key may not do this.`);
    req.caller = caller;
    return true;
  }

  /** Hashed once: every request compares against it. */
  private adminKeyHash?: string;

  /** The key's caller; the kind the endpoint needs is looked up first (the events API's every request is an SDK's). */
  private identify(key: string, expected: Role): Caller | undefined {
    const hash = hashKey(key);
    if (expected === 'sdk') {
      const environment = this.tenants.findEnvironmentBySdkKeyHash(hash);
      if (environment) return { role: 'sdk', environment };
    }
    if (this.config.adminKey) this.adminKeyHash ??= hashKey(this.config.adminKey);
    if (this.adminKeyHash && sameHash(hash, this.adminKeyHash)) return { role: 'admin' };
    const tenant = this.tenants.findTenantByApiKeyHash(hash);
    if (tenant) return { role: 'tenant', tenant };
    if (expected !== 'sdk') {
      const environment = this.tenants.findEnvironmentBySdkKeyHash(hash);
      if (environment) return { role: 'sdk', environment };
    }
    return undefined;
  }
}

function article(role: Role): string {
  return { admin: 'an admin', tenant: 'a tenant API', sdk: 'an SDK' }[role];
}

/** "Bearer <key>"; event endpoints also take the bare key, as LaunchDarkly SDKs send it. */
export function keyOf(header: string | undefined, allowBare: boolean): string | undefined {
  if (!header) return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1];
  if (allowBare && /^\S+$/.test(header.trim())) return header.trim();
  return undefined;
}

export function tenantOf(req: AuthedRequest): Tenant {
  if (req.caller?.role !== 'tenant') throw new Error('tenantOf called on a route without @Requires("tenant")');
  return req.caller.tenant;
}

export function environmentOf(req: AuthedRequest): Environment {
  if (req.caller?.role !== 'sdk') throw new Error('environmentOf called on a route without @Requires("sdk")');
  return req.caller.environment;
}
