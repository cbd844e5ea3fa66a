import {
  ArmStats,
  chiSquaredCdf,
  chiSquaredSf,
  compareRelative,
  confidenceSequenceHalfwidth,
  guardrailTest,
  lnGamma,
  normalCdf,
  normalQuantile,
  SEQUENTIAL_TUNING,
  srmPValue,
  studentTCdf,
  studentTQuantile,
  summarize,
} from './statistics';

/** jstat (a dev dependency, without type declarations) as the independent reference for the distributions. */
interface JStat {
  normal: { cdf(x: number, mean: number, sd: number): number; inv(p: number, mean: number, sd: number): number };
  studentt: { cdf(x: number, df: number): number; inv(p: number, df: number): number };
  chisquare: { cdf(x: number, k: number): number };
}
const { jStat } = require('jstat') as { jStat: JStat };

/** |actual − expected| ≤ rel·|expected| (+ abs). */
function expectClose(actual: number | null | undefined, expected: number, rel = 1e-9, abs = 0): void {
  expect(typeof actual).toBe('number');
  const tolerance = rel * Math.abs(expected) + abs;
  if (!(Math.abs((actual as number) - expected) <= tolerance)) {
    throw new Error(`expected ${actual} to be within ${tolerance} of ${expected}`);
  }
}
/** A value published rounded to `decimals` places matches when it rounds the same (|diff| ≤ half a unit). */
const expectRounded = (actual: number, published: number, decimals = 5) => expectClose(actual, published, 0, 0.5 * 10 ** -decimals + 1e-15);

/** gbstats' SampleMeanStatistic(sum, sum_squares, n) / ProportionStatistic(sum, n) as ArmStats. */
const values = (sum: number, sumSquares: number, units: number): ArmStats => ({ units, sum, sumSquares });
const conversions = (sum: number, units: number): ArmStats => ({ units, sum, sumSquares: sum });

/** Deterministic PRNG (mulberry32) for the randomized cross-checks. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('distribution functions', () => {
  it('lnGamma matches known values', () => {
    expectClose(lnGamma(0.5), 0.5 * Math.log(Math.PI), 1e-14);
    expectClose(lnGamma(1), 0, 0, 1e-14);
    expectClose(lnGamma(10), Math.log(362880), 1e-14);
    expectClose(lnGamma(100), 359.13420536957539878, 1e-14);
    expectClose(lnGamma(1e-8), 18.420680738180208905, 1e-14); // mpmath 1.3.0
  });

  it('normal CDF and quantile agree with jstat over a grid', () => {
    // jstat's erfc is good to ~1e-9 only down to z ≈ −6, so the grid stops there; the far tail is checked below.
    for (let z = -6; z <= 8; z += 0.25) expectClose(normalCdf(z), jStat.normal.cdf(z, 0, 1), 1e-6);
    for (const p of [1e-10, 1e-6, 0.001, 0.01, 0.025, 0.1, 0.3, 0.45, 0.55, 0.7, 0.9, 0.975, 0.999, 1 - 1e-6]) {
      expectClose(normalQuantile(p), jStat.normal.inv(p, 0, 1), 1e-6);
    }
    expect(normalQuantile(0.5)).toBe(0);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(normalCdf(-Infinity)).toBe(0);
    expect(normalCdf(Infinity)).toBe(1);
  });

  it('normal tails and quantiles are accurate far out (mpmath 1.3.0, 50 digits)', () => {
    expectClose(normalCdf(-10), 7.6198530241605261e-24, 1e-12);
    expectClose(normalCdf(-20), 2.7536241186062337e-89, 1e-12);
    expectClose(normalCdf(-37.5), 4.6053530095819548e-308, 1e-10);
    expectClose(normalQuantile(1e-20), -9.262340089798408, 1e-13);
    expectClose(normalQuantile(0.975), 1.959963984540054, 1e-14);
    for (const p of [1e-300, 1e-100, 1e-5, 0.2]) expectClose(normalCdf(normalQuantile(p)), p, 1e-12);
  });

  it('Student t CDF and quantile agree with jstat over a grid', () => {
    // jstat's own error reaches ~1e-7 at df 1e4 and breaks down past ~1e5, so the grid stays below.
    for (const df of [1, 2, 3, 4.5, 7, 10, 30, 100, 1000, 10000]) {
      for (const t of [-8, -3, -1.5, -0.2, 0, 0.7, 2, 5]) expectClose(studentTCdf(t, df), jStat.studentt.cdf(t, df), 1e-6);
      for (const p of [0.001, 0.025, 0.1, 0.75, 0.95, 0.975, 0.999]) {
        expectClose(studentTQuantile(p, df), jStat.studentt.inv(p, df), 1e-6);
      }
      expect(studentTQuantile(0.5, df)).toBe(0);
    }
  });

  it('Student t is exact where closed forms exist (df 1, 2, 3)', () => {
    // (the closed forms themselves lose a few digits to cancellation in the lower tail, hence 1e-11)
    for (const t of [-30, -2, -0.5, 0.1, 1, 4]) {
      expectClose(studentTCdf(t, 1), 0.5 + Math.atan(t) / Math.PI, 1e-11);
      expectClose(studentTCdf(t, 2), 0.5 + t / (2 * Math.sqrt(2 + t * t)), 1e-11);
      const u = t / Math.sqrt(3);
      expectClose(studentTCdf(t, 3), 0.5 + (u / (1 + u * u) + Math.atan(u)) / Math.PI, 1e-11);
    }
  });

  it('Student t is accurate in the tails and at huge df (mpmath 1.3.0, 50 digits)', () => {
    expectClose(studentTCdf(-1.96, 1e8), 0.024997896534664054, 1e-12);
    expectClose(studentTCdf(-6, 1e6), 9.8692490617721733e-10, 1e-12);
    expectClose(studentTCdf(-20, 1e4), 1.3823262932703866e-87, 1e-12);
    expectClose(studentTCdf(-3, 2.5), 0.036288047774515922, 1e-12);
    expectClose(studentTCdf(-50, 3), 8.8085760206359871e-6, 1e-12);
    expectClose(studentTCdf(-4, 1e12), 3.1671241835395035e-5, 1e-12);
    expectClose(studentTQuantile(0.975, 1e9), 1.9599639869123251, 1e-13);
    expectClose(studentTQuantile(1e-10, 1e6), -6.3614068488767426, 1e-13);
    expectClose(studentTQuantile(0.999, 2.5), 13.82219311086596, 1e-12);
    expectClose(studentTQuantile(1e-8, 4), -131.59473694062355, 1e-12);
    expectClose(studentTCdf(-3, Infinity), normalCdf(-3), 1e-15);
  });

  it('chi-squared CDF agrees with jstat over a grid, and the survival function keeps small tails', () => {
    for (const k of [1, 2, 3, 5, 10, 30]) {
      for (const x of [0.1, 0.5, 1, 2, 3.84, 7, 15, 40]) {
        expectClose(chiSquaredCdf(x, k), jStat.chisquare.cdf(x, k), 1e-6);
        expectClose(chiSquaredCdf(x, k) + chiSquaredSf(x, k), 1, 1e-14);
      }
    }
    // mpmath 1.3.0 (50 digits): Q(k/2, x/2).
    expectClose(chiSquaredSf(300, 2), 7.1750959731644104e-66, 1e-12);
    expectClose(chiSquaredSf(150, 10), 3.7274850550625096e-27, 1e-12);
    expectClose(chiSquaredCdf(1e-4, 3), 2.6595354156449131e-7, 1e-12);
    expectClose(chiSquaredSf(300, 2), Math.exp(-150), 1e-12); // k = 2 is the exponential distribution
    expect(chiSquaredSf(0, 3)).toBe(1);
  });
});

describe('summarize', () => {
  it('uses p(1−p) for conversions and the n−1 sample variance for values', () => {
    expect(summarize(conversions(25, 100), 'conversion')).toEqual({ mean: 0.25, variance: 0.1875, stdDev: Math.sqrt(0.1875) });
    // values 1, 2, 3, 4: mean 2.5, sample variance 5/3
    const s = summarize(values(10, 30, 4), 'value');
    expectClose(s.mean, 2.5);
    expectClose(s.variance, 5 / 3, 1e-14);
    expectClose(s.stdDev, Math.sqrt(5 / 3), 1e-14);
  });

  it('is null where not computable: empty arm, one value', () => {
    const empty = { mean: null, variance: null, stdDev: null };
    expect(summarize(values(0, 0, 0), 'value')).toEqual(empty);
    expect(summarize(conversions(0, 0), 'conversion')).toEqual(empty);
    expect(summarize(values(7, 49, 1), 'value')).toEqual({ mean: 7, variance: null, stdDev: null });
    expect(summarize(conversions(1, 1), 'conversion')).toEqual({ mean: 1, variance: 0, stdDev: 0 });
  });

  it('never returns a negative variance from rounding (zero-variance arm)', () => {
    let sum = 0;
    let sumSquares = 0;
    for (let i = 0; i < 10; i++) {
      sum += 0.1;
      sumSquares += 0.01;
    }
    const s = summarize(values(sum, sumSquares, 10), 'value');
    expect(s.variance).toBeGreaterThanOrEqual(0);
    expect(s.variance).toBeLessThan(1e-15);
  });
});

describe('compareRelative', () => {
  // packages/stats/tests/frequentist/test_tests.py (growthbook/growthbook), TestTwoSidedTTest.setUp
  const A = values(1396.87, 52377.9767, 3407);
  const B = values(2422.7, 134698.29, 3461);
  // The same data with 3000 control units: TestSequentialTTest, TestOneSided*TTest there.
  const A3000 = values(1396.87, 52377.9767, 3000);

  it('Welch relative test: gbstats test_two_sided_ttest reference', () => {
    const r = compareRelative(A, B, 'value', 0.05)!;
    // published rounded to 5 decimals (TwoSidedTTest.compute_result)
    expectRounded(r.relativeLift, 0.70732);
    expectRounded(r.standardError, 0.37879);
    expectRounded(r.liftCi[0], -0.03526);
    expectRounded(r.liftCi[1], 1.44989);
    expectRounded(r.pValue, 0.06191);
    // the same formulas evaluated at 50 digits with mpmath 1.3.0 (t CDF/quantile through betainc)
    expectClose(r.relativeLift, 0.70731707317073171, 1e-12);
    expectClose(r.standardError, 0.37879436166814283, 1e-12);
    expectClose(r.degreesOfFreedom, 5841.7420320935643, 1e-12);
    expectClose(r.liftCi[0], -0.035260089066117972, 1e-9);
    expectClose(r.liftCi[1], 1.4498942354075814, 1e-12);
    expectClose(r.pValue, 0.061911827456183572, 1e-10);
    expectClose(r.sequential.liftCi[0], -0.44442376912890975, 1e-12);
    expectClose(r.sequential.liftCi[1], 1.8590579154703732, 1e-12);
    expectClose(r.sequential.pValue, 0.69867285824830593, 1e-12);
    expectClose(r.chanceToBeatControl, 0.96906910853238146, 1e-12);
  });

  it('binomial relative test: gbstats test_two_sided_ttest_binom reference (14/28 vs 16/30)', () => {
    const r = compareRelative(conversions(14, 28), conversions(16, 30), 'conversion', 0.05)!;
    expectClose(r.relativeLift, (16 / 30 - 0.5) / 0.5, 1e-14);
    expectRounded(r.relativeLift, 0.06667);
    expectRounded(r.standardError, 0.2717); // 0.27170 to 5 decimals
    expectRounded(r.liftCi[0], -0.47767);
    expectRounded(r.liftCi[1], 0.61101);
    expectRounded(r.pValue, 0.80707);
    // mpmath 1.3.0, 50 digits
    expectClose(r.standardError, 0.27169855689735605, 1e-12);
    expectClose(r.degreesOfFreedom, 55.707449148622057, 1e-12);
    expectClose(r.pValue, 0.80707168320218873, 1e-12);
    expectClose(r.liftCi[0], -0.47767402827067861, 1e-12);
    expectClose(r.liftCi[1], 0.61100736160401194, 1e-12);
    expect(r.sequential.pValue).toBe(1);
  });

  it('two-sided (1−2α) CI and p-value equal gbstats one-sided t tests (TestOneSidedGreaterTTest / TestOneSidedLesserTTest)', () => {
    // One-sided 95% bounds are the ends of the two-sided 90% interval; the one-sided p-value is half the two-sided one.
    const r = compareRelative(A3000, B, 'value', 0.1)!;
    expectClose(r.relativeLift, 0.5033610858562358, 1e-12);
    expectClose(r.standardError, 0.3334122146400735, 1e-12);
    expectClose(r.liftCi[0], -0.045136675850396046, 1e-9);
    expectClose(r.liftCi[1], 1.0518588475628676, 1e-12);
    expectClose(r.pValue / 2, 0.06558262868467746, 1e-10);
  });

  it('sequential interval: gbstats TestSequentialTTest references', () => {
    // test_sequential_test_runs_prop: ProportionStatistic(1396, 3000) vs (2422, 3461), default N* = 5000
    const prop = compareRelative(conversions(1396, 3000), conversions(2422, 3461), 'conversion', 0.05)!;
    expectRounded(prop.relativeLift, 0.50386);
    expectRounded(prop.standardError, 0.03386);
    expectRounded(prop.sequential.liftCi[0], 0.40098);
    expectRounded(prop.sequential.liftCi[1], 0.60675);
    expectRounded(prop.sequential.pValue, 0);
    expectClose(prop.sequential.liftCi[0], 0.40097849668594152, 1e-12); // mpmath
    expectClose(prop.sequential.pValue, 5.1747166828397687e-44, 1e-10); // mpmath
    expectClose(prop.pValue, 3.143404360512308e-49, 1e-8); // mpmath

    // test_sequential_test_runs: same value data, N* = 1000, ci (−0.55844, 1.56516), pValue 1
    const r = compareRelative(A3000, B, 'value', 0.05)!;
    const halfwidth = confidenceSequenceHalfwidth(r.standardError, 3000 + 3461, 0.05, 'two-sided', 1000);
    expectRounded(r.relativeLift - halfwidth, -0.55844);
    expectRounded(r.relativeLift + halfwidth, 1.56516);
    expect(r.sequential.pValue).toBe(1);

    // TestSequentialOneSided{Greater,Lesser}TTest.test_one_sided_ttest (relative, N* = 5000): full-precision bounds
    const oneSided = confidenceSequenceHalfwidth(r.standardError, 3000 + 3461, 0.05, 'one-sided');
    expectClose(r.relativeLift - oneSided, -0.42356454602790883, 1e-12);
    expectClose(r.relativeLift + oneSided, 1.4302867177403806, 1e-12);
  });

  it('sequential interval is wider than the fixed-horizon one, and tuning N* near n is tightest (test_sequential_test_tuning_as_expected)', () => {
    const r = compareRelative(A3000, B, 'value', 0.05)!;
    expect(r.sequential.liftCi[0]).toBeLessThan(r.liftCi[0]);
    expect(r.sequential.liftCi[1]).toBeGreaterThan(r.liftCi[1]);
    const width = (tuning: number) => confidenceSequenceHalfwidth(r.standardError, 6461, 0.05, 'two-sided', tuning);
    expect(width(10)).toBeGreaterThan(width(10000));
    expect(width(10)).toBeGreaterThan(width(6461));
    expect(width(10000)).toBeGreaterThan(width(6461));
    expect(SEQUENTIAL_TUNING).toBe(5000);
  });

  it('sequential p-value ≤ alpha exactly when 0 is outside the sequential interval', () => {
    const control = conversions(500, 5000);
    for (const treated of [500, 520, 540, 560, 580, 600, 650]) {
      const r = compareRelative(control, conversions(treated, 5000), 'conversion', 0.05)!;
      const excludesZero = r.sequential.liftCi[0] > 0 || r.sequential.liftCi[1] < 0;
      expect(r.sequential.pValue <= 0.05).toBe(excludesZero);
      expect(r.sequential.pValue).toBeGreaterThanOrEqual(r.pValue);
    }
  });

  it('chance to beat control: gbstats bayesian TestBinom / TestNorm (flat prior) references', () => {
    // packages/stats/tests/bayesian/test_tests.py: chanceToWin 0.60918 (49/100 vs 51/100), 0.91923 (Gaussian)
    const binom = compareRelative(conversions(49, 100), conversions(51, 100), 'conversion', 0.05)!;
    expectRounded(binom.relativeLift, 0.04082);
    expectRounded(binom.standardError, 0.14725);
    expectRounded(binom.chanceToBeatControl, 0.60918);
    const norm = compareRelative(values(100, 1002.25, 10), values(105, 1111.5, 10), 'value', 0.05)!;
    expectRounded(norm.relativeLift, 0.05);
    expectRounded(norm.standardError, 0.03572);
    expectRounded(norm.chanceToBeatControl, 0.91923);
    expectClose(norm.chanceToBeatControl, 0.91923390815662454, 1e-12); // mpmath
    expectClose(norm.degreesOfFreedom, 13.235294117647059, 1e-12); // mpmath
  });

  it('agrees with an independent computation on jstat distributions (random data sets)', () => {
    const random = prng(20240611);
    for (let i = 0; i < 40; i++) {
      const type = i % 2 === 0 ? 'conversion' : 'value';
      const arm = (): ArmStats => {
        const units = 20 + Math.floor(random() * 5000);
        if (type === 'conversion') return conversions(Math.max(1, Math.round(units * (0.02 + 0.5 * random()))), units);
        const mean = 1 + 50 * random();
        const sd = 0.5 + 30 * random();
        return values(units * mean, (units - 1) * sd * sd + units * mean * mean, units);
      };
      const control = arm();
      const treatment = arm();
      const alpha = [0.01, 0.05, 0.1][i % 3];
      const r = compareRelative(control, treatment, type, alpha)!;

      // Written independently: var(μT/μC) ≈ (μT/μC)²·(σT²/(nT μT²) + σC²/(nC μC²)), the same delta method in ratio form.
      const stats = (a: ArmStats) => {
        const mean = a.sum / a.units;
        const variance = type === 'conversion' ? mean * (1 - mean) : (a.sumSquares - a.units * mean * mean) / (a.units - 1);
        return { n: a.units, mean, variance, varianceOfMean: variance / a.units };
      };
      const c = stats(control);
      const t = stats(treatment);
      const ratio = t.mean / c.mean;
      const lift = ratio - 1;
      const se = Math.abs(ratio) * Math.sqrt(t.varianceOfMean / t.mean ** 2 + c.varianceOfMean / c.mean ** 2);
      const df = (c.varianceOfMean + t.varianceOfMean) ** 2 /
        (c.varianceOfMean ** 2 / (c.n - 1) + t.varianceOfMean ** 2 / (t.n - 1));
      const q = jStat.studentt.inv(1 - alpha / 2, df);
      const n = c.n + t.n;
      const rho2 = (-2 * Math.log(alpha) + Math.log(1 - 2 * Math.log(alpha))) / 5000;
      const seqHalfwidth = se * Math.sqrt(((n * rho2 + 1) / (n * rho2)) * 2 * Math.log(Math.sqrt(n * rho2 + 1) / alpha));
      const eValue = Math.exp((n * rho2 * (lift / se) ** 2) / (2 * (n * rho2 + 1))) / Math.sqrt(n * rho2 + 1);

      expectClose(r.relativeLift, lift, 1e-9, 1e-12);
      expectClose(r.standardError, se, 1e-9);
      expectClose(r.degreesOfFreedom, df, 1e-9);
      expectClose(r.liftCi[0], lift - q * se, 1e-6, 1e-9);
      expectClose(r.liftCi[1], lift + q * se, 1e-6, 1e-9);
      // (jstat is not accurate far in the tail; those p-values are checked against mpmath above)
      expectClose(r.pValue, 2 * jStat.studentt.cdf(-Math.abs(lift / se), df), 1e-6, 1e-15);
      expectClose(r.sequential.liftCi[0], lift - seqHalfwidth, 1e-9, 1e-12);
      expectClose(r.sequential.liftCi[1], lift + seqHalfwidth, 1e-9, 1e-12);
      expectClose(r.sequential.pValue, Math.min(1, 1 / eValue), 1e-9, 1e-300);
      expectClose(r.chanceToBeatControl, jStat.normal.cdf(lift / se, 0, 1), 1e-6, 1e-12);
    }
  });

  it('returns null when not computable: empty arm, n = 1, control mean 0, zero standard error', () => {
    expect(compareRelative(values(0, 0, 0), B, 'value', 0.05)).toBeNull();
    expect(compareRelative(A, values(0, 0, 0), 'value', 0.05)).toBeNull();
    expect(compareRelative(conversions(0, 0), conversions(0, 0), 'conversion', 0.05)).toBeNull();
    expect(compareRelative(values(5, 25, 1), B, 'value', 0.05)).toBeNull();
    expect(compareRelative(conversions(1, 1), conversions(5, 10), 'conversion', 0.05)).toBeNull();
    expect(compareRelative(conversions(0, 100), conversions(5, 100), 'conversion', 0.05)).toBeNull(); // control mean 0
    expect(compareRelative(values(0, 100, 100), B, 'value', 0.05)).toBeNull(); // values ±1: mean 0, variance > 0
    expect(compareRelative(values(500, 2500, 100), values(600, 3600, 100), 'value', 0.05)).toBeNull(); // constants 5 and 6
    expect(compareRelative(conversions(100, 100), conversions(100, 100), 'conversion', 0.05)).toBeNull(); // all converted
  });

  it('handles one zero-variance arm: Welch df falls to the other arm\'s n − 1', () => {
    const r = compareRelative(values(500, 2500, 100), values(600, 3700, 101), 'value', 0.05)!;
    expectClose(r.degreesOfFreedom, 100, 1e-12);
    const treatmentVariance = (3700 - 600 ** 2 / 101) / 100;
    expectClose(r.standardError, Math.sqrt(treatmentVariance / 101) / 5, 1e-12);
  });

  it('keeps the direction of change with a negative control mean (|μC| denominator)', () => {
    const r = compareRelative(values(-1000, 10100, 100), values(-500, 2600, 100), 'value', 0.05)!;
    expectClose(r.relativeLift, 0.5, 1e-12); // −10 → −5 is an increase
    expect(r.chanceToBeatControl).toBeGreaterThan(0.5);
  });

  it('stays finite and consistent with huge n', () => {
    const r = compareRelative(conversions(100_000_000, 1e9), conversions(100_050_000, 1e9), 'conversion', 0.05)!;
    expectClose(r.relativeLift, 0.0005, 1e-9);
    expect(r.degreesOfFreedom).toBeGreaterThan(1e9);
    // df ~ 2e9: t is the normal up to O(t⁴/df), ~3e-8 relative in this p-value's tail
    const z = normalQuantile(0.975);
    expectClose(r.liftCi[1] - r.relativeLift, z * r.standardError, 1e-8);
    expectClose(r.pValue, 2 * normalCdf(-r.relativeLift / r.standardError), 1e-7);
    expect(r.pValue).toBeGreaterThan(0);
    expect(r.pValue).toBeLessThan(0.05);
    expect(r.sequential.liftCi[1] - r.sequential.liftCi[0]).toBeGreaterThan(r.liftCi[1] - r.liftCi[0]);
    // value metric with n = 1e8, mean 1000, sd 1: Σy² ~ 1e14, the variance survives the cancellation
    const big = (mean: number) => values(1e8 * mean, (1e8 - 1) + 1e8 * mean * mean, 1e8);
    expectClose(summarize(big(1000), 'value').variance, 1, 1e-3);
    const v = compareRelative(big(1000), big(1000.001), 'value', 0.05)!;
    expectClose(v.relativeLift, 1e-6, 1e-6);
    expect(Number.isFinite(v.pValue)).toBe(true);
  });

  it('rejects an alpha outside (0, 1)', () => {
    expect(() => compareRelative(A, B, 'value', 0)).toThrow(RangeError);
    expect(() => compareRelative(A, B, 'value', 1)).toThrow(RangeError);
  });
});

describe('srmPValue', () => {
  it('matches GrowthBook references', () => {
    // packages/stats/tests/test_gbstats.py before commit 01387ac8 (TestHelpers.test_srm), and
    // packages/back-end/test/stats.test.ts ("calculates SRM correctly"), both to 9 decimals
    expectRounded(srmPValue([1000, 1200], [0.5, 0.5])!, 0.000020079, 9);
    expectRounded(srmPValue([135, 115], [0.5, 0.5])!, 0.205903211, 9);
    expectRounded(srmPValue([310, 98], [0.75, 0.25])!, 0.647434186, 9);
    expectRounded(srmPValue([1000, 1200, 900], [0.5, 0.5, 0])!, 0.000020079, 9); // weight-0 arm left out
    expectRounded(srmPValue([0, 10, 10], [0.34, 0.33, 0.33])!, 0.005790624, 9);
    expectRounded(srmPValue([500, 500, 600], [0.34, 0.33, 0.33])!, 0.000592638, 9);
    expect(srmPValue([500, 500], [0.5, 0.5])).toBe(1);
  });

  it('agrees with jstat: chi-squared statistic, k − 1 degrees of freedom', () => {
    // 2 arms: x² = 2·100²/1100; with 1 df the tail is also 2Φ(−√x²)
    const x2 = (2 * 100 ** 2) / 1100;
    expectClose(srmPValue([1000, 1200], [1, 1]), 1 - jStat.chisquare.cdf(x2, 1), 1e-6);
    expectClose(srmPValue([1000, 1200], [1, 1]), 2 * normalCdf(-Math.sqrt(x2)), 1e-12);
    const units = [4980, 5110, 4870, 5040];
    const weights = [1, 1, 1, 1];
    const expected = 20000 / 4;
    const stat = units.reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
    expectClose(srmPValue(units, weights), 1 - jStat.chisquare.cdf(stat, 3), 1e-6);
  });

  it('normalises weights that do not sum to 1', () => {
    const p = srmPValue([3100, 980], [0.75, 0.25])!;
    expectClose(srmPValue([3100, 980], [75, 25]), p, 1e-14);
    expectClose(srmPValue([3100, 980], [3, 1]), p, 1e-14);
    expectClose(srmPValue([2600, 5000, 2400], [1, 2, 1]), srmPValue([2600, 5000, 2400], [0.25, 0.5, 0.25])!, 1e-14);
  });

  it('is null with no units or fewer than 2 arms', () => {
    expect(srmPValue([0, 0, 0], [0.34, 0.33, 0.33])).toBeNull();
    expect(srmPValue([1000], [1])).toBeNull();
    expect(srmPValue([], [])).toBeNull();
    expect(srmPValue([1000, 900, 800], [1, 0, 0])).toBeNull();
  });

  it('detects a tiny imbalance only at huge n', () => {
    expect(srmPValue([50_500, 49_500], [0.5, 0.5])!).toBeGreaterThan(0.001);
    // x² = 2·50000²/5e6 = 1000; with 1 df the p-value is 2Φ(−√1000) = 1.7958327848007262e-219 (mpmath)
    const p = srmPValue([5_050_000, 4_950_000], [0.5, 0.5])!;
    expectClose(p, 1.7958327848007262e-219, 1e-10);
    expectClose(p, 2 * normalCdf(-Math.sqrt(1000)), 1e-12);
  });

  it('rejects mismatched or negative weights', () => {
    expect(() => srmPValue([1, 2], [1])).toThrow(RangeError);
    expect(() => srmPValue([1, 2], [1, -1])).toThrow(RangeError);
  });
});

describe('guardrailTest', () => {
  it('matches gbstats one-sided sequential absolute references (TestSequentialOneSided*TTest.test_one_sided_ttest_absolute)', () => {
    const control = values(1396.87, 52377.9767, 3000);
    const treatment = values(2422.7, 134698.29, 3461);
    const lower = guardrailTest(control, treatment, 'value', 'lower-is-better', 0.05, 100);
    expect(lower.status).toBe('healthy');
    expectClose(lower.delta, 0.23437666666666668, 1e-14);
    expectClose(lower.bound, -0.12656844172804982, 1e-12);
    const higher = guardrailTest(control, treatment, 'value', 'higher-is-better', 0.05, 100);
    expect(higher.status).toBe('healthy');
    expectClose(higher.bound, 0.5953217750613832, 1e-12);
  });

  it('keeps an A/A pair with equal means healthy', () => {
    for (const units of [100, 1000, 100_000, 10_000_000]) {
      for (const direction of ['lower-is-better', 'higher-is-better'] as const) {
        const r = guardrailTest(conversions(units / 10, units), conversions(units / 10, units), 'conversion', direction, 0.05, 100);
        expect(r.status).toBe('healthy');
        expect(r.delta).toBe(0);
      }
      const v = guardrailTest(values(3 * units, 10 * units, units), values(3 * units, 10 * units, units), 'value', 'lower-is-better', 0.05, 100);
      expect(v.status).toBe('healthy');
    }
  });

  it('flags a clearly higher error rate (5% vs 15% at 1000 units) as regressed', () => {
    const control = conversions(50, 1000);
    const treatment = conversions(150, 1000);
    const r = guardrailTest(control, treatment, 'conversion', 'lower-is-better', 0.05, 500);
    expect(r.status).toBe('regressed');
    expectClose(r.delta, 0.1, 1e-12);
    expect(r.bound!).toBeGreaterThan(0);
    expect(r.bound!).toBeLessThan(0.1);
    // the same numbers for a metric where higher is better: healthy; reversed, regressed
    expect(guardrailTest(control, treatment, 'conversion', 'higher-is-better', 0.05, 500).status).toBe('healthy');
    expect(guardrailTest(treatment, control, 'conversion', 'higher-is-better', 0.05, 500).status).toBe('regressed');
  });

  it('is insufficient-data below minUnits', () => {
    const none = { status: 'insufficient-data', delta: null, bound: null };
    expect(guardrailTest(conversions(50, 999), conversions(150, 1000), 'conversion', 'lower-is-better', 0.05, 1000)).toEqual(none);
    expect(guardrailTest(conversions(50, 1000), conversions(150, 999), 'conversion', 'lower-is-better', 0.05, 1000)).toEqual(none);
    expect(guardrailTest(conversions(0, 0), conversions(0, 0), 'conversion', 'lower-is-better', 0.05, 0)).toEqual(none);
    expect(guardrailTest(values(1, 1, 1), values(2, 4, 1), 'value', 'lower-is-better', 0.05, 1)).toEqual(none); // no variance with n = 1
    expect(guardrailTest(conversions(50, 1000), conversions(150, 1000), 'conversion', 'lower-is-better', 0.05, 1000).status).toBe('regressed');
  });

  it('tightens monotonically as n grows with the same means', () => {
    let previousLower = -Infinity;
    let previousUpper = Infinity;
    const statuses: string[] = [];
    for (const units of [100, 200, 500, 1000, 3000, 10_000, 30_000, 100_000, 1_000_000]) {
      const control = conversions(0.1 * units, units);
      const treatment = conversions(0.11 * units, units);
      const lower = guardrailTest(control, treatment, 'conversion', 'lower-is-better', 0.05, 100);
      const upper = guardrailTest(control, treatment, 'conversion', 'higher-is-better', 0.05, 100);
      expectClose(lower.delta, 0.01, 1e-9);
      expect(lower.bound!).toBeGreaterThan(previousLower);
      expect(upper.bound!).toBeLessThan(previousUpper);
      previousLower = lower.bound!;
      previousUpper = upper.bound!;
      statuses.push(lower.status);
    }
    // a 10% → 11% error rate is not called at 100 units but is at a million
    expect(statuses[0]).toBe('healthy');
    expect(statuses[statuses.length - 1]).toBe('regressed');
  });

  it('rejects an alpha outside (0, 0.5)', () => {
    expect(() => guardrailTest(conversions(5, 100), conversions(5, 100), 'conversion', 'lower-is-better', 0.5, 10)).toThrow(RangeError);
  });
});
