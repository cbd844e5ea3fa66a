import { API, call, getAnalysis, newTenant, waitForStatus } from './client';
import { prng, SEED } from './seed';
import {
  activePoolJobs, finalExactSince, inBatches, p50max, PoolJobSampler, rowKeyOf, RowsMonitor, stackMaxPools,
} from './pools-watch';
import { RecordingProxy, sleep } from './proxy';
import {
  Delivery, deliveredPayloads, Dimension, evaluationsByFlag, ExpectedResults, expectedResults, projectRows, unconfirmedPayloads, WrittenEvent, writtenParts,
} from './reference';
import { kinesisClient, readRecords } from './stream';
import { SdkHost } from './sdk-host';
import { BULK_FLAGS, SDK_CONTEXTS, SDK_FLAGS } from './traffic';

/**
 * Pools (docs/pools.md, CONTRACT §6 and §8): a hundred analyses of ten tenants share at most
 * FLAGSTREAM_MAX_POOLS Flink jobs, each reading the events stream once, and every one of them
 * still counts exactly, also while other analyses are added, changed, stopped, started and
 * deleted around them. Only the HTTP APIs are used: Flagstream's and Flink's REST API.
 *
 * 1. 10 tenants × 10 analyses (windows 5 s to 1 min, flag filters, every groupBy shape,
 *    environment scoping on the tenants with two environments), created in one burst. While
 *    they start and for the rest of the file, a sampler reads Flink's job list every second:
 *    never more than two active jobs a pool (its new job next to the one it replaces, until
 *    the new one caught up) nor 2 × FLAGSTREAM_MAX_POOLS (≤ 20) in all, one job a pool once
 *    settled, and every pool job has exactly one vertex reading the `events` source.
 * 2. Traffic for every tenant through a recording proxy (test/e2e/proxy.ts): the real
 *    LaunchDarkly Node SDK (test/e2e/sdk-host.ts, its own 5 s flush timer) for tenants 0–2,
 *    summaries posted to /bulk for the others. Expectations come from what the API accepted
 *    (2xx), through reference.ts, never from the control plane.
 * 3. While traffic flows: an analysis is added (tenant 3), one changed by PUT (tenant 0), one
 *    stopped (tenant 1), one deleted (tenant 4), then the stopped one started. Every other
 *    analysis is polled about once a second throughout: a row seen `final` must never show
 *    fewer evaluations later (nor vanish), and no row may ever show more than the reference.
 *    For windows that ended during the changes, how long after its end each analysis' row
 *    was final and exact is logged (not asserted: timings belong in `npm run bench -- pools`).
 * 4. In the end every analysis' rows equal the reference, the changed ones included:
 *    - added: it counts its flag, which the tenant sends only once the analysis exists;
 *    - PUT: CONTRACT §6, its results are replaced and cover the same history, recomputed the
 *      new way from the analysis' creation: every event of the tenant, counted the new way;
 *    - stopped and started: README/CONTRACT §8, a stop takes a savepoint and a start resumes
 *      from it, and CONTRACT §5, every accepted evaluation counts exactly once: so all of its
 *      windows are exact, those before the stop, while it was stopped and after the start;
 *      none of its rows seen final loses counts meanwhile (a final row only changes by late
 *      events, flag-evaluations.row.schema.json);
 *    - deleted: 404, its results too.
 *
 * Alone: `npx jest test/e2e/pools.e2e.ts --selectProjects e2e`. FLAGSTREAM_TEST_SEED replays
 * the random choices of a run (printed at the start).
 */

const TENANTS = 10;
const PER_TENANT = 10;
const SDK_TENANTS = new Set([0, 1, 2]);
/** Which tenant and which of its analyses each change touches (all different tenants). */
const PUT_AT = { tenant: 0, analysis: 0 };
const STOP_AT = { tenant: 1, analysis: 3 }; // 5 s windows, scoped to 'production' of two environments
const ADD_TENANT = 3;
const DELETE_AT = { tenant: 4, analysis: 5 };
/** Traffic before the first change: rows of every 5 s and 10 s analysis are final by then. */
const STEADY_MS = 20_000;
/** Events flow this long while the one analysis is stopped. */
const STOPPED_MS = 12_000;
const DEFAULT_GROUP_BY: Dimension[] = ['flagKey', 'variation'];
const WINDOWS: [string, number][] = [['5s', 5_000], ['10s', 10_000], ['30s', 30_000], ['1m', 60_000]];
const GROUP_BYS: (Dimension[] | undefined)[] = [undefined, ['flagKey'], ['variation'], ['flagKey', 'variation', 'environment'], ['environment', 'flagKey'], ['flagKey', 'variation']];

/** Sent by the added analysis' tenant only once that analysis exists (see 4. above). */
const ADDED_FLAG = 'pool-added';

const rng = prng(SEED);
const pick = <T>(xs: T[]): T => xs[Math.floor(rng() * xs.length)];
const log = (line: string) => console.log(`[pools] ${line}`);
const secs = (x: number | undefined) => (x === undefined ? 'n/a' : `${(x / 1000).toFixed(1)} s`);
const iso = (t: number) => new Date(t).toISOString();

type Role = 'untouched' | 'added' | 'put' | 'stopped' | 'deleted';

interface TenantRun {
  index: number;
  kind: 'sdk' | 'bulk';
  envs: string[];
  keys: Awaited<ReturnType<typeof newTenant>>;
  /** Proxy host names of its senders, `<s|b><tenant>.<environment>`. */
  hosts: string[];
}

interface Spec {
  label: string;
  tenant: TenantRun;
  id: string;
  definition: { name: string; kind: 'flag-evaluations'; environment?: string; params: { window: string; flagKeys?: string[]; groupBy?: Dimension[] } };
  windowMs: number;
  groupBy: Dimension[];
  role: Role;
  pool?: string;
  expected?: ExpectedResults;
}

const envOfHost = (host: string) => host.split('.')[1];

function definitionOf(t: TenantRun, j: number): Spec['definition'] {
  const [window] = WINDOWS[(t.index + j) % WINDOWS.length];
  const groupBy = GROUP_BYS[(t.index + j) % GROUP_BYS.length];
  const flagKeys = j % 3 === 1 ? (t.kind === 'sdk' ? ['dark-mode', 'search-v2', 'ghost-flag'] : ['checkout', 'search']) : undefined;
  let environment: string | undefined;
  if (t.envs.length > 1) environment = j % 4 === 2 ? 'staging' : j % 4 === 3 ? 'production' : undefined;
  else if (j % 5 === 4) environment = 'production';
  return {
    name: `pools t${t.index} a${j}`,
    kind: 'flag-evaluations',
    ...(environment ? { environment } : {}),
    params: { window, ...(flagKeys ? { flagKeys } : {}), ...(groupBy ? { groupBy } : {}) },
  };
}

const windowMsOf = (window: string) => WINDOWS.find(([w]) => w === window)![1];
const specOf = (label: string, tenant: TenantRun, id: string, definition: Spec['definition'], role: Role): Spec => ({
  label, tenant, id, definition, role, windowMs: windowMsOf(definition.params.window), groupBy: definition.params.groupBy ?? DEFAULT_GROUP_BY,
});

/** POST /v1/analyses; a 503 (validator busy under the burst) is sent again, as a client would. */
async function create(apiKey: string, definition: Spec['definition'], counters: { retried: number }): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const reply = await call('POST', '/v1/analyses', { key: apiKey, body: definition });
    if (reply.status === 201) return reply.body.id;
    if (reply.status !== 503 || attempt >= 5) throw new Error(`creating ${definition.name} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    counters.retried++;
    await sleep(1000 * Number(reply.headers.get('retry-after') ?? 1));
  }
}

/** The reference for one analysis: the accepted payloads of its tenant (of its environment, if scoped), counted its way. */
function expectationOf(spec: Spec, deliveries: Delivery[]): ExpectedResults {
  const scope = spec.definition.environment;
  return expectedResults(scope ? deliveries.filter((d) => envOfHost(d.host) === scope) : deliveries, {
    windowMs: spec.windowMs,
    groupBy: spec.groupBy,
    flagKeys: spec.definition.params.flagKeys,
    environmentOf: (d) => envOfHost(d.host),
  });
}

const exactAndFinal = (rows: Record<string, any>[], spec: Spec) =>
  JSON.stringify(projectRows(rows, spec.groupBy)) === JSON.stringify(spec.expected!.rows) && rows.every((r) => r.final === true);

// ---------------------------------------------------------------------------------

const startedAt = Date.now();
const MAX_POOLS = stackMaxPools();
/** Readers of the events stream at any time: a pool reads twice while it hands over to a new job. */
const MAX_READERS = 2 * MAX_POOLS.value;
const sampler = new PoolJobSampler(MAX_READERS, 2000);
// Every 4 s: often enough to see a final row lose counts, light enough for a 2-core machine running 100 analyses.
const monitor = new RowsMonitor(4000, 3);
const tenants: TenantRun[] = [];
const specs: Spec[] = [];
const hosts = new Map<string, SdkHost>();
let proxy: RecordingProxy | undefined;
let aborted = false;
let trafficUntil = Number.POSITIVE_INFINITY;
let addedExists = false;
const creation = { retried: 0, burstMs: 0, runningMs: 0 };
/** What test 2 saw; the later tests read it. */
const run: {
  changesFrom?: number;
  changesTo?: number;
  /** The stopped analysis was STOPPED from stoppedAt until its start was asked at startAt. */
  stoppedAt?: number;
  startAt?: number;
  steps: { what: string; ms: number }[];
  trafficFrom?: number;
  trafficTo?: number;
  restartedPools: Set<string>;
  settled?: boolean;
  final?: Map<string, { rows: Record<string, any>[]; analysis?: Record<string, any> }>;
} = { steps: [], restartedPools: new Set() };

const byRole = (role: Role) => specs.filter((s) => s.role === role);
const one = (role: Role) => {
  const spec = byRole(role)[0];
  if (!spec) throw new Error(`no ${role} analysis: an earlier step failed`);
  return spec;
};

async function poolsOf(list: Spec[]): Promise<void> {
  await inBatches(list, 8, async (spec) => {
    const analysis = await getAnalysis(spec.tenant.keys.apiKey, spec.id);
    spec.pool = analysis.pool ?? undefined;
  });
}

async function allRunning(list: Spec[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const byTenant = new Map<TenantRun, Spec[]>();
  for (const s of list) byTenant.set(s.tenant, [...(byTenant.get(s.tenant) ?? []), s]);
  let statuses = new Map<string, string>();
  for (;;) {
    statuses = new Map();
    for (const [tenant, mine] of byTenant) {
      const reply = await call('GET', '/v1/analyses', { key: tenant.keys.apiKey });
      const seen = new Map<string, string>(((reply.body?.analyses ?? []) as { id: string; status: string }[]).map((a) => [a.id, a.status]));
      for (const s of mine) statuses.set(s.id, seen.get(s.id) ?? 'missing');
    }
    if ([...statuses.values()].every((s) => s === 'RUNNING')) return;
    if (Date.now() > deadline) {
      const counts: Record<string, number> = {};
      for (const s of statuses.values()) counts[s] = (counts[s] ?? 0) + 1;
      throw new Error(`not every analysis RUNNING within ${timeoutMs / 1000} s: ${JSON.stringify(counts)}`);
    }
    await sleep(1000);
  }
}

// ---------------------------------------------------------------------------------
// Traffic

async function sendBulk(t: TenantRun, host: string, events: unknown[], payloadId: string): Promise<void> {
  // Like an SDK: one more attempt a second later with the same payload ID.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const reply = await call('POST', '/bulk', {
        base: proxy!.eventsUri(host),
        key: t.keys.sdkKeys[envOfHost(host)],
        bareKey: true,
        raw: JSON.stringify(events),
        headers: { 'content-type': 'application/json', 'X-LaunchDarkly-Event-Schema': '4', 'X-LaunchDarkly-Payload-ID': payloadId },
      });
      if (reply.status >= 200 && reply.status < 300) return;
    } catch {
      /* the proxy records what happened */
    }
    await sleep(1000);
  }
}

async function bulkTraffic(t: TenantRun): Promise<void> {
  for (let n = 0; Date.now() < trafficUntil - 1500 && !aborted; n++) {
    const env = pick(t.envs);
    const now = Date.now();
    const features: Record<string, { default: boolean; counters: { value: number; variation: number; version: number; count: number }[] }> = {};
    const flags = [...BULK_FLAGS];
    if (t.index === ADD_TENANT && addedExists) flags.push([ADDED_FLAG, [0, 1]]);
    for (const [flag, variations] of flags) {
      const counters = variations.filter(() => rng() < 0.6).map((v) => ({ value: v, variation: v, version: 3, count: 1 + Math.floor(rng() * 20) }));
      if (counters.length) features[flag] = { default: false, counters };
    }
    if (Object.keys(features).length) {
      await sendBulk(t, `b${t.index}.${env}`, [{ kind: 'summary', startDate: now - 1000, endDate: now, features }], `pools-${t.keys.key}-${n}`);
    }
    await sleep(1200 + rng() * 1600); // gentle: the emulator slows as its shards fill (issue 9)
  }
}

/** Evaluations on one SDK host until shortly before the traffic ends; its last summary goes with close() (a flush). */
async function sdkTraffic(host: SdkHost): Promise<void> {
  while (Date.now() < trafficUntil - 4000 && !aborted) {
    const flag = pick(SDK_FLAGS);
    await host.evaluate(flag, pick(SDK_CONTEXTS), flag === 'pricing-experiment' ? 1 : pick([1, 1, 2, 3, 5, 8, 13]));
    await sleep(250 + rng() * 500);
  }
  if (aborted) return;
  await host.close().catch(async (error) => {
    log(`SDK host ${host.name}: ${(error as Error).message}; its log: ${JSON.stringify(await host.log().catch(() => []))}`);
    host.kill();
  });
}

/** The events on the stream of the given payload IDs (the header's; the stream's adds `#hash`), written since `since`. */
async function writtenEventsOf(headerIds: Set<string>, since: number): Promise<(WrittenEvent & { tenant: string })[]> {
  const client = kinesisClient();
  try {
    const records = await readRecords(client, new Date(since), (j) => typeof j?.payloadId === 'string' && headerIds.has(j.payloadId.slice(0, j.payloadId.lastIndexOf('#'))));
    return records.map((r) => ({ tenant: r.json.tenant, payloadId: r.json.payloadId, environment: r.json.environment, eventIndex: r.json.eventIndex, receivedAt: r.json.receivedAt }));
  } finally {
    client.destroy();
  }
}

// ---------------------------------------------------------------------------------

describe('pools: 100 analyses share at most FLAGSTREAM_MAX_POOLS jobs and stay exact while others change (docs/pools.md, CONTRACT §6, §8)', () => {
  jest.setTimeout(600_000);

  beforeAll(async () => {
    log(`seed ${SEED} (FLAGSTREAM_TEST_SEED), API ${API}, FLAGSTREAM_MAX_POOLS=${MAX_POOLS.value} from ${MAX_POOLS.source}`);
    for (let i = 0; i < TENANTS; i++) {
      const envs = i % 2 === 1 ? ['production', 'staging'] : ['production'];
      const kind = SDK_TENANTS.has(i) ? 'sdk' : 'bulk';
      tenants.push({ index: i, kind, envs, keys: await newTenant(envs), hosts: envs.map((e) => `${kind === 'sdk' ? 's' : 'b'}${i}.${e}`) });
    }
    sampler.start();
    await sleep(1500); // a sample or two before the burst
    const burstAt = Date.now();
    const created = await Promise.all(
      tenants.flatMap((t) => Array.from({ length: PER_TENANT }, async (_, j) => {
        const definition = definitionOf(t, j);
        const id = await create(t.keys.apiKey, definition, creation);
        return specOf(`t${t.index}/a${j}`, t, id, definition, 'untouched');
      })),
    );
    creation.burstMs = Date.now() - burstAt;
    specs.push(...created);
    specOfAt(PUT_AT).role = 'put';
    specOfAt(STOP_AT).role = 'stopped';
    specOfAt(DELETE_AT).role = 'deleted';
    log(`${specs.length} analyses created in ${secs(creation.burstMs)} (${creation.retried} creations sent again after a 503)`);
    await allRunning(specs, 150_000);
    creation.runningMs = Date.now() - burstAt;
    log(`all ${specs.length} RUNNING ${secs(creation.runningMs)} after the burst began; at most ${sampler.maxActive} active flagstream- jobs seen in ${sampler.samples} samples`);
  }, 200_000);

  afterAll(async () => {
    aborted = true;
    for (const h of hosts.values()) h.kill();
    await monitor.stop();
    await sampler.stop();
    await proxy?.stop();
    // Every analysis this file made goes: the next files start with the pools they need.
    await inBatches(specs.filter((s) => s.role !== 'deleted'), 8, (s) => call('DELETE', `/v1/analyses/${s.id}`, { key: s.tenant.keys.apiKey }).catch(() => undefined));
    log(`the whole file took ${secs(Date.now() - startedAt)}`);
  }, 120_000);

  function specOfAt(at: { tenant: number; analysis: number }): Spec {
    return specs.find((s) => s.label === `t${at.tenant}/a${at.analysis}`)!;
  }

  it('1. runs 100 analyses of 10 tenants in at most FLAGSTREAM_MAX_POOLS jobs, each reading the events stream once', async () => {
    expect(specs).toHaveLength(TENANTS * PER_TENANT);
    // Every shape of definition is among them.
    expect(new Set(specs.map((s) => s.definition.params.window))).toEqual(new Set(WINDOWS.map(([w]) => w)));
    expect(new Set(specs.map((s) => JSON.stringify(s.groupBy))).size).toBeGreaterThanOrEqual(5);
    expect(specs.some((s) => s.definition.environment === 'staging')).toBe(true);
    expect(specs.some((s) => s.definition.params.flagKeys)).toBe(true);

    await poolsOf(specs);
    const pools = new Map<string, number>();
    for (const s of specs) pools.set(String(s.pool), (pools.get(String(s.pool)) ?? 0) + 1);
    log(`members per pool: ${JSON.stringify(Object.fromEntries([...pools].sort()))}`);
    expect(specs.filter((s) => typeof s.pool !== 'string' || !s.pool).map((s) => s.label)).toEqual([]);
    expect(pools.size).toBeLessThanOrEqual(MAX_POOLS.value);

    // Each pool the analyses name runs as one active job named after it (looked at again for a
    // few seconds: the job list and the analyses are two reads, a restart may fall between).
    const onePerPool = (jobs: Awaited<ReturnType<typeof activePoolJobs>>) =>
      [...pools.keys()].map((pool) => ({ pool, jobs: jobs.filter((j) => j.pool === pool && j.state === 'RUNNING').length }));
    let jobs = await activePoolJobs();
    // (the jobs a pool's new one replaced are cancelled once it caught up)
    for (let i = 0; i < 90 && onePerPool(jobs).some((p) => p.jobs !== 1); i++) {
      await sleep(1000);
      jobs = await activePoolJobs();
    }
    log(`active flagstream- jobs now: ${jobs.map((j) => `${j.name} (${j.state})`).join(', ')}`);
    expect(jobs.length).toBeLessThanOrEqual(MAX_POOLS.value);
    expect(onePerPool(jobs)).toEqual([...pools.keys()].map((pool) => ({ pool, jobs: 1 })));

    // At every sample so far (while they were created and started): at most two active jobs a
    // pool and 2 × MAX_POOLS (≤ 20) in all; every pool job seen running had exactly one vertex
    // reading the events source.
    await sampler.sample();
    for (const job of jobs) if (job.state === 'RUNNING') expect(sampler.checked.has(job.jid)).toBe(true);
    const example = [...sampler.checked.values()][0];
    if (example) log(`vertices of ${example.name}: ${JSON.stringify(example.vertices)}`);
    expect(sampler.samples).toBeGreaterThan(5);
    expect(sampler.violations).toEqual([]);
    expect([...sampler.checked.values()].filter((c) => c.sources.length !== 1)).toEqual([]);
  });

  it('2–3. with traffic for every tenant, adds, changes (PUT), stops, deletes and starts analyses; no final row of any other analysis ever loses counts', async () => {
    const untouched = byRole('untouched');
    expect(untouched.length).toBe(TENANTS * PER_TENANT - 3);
    for (const s of specs) monitor.watch({ label: s.label, apiKey: s.tenant.keys.apiKey, id: s.id, groupBy: s.groupBy, checkFinal: true });

    // Senders: the real SDK for tenants 0–2 (one host per environment), /bulk for the rest.
    proxy = await new RecordingProxy({ target: API }).start();
    for (const t of tenants.filter((x) => x.kind === 'sdk')) {
      for (const host of t.hosts) {
        hosts.set(host, await SdkHost.start({ name: host, sdkKey: t.keys.sdkKeys[envOfHost(host)], eventsUri: proxy.eventsUri(host), flushIntervalSeconds: 5 }));
      }
    }
    run.trafficFrom = Date.now();
    monitor.start();
    const traffic = [
      ...tenants.filter((t) => t.kind === 'bulk').map((t) => bulkTraffic(t)),
      ...[...hosts.values()].map((h) => sdkTraffic(h)),
    ];
    await sleep(STEADY_MS);

    // The changes, one after another, each waited for: each restarts a pool.
    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const t = Date.now();
      const value = await fn();
      run.steps.push({ what, ms: Date.now() - t });
      log(`${what}: ${secs(Date.now() - t)}`);
      return value;
    };
    const poolOf = async (spec: Spec) => {
      spec.pool = (await getAnalysis(spec.tenant.keys.apiKey, spec.id)).pool ?? spec.pool;
      if (spec.pool) run.restartedPools.add(spec.pool);
    };
    run.changesFrom = Date.now();

    // Add: on a /bulk tenant, counting a flag the tenant sends from now on only.
    const addTenant = tenants[ADD_TENANT];
    const addDefinition: Spec['definition'] = {
      name: 'pools added', kind: 'flag-evaluations', params: { window: '5s', flagKeys: [ADDED_FLAG], groupBy: ['flagKey', 'variation', 'environment'] },
    };
    const added = await step('add → RUNNING', async () => {
      const reply = await call('POST', '/v1/analyses', { key: addTenant.keys.apiKey, body: addDefinition });
      expect(reply.status).toBe(201);
      addedExists = true;
      const spec = specOf(`t${ADD_TENANT}/added`, addTenant, reply.body.id, addDefinition, 'added');
      specs.push(spec);
      monitor.watch({ label: spec.label, apiKey: addTenant.keys.apiKey, id: spec.id, groupBy: spec.groupBy, checkFinal: true });
      await waitForStatus(addTenant.keys.apiKey, spec.id, 'RUNNING', 120_000);
      return spec;
    });
    await poolOf(added);

    // PUT: another window, grouping and filter; its rows are replaced (so not checked as final).
    const put = one('put');
    const putDefinition: Spec['definition'] = {
      name: 'pools changed', kind: 'flag-evaluations', params: { window: '10s', groupBy: ['flagKey'], flagKeys: ['new-checkout', 'dark-mode', 'ghost-flag'] },
    };
    await poolOf(put);
    await step('PUT → RUNNING', async () => {
      monitor.redefine(put.id, putDefinition.params.groupBy!);
      const reply = await call('PUT', `/v1/analyses/${put.id}`, { key: put.tenant.keys.apiKey, body: putDefinition });
      expect(reply.status).toBe(200);
      Object.assign(put, specOf(put.label, put.tenant, put.id, putDefinition, 'put'));
      await waitForStatus(put.tenant.keys.apiKey, put.id, 'RUNNING', 120_000);
    });
    await poolOf(put);

    // Stop (with a savepoint): its rows stay, and are watched as final rows throughout.
    const stopped = one('stopped');
    await poolOf(stopped);
    await step('stop → STOPPED', async () => {
      const reply = await call('POST', `/v1/analyses/${stopped.id}/stop`, { key: stopped.tenant.keys.apiKey });
      expect(reply.status).toBe(200);
      // STOPPING until the pool's new job (without it) caught up and the one computing it was cancelled.
      await waitForStatus(stopped.tenant.keys.apiKey, stopped.id, 'STOPPED', 300_000);
    });
    run.stoppedAt = Date.now();

    // Delete: gone at once, its results too.
    const deleted = one('deleted');
    await poolOf(deleted);
    await step('DELETE → 404', async () => {
      monitor.unwatch(deleted.id);
      log(`deleting ${deleted.label}, which showed ${monitor.state(deleted.id)?.latest?.length ?? 'no'} rows`);
      const reply = await call('DELETE', `/v1/analyses/${deleted.id}`, { key: deleted.tenant.keys.apiKey });
      expect(reply.status).toBe(204);
    });
    expect((await call('GET', `/v1/analyses/${deleted.id}`, { key: deleted.tenant.keys.apiKey })).status).toBe(404);
    expect((await call('GET', `/v1/analyses/${deleted.id}/results`, { key: deleted.tenant.keys.apiKey })).status).toBe(404);

    // Start the stopped one after its tenant's events went on flowing for a while.
    await sleep(Math.max(0, run.stoppedAt + STOPPED_MS - Date.now()));
    run.startAt = Date.now();
    await step('start → RUNNING', async () => {
      const reply = await call('POST', `/v1/analyses/${stopped.id}/start`, { key: stopped.tenant.keys.apiKey });
      expect(reply.status).toBe(200);
      await waitForStatus(stopped.tenant.keys.apiKey, stopped.id, 'RUNNING', 120_000);
    });
    await poolOf(stopped);
    run.changesTo = Date.now();
    log(`changes took ${secs(run.changesTo - run.changesFrom)}; pools of the changed analyses: ${[...run.restartedPools].sort().join(', ')}`);

    // Traffic ends just before a minute boundary at least 10 s on: every window (5 s … 1 min) then ends together.
    trafficUntil = Math.ceil((Date.now() + 10_000) / 60_000) * 60_000;
    log(`traffic until ${iso(trafficUntil)}`);
    await Promise.all(traffic);
    await proxy.idle();
    run.trafficTo = Date.now();

    // The reference: what the API accepted, per tenant.
    const refused = proxy.records.filter((r) => r.apiStatus !== undefined && (r.apiStatus < 200 || r.apiStatus >= 300));
    const unanswered = proxy.records.filter((r) => r.apiStatus === undefined);
    // A payload refused twice (503 after the write deadline) may be partly on the stream and counted (CONTRACT §5):
    // the reference takes what the stream holds of it.
    const unconfirmed = unconfirmedPayloads(proxy.records);
    const written = unconfirmed.length ? await writtenEventsOf(new Set(unconfirmed.map((p) => p.payloadId)), run.trafficFrom!) : [];
    log(`traffic: ${proxy.records.length} requests in ${secs(run.trafficTo - run.trafficFrom)}; ${refused.length} answered other than 2xx, ${unanswered.length} unanswered; ${unconfirmed.length} payloads never confirmed, of which the stream holds ${written.length} events (the reference counts those)`);
    for (const t of tenants) {
      const unconfirmedOfTenant = unconfirmed.filter((p) => t.hosts.includes(p.host));
      const deliveries = [
        ...deliveredPayloads(proxy.recordsOf(t.hosts)),
        ...writtenParts(unconfirmedOfTenant, written.filter((w) => w.tenant === t.keys.key), envOfHost),
      ];
      expect({ tenant: t.index, payloads: deliveries.length > 10 }).toEqual({ tenant: t.index, payloads: true });
      for (const spec of specs.filter((s) => s.tenant === t && s.role !== 'deleted')) {
        spec.expected = expectationOf(spec, deliveries);
        expect({ analysis: spec.label, ambiguous: spec.expected.ambiguous }).toEqual({ analysis: spec.label, ambiguous: [] });
      }
    }
    // The harness: each SDK host's evaluations all reached the API in accepted payloads (timer flushes, then close()).
    for (const t of tenants.filter((x) => x.kind === 'sdk')) {
      for (const host of t.hosts) {
        const sent = evaluationsByFlag(deliveredPayloads(proxy.recordsOf(host)));
        const total = [...sent.values()].reduce((a, b) => a + b, 0);
        log(`SDK host ${host}: ${total} evaluations in ${deliveredPayloads(proxy.recordsOf(host)).length} accepted payloads`);
        expect(total).toBeGreaterThan(0);
      }
    }
    expect(added.expected!.rows.length).toBeGreaterThan(0);
    expect(specs.filter((s) => s.role === 'untouched' && s.expected!.rows.length === 0).map((s) => s.label)).toEqual([]);
  }, 480_000);

  it('4. every analysis, untouched or changed, ends exact, every row final (and lateEvents 0)', async () => {
    if (run.trafficTo === undefined) throw new Error('the traffic test did not finish');
    const live = specs.filter((s) => s.role !== 'deleted');
    const deadline = trafficUntil + 120_000;
    const pending = new Set(live.map((s) => s.id));
    const lastRows = new Map<string, Record<string, any>[]>();
    // The monitor polls every live analysis about once a second; its latest answer decides.
    while (pending.size && Date.now() < deadline) {
      for (const spec of live) {
        const state = monitor.state(spec.id);
        const rows = state?.latestAt !== undefined && state.latestAt > run.trafficTo ? state.latest! : undefined;
        if (!rows) continue;
        lastRows.set(spec.id, rows);
        if (exactAndFinal(rows, spec)) pending.delete(spec.id);
        else pending.add(spec.id);
      }
      if (pending.size) await sleep(1000);
    }
    run.settled = pending.size === 0;
    log(`${live.length - pending.size} of ${live.length} analyses exact and final ${secs(Date.now() - trafficUntil)} after the traffic's last window ended`);
    run.final = new Map();
    await inBatches(live, 8, async (spec) => {
      const rows = (await call('GET', `/v1/analyses/${spec.id}/results?limit=10000`, { key: spec.tenant.keys.apiKey })).body?.rows ?? lastRows.get(spec.id) ?? [];
      run.final!.set(spec.id, { rows, analysis: await getAnalysis(spec.tenant.keys.apiKey, spec.id) });
    });
    const wrong = live.filter((s) => !exactAndFinal(run.final!.get(s.id)!.rows, s));
    for (const spec of wrong.slice(0, 5)) {
      const got = run.final!.get(spec.id)!;
      const health = await call('GET', `/v1/analyses/${spec.id}/health`, { key: spec.tenant.keys.apiKey }).catch(() => undefined);
      const want = new Map(spec.expected!.rows.map((r) => [rowKeyOf(r, spec.groupBy), r.evaluations]));
      const gotRows = new Map(got.rows.map((r) => [rowKeyOf(r, spec.groupBy), { evaluations: r.evaluations, final: r.final }]));
      const diff = [...new Set([...want.keys(), ...gotRows.keys()])]
        .filter((k) => want.get(k) !== gotRows.get(k)?.evaluations || gotRows.get(k)?.final !== true)
        .slice(0, 8)
        .map((k) => `${k}: want ${want.get(k)}, got ${JSON.stringify(gotRows.get(k))}`);
      log(`${spec.label} (${spec.role}, pool ${got.analysis?.pool}, status ${got.analysis?.status}) not exact: ${diff.join('; ')}; health ${JSON.stringify(health?.body?.history?.slice(0, 4))}`);
    }
    // Untouched first, then each change on its own, so that a failure names what broke.
    for (const role of ['untouched', 'added', 'put', 'stopped'] as Role[]) {
      const mine = live.filter((s) => s.role === role);
      expect({ role, notExact: mine.filter((s) => wrong.includes(s)).map((s) => s.label) }).toEqual({ role, notExact: [] });
    }
    for (const spec of live) {
      const { analysis } = run.final.get(spec.id)!;
      expect({ analysis: spec.label, status: analysis?.status, lateEvents: analysis?.lateEvents, pool: typeof analysis?.pool })
        .toEqual({ analysis: spec.label, status: 'RUNNING', lateEvents: 0, pool: 'string' });
    }
    // The changed ones, as CONTRACT §6 describes them.
    const put = one('put');
    expect(run.final.get(put.id)!.analysis).toMatchObject({ name: 'pools changed', params: { window: '10s', groupBy: ['flagKey'] } });
    // The stopped one counted what its tenant sent while it was stopped (its windows then are among the exact ones above).
    const stopped = one('stopped');
    const whileStopped = stopped.expected!.rows.filter((r) => Date.parse(r.windowStart as string) >= run.stoppedAt! && Date.parse(r.windowEnd as string) <= run.startAt!);
    log(`stopped-and-started ${stopped.label}: ${stopped.expected!.rows.length} rows, ${whileStopped.length} of them in windows wholly within the stop (${whileStopped.reduce((a, r) => a + r.evaluations, 0)} evaluations)`);
    expect(whileStopped.length).toBeGreaterThan(0);
  }, 180_000);

  it('5. no row an untouched analysis showed as final ever showed fewer evaluations later or vanished, and no row ever more than the reference; how soon windows ending during the changes were final', async () => {
    if (!run.final) throw new Error('the exactness test did not finish');
    await monitor.stop();
    const untouched = byRole('untouched');
    const violations: string[] = [];
    const openDecreases: string[] = [];
    let reopened = 0;
    for (const spec of untouched) {
      const state = monitor.state(spec.id)!;
      violations.push(...state.violations);
      if (state.openDecreases) openDecreases.push(`${spec.label} ×${state.openDecreases}`);
      reopened += state.reopened;
      const want = new Map(spec.expected!.rows.map((r) => [rowKeyOf(r, spec.groupBy), r.evaluations]));
      for (const [key, most] of state.maxSeen) {
        const limit = want.get(key);
        if (limit === undefined) violations.push(`${spec.label}: a row the reference does not have, seen with ${most}: ${key}`);
        else if (most > limit) violations.push(`${spec.label}: a row showed ${most} evaluations, more than the reference's ${limit}: ${key}`);
      }
    }
    const polls = untouched.map((s) => monitor.state(s.id)!.polls);
    log(`untouched analyses polled ${Math.min(...polls)}–${Math.max(...polls)} times each, median interval ${secs(monitor.medianInterval())}; open rows seen shrinking: ${openDecreases.length ? openDecreases.join(', ') : 'none'}; final rows seen not final again: ${reopened} observations`);

    // For each window that ended during the changes: how long after its end each untouched
    // analysis served it final and exact (the row's last change to its final count).
    const delays: { ms: number; poolmate: boolean; windowMs: number }[] = [];
    let never = 0;
    for (const spec of untouched) {
      const state = monitor.state(spec.id)!;
      const windows = new Map<string, Record<string, any>[]>();
      for (const r of spec.expected!.rows) {
        const end = Date.parse(r.windowEnd as string);
        if (end < run.changesFrom! || end > run.changesTo!) continue;
        windows.set(r.windowStart as string, [...(windows.get(r.windowStart as string) ?? []), r]);
      }
      for (const rows of windows.values()) {
        const end = Date.parse(rows[0].windowEnd as string);
        const times = rows.map((r) => finalExactSince(state.history.get(rowKeyOf(r, spec.groupBy)), r.evaluations));
        if (times.some((t) => t === undefined)) {
          never++;
          continue;
        }
        delays.push({ ms: Math.max(...(times as number[])) - end, poolmate: !!spec.pool && run.restartedPools.has(spec.pool), windowMs: spec.windowMs });
      }
    }
    const show = (xs: number[]) => {
      const { p50, max, n } = p50max(xs);
      return `p50 ${secs(p50)}, max ${secs(max)} (${n} windows)`;
    };
    log(`windows that ended during the changes (${iso(run.changesFrom!).slice(11, 19)}–${iso(run.changesTo!).slice(11, 19)}), final and exact after their end: all ${show(delays.map((d) => d.ms))}; in the changed analyses' pools ${show(delays.filter((d) => d.poolmate).map((d) => d.ms))}; in other pools ${show(delays.filter((d) => !d.poolmate).map((d) => d.ms))}; ${never} never final and exact while watched`);
    for (const [ms, name] of WINDOWS.map(([w, m]) => [m, w] as const)) {
      const mine = delays.filter((d) => d.windowMs === ms).map((d) => d.ms);
      if (mine.length) log(`  ${name} windows: ${show(mine)}`);
    }
    log(`change steps: ${run.steps.map((s) => `${s.what} ${secs(s.ms)}`).join(', ')}`);
    expect(violations).toEqual([]);
  });

  it('6. the stopped-and-started and the added analysis never lost counts of a final row either', () => {
    if (!run.final) throw new Error('the exactness test did not finish');
    for (const role of ['stopped', 'added'] as Role[]) {
      const spec = one(role);
      const state = monitor.state(spec.id)!;
      const want = new Map(spec.expected!.rows.map((r) => [rowKeyOf(r, spec.groupBy), r.evaluations]));
      const over = [...state.maxSeen].filter(([key, most]) => most > (want.get(key) ?? 0)).map(([key, most]) => `${key}: ${most} > ${want.get(key) ?? 0}`);
      expect({ role, violations: state.violations, overReference: over }).toEqual({ role, violations: [], overReference: [] });
    }
  });

  it('7. at every sample of the whole file, at most two active jobs a pool (≤ 20 readers), each with one vertex reading the events source; every analysis\' pool is a running job', async () => {
    await sampler.sample();
    log(`${sampler.samples} samples (${sampler.errors} failed), at most ${sampler.maxActive} active flagstream- jobs (${sampler.maxNotEnded} counting those CANCELLING or FAILING); ${sampler.checked.size} pool jobs started during the file`);
    expect(sampler.samples).toBeGreaterThan(60);
    expect(sampler.violations).toEqual([]);
    expect(sampler.maxActive).toBeLessThanOrEqual(MAX_READERS);
    expect(MAX_READERS).toBeLessThanOrEqual(20);
    expect(sampler.checked.size).toBeGreaterThan(0);
    const live = specs.filter((s) => s.role !== 'deleted');
    let missing: string[] = [];
    for (let i = 0; i < 10; i++) {
      await poolsOf(live);
      const jobs = await activePoolJobs();
      missing = live.filter((s) => !jobs.some((j) => j.pool === s.pool && j.state === 'RUNNING')).map((s) => `${s.label} in ${s.pool}`);
      if (!missing.length) break;
      await sleep(1000);
    }
    expect(missing).toEqual([]);
  });
});
