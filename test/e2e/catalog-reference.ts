/**
 * The independent reference for the catalog kinds (CONTRACT §6: unique-contexts,
 * flag-usage, experiment, guardrail, custom-sql). Like reference.ts it shares no code with
 * the control plane, the SQL generator or Flink: plain loops over what the recording proxy
 * saw the API accept (`deliveredPayloads`), with CONTRACT §5's time rules (`placeEvent`),
 * and the distributions from jStat (not the project's own statistics). The sequential
 * (always-valid) figures follow GrowthBook's gbstats (packages/stats/gbstats/frequentist/
 * tests.py: `sequential_rho`, eq. 9 and 134 of Waudby-Smith et al. 2023,
 * https://arxiv.org/pdf/2103.06476v7.pdf), written out here from the formulas.
 *
 * Readings of the contract this file takes (the implementers' design decisions, as the
 * tests were told them):
 * - unique-contexts: with `flagKeys`, only `feature` events of those flags count (also when
 *   not grouped by flag); a late event (older than the horizon) counts in no window.
 * - flag-usage: evaluations are summary counters (at the summary's placed event time); a
 *   counter with `unknown: true`, or without a variation, is an "unknown" evaluation; buckets
 *   of B = max(1 s, floor(period_s / 168) s); status, since, lastEvaluatedAt and evaluations
 *   as `flagUsageAt` says; only evaluations at or before `now` exist at `now`.
 * - experiment/guardrail: exposures are `feature` events of the flag that carry a variation;
 *   a unit is `contextKeys[randomizationKind]` (from `contextKeys`, or the event's single- or
 *   multi-kind `context`); conversions at or after (≥) the unit's first exposure, by event
 *   time; a `value` event without `metricValue` adds 0; `weights` absent: equal over the
 *   variations that have units; `srmPValue` is the same on every row, the control's too.
 * - guardrail: the bound is the one-sided always-valid bound of Δ = μT − μC on the side
 *   opposite the worse one (lower-is-better: Δ − h, regressed when > 0; higher-is-better:
 *   Δ + h, regressed when < 0); `insufficient-data` while an arm has fewer than minUnits.
 */
import { CONTRACT_TIME_RULES, Delivery, placeEvent, sdkTimeOf, sortRows, TimeRules } from './reference';

// jStat has no type declarations: the few functions used here.
interface JStatLike {
  studentt: { cdf(x: number, dof: number): number; pdf(x: number, dof: number): number; inv(p: number, dof: number): number };
  normal: { cdf(x: number, mean: number, sd: number): number; inv(p: number, mean: number, sd: number): number };
  chisquare: { cdf(x: number, dof: number): number };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const jStat: JStatLike = require('jstat');

/**
 * Student's t quantile: jStat's `inv` (off by up to ~6e-8 relative), polished by Newton steps
 * on jStat's cdf (then within ~2e-8 for the df of these tests: far inside their 1e-6).
 */
export function tQuantile(p: number, df: number): number {
  let q = jStat.studentt.inv(p, df);
  for (let i = 0; i < 3; i++) q -= (jStat.studentt.cdf(q, df) - p) / jStat.studentt.pdf(q, df);
  return q;
}

export type Dimension = 'flagKey' | 'variation' | 'environment';
const iso = (t: number) => new Date(t).toISOString();

// ---------------------------------------------------------------------------------
// Events, placed.

export interface PlaceOptions {
  /** Each delivery's environment (by its host, say). Needed for environment grouping and scoping. */
  environmentOf?: (d: Delivery) => string;
  /** The analysis' `environment`: only that environment's events. */
  environment?: string;
  rules?: TimeRules;
}

export interface PlacedEvent {
  event: any;
  /** Its time per CONTRACT §5, at the start of its delivery's receive interval. */
  eventTime: number;
  /** The same at the end of the interval (differs only for events too far ahead). */
  eventTimeLatest: number;
  environment?: string;
  /** payloadId#index, for messages. */
  where: string;
}

/** Every event of the deliveries placed in time; `late` ones (older than the horizon) apart. */
export function placeEvents(deliveries: Delivery[], options: PlaceOptions = {}): { events: PlacedEvent[]; late: PlacedEvent[]; ambiguousLate: string[] } {
  const rules = options.rules ?? CONTRACT_TIME_RULES;
  const events: PlacedEvent[] = [];
  const late: PlacedEvent[] = [];
  const ambiguousLate: string[] = [];
  for (const delivery of deliveries) {
    const environment = options.environmentOf?.(delivery);
    if (options.environment !== undefined && environment !== options.environment) continue;
    delivery.events.forEach((event: any, index) => {
      const t = sdkTimeOf(event);
      const early = placeEvent(t, delivery.receivedFrom, rules);
      const latest = placeEvent(t, delivery.receivedTo, rules);
      const where = `${delivery.payloadId}#${index}`;
      if (early.late !== latest.late) ambiguousLate.push(where);
      const placed = { event, eventTime: early.eventTime, eventTimeLatest: latest.eventTime, environment, where };
      (early.late ? late : events).push(placed);
    });
  }
  return { events, late, ambiguousLate };
}

/** An event's context keys per kind: `contextKeys`, a multi-kind context's every kind, a single-kind one's (no kind: `user`). */
export function contextKeysOf(event: any): Record<string, string> {
  const out: Record<string, string> = {};
  const c = event?.context;
  if (c && typeof c === 'object') {
    if (c.kind === 'multi') {
      for (const [kind, sub] of Object.entries(c)) {
        if (kind !== 'kind' && sub && typeof sub === 'object' && typeof (sub as any).key === 'string') out[kind] = (sub as any).key;
      }
    } else if (typeof c.key === 'string') out[typeof c.kind === 'string' ? c.kind : 'user'] = c.key;
  }
  if (event?.contextKeys && typeof event.contextKeys === 'object') {
    for (const [kind, key] of Object.entries(event.contextKeys)) if (typeof key === 'string') out[kind] = key;
  }
  return out;
}

const CONTEXT_EVENT_KINDS = ['index', 'identify', 'feature', 'custom'];

/** A stable key for a row's identity fields. */
const keyOf = (row: Record<string, unknown>) => JSON.stringify(row);
/** A time as the API may write it (any ISO form) → one canonical ISO string. */
export const canonicalTime = (value: unknown) => (typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? iso(Date.parse(value)) : value);

// ---------------------------------------------------------------------------------
// unique-contexts

export interface UniqueContextsParams {
  windowMs: number;
  contextKind?: string;
  flagKeys?: string[];
  groupBy?: Dimension[];
}

export interface UniqueContextsExpected {
  rows: Record<string, unknown>[];
  /** Events whose window depends on where in its receive interval the API judged it. */
  ambiguous: string[];
  /** Events of the analysis' kinds older than the horizon (counted in no row). */
  lateEvents: number;
}

function uniqueContextsCounts(event: any, params: UniqueContextsParams): boolean {
  const groupBy = params.groupBy ?? [];
  const perFlag = groupBy.includes('flagKey') || groupBy.includes('variation') || params.flagKeys !== undefined;
  if (perFlag) return event.kind === 'feature' && (params.flagKeys === undefined || params.flagKeys.includes(event.key));
  return CONTEXT_EVENT_KINDS.includes(event.kind);
}

/** Per window (of event time) and group: the distinct context keys of `contextKind`. */
export function expectedUniqueContexts(deliveries: Delivery[], params: UniqueContextsParams, options: PlaceOptions = {}): UniqueContextsExpected {
  const contextKind = params.contextKind ?? 'user';
  const groupBy = params.groupBy ?? [];
  const { events, late, ambiguousLate } = placeEvents(deliveries, options);
  const windowOf = (t: number) => Math.floor(t / params.windowMs) * params.windowMs;
  const sets = new Map<string, { row: Record<string, unknown>; keys: Set<string> }>();
  const ambiguous = [...ambiguousLate];
  for (const placed of events) {
    const { event } = placed;
    if (!uniqueContextsCounts(event, params)) continue;
    const key = contextKeysOf(event)[contextKind];
    if (key === undefined) continue;
    if (windowOf(placed.eventTime) !== windowOf(placed.eventTimeLatest)) ambiguous.push(placed.where);
    const start = windowOf(placed.eventTime);
    const row: Record<string, unknown> = { windowStart: iso(start), windowEnd: iso(start + params.windowMs) };
    if (groupBy.includes('flagKey')) row.flagKey = event.key;
    if (groupBy.includes('variation')) row.variation = typeof event.variation === 'number' ? event.variation : null;
    if (groupBy.includes('environment')) row.environment = placed.environment;
    row.contextKind = contextKind;
    const k = keyOf(row);
    const entry = sets.get(k) ?? { row, keys: new Set<string>() };
    entry.keys.add(key);
    sets.set(k, entry);
  }
  const rows = [...sets.values()].map(({ row, keys }) => ({ ...row, contexts: keys.size }));
  const lateEvents = late.filter((p) => uniqueContextsCounts(p.event, params) && contextKeysOf(p.event)[contextKind] !== undefined).length;
  return { rows: sortRows(rows), ambiguous, lateEvents };
}

/** The fields of a unique-contexts row the reference decides (no `final`, `updatedAt`), times canonical. */
export function projectUniqueContextsRows(rows: Record<string, unknown>[], groupBy: Dimension[] = []) {
  return sortRows(
    rows.map((r) => {
      const out: Record<string, unknown> = { windowStart: canonicalTime(r.windowStart), windowEnd: canonicalTime(r.windowEnd) };
      for (const d of ['flagKey', 'variation', 'environment'] as Dimension[]) if (groupBy.includes(d)) out[d] = r[d];
      out.contextKind = r.contextKind;
      out.contexts = r.contexts;
      return out;
    }),
  );
}

// ---------------------------------------------------------------------------------
// flag-usage

export interface Evaluation {
  flagKey: string;
  environment: string;
  /** null: an unknown flag's counter (or one without a variation). */
  variation: number | null;
  time: number;
  count: number;
}

/** Every summary counter of the deliveries (late ones aside), at its summary's placed time. */
export function evaluationsOf(deliveries: Delivery[], options: PlaceOptions = {}): Evaluation[] {
  const out: Evaluation[] = [];
  for (const placed of placeEvents(deliveries, options).events) {
    const { event } = placed;
    if (event.kind !== 'summary' || !event.features) continue;
    for (const [flagKey, flag] of Object.entries(event.features as Record<string, { counters?: any[] }>)) {
      for (const counter of flag.counters ?? []) {
        const known = counter.unknown !== true && typeof counter.variation === 'number';
        out.push({ flagKey, environment: placed.environment ?? '', variation: known ? counter.variation : null, time: placed.eventTime, count: counter.count });
      }
    }
  }
  return out;
}

export type FlagUsageStatus = 'active' | 'launched' | 'inactive' | 'unknown-flag';
export interface FlagUsageRow {
  flagKey: string;
  environment: string;
  status: FlagUsageStatus;
  since: string;
  lastEvaluatedAt: string;
  evaluations: number;
  variationsServed: number[];
}

/** B = max(1 s, floor(period_s / 168) s). */
export function flagUsageBucketMs(periodMs: number): number {
  return Math.max(1000, Math.floor(periodMs / 1000 / 168) * 1000);
}

/** status(t) of one flag and environment from its evaluations at or before t (undefined: none yet). */
function statusAt(evals: Evaluation[], periodMs: number, t: number): FlagUsageStatus | undefined {
  const known = evals.filter((e) => e.time <= t);
  if (known.length === 0) return undefined;
  const recent = known.filter((e) => e.time > t - periodMs);
  const served = new Set(recent.filter((e) => e.variation !== null).map((e) => e.variation));
  if (served.size >= 2) return 'active';
  if (served.size === 1) return 'launched';
  return recent.length > 0 ? 'unknown-flag' : 'inactive';
}

/** The times at which a flag-usage answer can change: evaluations, and their (and their buckets') leaving the period. */
export function flagUsageChangePoints(evals: Evaluation[], periodMs: number): number[] {
  const b = flagUsageBucketMs(periodMs);
  const points = new Set<number>();
  for (const e of evals) {
    points.add(e.time);
    points.add(e.time + periodMs);
    points.add((Math.floor(e.time / b) + 1) * b + periodMs);
  }
  return [...points].sort((x, y) => x - y);
}

/** The flag-usage rows at time `now`, from evaluations (see the file's comment for the rules). */
export function flagUsageAt(allEvals: Evaluation[], periodMs: number, now: number): FlagUsageRow[] {
  const b = flagUsageBucketMs(periodMs);
  const groups = new Map<string, Evaluation[]>();
  for (const e of allEvals) {
    if (e.time > now) continue;
    const k = JSON.stringify([e.flagKey, e.environment]);
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  const rows: FlagUsageRow[] = [];
  for (const evals of groups.values()) {
    const status = statusAt(evals, periodMs, now)!;
    // since: the latest change point ≤ now where status differs from just before it.
    let previous: FlagUsageStatus | undefined;
    let since = NaN;
    for (const c of flagUsageChangePoints(evals, periodMs)) {
      if (c > now) break;
      const s = statusAt(evals, periodMs, c);
      if (s !== previous) since = c;
      previous = s;
    }
    const served = [...new Set(evals.filter((e) => e.variation !== null && e.time > now - periodMs).map((e) => e.variation as number))].sort((x, y) => x - y);
    rows.push({
      flagKey: evals[0].flagKey,
      environment: evals[0].environment,
      status,
      since: iso(since),
      lastEvaluatedAt: iso(Math.max(...evals.map((e) => e.time))),
      evaluations: evals.filter((e) => (Math.floor(e.time / b) + 1) * b > now - periodMs).reduce((a, e) => a + e.count, 0),
      variationsServed: served,
    });
  }
  return sortFlagUsage(rows);
}

export function expectedFlagUsage(deliveries: Delivery[], periodMs: number, now: number, options: PlaceOptions = {}): FlagUsageRow[] {
  return flagUsageAt(evaluationsOf(deliveries, options), periodMs, now);
}

/**
 * Every distinct answer for a `now` in [from, to] (the answer is constant between change
 * points), each with the earliest such now: a response is right when it equals one of them.
 */
export function flagUsageCandidates(deliveries: Delivery[], periodMs: number, from: number, to: number, options: PlaceOptions = {}): { now: number; rows: FlagUsageRow[] }[] {
  const evals = evaluationsOf(deliveries, options);
  const nows = [from, ...flagUsageChangePoints(evals, periodMs).filter((c) => c > from && c <= to)];
  const out: { now: number; rows: FlagUsageRow[] }[] = [];
  const seen = new Set<string>();
  for (const now of nows) {
    const rows = flagUsageAt(evals, periodMs, now);
    const k = JSON.stringify(rows);
    if (!seen.has(k)) {
      seen.add(k);
      out.push({ now, rows });
    }
  }
  return out;
}

function sortFlagUsage<T extends { flagKey: string; environment: string }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => (a.flagKey === b.flagKey ? (a.environment < b.environment ? -1 : a.environment > b.environment ? 1 : 0) : a.flagKey < b.flagKey ? -1 : 1));
}

/** The contract's fields of flag-usage rows, times canonical, in the reference's order. */
export function projectFlagUsageRows(rows: Record<string, any>[]): FlagUsageRow[] {
  return sortFlagUsage(
    rows.map((r) => ({
      flagKey: r.flagKey,
      environment: r.environment,
      status: r.status,
      since: canonicalTime(r.since) as string,
      lastEvaluatedAt: canonicalTime(r.lastEvaluatedAt) as string,
      evaluations: r.evaluations,
      variationsServed: r.variationsServed,
    })),
  );
}

// ---------------------------------------------------------------------------------
// Exposures and conversions (experiment, guardrail)

export type MetricType = 'conversion' | 'value';

export interface ExposureParams {
  flagKey: string;
  metric: { eventKey: string; type: MetricType };
  randomizationKind?: string;
}

export interface Unit {
  key: string;
  variation: number;
  firstExposure: number;
  variations: Set<number>;
  /** conversion: 1 if converted, else 0; value: the sum of its metricValues (0 if none). */
  y: number;
  /** Conversion events counted for it. */
  conversions: number;
}

/** Units by key: first exposure (earliest; ties: lowest variation), every variation seen, y. */
export function unitsOf(deliveries: Delivery[], params: ExposureParams, options: PlaceOptions = {}): Map<string, Unit> {
  const kind = params.randomizationKind ?? 'user';
  const { events } = placeEvents(deliveries, options);
  const units = new Map<string, Unit>();
  for (const { event, eventTime } of events) {
    if (event.kind !== 'feature' || event.key !== params.flagKey || typeof event.variation !== 'number') continue;
    const key = contextKeysOf(event)[kind];
    if (key === undefined) continue;
    const unit = units.get(key);
    if (!unit) {
      units.set(key, { key, variation: event.variation, firstExposure: eventTime, variations: new Set([event.variation]), y: 0, conversions: 0 });
      continue;
    }
    unit.variations.add(event.variation);
    if (eventTime < unit.firstExposure || (eventTime === unit.firstExposure && event.variation < unit.variation)) {
      unit.firstExposure = eventTime;
      unit.variation = event.variation;
    }
  }
  for (const { event, eventTime } of events) {
    if (event.kind !== 'custom' || event.key !== params.metric.eventKey) continue;
    const key = contextKeysOf(event)[kind];
    const unit = key === undefined ? undefined : units.get(key);
    if (!unit || eventTime < unit.firstExposure) continue;
    unit.conversions++;
    if (params.metric.type === 'conversion') unit.y = 1;
    else unit.y += typeof event.metricValue === 'number' ? event.metricValue : 0;
  }
  return units;
}

/** The sufficient statistics of one variation's units. */
export interface Arm {
  variation: number;
  n: number;
  sum: number;
  sumSquares: number;
  /** Units here also exposed to another variation. */
  multipleExposures: number;
}

export function armsOf(units: Map<string, Unit>): Map<number, Arm> {
  const arms = new Map<number, Arm>();
  for (const unit of units.values()) {
    const arm = arms.get(unit.variation) ?? { variation: unit.variation, n: 0, sum: 0, sumSquares: 0, multipleExposures: 0 };
    arm.n++;
    arm.sum += unit.y;
    arm.sumSquares += unit.y * unit.y;
    if (unit.variations.size > 1) arm.multipleExposures++;
    arms.set(unit.variation, arm);
  }
  return arms;
}

// ---------------------------------------------------------------------------------
// Statistics

export interface Moments {
  n: number;
  sum: number;
  sumSquares: number;
}

/** Mean and variance of an arm: conversion p(1−p); value the sample variance (n−1). */
export function meanVariance(m: Moments, type: MetricType): { mean: number; variance: number } {
  const mean = m.sum / m.n;
  if (type === 'conversion') return { mean, variance: mean * (1 - mean) };
  return { mean, variance: m.n > 1 ? (m.sumSquares - (m.sum * m.sum) / m.n) / (m.n - 1) : NaN };
}

export const SEQUENTIAL_TUNING = 5000;

/** gbstats' `sequential_rho` (eq. 161): two-sided at alpha; one-sided uses 2·alpha. */
export function sequentialRho(alpha: number, tuning = SEQUENTIAL_TUNING, twoSided = true): number {
  const a = twoSided ? alpha : 2 * alpha;
  return Math.sqrt((-2 * Math.log(a) + Math.log(-2 * Math.log(a) + 1)) / tuning);
}

/** Half-width of the two-sided asymptotic confidence sequence (eq. 9): s2 = se²·n, n the units of both arms. */
export function sequentialHalfwidth(s2: number, n: number, alpha: number, tuning = SEQUENTIAL_TUNING): number {
  const rho = sequentialRho(alpha, tuning, true);
  const nr2 = n * rho * rho;
  return Math.sqrt(s2) * Math.sqrt((2 * (nr2 + 1) * Math.log(Math.sqrt(nr2 + 1) / alpha)) / ((n * rho) ** 2));
}

/** Half-width of the one-sided one (eq. 134). */
export function sequentialHalfwidthOneSided(s2: number, n: number, alpha: number, tuning = SEQUENTIAL_TUNING): number {
  const rho = sequentialRho(alpha, tuning, false);
  const nr2 = n * rho * rho;
  return Math.sqrt(s2 * ((2 * (nr2 + 1)) / ((n * rho) ** 2)) * Math.log(1 + Math.sqrt(nr2 + 1) / (2 * alpha)));
}

/** The always-valid two-sided p-value (eq. 155, gbstats' reparametrisation). */
export function sequentialPValue(estimate: number, se: number, n: number, alpha: number, tuning = SEQUENTIAL_TUNING): number {
  const rho = sequentialRho(alpha, tuning, true);
  const st2 = (estimate * estimate * n) / (se * se);
  const tr2p1 = n * rho * rho + 1;
  const evalue = Math.exp((rho * rho * st2) / (2 * tr2p1)) / Math.sqrt(tr2p1);
  return Math.min(1 / evalue, 1);
}

export interface RelativeComparison {
  relativeLift: number;
  se: number;
  df: number;
  liftCi: [number, number];
  pValue: number;
  chanceToBeatControl: number;
  sequential: { liftCi: [number, number]; pValue: number };
}

/** Treatment against control: relative lift, delta-method variance, Welch df, two-sided p and CI, sequential, P(beat). */
export function compareRelative(control: Moments, treatment: Moments, type: MetricType, alpha = 0.05, tuning = SEQUENTIAL_TUNING): RelativeComparison | null {
  const c = meanVariance(control, type);
  const t = meanVariance(treatment, type);
  if (control.n < 2 || treatment.n < 2 || c.mean === 0) return null;
  const lift = (t.mean - c.mean) / Math.abs(c.mean);
  const variance = t.variance / (treatment.n * c.mean ** 2) + (c.variance * t.mean ** 2) / (control.n * c.mean ** 4);
  if (!(variance > 0)) return null;
  const se = Math.sqrt(variance);
  const df = (t.variance / treatment.n + c.variance / control.n) ** 2 / (t.variance ** 2 / (treatment.n ** 2 * (treatment.n - 1)) + c.variance ** 2 / (control.n ** 2 * (control.n - 1)));
  const half = tQuantile(1 - alpha / 2, df) * se;
  const n = control.n + treatment.n;
  const seqHalf = sequentialHalfwidth(se * se * n, n, alpha, tuning);
  return {
    relativeLift: lift,
    se,
    df,
    liftCi: [lift - half, lift + half],
    pValue: 2 * jStat.studentt.cdf(-Math.abs(lift / se), df),
    chanceToBeatControl: jStat.normal.cdf(lift / se, 0, 1),
    sequential: { liftCi: [lift - seqHalf, lift + seqHalf], pValue: sequentialPValue(lift, se, n, alpha, tuning) },
  };
}

/** Chi-squared test of units against weights (normalised), k − 1 degrees of freedom. */
export function srmPValue(units: number[], weights: number[]): number {
  const total = units.reduce((a, b) => a + b, 0);
  const w = weights.reduce((a, b) => a + b, 0);
  let chi = 0;
  units.forEach((observed, i) => {
    const expected = (total * weights[i]) / w;
    if (expected > 0) chi += (observed - expected) ** 2 / expected;
  });
  return 1 - jStat.chisquare.cdf(chi, units.length - 1);
}

// ---------------------------------------------------------------------------------
// experiment

export interface ExperimentParams extends ExposureParams {
  controlVariation?: number;
  weights?: number[];
  alpha?: number;
}

export interface ExperimentRow {
  variation: number;
  units: number;
  conversions?: number;
  valueSum?: number;
  mean: number;
  stdDev: number;
  relativeLift: number | null;
  liftCi: [number, number] | null;
  pValue: number | null;
  sequential: { liftCi: [number, number]; pValue: number } | null;
  chanceToBeatControl: number | null;
  srmPValue: number | null;
  multipleExposures: number;
}

/** The rows from the arms (one per variation with units, ascending). */
export function experimentRows(arms: Map<number, Arm>, params: ExperimentParams): ExperimentRow[] {
  const type = params.metric.type;
  const alpha = params.alpha ?? 0.05;
  const control = arms.get(params.controlVariation ?? 0);
  const variations = [...arms.keys()].sort((a, b) => a - b);
  const weights = params.weights;
  // Weights per variation index (absent: equal over the variations with units).
  const srmVariations = weights ? weights.map((_, i) => i) : variations;
  const srm = srmVariations.length >= 2 ? srmPValue(srmVariations.map((v) => arms.get(v)?.n ?? 0), weights ?? srmVariations.map(() => 1)) : null;
  return variations.map((v) => {
    const arm = arms.get(v)!;
    const { mean, variance } = meanVariance(arm, type);
    const row: ExperimentRow = {
      variation: v,
      units: arm.n,
      ...(type === 'conversion' ? { conversions: arm.sum } : { valueSum: arm.sum }),
      mean,
      stdDev: Math.sqrt(variance),
      relativeLift: 0,
      liftCi: null,
      pValue: null,
      sequential: null,
      chanceToBeatControl: null,
      srmPValue: srm,
      multipleExposures: arm.multipleExposures,
    };
    if (v !== (params.controlVariation ?? 0)) {
      const cmp = control ? compareRelative(control, arm, type, alpha) : null;
      if (cmp) Object.assign(row, { relativeLift: cmp.relativeLift, liftCi: cmp.liftCi, pValue: cmp.pValue, sequential: cmp.sequential, chanceToBeatControl: cmp.chanceToBeatControl });
      else row.relativeLift = null; // no comparison against a control without units, variance or mean
    }
    return row;
  });
}

export function expectedExperiment(deliveries: Delivery[], params: ExperimentParams, options: PlaceOptions = {}): ExperimentRow[] {
  return experimentRows(armsOf(unitsOf(deliveries, params, options)), params);
}

/**
 * Differences between an API experiment row and the reference: exact counts, every
 * statistic within `rel` relative (absolute floor `abs`; a confidence bound relative to its
 * interval's scale), nulls where the reference has them.
 */
export function experimentRowDifferences(got: Record<string, any> | undefined, want: ExperimentRow, rel = 1e-6, abs = 1e-10): string[] {
  if (!got) return [`variation ${want.variation}: no row`];
  const out: string[] = [];
  const v = want.variation;
  for (const field of ['units', 'conversions', 'valueSum', 'multipleExposures'] as const) {
    if (want[field] !== undefined && got[field] !== want[field]) out.push(`variation ${v}: ${field} ${got[field]}, want ${want[field]}`);
  }
  // Relative to the quantity's scale: a confidence bound's is its interval's (an endpoint near 0 is the
  // difference of two larger numbers, the estimate and a half-width).
  const close = (name: string, a: unknown, b: number | null, scale = 0) => {
    if (b === null) {
      if (a !== null && a !== undefined) out.push(`variation ${v}: ${name} ${JSON.stringify(a)}, want null`);
      return;
    }
    if (typeof a !== 'number' || !(Math.abs(a - b) <= Math.max(abs, rel * Math.max(Math.abs(a), Math.abs(b), scale)))) out.push(`variation ${v}: ${name} ${JSON.stringify(a)}, want ${b}`);
  };
  const scaleOf = (ci: [number, number] | null | undefined) => (ci ? Math.max(Math.abs(ci[0]), Math.abs(ci[1]), Math.abs(want.relativeLift ?? 0)) : 0);
  close('mean', got.mean, want.mean);
  close('stdDev', got.stdDev, want.stdDev);
  close('relativeLift', got.relativeLift, want.relativeLift);
  close('liftCi[0]', got.liftCi?.[0], want.liftCi?.[0] ?? null, scaleOf(want.liftCi));
  close('liftCi[1]', got.liftCi?.[1], want.liftCi?.[1] ?? null, scaleOf(want.liftCi));
  if (want.liftCi === null && got.liftCi !== null && got.liftCi !== undefined) out.push(`variation ${v}: liftCi ${JSON.stringify(got.liftCi)}, want null`);
  close('pValue', got.pValue, want.pValue);
  close('chanceToBeatControl', got.chanceToBeatControl, want.chanceToBeatControl);
  close('srmPValue', got.srmPValue, want.srmPValue);
  if (want.sequential === null) {
    // The control: no comparison (null, or an object of nulls).
    const s = got.sequential;
    if (s !== null && s !== undefined && !(s.liftCi == null && s.pValue == null)) out.push(`variation ${v}: sequential ${JSON.stringify(s)}, want null`);
  } else {
    close('sequential.liftCi[0]', got.sequential?.liftCi?.[0], want.sequential.liftCi[0], scaleOf(want.sequential.liftCi));
    close('sequential.liftCi[1]', got.sequential?.liftCi?.[1], want.sequential.liftCi[1], scaleOf(want.sequential.liftCi));
    close('sequential.pValue', got.sequential?.pValue, want.sequential.pValue);
  }
  return out;
}

// ---------------------------------------------------------------------------------
// guardrail

export interface GuardrailParams {
  flagKey: string;
  metric: { eventKey: string; type: MetricType; direction: 'lower-is-better' | 'higher-is-better' };
  controlVariation?: number;
  treatmentVariation: number;
  randomizationKind?: string;
  alpha?: number;
  minUnits?: number;
}

export interface GuardrailResult {
  status: 'insufficient-data' | 'healthy' | 'regressed';
  delta: number | null;
  bound: number | null;
  units: { control: number; treatment: number };
}

/** The one-sided sequential test of Δ = μT − μC (variance σT²/nT + σC²/nC) on two arms. */
export function guardrailTest(control: Moments, treatment: Moments, params: Omit<GuardrailParams, 'flagKey' | 'treatmentVariation'>, tuning = SEQUENTIAL_TUNING): GuardrailResult {
  const units = { control: control.n, treatment: treatment.n };
  const minUnits = params.minUnits ?? 100;
  const alpha = params.alpha ?? 0.05;
  const type = params.metric.type;
  if (control.n < 1 || treatment.n < 1) return { status: 'insufficient-data', delta: null, bound: null, units };
  const c = meanVariance(control, type);
  const t = meanVariance(treatment, type);
  const delta = t.mean - c.mean;
  const variance = t.variance / treatment.n + c.variance / control.n;
  const n = control.n + treatment.n;
  const half = Number.isFinite(variance) ? sequentialHalfwidthOneSided(variance * n, n, alpha, tuning) : NaN;
  const lowerIsBetter = params.metric.direction === 'lower-is-better';
  const bound = Number.isFinite(half) ? (lowerIsBetter ? delta - half : delta + half) : null;
  if (control.n < minUnits || treatment.n < minUnits) return { status: 'insufficient-data', delta, bound, units };
  const regressed = bound !== null && (lowerIsBetter ? bound > 0 : bound < 0);
  return { status: regressed ? 'regressed' : 'healthy', delta, bound, units };
}

export function expectedGuardrail(deliveries: Delivery[], params: GuardrailParams, options: PlaceOptions = {}): GuardrailResult {
  const arms = armsOf(unitsOf(deliveries, params, options));
  const empty = (variation: number): Arm => ({ variation, n: 0, sum: 0, sumSquares: 0, multipleExposures: 0 });
  const controlVariation = params.controlVariation ?? 0;
  return guardrailTest(arms.get(controlVariation) ?? empty(controlVariation), arms.get(params.treatmentVariation) ?? empty(params.treatmentVariation), params);
}

// ---------------------------------------------------------------------------------
// custom-sql: SELECT flagKey, variation, COUNT(*) AS n FROM events WHERE kind = 'feature' GROUP BY flagKey, variation

export function expectedFeatureCounts(deliveries: Delivery[], options: PlaceOptions = {}): { flagKey: string; variation: number | null; n: number }[] {
  const counts = new Map<string, { flagKey: string; variation: number | null; n: number }>();
  for (const { event } of placeEvents(deliveries, options).events) {
    if (event.kind !== 'feature') continue;
    const variation = typeof event.variation === 'number' ? event.variation : null;
    const k = JSON.stringify([event.key, variation]);
    const row = counts.get(k) ?? { flagKey: event.key, variation, n: 0 };
    row.n++;
    counts.set(k, row);
  }
  return sortRows([...counts.values()]);
}
