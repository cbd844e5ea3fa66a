import { experimentRows, flagUsageRows, guardrailVerdict, UsageBucket } from './presenters';
import { compareRelative, summarize } from './statistics';

const S = 1000;
const P = 60 * S; // period
const bucket = (flagKey: string, variation: number | null, firstAt: number, lastAt = firstAt, evaluations = 1, more: Partial<UsageBucket> = {}): UsageBucket => ({
  windowStart: new Date(firstAt - (firstAt % S)).toISOString(), windowEnd: new Date(firstAt - (firstAt % S) + S).toISOString(),
  flagKey, environment: 'production', variation, unknown: false, evaluations, firstAt, lastAt, ...more,
});
const iso = (t: number) => new Date(t).toISOString();

describe('flag-usage rows, as of a time', () => {
  const T = Date.UTC(2026, 10, 26, 12);

  it('is launched with one variation, active with two, inactive a period after the last evaluation, by time alone', () => {
    const buckets = [bucket('f', 0, T, T + 500, 3), bucket('f', 1, T + 10 * S, T + 10 * S, 2)];
    expect(flagUsageRows(buckets, T + 5 * S, P)).toEqual([
      { flagKey: 'f', environment: 'production', status: 'launched', since: iso(T), lastEvaluatedAt: iso(T + 500), evaluations: 3, variationsServed: [0] },
    ]);
    expect(flagUsageRows(buckets, T + 20 * S, P)[0]).toMatchObject({ status: 'active', since: iso(T + 10 * S), variationsServed: [0, 1], evaluations: 5 });
    // Variation 0 was last served at T + 500: a period later only variation 1 is.
    expect(flagUsageRows(buckets, T + 500 + P, P)[0]).toMatchObject({ status: 'launched', since: iso(T + 500 + P), variationsServed: [1] });
    // Inactive from the last evaluation + period; evaluations count by bucket (those ending after now − period).
    expect(flagUsageRows(buckets, T + 10 * S + P, P)[0]).toMatchObject({ status: 'inactive', since: iso(T + 10 * S + P), variationsServed: [], evaluations: 2 });
    expect(flagUsageRows(buckets, T + 11 * S + P, P)[0]).toMatchObject({ status: 'inactive', since: iso(T + 10 * S + P), evaluations: 0 });
  });

  it('says unknown-flag when only unknown counters came, and keeps flags and environments apart', () => {
    const buckets = [
      bucket('ghost', null, T, T, 4, { unknown: true }),
      bucket('f', 2, T, T, 1, { environment: 'staging' }),
      bucket('f', 2, T, T, 1),
    ];
    const rows = flagUsageRows(buckets, T + S, P);
    expect(rows.map((r) => [r.flagKey, r.environment, r.status])).toEqual([
      ['f', 'production', 'launched'], ['f', 'staging', 'launched'], ['ghost', 'production', 'unknown-flag'],
    ]);
  });

  it('treats a gap longer than the period as a stretch of inactivity in since', () => {
    const buckets = [bucket('f', 0, T), bucket('f', 0, T + 2 * P)];
    expect(flagUsageRows(buckets, T + 2 * P + S, P)[0]).toMatchObject({ status: 'launched', since: iso(T + 2 * P) });
    expect(flagUsageRows([bucket('f', 0, T), bucket('f', 0, T + P - 1)], T + P + S, P)[0]).toMatchObject({ status: 'launched', since: iso(T) });
  });

  it('ignores evaluations timed after now (an SDK clock ahead)', () => {
    expect(flagUsageRows([bucket('f', 0, T + 10 * S)], T, P)).toEqual([]);
  });
});

describe('experiment rows', () => {
  const stats = [
    { variation: 0, units: 3407, sum: 1396.87, sumSquares: 52377.9767, multipleExposures: 2 },
    { variation: 1, units: 3461, sum: 2422.7, sumSquares: 134698.29, multipleExposures: 0 },
  ];

  it('compares every variation with control and reports the sufficient statistics as the contract names them', () => {
    const [control, treatment] = experimentRows(stats, { flagKey: 'f', metric: { eventKey: 'e', type: 'value' } });
    expect(control).toMatchObject({ variation: 0, units: 3407, valueSum: 1396.87, relativeLift: 0, liftCi: null, pValue: null, sequential: null, multipleExposures: 2 });
    const expected = compareRelative(stats[0], stats[1], 'value', 0.05)!;
    expect(treatment).toMatchObject({ relativeLift: expected.relativeLift, liftCi: expected.liftCi, pValue: expected.pValue, chanceToBeatControl: expected.chanceToBeatControl });
    expect(treatment.relativeLift).toBeCloseTo(0.70732, 5);
    expect(treatment.mean).toBeCloseTo(summarize(stats[1], 'value').mean!, 12);
    expect(control.srmPValue).toBe(treatment.srmPValue);
  });

  it('names conversions for a conversion metric and tests SRM against the given weights', () => {
    const rows = experimentRows(
      [{ variation: 0, units: 28, sum: 14, sumSquares: 14, multipleExposures: 0 }, { variation: 1, units: 30, sum: 16, sumSquares: 16, multipleExposures: 1 }],
      { flagKey: 'f', metric: { eventKey: 'e', type: 'conversion' }, weights: [1, 1, 1] },
    );
    expect(rows[1]).toMatchObject({ conversions: 16, units: 30 });
    expect(rows[1].pValue).toBeCloseTo(0.80707, 5);
    expect(rows[0].srmPValue!).toBeLessThan(0.01); // nobody in the third arm
  });
});

describe('guardrail verdicts', () => {
  const params = { flagKey: 'f', metric: { eventKey: 'err', type: 'conversion' as const, direction: 'lower-is-better' as const }, treatmentVariation: 1, minUnits: 100 };
  it('waits for minUnits, stays healthy A/A, regresses on a clearly higher error rate', () => {
    expect(guardrailVerdict([{ variation: 0, units: 50, sum: 5, sumSquares: 5, multipleExposures: 0 }], params)).toMatchObject({ status: 'insufficient-data', units: { control: 50, treatment: 0 } });
    const aa = guardrailVerdict([{ variation: 0, units: 1000, sum: 50, sumSquares: 50, multipleExposures: 0 }, { variation: 1, units: 1000, sum: 52, sumSquares: 52, multipleExposures: 0 }], params);
    expect(aa.status).toBe('healthy');
    const bad = guardrailVerdict([{ variation: 0, units: 1000, sum: 50, sumSquares: 50, multipleExposures: 0 }, { variation: 1, units: 1000, sum: 150, sumSquares: 150, multipleExposures: 0 }], params);
    expect(bad).toMatchObject({ status: 'regressed', delta: expect.closeTo(0.1, 10) });
    expect(bad.bound!).toBeGreaterThan(0);
  });
});
