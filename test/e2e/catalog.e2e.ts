import { createServer, IncomingMessage, Server } from 'node:http';
import { prng, SEED } from './seed';
import { AddressInfo } from 'node:net';
import { API, call, deleteAnalysis, getAnalysis, getResults, newTenant, waitForStatus } from './client';
import {
  Dimension, expectedExperiment, expectedFeatureCounts, expectedGuardrail, expectedUniqueContexts, ExperimentParams, experimentRowDifferences,
  flagUsageCandidates, FlagUsageRow, GuardrailParams, GuardrailResult, PlaceOptions, projectFlagUsageRows, projectUniqueContextsRows, UniqueContextsParams,
} from './catalog-reference';
import { RecordingProxy, sleep } from './proxy';
import { deliveredPayloads, Delivery, evaluationsByFlag } from './reference';
import { HostStep, LdContext, SdkHost } from './sdk-host';

/**
 * The analysis catalog (CONTRACT §6: unique-contexts, flag-usage, experiment, guardrail,
 * custom-sql) end to end on the real stack, driven by the real LaunchDarkly Node server SDK.
 *
 * One fresh tenant (environments production and staging) gets one analysis of each kind,
 * several of some, all created first and RUNNING before any traffic. Then, all at once:
 * SDK hosts (test/e2e/sdk-host.ts: the SDK in a process of its own, TestData flags with
 * trackEvents, percentage rollouts and attribute rules, its own 5 s flush timer) and a few
 * /bulk payloads no SDK would send (custom events with only contextKeys, a conversion before
 * the exposure, a context exposed to two variations, an unknown flag, a late and a
 * far-ahead event, a retried payload), all through a recording proxy (test/e2e/proxy.ts).
 * Expectations come only from what the proxy saw the API accept, through
 * catalog-reference.ts (tested on its own in catalog-reference.e2e.ts), never from the
 * control plane: unique-contexts and custom-sql rows exact; flag-usage rows exact for a
 * `now` within the request's time, a flag turning inactive by time alone (period 30 s);
 * experiment counts exact and every statistic within 1e-6 relative; a planted guardrail
 * regression turns `regressed` and POSTs to a local webhook within 10 s of the data's 2xx,
 * an A/A stays `healthy`. Invalid definitions of every kind answer 400 naming the field.
 *
 * Readings of the contract this file takes: see catalog-reference.ts' header; besides,
 * experiment/guardrail/flag-usage rows are current (no window fields are looked at), the
 * guardrail's `units` is `{control, treatment}`, and a webhook body names the analysis id and
 * the status `regressed` somewhere in its JSON (the row, with the analysis id).
 *
 * Alone: `npx jest test/e2e/catalog.e2e.ts --selectProjects e2e`. FLAGSTREAM_TEST_SEED replays
 * the random choices of a run (printed at the start).
 */

const WINDOW_MS = 10_000;
const HOUR = 3_600_000;
const DEFAULT_PERIOD_MS = 7 * 24 * HOUR;
const SHORT_PERIOD_MS = 30_000;
/** How far apart two phases of SDK traffic are: more than a flush interval (5 s). */
const PHASE_GAP_MS = 6_000;
const REL = 1e-6;
const FEATURE_COUNTS_SQL = "SELECT flagKey, variation, COUNT(*) AS n FROM events WHERE kind = 'feature' GROUP BY flagKey, variation";

const log = (line: string) => console.log(`[catalog] ${line}`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const rng = prng(SEED);

// ---------------------------------------------------------------------------------
// The hosts' extra flags (LaunchDarkly's flag JSON; host.cjs adds them to TestData).

const rollout = (contextKind: string, weights: number[]) => ({ rollout: { contextKind, variations: weights.map((weight, variation) => ({ variation, weight })) } });
const flagJson = (key: string, variations: unknown[], fallthrough: unknown, rules: unknown[] = []) => ({
  key, version: 1, on: true, variations, fallthrough, offVariation: 0, targets: [], rules, prerequisites: [], salt: key, trackEvents: true, deleted: false,
});
/** `arm: "treatment"` gets variation 1, every other context variation 0: the test knows each unit's arm. */
const ARM_RULE = { id: 'treatment-arm', clauses: [{ contextKind: 'user', attribute: 'arm', op: 'in', values: ['treatment'], negate: false }], variation: 1, trackEvents: false };
const CATALOG_FLAGS = [
  flagJson('catalog-exp', ['control', 'treatment'], rollout('user', [50_000, 50_000])),
  flagJson('catalog-price', [9, 12, 15], rollout('device', [25_000, 50_000, 25_000])),
  flagJson('catalog-guard', ['old', 'new'], { variation: 0 }, [ARM_RULE]),
  flagJson('catalog-aa', ['a', 'a-again'], { variation: 0 }, [ARM_RULE]),
];

// ---------------------------------------------------------------------------------
// The analyses.

type Kind = 'unique-contexts' | 'flag-usage' | 'experiment' | 'guardrail' | 'custom-sql';
interface Definition {
  name: string;
  kind: Kind;
  params: Record<string, any>;
  environment?: string;
}
const UC_USERS: UniqueContextsParams = { windowMs: WINDOW_MS };
const UC_ORGS: UniqueContextsParams = { windowMs: WINDOW_MS, contextKind: 'organization', groupBy: ['flagKey', 'variation'] };
const UC_EXP_ENV: UniqueContextsParams = { windowMs: WINDOW_MS, flagKeys: ['catalog-exp'], groupBy: ['environment'] };
const EXP_CONVERSION: ExperimentParams = { flagKey: 'catalog-exp', metric: { eventKey: 'purchase', type: 'conversion' } };
const EXP_VALUE: ExperimentParams = { flagKey: 'catalog-price', metric: { eventKey: 'revenue', type: 'value' }, controlVariation: 1, weights: [1, 2, 1], randomizationKind: 'device', alpha: 0.1 };
const GUARD_REGRESSED: GuardrailParams = { flagKey: 'catalog-guard', metric: { eventKey: 'error', type: 'conversion', direction: 'lower-is-better' }, controlVariation: 0, treatmentVariation: 1 };
const GUARD_AA: GuardrailParams = { flagKey: 'catalog-aa', metric: { eventKey: 'error', type: 'conversion', direction: 'lower-is-better' }, treatmentVariation: 1, minUnits: 50 };
const GUARD_WAITING: GuardrailParams = { flagKey: 'catalog-aa', metric: { eventKey: 'latency', type: 'value', direction: 'lower-is-better' }, treatmentVariation: 1, minUnits: 1000 };

function definitions(webhookUrl: string): Record<string, Definition> {
  return {
    ucUsers: { name: 'Users per 10 s', kind: 'unique-contexts', params: { window: '10s' } },
    ucOrgs: { name: 'Organizations per flag and variation', kind: 'unique-contexts', params: { window: '10s', contextKind: 'organization', groupBy: ['flagKey', 'variation'] } },
    ucExpEnv: { name: 'Experiment users per environment', kind: 'unique-contexts', params: { window: '10s', flagKeys: ['catalog-exp'], groupBy: ['environment'] } },
    usage: { name: 'Flag usage (default period)', kind: 'flag-usage', params: {} },
    usageStaging: { name: 'Staging flag usage over 30 s', kind: 'flag-usage', environment: 'staging', params: { period: '30s' } },
    expConversion: { name: 'Checkout experiment', kind: 'experiment', params: { flagKey: EXP_CONVERSION.flagKey, metric: EXP_CONVERSION.metric } },
    expValue: {
      name: 'Price experiment',
      kind: 'experiment',
      params: { flagKey: EXP_VALUE.flagKey, metric: EXP_VALUE.metric, controlVariation: 1, weights: [1, 2, 1], randomizationKind: 'device', alpha: 0.1 },
    },
    guardRegressed: {
      name: 'Errors of the new release',
      kind: 'guardrail',
      params: { flagKey: GUARD_REGRESSED.flagKey, metric: GUARD_REGRESSED.metric, controlVariation: 0, treatmentVariation: 1, webhook: `${webhookUrl}/regressed` },
    },
    guardAA: { name: 'A/A errors', kind: 'guardrail', params: { flagKey: GUARD_AA.flagKey, metric: GUARD_AA.metric, treatmentVariation: 1, minUnits: 50, webhook: `${webhookUrl}/aa` } },
    guardWaiting: { name: 'A/A latency, 1000 units an arm', kind: 'guardrail', params: { flagKey: GUARD_WAITING.flagKey, metric: GUARD_WAITING.metric, treatmentVariation: 1, minUnits: 1000 } },
    sql: { name: 'Feature events per flag and variation', kind: 'custom-sql', params: { sql: FEATURE_COUNTS_SQL } },
  };
}

// ---------------------------------------------------------------------------------
// A local webhook receiver (http on loopback, CONTRACT §6 guardrail).

interface WebhookCall {
  path: string;
  at: number;
  body: any;
  answered: number;
}
class WebhookReceiver {
  readonly calls: WebhookCall[] = [];
  private server?: Server;
  url = '';
  /** Answers the first POST of each path with 503: the guardrail must retry until a 2xx. */
  async start(): Promise<this> {
    const server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* kept as text */
        }
        const path = req.url ?? '/';
        const answered = this.calls.some((c) => c.path === path) ? 200 : 503;
        this.calls.push({ path, at: Date.now(), body, answered });
        res.writeHead(answered, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }
  async stop() {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  of(path: string) {
    return this.calls.filter((c) => c.path === path);
  }
}

/** Whether `value` occurs anywhere in `body` (a property's value, at any depth). */
function containsValue(body: unknown, value: unknown): boolean {
  if (body === value) return true;
  if (body && typeof body === 'object') return Object.values(body as object).some((v) => containsValue(v, value));
  return false;
}
/** Whether some object in `body` has `status: "regressed"`. */
const saysRegressed = (body: unknown): boolean =>
  !!body && typeof body === 'object' && ((body as any).status === 'regressed' || Object.values(body as object).some((v) => saysRegressed(v)));

// ---------------------------------------------------------------------------------
// State shared by the tests.

type Tenant = Awaited<ReturnType<typeof newTenant>>;
interface Made {
  definition: Definition;
  id?: string;
  createdAt?: number;
  /** Why it was not created or not RUNNING: its tests fail with this. */
  error?: string;
}

const HOSTS = { prod1: 'cat-prod-1', prod2: 'cat-prod-2', stg: 'cat-stg', direct: 'cat-direct', directStg: 'cat-direct-stg' };
const ALL_HOSTS = Object.values(HOSTS);
/** Another tenant's SDK: same flag, event and context keys as ours; nothing it sends may show in our rows. */
const OTHER_TENANT_HOST = 'cat-other-tenant';
const environmentOf = (d: Delivery) => (d.host === HOSTS.stg || d.host === HOSTS.directStg ? 'staging' : 'production');
const PLACE: PlaceOptions = { environmentOf };

let tenant: Tenant;
let otherTenant: Tenant;
let proxy: RecordingProxy;
let webhook: WebhookReceiver;
const made: Record<string, Made> = {};
const liveHosts = new Map<string, SdkHost>();
const sdkHosts: SdkHost[] = [];
let aborted = false;
let deliveries: Delivery[] = [];
let trafficStartedAt = 0;
let trafficEndedAt = 0;
const startedAt = Date.now();

interface UsageObservation {
  before: number;
  after: number;
  rows: FlagUsageRow[];
  /** The reference answer it equals, for a now in [before, after]. */
  matched?: { now: number; rows: FlagUsageRow[] };
}
/** Polls the 30 s staging flag-usage analysis from the staging host's last flush until its flags are inactive. */
let stagingWatch: Promise<UsageObservation[]> | undefined;

function analysis(name: string): { id: string; createdAt: number } {
  const m = made[name];
  if (!m?.id || m.error) throw new Error(`analysis ${name} (${m?.definition.kind}) is not available: ${m?.error ?? 'not created'}`);
  return { id: m.id, createdAt: m.createdAt! };
}

/** Polls until `check` says ok or `deadline`; returns the last value (the caller's expects then show the difference). */
async function settle<T>(what: string, deadline: number, probe: () => Promise<T>, check: (value: T) => boolean, intervalMs = 1000): Promise<T> {
  let value: T | undefined;
  let error: unknown;
  for (;;) {
    try {
      value = await probe();
      error = undefined;
      if (check(value)) return value;
    } catch (e) {
      error = e;
    }
    if (Date.now() > deadline || aborted) {
      log(`${what}: not as expected by the deadline${error ? ` (${(error as Error).message})` : ''}`);
      if (value === undefined) throw error instanceof Error ? error : new Error(`${what}: no answer`);
      return value;
    }
    await sleep(intervalMs);
  }
}

async function sendRaw(host: string, sdkKey: string, events: unknown[], payloadId: string) {
  return call('POST', '/bulk', {
    base: proxy.eventsUri(host),
    key: sdkKey,
    bareKey: true,
    raw: JSON.stringify(events),
    headers: { 'content-type': 'application/json', 'X-LaunchDarkly-Event-Schema': '4', 'X-LaunchDarkly-Payload-ID': payloadId },
  });
}

// ---------------------------------------------------------------------------------
// Traffic.

const userCtx = (key: string, extra: Record<string, unknown> = {}): LdContext => ({ kind: 'user', key, ...extra });
const quarter = () => (1 + Math.floor(rng() * 200)) * 0.25; // exact in binary: sums compare exactly

/** Experiment traffic for units [from, to) of catalog-exp: some multi-kind, some converting before, most after. */
function conversionExperimentSteps(from: number, to: number, earlierUnits: number): HostStep[] {
  const steps: HostStep[] = [];
  for (let i = from; i < to; i++) {
    const context: LdContext = i % 5 === 0 ? { kind: 'multi', user: { key: `cx-${i}` }, organization: { key: `org-${i % 7}` } } : userCtx(`cx-${i}`);
    if (i % 17 === 3) steps.push({ type: 'track', eventKey: 'purchase', context }); // before any exposure: no conversion (unless again later)
    steps.push({ type: 'evaluate', flagKey: 'catalog-exp', context, times: rng() < 0.3 ? 2 : 1 });
    if (rng() < 0.25) steps.push({ type: 'track', eventKey: 'purchase', context, times: rng() < 0.2 ? 2 : 1 });
  }
  // Some earlier units convert only now.
  for (let i = 0; i < earlierUnits; i++) if (rng() < 0.1) steps.push({ type: 'track', eventKey: 'purchase', context: userCtx(`cx-${i}`) });
  return steps;
}

/** Value-experiment traffic for devices [from, to) of catalog-price (randomized by device, multi-kind contexts). */
function valueExperimentSteps(from: number, to: number, earlierUnits: number): HostStep[] {
  const steps: HostStep[] = [];
  const context = (i: number): LdContext => ({ kind: 'multi', user: { key: `pu-${i}` }, device: { key: `dev-${i}` } });
  for (let i = from; i < to; i++) {
    steps.push({ type: 'evaluate', flagKey: 'catalog-price', context: context(i) });
    if (rng() < 0.5) for (let k = 1 + Math.floor(rng() * 3); k > 0; k--) steps.push({ type: 'track', eventKey: 'revenue', context: context(i), metricValue: quarter() });
  }
  for (let i = 0; i < earlierUnits; i++) if (rng() < 0.15) steps.push({ type: 'track', eventKey: 'revenue', context: context(i), metricValue: quarter() });
  return steps;
}

/**
 * Guardrail traffic: units [from, to) of each arm of catalog-guard, errors 5 % (control) vs
 * 40 % (treatment); units [aaFrom, aaTo) of each arm of catalog-aa, 10 % errors and the same
 * latencies in both.
 */
function guardrailSteps(from: number, to: number, aaFrom: number, aaTo: number): HostStep[] {
  const steps: HostStep[] = [];
  for (let i = from; i < to; i++) {
    const control = userCtx(`g-c-${i}`, { arm: 'control' });
    const treatment = userCtx(`g-t-${i}`, { arm: 'treatment' });
    steps.push({ type: 'evaluate', flagKey: 'catalog-guard', context: control }, { type: 'evaluate', flagKey: 'catalog-guard', context: treatment });
    if (i % 20 === 7) steps.push({ type: 'track', eventKey: 'error', context: control, metricValue: null });
    if (i % 5 < 2) steps.push({ type: 'track', eventKey: 'error', context: treatment, metricValue: null });
  }
  for (let i = aaFrom; i < aaTo; i++) {
    for (const arm of ['control', 'treatment']) {
      const context = userCtx(`aa-${arm}-${i}`, { arm });
      steps.push({ type: 'evaluate', flagKey: 'catalog-aa', context });
      if (i % 10 === 4) steps.push({ type: 'track', eventKey: 'error', context, metricValue: null });
      steps.push({ type: 'track', eventKey: 'latency', context, metricValue: 1 + (i % 8) * 0.5 });
    }
  }
  return steps;
}

/** The /bulk payloads no SDK sends. */
async function sendDirect(): Promise<void> {
  const t = Date.now();
  const feature = (dt: number, flag: string, variation: number, context: unknown) => ({ kind: 'feature', creationDate: t + dt, key: flag, variation, value: variation, default: null, version: 1, context });
  const events = [
    // A conversion before the exposure: not a conversion.
    { kind: 'custom', creationDate: t - 3000, key: 'purchase', contextKeys: { user: 'direct-before' } },
    feature(-2000, 'catalog-exp', 0, { kind: 'user', key: 'direct-before' }),
    // Exposed to both variations: counted once, under the first, as a multiple exposure; converts (contextKeys only).
    feature(-2000, 'catalog-exp', 0, { kind: 'user', key: 'direct-both' }),
    feature(-1500, 'catalog-exp', 1, { kind: 'user', key: 'direct-both' }),
    { kind: 'custom', creationDate: t - 1000, key: 'purchase', contextKeys: { user: 'direct-both' } },
    // Both variations at the same instant: the lowest is its first.
    feature(-1800, 'catalog-exp', 1, { kind: 'multi', user: { key: 'direct-tie' }, organization: { key: 'org-direct' } }),
    feature(-1800, 'catalog-exp', 0, { kind: 'multi', user: { key: 'direct-tie' }, organization: { key: 'org-direct' } }),
    // contextKeys-only custom events of SDK-exposed units (a conversion, a value), and of a new organization.
    { kind: 'custom', creationDate: t, key: 'purchase', contextKeys: { user: 'cx-3', organization: 'org-contextkeys' } },
    { kind: 'custom', creationDate: t, key: 'revenue', contextKeys: { user: 'pu-3', device: 'dev-3' }, metricValue: 4.5 },
    // An unknown flag and a known one, evaluated by some other SDK.
    { kind: 'summary', startDate: t - 1000, endDate: t, features: { 'direct-ghost': { default: null, counters: [{ value: null, count: 3, unknown: true }] }, 'direct-flag': { default: 0, counters: [{ value: 0, variation: 0, version: 4, count: 2 }, { value: 2, variation: 2, version: 4, count: 1 }] } } },
    // Older than the horizon: counted nowhere; far ahead: at its receive time.
    { kind: 'index', creationDate: t - 2 * HOUR, context: { kind: 'user', key: 'direct-late' } },
    { kind: 'custom', creationDate: t + 10 * 60_000, key: 'purchase', contextKeys: { user: 'direct-ahead' } },
  ];
  const id = `catalog-direct-${t}`;
  const first = await sendRaw(HOSTS.direct, tenant.sdkKeys.production, events, id);
  // The same payload again (a retry): it counts once.
  const again = await sendRaw(HOSTS.direct, tenant.sdkKeys.production, events, id);
  const staging = await sendRaw(HOSTS.directStg, tenant.sdkKeys.staging, [
    feature(0, 'catalog-exp', 1, { kind: 'multi', user: { key: 'stg-direct' }, organization: { key: 'org-stg' } }),
    { kind: 'custom', creationDate: t + 1, key: 'purchase', contextKeys: { user: 'stg-direct' } },
  ], `catalog-direct-stg-${t}`);
  for (const [what, reply] of [['direct', first], ['direct retry', again], ['direct staging', staging]] as const) {
    if (reply.status !== 202) log(`${what} payload answered ${reply.status} ${JSON.stringify(reply.body)}`);
  }
}

async function startHost(name: string, sdkKey: string, gzip = false): Promise<SdkHost> {
  const host = await SdkHost.start({ name, sdkKey, eventsUri: proxy.eventsUri(name), flags: CATALOG_FLAGS, gzip });
  liveHosts.set(name, host);
  sdkHosts.push(host);
  return host;
}

async function closeHost(host: SdkHost) {
  await host.close();
  liveHosts.delete(host.name);
}

/** Polls the staging usage analysis, judging each answer against the staging hosts' deliveries so far. */
async function watchStagingUsage(id: string, until: number): Promise<UsageObservation[]> {
  const seen: UsageObservation[] = [];
  while (Date.now() < until && !aborted) {
    const before = Date.now();
    try {
      const rows = projectFlagUsageRows(await getResults(tenant.apiKey, id));
      const after = Date.now();
      const stagingDeliveries = deliveredPayloads(proxy.recordsOf([HOSTS.stg, HOSTS.directStg]));
      const candidates = flagUsageCandidates(stagingDeliveries, SHORT_PERIOD_MS, before, after, { environmentOf, environment: 'staging' });
      const matched = candidates.find((c) => JSON.stringify(c.rows) === JSON.stringify(rows));
      seen.push({ before, after, rows, matched });
      if (matched && rows.length > 0 && rows.every((r) => r.status === 'inactive')) break;
    } catch (error) {
      log(`staging usage: ${(error as Error).message}`);
    }
    await sleep(500);
  }
  return seen;
}

// ---------------------------------------------------------------------------------

function expectProblem(reply: { status: number; headers: Headers; body: any }, path: string) {
  expect(reply.status).toBe(400);
  expect(reply.headers.get('content-type')).toContain('application/problem+json');
  expect(reply.body).toMatchObject({ status: 400, title: expect.any(String), detail: expect.any(String) });
  const errors = (reply.body.errors ?? []) as { path: string; message: string }[];
  expect(errors.map((e) => e.path)).toContain(path);
  for (const e of errors.filter((x) => x.path === path)) expect(e.message).toEqual(expect.stringMatching(/\S/));
}

describe('catalog: invalid definitions answer 400 naming the field, and deploy nothing', () => {
  let refusing: Tenant;
  beforeAll(async () => {
    refusing = await newTenant(['production']);
  });

  const metric = { eventKey: 'purchase', type: 'conversion' };
  const guard = { flagKey: 'f', metric: { ...metric, direction: 'lower-is-better' }, treatmentVariation: 1 };
  it.each([
    ['unique-contexts without a window', { kind: 'unique-contexts', params: {} }, '/params/window'],
    ['unique-contexts grouped by a field it does not have', { kind: 'unique-contexts', params: { window: '10s', groupBy: ['contextKind'] } }, '/params/groupBy/0'],
    ['flag-usage with a period in words', { kind: 'flag-usage', params: { period: 'a week' } }, '/params/period'],
    ['experiment without flagKey', { kind: 'experiment', params: { metric } }, '/params/flagKey'],
    ['experiment with an unknown metric type', { kind: 'experiment', params: { flagKey: 'f', metric: { eventKey: 'x', type: 'median' } } }, '/params/metric/type'],
    ['experiment with alpha 0', { kind: 'experiment', params: { flagKey: 'f', metric, alpha: 0 } }, '/params/alpha'],
    ['guardrail without a direction', { kind: 'guardrail', params: { ...guard, metric } }, '/params/metric/direction'],
    ['guardrail without treatmentVariation', { kind: 'guardrail', params: { flagKey: 'f', metric: guard.metric } }, '/params/treatmentVariation'],
    ['guardrail with a plain-http webhook off the machine', { kind: 'guardrail', params: { ...guard, webhook: 'http://example.com/hook' } }, '/params/webhook'],
    ['custom-sql without sql', { kind: 'custom-sql', params: {} }, '/params/sql'],
    ['custom-sql with two statements', { kind: 'custom-sql', params: { sql: 'SELECT * FROM events; SELECT * FROM events' } }, '/params/sql'],
    ['custom-sql with an INSERT', { kind: 'custom-sql', params: { sql: 'INSERT INTO events SELECT * FROM events' } }, '/params/sql'],
    ['custom-sql reading another table', { kind: 'custom-sql', params: { sql: 'SELECT * FROM deduplicated' } }, '/params/sql'],
    ['custom-sql creating a function', { kind: 'custom-sql', params: { sql: "CREATE FUNCTION f AS 'com.example.F'" } }, '/params/sql'],
    ['custom-sql with a SET', { kind: 'custom-sql', params: { sql: "SET 'table.exec.state.ttl' = '1 ms'" } }, '/params/sql'],
  ])('refuses %s (%s)', async (_what, body, path) => {
    const definition = { name: 'bad', ...body };
    const before = await call('GET', '/v1/analyses', { key: refusing.apiKey });
    expectProblem(await call('POST', '/v1/analyses', { key: refusing.apiKey, body: definition }), path);
    expectProblem(await call('POST', '/v1/analyses/validate', { key: refusing.apiKey, body: definition }), path);
    const after = await call('GET', '/v1/analyses', { key: refusing.apiKey });
    expect(after.body.analyses).toHaveLength(before.body.analyses.length);
  });
});

describe('catalog: every kind, end to end, from the real SDK (CONTRACT §6)', () => {
  jest.setTimeout(300_000);

  beforeAll(async () => {
    log(`seed ${SEED} (FLAGSTREAM_TEST_SEED), API ${API}`);
    tenant = await newTenant(['production', 'staging']);
    otherTenant = await newTenant(['production']);
    webhook = await new WebhookReceiver().start();
    // 2 s: a payload whose receive time could fall either side of a window boundary is held past it
    // (the far-ahead event counts at its receive time).
    proxy = await new RecordingProxy({ target: API, edgeGuard: { windowMs: WINDOW_MS, marginMs: 2000 } }).start();

    // Every analysis first, all deploying at once; one that cannot be created fails its own tests only.
    const defs = definitions(webhook.url);
    await Promise.all(
      Object.entries(defs).map(async ([name, definition]) => {
        made[name] = { definition };
        const reply = await call('POST', '/v1/analyses', { key: tenant.apiKey, body: definition });
        if (reply.status !== 201) {
          made[name].error = `POST answered ${reply.status}: ${JSON.stringify(reply.body).slice(0, 500)}`;
          return;
        }
        Object.assign(made[name], { id: reply.body.id, createdAt: Date.parse(reply.body.createdAt) });
        const echoed = { name: reply.body.name, kind: reply.body.kind, environment: reply.body.environment };
        if (JSON.stringify(echoed) !== JSON.stringify({ name: definition.name, kind: definition.kind, environment: definition.environment ?? null })) {
          made[name].error = `POST answered ${JSON.stringify(echoed)} for ${JSON.stringify(definition)}`;
        }
      }),
    );
    await Promise.all(
      Object.entries(made).filter(([, m]) => m.id).map(async ([name, m]) => {
        try {
          await waitForStatus(tenant.apiKey, m.id!, 'RUNNING');
        } catch (error) {
          m.error = (error as Error).message;
          log(`${name}: ${m.error}`);
        }
      }),
    );
    const failed = Object.entries(made).filter(([, m]) => m.error);
    log(`${Object.keys(made).length - failed.length} of ${Object.keys(made).length} analyses RUNNING ${secs(Date.now() - startedAt)} after the start${failed.length ? `; not: ${failed.map(([n, m]) => `${n} (${m.error})`).join('; ')}` : ''}`);

    const [prod1, prod2, stg, other] = await Promise.all([
      startHost(HOSTS.prod1, tenant.sdkKeys.production),
      startHost(HOSTS.prod2, tenant.sdkKeys.production, true),
      startHost(HOSTS.stg, tenant.sdkKeys.staging),
      startHost(OTHER_TENANT_HOST, otherTenant.sdkKeys.production),
    ]);

    // Traffic for every analysis at once.
    trafficStartedAt = Date.now();
    const staging = (async () => {
      // One burst, then silence: the 30 s usage analysis sees these flags active, launched and unknown, then inactive.
      await stg.run([
        { type: 'evaluate', flagKey: 'dark-mode', context: userCtx('user-1', { plan: 'free' }), times: 2 }, // variation 0
        { type: 'evaluate', flagKey: 'dark-mode', context: userCtx('user-2', { plan: 'pro' }) }, // variation 1
        { type: 'evaluate', flagKey: 'search-v2', context: userCtx('user-1') }, // variation 1 only
        { type: 'evaluate', flagKey: 'ghost-flag', context: userCtx('user-3'), times: 3 }, // unknown to the SDK
        ...Array.from({ length: 10 }, (_, i): HostStep => ({ type: 'evaluate', flagKey: 'catalog-exp', context: userCtx(`stg-u-${i}`) })),
        { type: 'track', eventKey: 'purchase', context: userCtx('stg-u-1') },
        { type: 'identify', context: { kind: 'multi', user: { key: 'stg-u-1' }, organization: { key: 'org-stg' } } },
      ]);
      await closeHost(stg); // flushes now
      const closedAt = Date.now();
      log(`staging host flushed and closed ${secs(closedAt - trafficStartedAt)} into the traffic`);
      const usage = made.usageStaging;
      if (usage?.id && !usage.error) stagingWatch = watchStagingUsage(usage.id, closedAt + SHORT_PERIOD_MS + 40_000);
    })();
    const intruder = (async () => {
      // Another tenant hammering our keys: its units convert at once and often, its bot evaluates one flag 3000 times.
      await other.run([
        ...Array.from({ length: 40 }, (_, i): HostStep[] => [
          { type: 'evaluate', flagKey: 'catalog-exp', context: userCtx(`cx-${i}`), times: 3 },
          { type: 'track', eventKey: 'purchase', context: userCtx(`cx-${i}`), times: 5 },
          { type: 'track', eventKey: 'revenue', context: { kind: 'multi', user: { key: `pu-${i}` }, device: { key: `dev-${i}` } }, metricValue: 1000 },
        ]).flat(),
        { type: 'evaluate', flagKey: 'new-checkout', context: userCtx('other-bot'), times: 3000 },
      ]);
      await closeHost(other);
    })();
    const production1 = (async () => {
      // A bot of our own hammering one flag: every evaluation counts, its context once.
      await prod1.run([{ type: 'evaluate', flagKey: 'dark-mode', context: userCtx('bot-1', { plan: 'free' }), times: 2000 }]);
      await prod1.run([...conversionExperimentSteps(0, 150, 0), ...guardrailSteps(0, 80, 0, 60)]);
      await sleep(PHASE_GAP_MS);
      await prod1.run([...conversionExperimentSteps(150, 300, 150), ...guardrailSteps(80, 300, 60, 120)]);
    })();
    const production2 = (async () => {
      await prod2.run([
        { type: 'evaluate', flagKey: 'new-checkout', context: userCtx('user-2'), times: 3 }, // variation 1 only, for now: launched
        { type: 'evaluate', flagKey: 'dark-mode', context: userCtx('user-1', { plan: 'free' }), times: 2 }, // variation 0 only: launched
        { type: 'evaluate', flagKey: 'ghost-flag', context: userCtx('user-1'), times: 2 }, // unknown-flag
        ...valueExperimentSteps(0, 120, 0),
        // Multi-kind contexts with organizations, exposed to the experiment (organizations per flag and variation).
        ...Array.from({ length: 30 }, (_, i): HostStep => ({ type: 'evaluate', flagKey: 'catalog-exp', context: { kind: 'multi', user: { key: `ou-${i}` }, organization: { key: `org-${i % 9}` } } })),
        { type: 'identify', context: userCtx('identified-1') },
        { type: 'identify', context: { kind: 'organization', key: 'org-identified' } },
      ]);
      await sleep(PHASE_GAP_MS);
      await prod2.run([
        { type: 'evaluate', flagKey: 'new-checkout', context: userCtx('user-1'), times: 2 }, // variation 0 too: active from now
        ...valueExperimentSteps(120, 240, 120),
        ...Array.from({ length: 5 }, (_, i): HostStep => ({ type: 'track', eventKey: 'page-view', context: { kind: 'multi', user: { key: `viewer-${i}` }, device: { key: `dev-${i}` } }, metricValue: null })),
      ]);
    })();
    const direct = sleep(2000).then(sendDirect);
    await Promise.all([staging, production1, production2, direct, intruder]);
    await Promise.all([prod1, prod2].map(closeHost));
    await proxy.idle();
    trafficEndedAt = Date.now();
    deliveries = deliveredPayloads(proxy.recordsOf(ALL_HOSTS));
    const largest = Math.max(...deliveries.map((d) => Buffer.byteLength(JSON.stringify(d.events))));
    log(`traffic: ${proxy.records.length} requests, ${deliveries.length} payloads accepted, ${deliveries.reduce((a, d) => a + d.events.length, 0)} events in ${secs(trafficEndedAt - trafficStartedAt)}; the largest payload ${(largest / 1024).toFixed(0)} KiB decompressed`);
  }, 270_000);

  afterAll(async () => {
    aborted = true;
    for (const h of liveHosts.values()) h.kill();
    await stagingWatch?.catch(() => undefined);
    await proxy?.stop();
    await webhook?.stop();
    // Free the Flink slots for the test files that run after this one.
    await Promise.all(Object.values(made).filter((m) => m.id).map((m) => deleteAnalysis(tenant.apiKey, m.id!).catch(() => undefined)));
    log(`the whole file took ${secs(Date.now() - startedAt)}`);
  }, 120_000);

  it('harness: the SDK hosts sent every evaluation they were asked, and the API accepted every payload', () => {
    for (const host of sdkHosts) {
      const sent = evaluationsByFlag(deliveredPayloads(proxy.recordsOf(host.name)));
      expect({ host: host.name, evaluations: Object.fromEntries([...sent].sort()) }).toEqual({ host: host.name, evaluations: Object.fromEntries([...host.asked].sort()) });
    }
    const refused = proxy.records.filter((r) => r.apiStatus !== 202);
    expect(refused.map((r) => `${r.host} ${r.apiStatus} ${r.apiBody}`)).toEqual([]);
    // The retried direct payload is one delivery.
    expect(deliveries.filter((d) => d.host === HOSTS.direct)).toHaveLength(1);
    expect(proxy.recordsOf(HOSTS.direct)).toHaveLength(2);
  });

  it.each([
    ['ucUsers', UC_USERS],
    ['ucOrgs', UC_ORGS],
    ['ucExpEnv', UC_EXP_ENV],
  ] as [string, UniqueContextsParams][])('unique-contexts %s: every window\'s distinct contexts exactly, final once closed', async (name, params) => {
    const { id } = analysis(name);
    const want = expectedUniqueContexts(deliveries, params, PLACE);
    const groupBy: Dimension[] = params.groupBy ?? [];
    expect(want.ambiguous).toEqual([]);
    expect(want.rows.length).toBeGreaterThan(0);
    if (name === 'ucUsers') expect(want.lateEvents).toBe(1); // the direct payload's late index event: in no row
    const lastEnd = Math.max(...want.rows.map((r) => Date.parse(r.windowEnd as string)));
    const rows = await settle(
      name,
      Math.max(Date.now(), lastEnd) + 30_000,
      () => getResults(tenant.apiKey, id),
      (got) => JSON.stringify(projectUniqueContextsRows(got, groupBy)) === JSON.stringify(want.rows) && got.every((r) => r.final === true),
    );
    log(`${name}: ${want.rows.length} rows expected (${want.rows.map((r) => r.contexts).join(', ')} contexts), ${rows.length} seen`);
    expect(projectUniqueContextsRows(rows, groupBy)).toEqual(want.rows);
    expect(rows.filter((r) => r.final !== true)).toEqual([]);
    expect(rows.map((r) => r.windowStart)).toEqual([...rows.map((r) => r.windowStart)].sort());
    // The late event counted nowhere but in lateEvents (the one event older than the horizon this tenant sent).
    if (name === 'ucUsers') expect((await getAnalysis(tenant.apiKey, id)).lateEvents).toBe(want.lateEvents);
  });

  it('flag-usage (default period 7 d): every flag and environment, status, since, lastEvaluatedAt, evaluations and variationsServed exactly', async () => {
    const { id } = analysis('usage');
    const now = Date.now();
    const want = flagUsageCandidates(deliveries, DEFAULT_PERIOD_MS, now, now, PLACE)[0].rows;
    const statusOf = (flagKey: string, environment: string) => want.find((r) => r.flagKey === flagKey && r.environment === environment)?.status;
    // The traffic made what it meant to: each status at least once.
    expect([statusOf('new-checkout', 'production'), statusOf('dark-mode', 'production'), statusOf('ghost-flag', 'production'), statusOf('direct-ghost', 'production'), statusOf('dark-mode', 'staging')])
      .toEqual(['active', 'launched', 'unknown-flag', 'unknown-flag', 'active']);
    let candidates: { now: number; rows: FlagUsageRow[] }[] = [];
    const rows = await settle(
      'usage',
      trafficEndedAt + 60_000,
      async () => {
        const before = Date.now();
        const got = projectFlagUsageRows(await getResults(tenant.apiKey, id));
        candidates = flagUsageCandidates(deliveries, DEFAULT_PERIOD_MS, before, Date.now(), PLACE);
        return got;
      },
      (got) => candidates.some((c) => JSON.stringify(c.rows) === JSON.stringify(got)),
    );
    log(`usage: ${want.length} flag/environment rows expected, ${rows.length} seen: ${want.map((r) => `${r.flagKey}/${r.environment} ${r.status}`).join(', ')}`);
    expect(rows).toEqual(candidates.find((c) => JSON.stringify(c.rows) === JSON.stringify(rows))?.rows ?? candidates[candidates.length - 1].rows);
  });

  it('flag-usage (period 30 s, staging): the staging flags show active, launched and unknown-flag, then turn inactive by time alone, since lastEvaluatedAt + 30 s', async () => {
    analysis('usageStaging');
    expect(stagingWatch).toBeDefined();
    const seen = await stagingWatch!;
    const matched = seen.filter((o) => o.matched);
    const live = matched.find((o) => o.rows.some((r) => r.status !== 'inactive'));
    const last = seen[seen.length - 1];
    const stagingDeliveries = deliveredPayloads(proxy.recordsOf([HOSTS.stg, HOSTS.directStg]));
    const lastEvaluated = Math.max(...stagingDeliveries.flatMap((d) => d.events.filter((e: any) => e.kind === 'summary').map((e: any) => e.endDate as number)));
    log(`staging usage: ${seen.length} answers, ${matched.length} equal to the reference; first live match ${live ? secs(live.after - lastEvaluated) : 'never'} after the last evaluation; last answer ${last ? `${secs(last.after - lastEvaluated)} after it: ${last.rows.map((r) => `${r.flagKey} ${r.status}`).join(', ')}` : 'none'}`);
    // While the flags were fresh: the reference's statuses (dark-mode active, search-v2 and catalog-exp served, ghost-flag unknown).
    expect(live).toBeDefined();
    expect(Object.fromEntries(live!.rows.map((r) => [r.flagKey, r.status]))).toMatchObject({ 'dark-mode': 'active', 'search-v2': 'launched', 'ghost-flag': 'unknown-flag' });
    // Then, without any new event: inactive, exactly as the reference says for that moment.
    if (!last.matched) expect(last.rows).toEqual(flagUsageCandidates(stagingDeliveries, SHORT_PERIOD_MS, last.before, last.after, { environmentOf, environment: 'staging' }).pop()!.rows);
    expect(last.matched).toBeDefined();
    expect(last.rows.length).toBeGreaterThanOrEqual(4);
    for (const row of last.rows) {
      expect(row).toMatchObject({ status: 'inactive', variationsServed: [], since: new Date(Date.parse(row.lastEvaluatedAt) + SHORT_PERIOD_MS).toISOString() });
    }
    expect(last.after - (lastEvaluated + SHORT_PERIOD_MS)).toBeLessThan(30_000);
  });

  it.each([
    ['expConversion', EXP_CONVERSION],
    ['expValue', EXP_VALUE],
  ] as [string, ExperimentParams][])('experiment %s: units, conversions or valueSum and multipleExposures exactly, every statistic within 1e-6 of the reference', async (name, params) => {
    const { id } = analysis(name);
    const want = expectedExperiment(deliveries, params, PLACE);
    // The traffic made what it meant to: every variation with units, multiple exposures under the first.
    expect(want.map((r) => r.variation)).toEqual(params.weights ? [0, 1, 2] : [0, 1]);
    for (const r of want) expect(r.units).toBeGreaterThanOrEqual(40);
    if (name === 'expConversion') expect(want.find((r) => r.variation === 0)!.multipleExposures).toBeGreaterThanOrEqual(2);
    const differences = (rows: Record<string, any>[]) => [
      ...want.flatMap((w) => experimentRowDifferences(rows.find((r) => r.variation === w.variation), w, REL)),
      ...rows.filter((r) => !want.some((w) => w.variation === r.variation)).map((r) => `unexpected row ${JSON.stringify(r)}`),
    ];
    const rows = await settle(name, trafficEndedAt + 60_000, () => getResults(tenant.apiKey, id), (got) => differences(got).length === 0);
    log(`${name}: ${want.map((r) => `v${r.variation} ${r.units} units, ${r.conversions ?? r.valueSum}${r.pValue === null ? '' : `, lift ${r.relativeLift!.toFixed(3)} p ${r.pValue.toFixed(4)}`}`).join('; ')}; srm p ${want[0].srmPValue?.toFixed(4)}`);
    expect(differences(rows)).toEqual([]);
    expect(rows).toHaveLength(want.length);
  });

  it('guardrail: a planted regression (errors 5 % vs 40 %) turns regressed and POSTs the row with the analysis id to the webhook within 10 s of the data\'s 2xx, retrying after a 503', async () => {
    const { id, createdAt } = analysis('guardRegressed');
    const want = expectedGuardrail(deliveries, GUARD_REGRESSED, PLACE);
    expect(want).toMatchObject({ status: 'regressed', units: { control: 300, treatment: 300 } });
    const row = await settle(
      'guardRegressed',
      trafficEndedAt + 60_000,
      async () => (await getResults(tenant.apiKey, id))[0],
      (got) => guardrailDifferences(got, want).length === 0,
    );
    expect(guardrailDifferences(row, want)).toEqual([]);
    expect(Date.parse(row.since)).toBeGreaterThanOrEqual(createdAt);
    expect(Date.parse(row.since)).toBeLessThanOrEqual(Date.now());

    // The first payload after whose 2xx the reference says regressed.
    const accepted = proxy.records
      .filter((r) => ALL_HOSTS.includes(r.host) && r.apiStatus === 202 && r.answeredAt !== undefined)
      .sort((a, b) => a.answeredAt! - b.answeredAt!);
    let turnedAt: number | undefined;
    for (let i = 0; i < accepted.length && turnedAt === undefined; i++) {
      const prefix = deliveredPayloads(accepted.slice(0, i + 1));
      if (expectedGuardrail(prefix, GUARD_REGRESSED, PLACE).status === 'regressed') turnedAt = accepted[i].answeredAt;
    }
    expect(turnedAt).toBeDefined();
    const calls = await settle('webhook', Math.max(Date.now(), turnedAt! + 12_000), async () => webhook.of('/regressed'), (c) => c.length > 0, 250);
    const first = calls[0];
    log(`guardRegressed: regressed by the reference after a 2xx at ${new Date(turnedAt!).toISOString()}; first webhook POST ${first ? secs(first.at - turnedAt!) : 'never'} later; body ${JSON.stringify(first?.body).slice(0, 300)}`);
    expect(first).toBeDefined();
    expect(first.at - turnedAt!).toBeLessThanOrEqual(10_000);
    expect(containsValue(first.body, id)).toBe(true);
    expect(saysRegressed(first.body)).toBe(true);
    // Answered 503 the first time: sent again until a 2xx.
    const retried = await settle('webhook retry', Date.now() + 60_000, async () => webhook.of('/regressed'), (c) => c.some((x) => x.answered === 200), 500);
    expect(retried.some((x) => x.answered === 200 && containsValue(x.body, id) && saysRegressed(x.body))).toBe(true);
  });

  it('guardrail: an A/A (equal error rates) is healthy and never calls its webhook; one short of minUnits is insufficient-data', async () => {
    const aa = analysis('guardAA');
    const waiting = analysis('guardWaiting');
    const wantAA = expectedGuardrail(deliveries, GUARD_AA, PLACE);
    const wantWaiting = expectedGuardrail(deliveries, GUARD_WAITING, PLACE);
    expect(wantAA).toMatchObject({ status: 'healthy', delta: 0, units: { control: 120, treatment: 120 } });
    expect(wantWaiting).toMatchObject({ status: 'insufficient-data', units: { control: 120, treatment: 120 } });
    const rowAA = await settle('guardAA', trafficEndedAt + 60_000, async () => (await getResults(tenant.apiKey, aa.id))[0], (got) => guardrailDifferences(got, wantAA).length === 0);
    expect(guardrailDifferences(rowAA, wantAA)).toEqual([]);
    expect(Date.parse(rowAA.since)).toBeGreaterThanOrEqual(aa.createdAt);
    const rowWaiting = await settle('guardWaiting', trafficEndedAt + 60_000, async () => (await getResults(tenant.apiKey, waiting.id))[0], (got) => guardrailDifferences(got, wantWaiting).length === 0);
    expect(guardrailDifferences(rowWaiting, wantWaiting)).toEqual([]);
    expect(webhook.of('/aa')).toEqual([]);
  });

  it('custom-sql: SELECT flagKey, variation, COUNT(*) AS n FROM events WHERE kind = \'feature\' GROUP BY flagKey, variation answers the reference\'s counts', async () => {
    const { id } = analysis('sql');
    const want = expectedFeatureCounts(deliveries, PLACE);
    expect(want.length).toBeGreaterThanOrEqual(8);
    const project = (rows: Record<string, any>[]) => [...rows.map((r) => ({ flagKey: r.flagKey, variation: r.variation ?? null, n: r.n }))].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    const rows = await settle('sql', trafficEndedAt + 60_000, () => getResults(tenant.apiKey, id), (got) => JSON.stringify(project(got)) === JSON.stringify(want));
    log(`sql: ${want.length} rows expected, ${rows.length} seen`);
    expect(project(rows)).toEqual(want);
    // The analysis shows its SQL.
    const sql = await call('GET', `/v1/analyses/${id}/sql`, { key: tenant.apiKey });
    expect(sql.status).toBe(200);
    expect(typeof sql.body.sql).toBe('string');
    expect((await getAnalysis(tenant.apiKey, id)).kind).toBe('custom-sql');
  });
});

/** Differences between an API guardrail row and the reference: status and units exact; delta and bound within 1e-6 once decided. */
function guardrailDifferences(got: Record<string, any> | undefined, want: GuardrailResult): string[] {
  if (!got) return ['no row'];
  const out: string[] = [];
  if (got.status !== want.status) out.push(`status ${got.status}, want ${want.status}`);
  if (got.units?.control !== want.units.control || got.units?.treatment !== want.units.treatment) out.push(`units ${JSON.stringify(got.units)}, want ${JSON.stringify(want.units)}`);
  if (typeof got.since !== 'string' || Number.isNaN(Date.parse(got.since))) out.push(`since ${JSON.stringify(got.since)}`);
  if (want.status !== 'insufficient-data') {
    for (const field of ['delta', 'bound'] as const) {
      const a = got[field];
      const b = want[field]!;
      if (typeof a !== 'number' || !(Math.abs(a - b) <= Math.max(1e-10, REL * Math.max(Math.abs(a), Math.abs(b))))) out.push(`${field} ${JSON.stringify(a)}, want ${b}`);
    }
  }
  return out;
}
