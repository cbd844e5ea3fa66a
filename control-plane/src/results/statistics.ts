/**
 * Experiment statistics from per-variation sufficient statistics (units n, Σy, Σy²), as Flink keeps them.
 * Pure functions: no I/O, no dependencies. The methods follow GrowthBook's gbstats (packages/stats):
 * Welch t test with the delta method for relative lift, asymptotic confidence sequences
 * (Waudby-Smith et al., "Time-uniform central limit theory and asymptotic confidence sequences",
 * arXiv:2103.06476v7) for always-valid inference, Gaussian chance to win, chi-squared SRM check.
 * The distribution functions are implemented here from their textbook definitions.
 */

export type MetricType = 'conversion' | 'value';
export interface ArmStats { units: number; sum: number; sumSquares: number }
export interface ArmSummary { mean: number | null; stdDev: number | null; variance: number | null }

export interface RelativeComparison {
  relativeLift: number;
  standardError: number;
  degreesOfFreedom: number;
  liftCi: [number, number];
  pValue: number;
  sequential: { liftCi: [number, number]; pValue: number };
  chanceToBeatControl: number;
}

export type GuardrailStatus = 'insufficient-data' | 'healthy' | 'regressed';
export interface GuardrailResult { status: GuardrailStatus; delta: number | null; bound: number | null }

/** gbstats' default `sequential_tuning_parameter` N*: the total sample size the confidence sequence is tightest at. */
export const SEQUENTIAL_TUNING = 5000;

// ---------------------------------------------------------------------------------------------
// Special functions
// ---------------------------------------------------------------------------------------------

const EPS = Number.EPSILON;
const TINY = 1e-300;
const LN_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Stirling-series remainder δ(x) = lnΓ(x) − [(x−½)ln x − x + ½ln 2π] (Bernoulli terms; < 1e-16 error for x ≥ 10). */
function stirlingCorrection(x: number): number {
  const r = 1 / (x * x);
  return (1 / x) * (1 / 12 - r * (1 / 360 - r * (1 / 1260 - r * (1 / 1680 - r * (1 / 1188 - r * (691 / 360360 - r / 156))))));
}

/** ln Γ(x) for x > 0: Stirling series at x ≥ 10, shifted up by Γ(x+1) = xΓ(x) below that. */
export function lnGamma(x: number): number {
  if (!(x > 0)) return NaN;
  let shift = 0;
  let product = 1;
  while (x + shift < 10) product *= x + shift++;
  const z = x + shift;
  return (z - 0.5) * Math.log(z) - z + LN_SQRT_2PI + stirlingCorrection(z) - Math.log(product);
}

/** ln B(a, b). For a large argument, lnΓ(big) − lnΓ(a+b) is expanded so that the huge terms cancel analytically. */
function lnBeta(a: number, b: number): number {
  const big = Math.max(a, b);
  const small = Math.min(a, b);
  if (big < 10) return lnGamma(a) + lnGamma(b) - lnGamma(a + b);
  const sum = a + b;
  return lnGamma(small) + (big - 0.5) * Math.log1p(-small / sum) - small * Math.log(sum) + small
    + stirlingCorrection(big) - stirlingCorrection(sum);
}

/** Evaluates b0 + a1/(b1 + a2/(b2 + …)) by the modified Lentz method (Numerical Recipes §5.2). */
function continuedFraction(b0: number, term: (m: number) => [number, number], maxTerms = 1_000_000): number {
  let f = b0 === 0 ? TINY : b0;
  let c = f;
  let d = 0;
  for (let m = 1; m <= maxTerms; m++) {
    const [a, b] = term(m);
    d = b + a * d;
    d = Math.abs(d) < TINY ? 1 / TINY : 1 / d;
    c = b + a / c;
    if (Math.abs(c) < TINY) c = TINY;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) <= EPS) return f;
  }
  throw new Error('continued fraction did not converge');
}

/**
 * Regularized incomplete beta I_x(a, b); y = 1 − x is passed separately so that x near 1 keeps its precision.
 * Continued fraction of Abramowitz & Stegun 26.5.8, used where it converges fast (x < (a+1)/(a+b+2)),
 * else through the symmetry I_x(a, b) = 1 − I_y(b, a).
 */
export function incompleteBeta(x: number, a: number, b: number, y = 1 - x): number {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(y, b, a, x);
  const lnX = x < 0.5 ? Math.log(x) : Math.log1p(-y);
  const lnY = y < 0.5 ? Math.log(y) : Math.log1p(-x);
  const front = Math.exp(a * lnX + b * lnY - lnBeta(a, b)) / a;
  // d_{2m} = m(b−m)x / ((a+2m−1)(a+2m)),  d_{2m+1} = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1)), d_1 from m = 0.
  const d = (j: number): number => {
    const m = Math.floor(j / 2);
    return j % 2 === 0
      ? (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m))
      : (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
  };
  // I_x(a, b) = front / (1 + d1/(1 + d2/(1 + …)))
  return front / continuedFraction(1, (j) => [d(j), 1]);
}

/**
 * Regularized lower and upper incomplete gamma P(a, x), Q(a, x): the power series for x < a + 1,
 * otherwise the Legendre continued fraction for Q (Numerical Recipes §6.2). Each returns the one
 * computed directly and the other as its complement, so small tails keep their precision.
 */
function incompleteGamma(a: number, x: number): { lower: number; upper: number } {
  if (x <= 0) return { lower: 0, upper: 1 };
  if (x === Infinity) return { lower: 1, upper: 0 };
  const lnFront = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    // P(a,x) = e^{−x} x^a / Γ(a+1) · Σ_k x^k / ((a+1)…(a+k))
    let term = 1 / a;
    let sum = term;
    for (let k = 1; k < 1_000_000 && Math.abs(term) > Math.abs(sum) * EPS; k++) {
      term *= x / (a + k);
      sum += term;
    }
    const lower = Math.exp(lnFront) * sum;
    return { lower, upper: 1 - lower };
  }
  // Q(a,x) = e^{−x} x^a / Γ(a) · 1/(x+1−a − 1(1−a)/(x+3−a − 2(2−a)/(x+5−a − …)))
  const cf = continuedFraction(x + 1 - a, (m) => [-m * (m - a), x + 2 * m + 1 - a]);
  const upper = Math.exp(lnFront) / cf;
  return { lower: 1 - upper, upper };
}

/** Φ(z) = ½ erfc(−z/√2), and erfc(u) = Q(½, u²) for u ≥ 0. */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const tail = 0.5 * incompleteGamma(0.5, (z * z) / 2).upper; // P(Z > |z|)
  return z < 0 ? tail : 1 - tail;
}

/**
 * Φ⁻¹(p): Acklam's rational approximation (relative error < 1.2e-9), then one Halley step
 * on the accurate Φ, which brings it to machine precision.
 */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p > 0.5) return -normalQuantile(1 - p); // 1 − p is exact for p ≥ ½
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  let x: number;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  // Halley: u = (Φ(x) − p)/φ(x); x ← x − u/(1 + x u/2)
  const u = (normalCdf(x) - p) * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/**
 * P(T > t) for t ≥ 0: ½ I_{ν/(ν+t²)}(ν/2, ½). For large ν that continued fraction loses ~ν·ε/t² to cancellation
 * (1 − x ≈ t²/ν), so there Hill's normalizing transformation is used instead (G. W. Hill, "Algorithm 395:
 * Student's t-distribution", CACM 13(10), 1970): y² = (ν − ½)·ln(1 + t²/ν) plus an asymptotic correction,
 * P(T > t) = Φ(−y); its error is below 1e-13 relative for ν ≥ 1e4, where the fraction is still as good.
 */
function studentTUpperTail(t: number, df: number): number {
  if (df === Infinity) return normalCdf(-t);
  const t2 = t * t;
  if (df < 1e4) return 0.5 * incompleteBeta(df / (df + t2), df / 2, 0.5, t2 / (df + t2));
  const a = df - 0.5;
  const b = 48 * a * a;
  const y2 = a * Math.log1p(t2 / df);
  const y = (((((-0.4 * y2 - 3.3) * y2 - 24) * y2 - 85.5) / (0.8 * y2 * y2 + 100 + b) + y2 + 3) / b + 1) * Math.sqrt(y2);
  return normalCdf(-y);
}

/** Student t CDF with df > 0 degrees of freedom (df need not be an integer). */
export function studentTCdf(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const tail = studentTUpperTail(Math.abs(t), df);
  return t < 0 ? tail : 1 - tail;
}

/** Student t density, for Newton steps. */
function studentTPdf(t: number, df: number): number {
  if (df === Infinity) return Math.exp(-(t * t) / 2 - LN_SQRT_2PI);
  return Math.exp(-((df + 1) / 2) * Math.log1p((t * t) / df) - 0.5 * Math.log(df) - lnBeta(df / 2, 0.5));
}

/**
 * Student t quantile: closed forms for ν = 1, 2; otherwise Newton's method on the upper tail,
 * started from the Cornish–Fisher expansion (Abramowitz & Stegun 26.7.5) and kept inside a bracket.
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p >= 0 && p <= 1) || !(df > 0)) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  if (p > 0.5) return -studentTQuantile(1 - p, df);
  // Now p < ½: find t > 0 with P(T > t) = p, and return −t.
  if (df === 1) return -Math.tan(Math.PI * (0.5 - p));
  if (df === 2) return -(1 - 2 * p) / Math.sqrt(2 * p * (1 - p));
  if (df === Infinity) return normalQuantile(p);
  const z = -normalQuantile(p);
  let t = z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
  let lo = 0;
  let hi = Infinity;
  for (let i = 0; i < 200; i++) {
    const excess = studentTUpperTail(t, df) - p; // decreasing in t
    if (excess > 0) lo = t;
    else hi = t;
    let next = t + excess / studentTPdf(t, df);
    if (!(next > lo && next < hi)) next = hi === Infinity ? 2 * t + 1 : (lo + hi) / 2;
    if (Math.abs(next - t) <= 1e-15 * t) return -next;
    t = next;
  }
  return -t;
}

/** Chi-squared CDF with k degrees of freedom: P(k/2, x/2). */
export function chiSquaredCdf(x: number, k: number): number {
  return incompleteGamma(k / 2, Math.max(x, 0) / 2).lower;
}

/** Chi-squared survival function 1 − CDF, computed directly so that small p-values are exact: Q(k/2, x/2). */
export function chiSquaredSf(x: number, k: number): number {
  return incompleteGamma(k / 2, Math.max(x, 0) / 2).upper;
}

// ---------------------------------------------------------------------------------------------
// Experiment statistics
// ---------------------------------------------------------------------------------------------

/** conversion: variance p(1−p) with p = sum/units; value: sample variance (n−1 denominator). null when not computable (n = 0, or n < 2 for value). */
export function summarize(arm: ArmStats, type: MetricType): ArmSummary {
  const n = arm.units;
  if (!(n > 0)) return { mean: null, stdDev: null, variance: null };
  const mean = arm.sum / n;
  let variance: number | null;
  if (type === 'conversion') variance = mean * (1 - mean);
  else if (n < 2) variance = null;
  else variance = (arm.sumSquares - arm.sum * mean) / (n - 1);
  // Σy² − (Σy)²/n can come out a hair below 0 by cancellation when the variance is ~0.
  if (variance !== null) variance = Math.max(variance, 0);
  return { mean, variance, stdDev: variance === null ? null : Math.sqrt(variance) };
}

/**
 * ρ of the asymptotic confidence sequence, tuned so that its width is smallest at N* total units:
 * ρ² = (−2 ln a + ln(1 − 2 ln a)) / N*, with a = alpha two-sided and a = 2·alpha one-sided.
 * (gbstats `sequential_rho`, packages/stats/gbstats/frequentist/tests.py; eq. 161 of arXiv:2103.06476v7.)
 */
function sequentialRhoSquared(alpha: number, twoSided: boolean, tuning: number): number {
  const a = twoSided ? alpha : 2 * alpha;
  return (-2 * Math.log(a) + Math.log(1 - 2 * Math.log(a))) / tuning;
}

/**
 * Half-width of the asymptotic confidence sequence for an estimate with standard error `se`
 * after n total units (both arms); s² = se²·n is the per-unit variance.
 * Two-sided (eq. 9 of arXiv:2103.06476v7):  sqrt(s² · 2(nρ²+1)/(n²ρ²) · ln(sqrt(nρ²+1)/α))
 * One-sided (eq. 134):                      sqrt(s² · 2(nρ²+1)/(n²ρ²) · ln(1 + sqrt(nρ²+1)/(2α)))
 * (gbstats `sequential_interval_halfwidth` and `sequential_interval_halfwidth_one_sided`.)
 */
export function confidenceSequenceHalfwidth(
  se: number, n: number, alpha: number, sides: 'two-sided' | 'one-sided', tuning = SEQUENTIAL_TUNING,
): number {
  const twoSided = sides === 'two-sided';
  const rho2 = sequentialRhoSquared(alpha, twoSided, tuning);
  const s2 = se * se * n;
  const root = Math.sqrt(n * rho2 + 1);
  const log = twoSided ? Math.log(root / alpha) : Math.log1p(root / (2 * alpha));
  return Math.sqrt((s2 * 2 * (n * rho2 + 1) * log) / (n * n * rho2));
}

/**
 * Always-valid two-sided p-value: the reciprocal of the mixture e-value (eq. 155 of arXiv:2103.06476v7,
 * as in gbstats `SequentialTwoSidedTTest.p_value`): with S² = n·estimate²/se²,
 * p = min(1, sqrt(nρ²+1) · exp(−ρ² S² / (2(nρ²+1)))). It is ≤ alpha exactly when 0 is outside the sequence.
 */
export function sequentialPValue(estimate: number, se: number, n: number, alpha: number, tuning = SEQUENTIAL_TUNING): number {
  const rho2 = sequentialRhoSquared(alpha, true, tuning);
  const S2 = (n * estimate * estimate) / (se * se);
  const lnP = 0.5 * Math.log(n * rho2 + 1) - (rho2 * S2) / (2 * (n * rho2 + 1)); // in logs: e-values overflow
  return Math.exp(Math.min(0, lnP));
}

function checkAlpha(alpha: number, max: number): void {
  if (!(alpha > 0 && alpha < max)) throw new RangeError(`alpha must be in (0, ${max}), got ${alpha}`);
}

/** null when not computable: an arm with fewer than 2 units, control mean 0, or zero standard error. */
export function compareRelative(control: ArmStats, treatment: ArmStats, type: MetricType, alpha: number): RelativeComparison | null {
  checkAlpha(alpha, 1);
  if (!(control.units >= 2 && treatment.units >= 2)) return null;
  const c = summarize(control, type);
  const t = summarize(treatment, type);
  const muC = c.mean!;
  const muT = t.mean!;
  const varC = c.variance!;
  const varT = t.variance!;
  if (muC === 0) return null;
  const nC = control.units;
  const nT = treatment.units;

  const relativeLift = (muT - muC) / Math.abs(muC);
  // Delta method for μT/μC with independent arms: Var ≈ σT²/(nT μC²) + σC² μT²/(nC μC⁴).
  const standardError = Math.sqrt(varT / (nT * muC * muC) + (varC * muT * muT) / (nC * muC ** 4));
  if (!(standardError > 0) || !Number.isFinite(standardError)) return null;

  // Welch–Satterthwaite on the variance-of-mean terms vX = σX²/nX.
  const vC = varC / nC;
  const vT = varT / nT;
  const degreesOfFreedom = (vC + vT) ** 2 / (vC ** 2 / (nC - 1) + vT ** 2 / (nT - 1));

  const halfwidth = studentTQuantile(1 - alpha / 2, degreesOfFreedom) * standardError;
  const tStat = relativeLift / standardError;
  const n = nC + nT;
  const seqHalfwidth = confidenceSequenceHalfwidth(standardError, n, alpha, 'two-sided');
  return {
    relativeLift,
    standardError,
    degreesOfFreedom,
    liftCi: [relativeLift - halfwidth, relativeLift + halfwidth],
    pValue: 2 * studentTCdf(-Math.abs(tStat), degreesOfFreedom),
    sequential: {
      liftCi: [relativeLift - seqHalfwidth, relativeLift + seqHalfwidth],
      pValue: sequentialPValue(relativeLift, standardError, n, alpha),
    },
    // Flat prior ⇒ posterior of the lift is N(lift, se²); gbstats `chance_to_win` = P(lift > 0).
    chanceToBeatControl: normalCdf(tStat),
  };
}

/**
 * Sample ratio mismatch: chi-squared test of observed units against expected weights (normalised), k−1 degrees of freedom.
 * null when total units is 0 or fewer than 2 arms. As in GrowthBook (gbstats `check_srm`, back-end `checkSrm`),
 * an arm of weight 0 is not part of the split: it is left out, with its units, and not counted in k.
 */
export function srmPValue(units: number[], weights: number[]): number | null {
  if (units.length !== weights.length) throw new RangeError('units and weights must have the same length');
  if (weights.some((w) => !(w >= 0 && Number.isFinite(w)))) throw new RangeError('weights must be finite and non-negative');
  const arms = units.map((u, i) => ({ observed: u, weight: weights[i] })).filter((arm) => arm.weight > 0);
  const total = arms.reduce((sum, arm) => sum + arm.observed, 0);
  const totalWeight = arms.reduce((sum, arm) => sum + arm.weight, 0);
  if (arms.length < 2 || !(total > 0)) return null;
  // Pearson's statistic Σ (O − E)²/E with E = total · w/Σw.
  const x2 = arms.reduce((sum, { observed, weight }) => {
    const expected = (weight / totalWeight) * total;
    return sum + (observed - expected) ** 2 / expected;
  }, 0);
  return chiSquaredSf(x2, arms.length - 1);
}

/**
 * One-sided sequential (always-valid) test of the ABSOLUTE difference delta = μT − μC, variance σT²/nT + σC²/nC,
 * at level alpha, same asymptotic confidence sequence (N* = 5000) but one-sided.
 * direction 'lower-is-better': bound = the lower confidence bound of delta; regressed when bound > 0.
 * direction 'higher-is-better': bound = the upper confidence bound; regressed when bound < 0.
 * insufficient-data (delta and bound null) while either arm has fewer than minUnits units
 * (or too few for a variance: 2 for a value metric).
 */
export function guardrailTest(
  control: ArmStats, treatment: ArmStats, type: MetricType,
  direction: 'lower-is-better' | 'higher-is-better', alpha: number, minUnits: number,
): GuardrailResult {
  checkAlpha(alpha, 0.5); // the one-sided sequence uses 2·alpha
  const c = summarize(control, type);
  const t = summarize(treatment, type);
  if (control.units < minUnits || treatment.units < minUnits || c.variance === null || t.variance === null) {
    return { status: 'insufficient-data', delta: null, bound: null };
  }
  const delta = t.mean! - c.mean!;
  const se = Math.sqrt(t.variance / treatment.units + c.variance / control.units);
  const halfwidth = confidenceSequenceHalfwidth(se, control.units + treatment.units, alpha, 'one-sided');
  const bound = direction === 'lower-is-better' ? delta - halfwidth : delta + halfwidth;
  const regressed = direction === 'lower-is-better' ? bound > 0 : bound < 0;
  return { status: regressed ? 'regressed' : 'healthy', delta, bound };
}
