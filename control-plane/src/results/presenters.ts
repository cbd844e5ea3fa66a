import type { ExperimentParams, ExperimentRow, FlagUsageRow, GuardrailParams, GuardrailRow } from '@flagstream/schemas';
import { ArmStats, compareRelative, guardrailTest, srmPValue, summarize } from './statistics';

/**
 * The kinds whose rows are "kept current" (CONTRACT §6) store what Flink computed (buckets,
 * sufficient statistics) and are presented here, when asked: pure functions of the stored rows
 * and the time of the request, so a flag turns inactive with time alone and statistics are
 * never stale.
 */

/** A flag-usage bucket as the job writes it (flink-sql/templates/flag-usage.sql). */
export interface UsageBucket {
  windowStart: string;
  windowEnd: string;
  flagKey: string;
  environment: string;
  variation: number | null;
  unknown: boolean;
  evaluations: number;
  firstAt: number;
  lastAt: number;
}

/** What a flag served: a variation index, the default (no variation) or the SDK's unknown-flag counter. */
type Served = string;
const UNKNOWN: Served = 'unknown';
const servedOf = (b: UsageBucket): Served => (b.unknown ? UNKNOWN : b.variation === null ? 'default' : String(b.variation));

/**
 * One row per flag and environment at `now`. A served value is "in use" at time t when one of
 * its evaluations lies in (t − period, t]: each bucket's first and last evaluation time make
 * those intervals exact, because a bucket (period / 168) is shorter than the period.
 */
export function flagUsageRows(buckets: UsageBucket[], now: number, periodMs: number): FlagUsageRow[] {
  const flags = new Map<string, UsageBucket[]>();
  for (const bucket of buckets) {
    if (bucket.firstAt > now) continue; // an SDK clock ahead: not evaluated yet, as of now
    const key = JSON.stringify([bucket.flagKey, bucket.environment]);
    flags.set(key, [...(flags.get(key) ?? []), bucket]);
  }
  const rows: FlagUsageRow[] = [];
  for (const list of flags.values()) rows.push(flagRow(list, now, periodMs));
  return rows.sort((a, b) => (a.flagKey < b.flagKey ? -1 : a.flagKey > b.flagKey ? 1 : a.environment < b.environment ? -1 : a.environment > b.environment ? 1 : 0));
}

function flagRow(buckets: UsageBucket[], now: number, periodMs: number): FlagUsageRow {
  // Per served value, the intervals [first, last + period) in which it counts as served.
  const runs = new Map<Served, [number, number][]>();
  const byServed = new Map<Served, UsageBucket[]>();
  for (const b of buckets) byServed.set(servedOf(b), [...(byServed.get(servedOf(b)) ?? []), b]);
  for (const [served, list] of byServed) {
    list.sort((a, b) => a.firstAt - b.firstAt);
    const merged: [number, number][] = [];
    for (const b of list) {
      const last = merged[merged.length - 1];
      if (last && b.firstAt <= last[1]) last[1] = Math.max(last[1], b.lastAt + periodMs);
      else merged.push([b.firstAt, b.lastAt + periodMs]);
    }
    runs.set(served, merged);
  }
  const servedAt = (t: number) => [...runs].filter(([, rs]) => rs.some(([from, to]) => from <= t && t < to)).map(([served]) => served);
  const statusAt = (t: number): FlagUsageRow['status'] => statusOf(servedAt(t));

  // The status changes only where an interval starts or ends: the latest such change is `since`.
  const points = [...new Set([...runs.values()].flat(2))].filter((t) => t <= now).sort((a, b) => a - b);
  let previous: FlagUsageRow['status'] | undefined;
  let since = points[0];
  for (const t of points) {
    const status = statusAt(t);
    if (status !== previous) since = t;
    previous = status;
  }
  const first = buckets[0];
  const served = servedAt(now);
  return {
    flagKey: first.flagKey,
    environment: first.environment,
    status: statusAt(now),
    since: new Date(since).toISOString(),
    lastEvaluatedAt: new Date(Math.max(...buckets.map((b) => b.lastAt))).toISOString(),
    evaluations: buckets.filter((b) => Date.parse(b.windowEnd) > now - periodMs).reduce((sum, b) => sum + b.evaluations, 0),
    variationsServed: served.filter((s) => /^\d+$/.test(s)).map(Number).sort((a, b) => a - b),
  };
}

function statusOf(served: Served[]): FlagUsageRow['status'] {
  const known = served.filter((s) => s !== UNKNOWN);
  if (!served.length) return 'inactive';
  if (!known.length) return 'unknown-flag';
  return known.length >= 2 ? 'active' : 'launched';
}

/** A variation's sufficient statistics as the job writes them (flink-sql/templates/experiment.sql). */
export interface VariationStats extends ArmStats {
  variation: number;
  multipleExposures: number;
}

export function experimentRows(stats: VariationStats[], params: ExperimentParams): ExperimentRow[] {
  const type = params.metric.type;
  const alpha = params.alpha ?? 0.05;
  const controlVariation = params.controlVariation ?? 0;
  const sorted = [...stats].sort((a, b) => a.variation - b.variation);
  const control = sorted.find((s) => s.variation === controlVariation);
  const srm = srmOf(sorted, params.weights);
  return sorted.map((s) => {
    const summary = summarize(s, type);
    const isControl = s.variation === controlVariation;
    const comparison = !isControl && control ? compareRelative(control, s, type, alpha) : null;
    const measure = type === 'conversion' ? { conversions: s.sum } : { valueSum: s.sum };
    return {
      variation: s.variation,
      units: s.units,
      ...measure,
      mean: summary.mean,
      stdDev: summary.stdDev,
      relativeLift: isControl ? 0 : comparison?.relativeLift ?? null,
      liftCi: comparison?.liftCi ?? null,
      pValue: comparison?.pValue ?? null,
      sequential: comparison ? { liftCi: comparison.sequential.liftCi, pValue: comparison.sequential.pValue } : null,
      chanceToBeatControl: comparison?.chanceToBeatControl ?? null,
      srmPValue: srm,
      multipleExposures: s.multipleExposures,
    };
  });
}

/** Units against `weights` (per variation index), or against equal shares of the variations seen. */
function srmOf(stats: VariationStats[], weights: number[] | undefined): number | null {
  if (!weights) return srmPValue(stats.map((s) => s.units), stats.map(() => 1));
  const units = weights.map((_, variation) => stats.find((s) => s.variation === variation)?.units ?? 0);
  return srmPValue(units, weights);
}

/** The guardrail's status as its rows say now (its `since` is kept by GuardrailWatcher). */
export function guardrailVerdict(stats: VariationStats[], params: GuardrailParams): Omit<GuardrailRow, 'since'> {
  const arm = (variation: number): ArmStats => stats.find((s) => s.variation === variation) ?? { units: 0, sum: 0, sumSquares: 0 };
  const control = arm(params.controlVariation ?? 0);
  const treatment = arm(params.treatmentVariation);
  const result = guardrailTest(control, treatment, params.metric.type, params.metric.direction, params.alpha ?? 0.05, params.minUnits ?? 100);
  return { status: result.status, delta: result.delta, bound: result.bound, units: { control: control.units, treatment: treatment.units } };
}

/** Parses a stored experiment/guardrail row; undefined when it is not one. */
export function variationStatsOf(row: Record<string, unknown>): VariationStats | undefined {
  const { variation, units, sum, sumSquares, multipleExposures } = row;
  if (![variation, units, sum, sumSquares].every((v) => typeof v === 'number')) return undefined;
  return { variation: variation as number, units: units as number, sum: sum as number, sumSquares: sumSquares as number, multipleExposures: typeof multipleExposures === 'number' ? multipleExposures : 0 };
}

/** Parses a stored flag-usage bucket; undefined when it is not one. */
export function usageBucketOf(row: Record<string, unknown>): UsageBucket | undefined {
  const { windowStart, windowEnd, flagKey, environment, variation, unknown, evaluations, firstAt, lastAt } = row;
  if (typeof flagKey !== 'string' || typeof environment !== 'string' || typeof evaluations !== 'number' || typeof firstAt !== 'number' || typeof lastAt !== 'number') return undefined;
  return {
    windowStart: String(windowStart), windowEnd: String(windowEnd), flagKey, environment,
    variation: typeof variation === 'number' ? variation : null, unknown: unknown === true, evaluations, firstAt, lastAt,
  };
}
