import { gzipSync } from 'node:zlib';

/** A small HTTP client for the tests: the real API, over the network, as a user calls it. */
export const API = process.env.FLAGSTREAM_TEST_API ?? 'http://127.0.0.1:18080';
export const ADMIN_KEY = process.env.FLAGSTREAM_TEST_ADMIN_KEY ?? '';

export interface Reply<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export async function call<T = any>(
  method: string,
  path: string,
  options: { key?: string; bareKey?: boolean; body?: unknown; raw?: Buffer | string; headers?: Record<string, string>; gzip?: boolean; base?: string } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.key) headers.authorization = options.bareKey ? options.key : `Bearer ${options.key}`;
  let body: Buffer | string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  if (options.gzip && body !== undefined) {
    body = gzipSync(body);
    headers['content-encoding'] = 'gzip';
  }
  const response = await fetch(`${options.base ?? API}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: response.status, headers: response.headers, body: parsed as T };
}

let counter = 0;
/** A new tenant with one or more environments; returns its keys. */
export async function newTenant(environments: string[] = ['production']) {
  const key = `t${Date.now().toString(36)}${(counter++).toString(36)}`;
  const tenant = await call('POST', '/v1/tenants', { key: ADMIN_KEY, body: { key, name: `Tenant ${key}` } });
  if (tenant.status !== 201) throw new Error(`creating a tenant answered ${tenant.status}: ${JSON.stringify(tenant.body)}`);
  const sdkKeys: Record<string, string> = {};
  for (const env of environments) {
    const created = await call('POST', '/v1/environments', { key: tenant.body.apiKey, body: { key: env } });
    if (created.status !== 201) throw new Error(`creating an environment answered ${created.status}`);
    sdkKeys[env] = created.body.sdkKey;
  }
  return { key, apiKey: tenant.body.apiKey as string, sdkKeys };
}

export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 1000): Promise<T> {
  const started = Date.now();
  let last: unknown;
  while (Date.now() - started < timeoutMs) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export async function waitForStatus(apiKey: string, id: string, status: string, timeoutMs = 120_000) {
  return eventually(
    `analysis ${id} to be ${status}`,
    async () => {
      const reply = await call('GET', `/v1/analyses/${id}`, { key: apiKey });
      if (reply.body?.status === 'FAILED' && status !== 'FAILED') throw new Error(`analysis FAILED: ${reply.body.statusMessage}`);
      return reply.body?.status === status ? reply.body : undefined;
    },
    timeoutMs,
    500,
  );
}

/** Creates an analysis; throws unless 201. */
export async function createAnalysis(apiKey: string, definition: Record<string, unknown>): Promise<{ id: string } & Record<string, any>> {
  const reply = await call('POST', '/v1/analyses', { key: apiKey, body: definition });
  if (reply.status !== 201) throw new Error(`creating an analysis answered ${reply.status}: ${JSON.stringify(reply.body)}`);
  return reply.body;
}

export async function getAnalysis(apiKey: string, id: string): Promise<Record<string, any>> {
  const reply = await call('GET', `/v1/analyses/${id}`, { key: apiKey });
  if (reply.status !== 200) throw new Error(`GET /v1/analyses/${id} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
  return reply.body;
}

export async function getResults(apiKey: string, id: string, query = 'limit=10000'): Promise<Record<string, any>[]> {
  const reply = await call('GET', `/v1/analyses/${id}/results?${query}`, { key: apiKey });
  if (reply.status !== 200) throw new Error(`GET /v1/analyses/${id}/results answered ${reply.status}: ${JSON.stringify(reply.body)}`);
  return reply.body.rows;
}

/** Deletes an analysis (its Flink job goes too); a missing one is fine. */
export async function deleteAnalysis(apiKey: string, id: string): Promise<void> {
  const reply = await call('DELETE', `/v1/analyses/${id}`, { key: apiKey });
  if (reply.status !== 204 && reply.status !== 404) throw new Error(`DELETE /v1/analyses/${id} answered ${reply.status}`);
}

export interface FlinkJob {
  jid: string;
  name: string;
  state: string;
}
const ACTIVE_JOB_STATES = ['CREATED', 'INITIALIZING', 'RUNNING', 'RESTARTING'];

/**
 * The local cluster's jobs of the pool that computes the analysis (docs/pools.md: one job per
 * pool, named `flagstream-pool-<pool>-g<n>-<nonce>`), active ones unless `all`.
 */
export async function poolJobsOf(flinkUrl: string, apiKey: string, id: string, all = false): Promise<FlinkJob[]> {
  const pool = (await getAnalysis(apiKey, id)).pool as string | null;
  if (!pool) return [];
  const { jobs } = (await (await fetch(`${flinkUrl}/jobs/overview`)).json()) as { jobs: FlinkJob[] };
  return jobs.filter((j) => j.name.startsWith(`flagstream-pool-${pool}-g`) && (all || ACTIVE_JOB_STATES.includes(j.state)));
}
