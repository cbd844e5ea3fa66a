import {
  armsOf, compareRelative, evaluationsOf, expectedExperiment, expectedFeatureCounts, expectedFlagUsage, expectedGuardrail, expectedUniqueContexts,
  experimentRowDifferences, flagUsageAt, flagUsageBucketMs, flagUsageCandidates, guardrailTest, projectFlagUsageRows, projectUniqueContextsRows,
  sequentialHalfwidth, sequentialHalfwidthOneSided, sequentialPValue, srmPValue, tQuantile, unitsOf,
} from './catalog-reference';
import { deliveredPayloads, Delivery, RecordLike } from './reference';

/**
 * The catalog reference (catalog-reference.ts) itself, on hand-made deliveries and on
 * published figures: the catalog's end-to-end tests are only as good as this. No stack call.
 */

const W = 10_000;
const T = Date.UTC(2026, 10, 26, 12, 0, 0); // a window boundary
const HOUR = 3_600_000;
const iso = (t: number) => new Date(t).toISOString();
const delivery = (events: unknown[], receivedAt: number, host = 'h', payloadId = `p-${host}-${receivedAt}`): Delivery => ({
  payloadId, host, events, receivedFrom: receivedAt, receivedTo: receivedAt, attempts: 1,
});
const user = (key: string, extra: Record<string, unknown> = {}) => ({ kind: 'user', key, ...extra });
const feature = (t: number, flag: string, variation: number | undefined, context: unknown) => ({ kind: 'feature', creationDate: t, key: flag, variation, value: variation, default: null, version: 1, context });
const custom = (t: number, key: string, who: { context?: unknown; contextKeys?: Record<string, string> }, metricValue?: number) => ({ kind: 'custom', creationDate: t, key, ...who, ...(metricValue === undefined ? {} : { metricValue }) });
const summary = (endDate: number, counters: [flag: string, variation: number | 'unknown', count: number][]) => {
  const features: Record<string, { default: null; counters: Record<string, unknown>[] }> = {};
  for (const [flag, variation, count] of counters) {
    (features[flag] ??= { default: null, counters: [] }).counters.push(variation === 'unknown' ? { value: null, count, unknown: true } : { value: variation, variation, version: 1, count });
  }
  return { kind: 'summary', startDate: endDate - 1000, endDate, features };
};
const near = (x: number, y: number, decimals = 5) => expect(Math.round(x * 10 ** decimals) / 10 ** decimals).toBeCloseTo(y, decimals);

describe('catalog reference: unique-contexts', () => {
  const received = T + 15_000;
  const events = [
    { kind: 'index', creationDate: T + 100, context: user('u1') },
    { kind: 'identify', creationDate: T + 200, context: { key: 'u2' } }, // no kind: a user
    feature(T + 300, 'f', 0, { kind: 'multi', user: { key: 'u3' }, organization: { key: 'o1' } }),
    custom(T + 400, 'buy', { contextKeys: { user: 'u4', organization: 'o2' } }), // contextKeys only
    custom(T + 500, 'buy', { context: user('u1') }), // u1 again
    summary(T + 600, [['f', 0, 9]]), // no context: counts nowhere
    feature(T + 700, 'g', 1, user('u5')),
    feature(T + 800, 'f', undefined, user('u6')), // no variation (an error, say)
    { kind: 'index', creationDate: T + 11_000, context: { kind: 'organization', key: 'o3' } },
    { kind: 'index', creationDate: received - 2 * HOUR, context: user('late-user') }, // older than the horizon
    custom(received + 10 * 60_000, 'buy', { contextKeys: { user: 'ahead-user' } }), // > 5 min ahead: at receive time
  ];
  const deliveries = [delivery(events, received, 'prod'), delivery([{ kind: 'index', creationDate: T + 900, context: user('s1') }, feature(T + 950, 'g', 0, user('u1'))], T + 2000, 'stg')];
  const environmentOf = (d: Delivery) => (d.host === 'stg' ? 'staging' : 'production');
  const row = (start: number, contextKind: string, contexts: number, extra: Record<string, unknown> = {}) => ({ windowStart: iso(start), windowEnd: iso(start + W), ...extra, contextKind, contexts });

  it('counts every context-carrying kind, a multi-kind context under each kind, contextKeys-only custom events, each key once a window; late events nowhere, far-ahead ones at receive time', () => {
    const users = expectedUniqueContexts(deliveries, { windowMs: W }, { environmentOf });
    expect(users.rows).toEqual([row(T, 'user', 7), row(T + W, 'user', 1)]); // u1..u6 and s1; then ahead-user
    expect(users.lateEvents).toBe(1);
    expect(users.ambiguous).toEqual([]);
    const orgs = expectedUniqueContexts(deliveries, { windowMs: W, contextKind: 'organization' }, { environmentOf });
    expect(orgs.rows).toEqual([row(T, 'organization', 2), row(T + W, 'organization', 1)]); // o1, o2; o3
  });

  it('grouped by flag or variation, or filtered by flagKeys, counts feature events only (variation null when absent); by environment, every kind', () => {
    expect(expectedUniqueContexts(deliveries, { windowMs: W, groupBy: ['flagKey'] }).rows).toEqual([
      row(T, 'user', 2, { flagKey: 'f' }), // u3, u6
      row(T, 'user', 2, { flagKey: 'g' }), // u5, u1
    ]);
    expect(expectedUniqueContexts(deliveries, { windowMs: W, groupBy: ['flagKey', 'variation'], contextKind: 'organization' }).rows).toEqual([row(T, 'organization', 1, { flagKey: 'f', variation: 0 })]);
    expect(expectedUniqueContexts(deliveries, { windowMs: W, groupBy: ['variation'] }).rows).toEqual([
      row(T, 'user', 2, { variation: 0 }), // u3, u1
      row(T, 'user', 1, { variation: 1 }),
      row(T, 'user', 1, { variation: null }),
    ]);
    expect(expectedUniqueContexts(deliveries, { windowMs: W, flagKeys: ['g'] }).rows).toEqual([row(T, 'user', 2)]);
    expect(expectedUniqueContexts(deliveries, { windowMs: W, groupBy: ['environment'] }, { environmentOf }).rows).toEqual([
      row(T, 'user', 6, { environment: 'production' }),
      row(T, 'user', 2, { environment: 'staging' }),
      row(T + W, 'user', 1, { environment: 'production' }),
    ]);
    // Scoped to one environment.
    expect(expectedUniqueContexts(deliveries, { windowMs: W }, { environmentOf, environment: 'staging' }).rows).toEqual([row(T, 'user', 2)]);
  });

  it('projects API rows to the decided fields, whatever ISO form their times take', () => {
    const api = [{ windowStart: '2026-11-26T12:00:00Z', windowEnd: '2026-11-26T12:00:10.000Z', contextKind: 'user', contexts: 7, final: true, flagKey: 'x', updatedAt: 'z' }];
    expect(projectUniqueContextsRows(api)).toEqual([row(T, 'user', 7)]);
  });

  it('says when a far-ahead event\'s window depends on where in its receive interval the API judged it', () => {
    const straddling: Delivery = { payloadId: 'p', host: 'h', events: [custom(T + HOUR, 'buy', { contextKeys: { user: 'x' } })], receivedFrom: T - 5, receivedTo: T + 5, attempts: 1 };
    expect(expectedUniqueContexts([straddling], { windowMs: W }).ambiguous).toHaveLength(1);
  });

  it('counts a payload retried with the same payload ID once (through deliveredPayloads)', () => {
    const body = [{ kind: 'index', creationDate: T + 100, context: user('r1') }];
    const rec = (over: Partial<RecordLike>): RecordLike => ({ host: 'h', method: 'POST', path: '/bulk', payloadId: 'same', body, forwardedAt: T + 1000, answeredAt: T + 1010, apiStatus: 202, apiBody: '{"accepted":1,"rejected":[]}', ...over });
    const deliveries2 = deliveredPayloads([rec({}), rec({ forwardedAt: T + 2000, answeredAt: T + 2010 }), rec({ payloadId: 'other', body: [{ kind: 'index', creationDate: T + 100, context: user('r2') }], apiStatus: 503 })]);
    expect(expectedUniqueContexts(deliveries2, { windowMs: W }).rows).toEqual([row(T, 'user', 1)]);
  });
});

describe('catalog reference: experiment exposures and conversions', () => {
  const received = T + 60_000;
  const events = [
    // a: converts before its exposure only: not a conversion.
    custom(T + 500, 'buy', { context: user('a') }),
    feature(T + 1000, 'exp', 0, user('a')),
    // b: exposed to 0, then 1: counted once, under 0, as a multiple exposure; converts after.
    feature(T + 1000, 'exp', 0, user('b')),
    feature(T + 2000, 'exp', 1, user('b')),
    custom(T + 3000, 'buy', { context: user('b') }),
    custom(T + 3500, 'buy', { context: user('b') }), // twice: one conversion
    // c: two variations at the same instant: the lowest one is its first.
    feature(T + 1000, 'exp', 1, user('c')),
    feature(T + 1000, 'exp', 0, user('c')),
    // d: a multi-kind context; converts by contextKeys only, at the very instant of its exposure (≥).
    feature(T + 1000, 'exp', 1, { kind: 'multi', user: { key: 'd' }, organization: { key: 'o1' } }),
    custom(T + 1000, 'buy', { contextKeys: { user: 'd', organization: 'o1' } }, 2.5),
    custom(T + 1500, 'buy', { context: user('d') }, 1.25),
    custom(T + 1600, 'buy', { context: user('d') }), // no metricValue: adds 0
    // e: exposed, never converts; f: only another flag; g: no variation (not an exposure).
    feature(T + 1000, 'exp', 1, user('e')),
    feature(T + 1000, 'other', 1, user('f')),
    custom(T + 2000, 'buy', { context: user('f') }),
    feature(T + 1000, 'exp', undefined, user('g')),
    // Another event key: nothing.
    custom(T + 2000, 'view', { context: user('e') }),
    // Too late to count (older than the horizon): nothing.
    custom(received - 2 * HOUR, 'buy', { context: user('e') }),
  ];
  const deliveries = [delivery(events, received)];

  it('finds units, first exposures (ties: lowest variation), multiple exposures and conversions at or after the first exposure', () => {
    const units = unitsOf(deliveries, { flagKey: 'exp', metric: { eventKey: 'buy', type: 'conversion' } });
    const shown = Object.fromEntries([...units.values()].map((u) => [u.key, { variation: u.variation, y: u.y, multiple: u.variations.size > 1 }]));
    expect(shown).toEqual({
      a: { variation: 0, y: 0, multiple: false },
      b: { variation: 0, y: 1, multiple: true },
      c: { variation: 0, y: 0, multiple: true },
      d: { variation: 1, y: 1, multiple: false },
      e: { variation: 1, y: 0, multiple: false },
    });
    const arms = armsOf(units);
    expect(arms.get(0)).toEqual({ variation: 0, n: 3, sum: 1, sumSquares: 1, multipleExposures: 2 });
    expect(arms.get(1)).toEqual({ variation: 1, n: 2, sum: 1, sumSquares: 1, multipleExposures: 0 });
  });

  it('sums metricValues per unit for value metrics (0 when none), and randomizes by another context kind', () => {
    const value = armsOf(unitsOf(deliveries, { flagKey: 'exp', metric: { eventKey: 'buy', type: 'value' } }));
    // b: two events with metricValue absent → 0; d: 2.5 + 1.25 + 0.
    expect(value.get(1)).toEqual({ variation: 1, n: 2, sum: 3.75, sumSquares: 3.75 ** 2, multipleExposures: 0 });
    expect(value.get(0)).toMatchObject({ n: 3, sum: 0 });
    const byOrg = unitsOf(deliveries, { flagKey: 'exp', metric: { eventKey: 'buy', type: 'value' }, randomizationKind: 'organization' });
    expect([...byOrg.values()].map((u) => [u.key, u.variation, u.y])).toEqual([['o1', 1, 2.5]]); // only the contextKeys event names o1
  });

  it('builds rows: exact counts, the control row with lift 0 and null comparisons, srmPValue on every row', () => {
    const rows = expectedExperiment(deliveries, { flagKey: 'exp', metric: { eventKey: 'buy', type: 'conversion' } });
    expect(rows.map((r) => [r.variation, r.units, r.conversions, r.multipleExposures])).toEqual([[0, 3, 1, 2], [1, 2, 1, 0]]);
    expect(rows[0]).toMatchObject({ relativeLift: 0, liftCi: null, pValue: null, sequential: null, chanceToBeatControl: null });
    expect(rows[0].srmPValue).toBeCloseTo(rows[1].srmPValue!, 12);
    expect(rows[1].relativeLift).toBeCloseTo((1 / 2 - 1 / 3) / (1 / 3), 12);
    expect(rows[1].stdDev).toBeCloseTo(0.5, 12);
    // Another control: the lift turns round.
    const other = expectedExperiment(deliveries, { flagKey: 'exp', metric: { eventKey: 'buy', type: 'conversion' }, controlVariation: 1 });
    expect(other[0].relativeLift).toBeCloseTo((1 / 3 - 1 / 2) / (1 / 2), 12);
    expect(other[1]).toMatchObject({ relativeLift: 0, pValue: null });
  });

  it('compares rows: exact counts, statistics within 1e-6 relative, nulls where the reference has them', () => {
    const rows = expectedExperiment(deliveries, { flagKey: 'exp', metric: { eventKey: 'buy', type: 'conversion' } });
    const good = JSON.parse(JSON.stringify(rows[1]));
    expect(experimentRowDifferences(good, rows[1])).toEqual([]);
    expect(experimentRowDifferences({ ...good, pValue: good.pValue * (1 + 1e-7) }, rows[1])).toEqual([]);
    expect(experimentRowDifferences({ ...good, pValue: good.pValue * (1 + 1e-5) }, rows[1])).toHaveLength(1);
    expect(experimentRowDifferences({ ...good, units: 3 }, rows[1])).toEqual(['variation 1: units 3, want 2']);
    expect(experimentRowDifferences({ ...JSON.parse(JSON.stringify(rows[0])), sequential: { liftCi: null, pValue: null } }, rows[0])).toEqual([]);
    expect(experimentRowDifferences({ ...JSON.parse(JSON.stringify(rows[0])), pValue: 0.5 }, rows[0])).toHaveLength(1);
    expect(experimentRowDifferences(undefined, rows[0])).toEqual(['variation 0: no row']);
  });
});

describe('catalog reference: statistics against published figures (gbstats tests, jStat distributions)', () => {
  const A = { n: 3407, sum: 1396.87, sumSquares: 52377.9767 };
  const B = { n: 3461, sum: 2422.7, sumSquares: 134698.29 };

  it('Welch, value arms (Σ, Σ², n) A (1396.87, 52377.9767, 3407) vs B (2422.7, 134698.29, 3461): Δ 0.70732, se 0.37879, CI (−0.03526, 1.44989), p 0.06191', () => {
    const r = compareRelative(A, B, 'value')!;
    near(r.relativeLift, 0.70732);
    near(r.se, 0.37879);
    near(r.liftCi[0], -0.03526);
    near(r.liftCi[1], 1.44989);
    near(r.pValue, 0.06191);
    expect(r.chanceToBeatControl).toBeCloseTo(0.969, 3); // Φ(0.70732 / 0.37879)
  });

  it('binomial 14/28 vs 16/30: Δ 0.06667, se 0.2717, CI (−0.47767, 0.61101), p 0.80707', () => {
    const r = compareRelative({ n: 28, sum: 14, sumSquares: 14 }, { n: 30, sum: 16, sumSquares: 16 }, 'conversion')!;
    near(r.relativeLift, 0.06667);
    near(r.se, 0.2717);
    near(r.liftCi[0], -0.47767);
    near(r.liftCi[1], 0.61101);
    near(r.pValue, 0.80707);
  });

  it('sequential two-sided (confidence sequence): value arms, tuning 1000: CI (−0.55844, 1.56516), p 1; proportions, tuning 5000: CI (0.40098, 0.60675), se 0.03386, p ~0', () => {
    const a = { n: 3000, sum: 1396.87, sumSquares: 52377.9767 };
    const r = compareRelative(a, B, 'value', 0.05, 1000)!;
    near(r.relativeLift, 0.50336);
    near(r.se, 0.33341);
    near(r.sequential.liftCi[0], -0.55844);
    near(r.sequential.liftCi[1], 1.56516);
    expect(r.sequential.pValue).toBe(1);
    const p = compareRelative({ n: 3000, sum: 1396, sumSquares: 1396 }, { n: 3461, sum: 2422, sumSquares: 2422 }, 'conversion')!;
    near(p.relativeLift, 0.50386);
    near(p.se, 0.03386);
    near(p.sequential.liftCi[0], 0.40098);
    near(p.sequential.liftCi[1], 0.60675);
    expect(p.sequential.pValue).toBeLessThan(5e-6);
    // The default tuning (5000) is the one the analyses use.
    const d = compareRelative(a, B, 'value')!;
    const n = a.n + B.n;
    expect(d.sequential.liftCi[1] - d.relativeLift).toBeCloseTo(sequentialHalfwidth(d.se ** 2 * n, n, 0.05, 5000), 12);
    expect(d.sequential.pValue).toBeCloseTo(sequentialPValue(d.relativeLift, d.se, n, 0.05, 5000), 12);
  });

  it('sequential one-sided bound (eq. 134): treatment-greater lower bounds −0.42356 (relative) and −0.12657 (absolute)', () => {
    const a = { n: 3000, sum: 1396.87, sumSquares: 52377.9767 };
    const n = a.n + B.n;
    near(0.5033610858562358 - sequentialHalfwidthOneSided(0.3334122146400735 ** 2 * n, n, 0.05), -0.42356454602790883);
    // The guardrail's absolute test: Δ = μB − μA, variance σB²/nB + σA²/nA; higher-is-better bounds above, lower-is-better below.
    const lower = guardrailTest(a, B, { metric: { eventKey: 'x', type: 'value', direction: 'lower-is-better' }, minUnits: 100 });
    near(lower.delta!, 0.23437666666666668);
    near(lower.bound!, -0.12656844172804982);
    expect(lower.status).toBe('healthy'); // worse is higher, but the bound reaches below 0
    const higher = guardrailTest(a, B, { metric: { eventKey: 'x', type: 'value', direction: 'higher-is-better' }, minUnits: 100 });
    expect(higher.bound! - higher.delta!).toBeCloseTo(lower.delta! - lower.bound!, 12);
    expect(higher.status).toBe('healthy');
  });

  it('t quantiles within 1e-7 (jStat inv polished on jStat\'s cdf) of exact values (the closed-form cdf of 3 and even df)', () => {
    const exact: [p: number, df: number, q: number][] = [[0.975, 10, 2.228138851986274], [0.95, 3, 2.353363434801821], [0.975, 100, 1.9839715185235463], [0.975, 400, 1.965912343229467], [0.95, 2000, 1.6456158666988299], [0.975, 10_000, 1.960201239890114]];
    for (const [p, df, q] of exact) expect({ p, df, off: Math.abs(tQuantile(p, df) / q - 1) < 1e-7 }).toEqual({ p, df, off: true });
  });

  it('SRM: chi-squared of units against weights, k − 1 degrees of freedom', () => {
    expect(srmPValue([500, 500], [1, 1])).toBeCloseTo(1, 12);
    near(srmPValue([550, 450], [1, 1]), 0.00157); // chi² 10, 1 df
    near(srmPValue([250, 500, 250], [0.25, 0.5, 0.25]), 1);
    // chi² 50²/250 + 50²/500 + 0 = 15 with 2 df: p = e^(−15/2).
    expect(srmPValue([300, 450, 250], [1, 2, 1])).toBeCloseTo(Math.exp(-7.5), 10);
  });
});

describe('catalog reference: guardrail', () => {
  const params = { flagKey: 'g', metric: { eventKey: 'error', type: 'conversion' as const, direction: 'lower-is-better' as const }, treatmentVariation: 1 };
  const traffic = (perArm: number, controlRate: number, treatmentRate: number, start = T) => {
    const events: unknown[] = [];
    for (let i = 0; i < perArm; i++) {
      for (const [variation, rate] of [[0, controlRate], [1, treatmentRate]] as const) {
        const key = `g${variation}-${i}`;
        events.push(feature(start + i, 'g', variation, user(key)));
        if (i < Math.round(perArm * rate)) events.push(custom(start + i + 1, 'error', { context: user(key) }));
      }
    }
    return events;
  };

  it('is insufficient-data below minUnits per arm, regressed for 5 % against 40 % errors, healthy for an A/A', () => {
    expect(expectedGuardrail([delivery(traffic(99, 0.05, 0.4), T + 5000)], params)).toMatchObject({ status: 'insufficient-data', units: { control: 99, treatment: 99 } });
    const bad = expectedGuardrail([delivery(traffic(300, 0.05, 0.4), T + 5000)], params);
    expect(bad).toMatchObject({ status: 'regressed', units: { control: 300, treatment: 300 } });
    expect(bad.delta).toBeCloseTo(0.35, 12);
    expect(bad.bound!).toBeGreaterThan(0);
    expect(bad.bound!).toBeLessThan(bad.delta!);
    expect(expectedGuardrail([delivery(traffic(300, 0.1, 0.1), T + 5000)], params)).toMatchObject({ status: 'healthy', delta: 0 });
    // The same errors with higher-is-better: treatment is better, so healthy.
    expect(expectedGuardrail([delivery(traffic(300, 0.05, 0.4), T + 5000)], { ...params, metric: { ...params.metric, direction: 'higher-is-better' } })).toMatchObject({ status: 'healthy' });
    // Already regressed at 100 units an arm.
    expect(expectedGuardrail([delivery(traffic(100, 0.05, 0.4), T + 5000)], params).status).toBe('regressed');
    // minUnits is a parameter.
    expect(expectedGuardrail([delivery(traffic(300, 0.05, 0.4), T + 5000)], { ...params, minUnits: 301 }).status).toBe('insufficient-data');
  });
});

describe('catalog reference: flag-usage', () => {
  const P = 60_000; // bucket 1 s
  const deliveries = [
    delivery([summary(T, [['a', 0, 2]])], T + 100, 'prod'),
    delivery([summary(T + 5000, [['ghost', 'unknown', 4]])], T + 5100, 'prod'),
    delivery([summary(T + 10_000, [['a', 1, 3]])], T + 10_100, 'prod'),
    delivery([summary(T + 20_000, [['a', 0, 1]])], T + 20_100, 'prod'),
    delivery([summary(T + 1000, [['a', 1, 5]])], T + 1100, 'stg'),
  ];
  const environmentOf = (d: Delivery) => (d.host === 'stg' ? 'staging' : 'production');
  const at = (now: number, periodMs = P) => Object.fromEntries(expectedFlagUsage(deliveries, periodMs, now, { environmentOf }).map((r) => [`${r.flagKey}/${r.environment}`, r]));
  const aProd = (now: number) => at(now)['a/production'];

  it('turns launched, active, launched again and inactive (with time alone), with since when each began', () => {
    expect(at(T - 1)).toEqual({});
    expect(aProd(T + 5000)).toEqual({ flagKey: 'a', environment: 'production', status: 'launched', since: iso(T), lastEvaluatedAt: iso(T), evaluations: 2, variationsServed: [0] });
    expect(aProd(T + 15_000)).toEqual({ flagKey: 'a', environment: 'production', status: 'active', since: iso(T + 10_000), lastEvaluatedAt: iso(T + 10_000), evaluations: 5, variationsServed: [0, 1] });
    // At T + 60 s the first evaluation leaves the period; another of variation 0 is still in it.
    expect(aProd(T + 65_000)).toMatchObject({ status: 'active', since: iso(T + 10_000), evaluations: 4, variationsServed: [0, 1] });
    // Variation 1 leaves at T + 70 s: launched again, since then.
    expect(aProd(T + 69_999)).toMatchObject({ status: 'active' });
    // (Its 3 evaluations still count until their bucket [T + 10 s, T + 11 s) ends a period ago.)
    expect(aProd(T + 70_000)).toMatchObject({ status: 'launched', since: iso(T + 70_000), lastEvaluatedAt: iso(T + 20_000), evaluations: 4, variationsServed: [0] });
    expect(aProd(T + 71_000)).toMatchObject({ status: 'launched', since: iso(T + 70_000), evaluations: 1 });
    // Nothing since T + 20 s: inactive at lastEvaluatedAt + period, no event needed.
    expect(aProd(T + 80_000)).toEqual({ flagKey: 'a', environment: 'production', status: 'inactive', since: iso(T + 80_000), lastEvaluatedAt: iso(T + 20_000), evaluations: 1, variationsServed: [] });
    expect(aProd(T + 81_000)).toMatchObject({ status: 'inactive', since: iso(T + 80_000), evaluations: 0 });
    expect(aProd(T + 10 * HOUR)).toMatchObject({ status: 'inactive', since: iso(T + 80_000) });
  });

  it('shows unknown flags as unknown-flag (no variation served), per environment', () => {
    expect(at(T + 6000)['ghost/production']).toEqual({ flagKey: 'ghost', environment: 'production', status: 'unknown-flag', since: iso(T + 5000), lastEvaluatedAt: iso(T + 5000), evaluations: 4, variationsServed: [] });
    expect(at(T + 65_000)['ghost/production']).toMatchObject({ status: 'inactive', since: iso(T + 65_000) });
    expect(at(T + 6000)['a/staging']).toMatchObject({ status: 'launched', since: iso(T + 1000), evaluations: 5, variationsServed: [1] });
    expect(at(T + 61_000)['a/staging']).toMatchObject({ status: 'inactive', since: iso(T + 61_000) });
    expect(Object.keys(at(T + 30_000)).sort()).toEqual(['a/production', 'a/staging', 'ghost/production']);
    // Unknown and known evaluations together: the known ones decide.
    const mixed = flagUsageAt([{ flagKey: 'm', environment: 'e', variation: null, time: T, count: 1 }, { flagKey: 'm', environment: 'e', variation: 2, time: T + 1, count: 1 }], P, T + 2);
    expect(mixed[0]).toMatchObject({ status: 'launched', since: iso(T + 1), variationsServed: [2], evaluations: 2 });
  });

  it('counts evaluations by bucket (period / 168, at least 1 s): a bucket counts while it ends after now − period', () => {
    expect(flagUsageBucketMs(20_000)).toBe(1000);
    expect(flagUsageBucketMs(7 * 24 * HOUR)).toBe(HOUR);
    const period = 1680_000; // 28 min: 10 s buckets
    expect(flagUsageBucketMs(period)).toBe(10_000);
    const evals = evaluationsOf([delivery([summary(T + 1000, [['b', 0, 7]])], T + 1100)], { environmentOf: () => 'e' });
    // The evaluation left the period (inactive) but its bucket [T, T + 10 s) has not: still counted.
    expect(flagUsageAt(evals, period, T + 1000 + period + 500)[0]).toMatchObject({ status: 'inactive', since: iso(T + 1000 + period), evaluations: 7, variationsServed: [] });
    expect(flagUsageAt(evals, period, T + 10_000 + period - 1)[0].evaluations).toBe(7);
    expect(flagUsageAt(evals, period, T + 10_000 + period)[0].evaluations).toBe(0);
  });

  it('lists every distinct answer for a now in an interval', () => {
    const candidates = flagUsageCandidates(deliveries, P, T + 69_000, T + 71_000, { environmentOf });
    const answers = candidates.map((c) => c.rows.find((r) => r.flagKey === 'a' && r.environment === 'production')!);
    expect(answers.map((r) => [r.status, r.evaluations])).toEqual([['active', 4], ['launched', 4], ['launched', 1]]);
    expect(candidates.map((c) => c.now - T)).toEqual([69_000, 70_000, 71_000]);
    expect(flagUsageCandidates(deliveries, 7 * 24 * HOUR, T + 30_000, T + 40_000, { environmentOf })).toHaveLength(1);
  });

  it('projects API rows to the contract fields, times canonical', () => {
    const api = [{ flagKey: 'a', environment: 'production', status: 'launched', since: '2026-11-26T12:00:00Z', lastEvaluatedAt: '2026-11-26T12:00:00.000Z', evaluations: 2, variationsServed: [0], windowStart: null }];
    expect(projectFlagUsageRows(api)).toEqual([aProd(T + 5000)]);
  });
});

describe('catalog reference: custom-sql feature counts', () => {
  it('counts feature events per flag and variation (null when absent), not summaries or other kinds', () => {
    const events = [feature(T, 'f', 0, user('a')), feature(T, 'f', 0, user('b')), feature(T, 'f', 1, user('a')), feature(T, 'g', undefined, user('a')), summary(T, [['f', 0, 5]]), custom(T, 'f', { context: user('a') })];
    expect(expectedFeatureCounts([delivery(events, T + 100)])).toEqual([
      { flagKey: 'f', variation: 0, n: 2 },
      { flagKey: 'f', variation: 1, n: 1 },
      { flagKey: 'g', variation: null, n: 1 },
    ]);
  });
});
