/* Generated from the JSON Schemas in schemas/ by generate-types.mjs. Do not edit. */

export type Context = SingleKindContext | MultiKindContext;

export type ContextKind = string;

export type ContextKey = string;

export interface SingleKindContext {
  kind: ContextKind;
  key: ContextKey;
  name?: string;
  anonymous?: boolean;
  _meta?: ContextMeta;
}

export interface ContextMeta {
  privateAttributes?: string[];
  redactedAttributes?: string[];
}

export interface MultiKindContext {
  kind: 'multi';
  [k: string]: ContextOfMulti | 'multi';
}

export interface ContextOfMulti {
  key: ContextKey;
  name?: string;
  anonymous?: boolean;
  _meta?: ContextMeta;
}

export type SdkEvent = FeatureEvent | SummaryEvent | CustomEvent | IdentifyEvent | IndexEvent;
/**
 * Milliseconds since the Unix epoch.
 */

export type Timestamp = number;

export type FlagKey = string;
/**
 * An evaluation context as LaunchDarkly SDKs send it (event schema 4): single-kind ({kind, key, ...attributes}) or multi-kind ({kind: "multi", <kind>: {key, ...}}).
 */

export interface FeatureEvent {
  kind: 'feature' | 'debug';
  creationDate: Timestamp;
  key: FlagKey;
  context?: Context;
  contextKeys?: {
    [k: string]: string;
  };
  value?: unknown;
  default?: unknown;
  variation?: number;
  version?: number;
  prereqOf?: string;
  reason?: {};
  samplingRatio?: number;
}

export interface SummaryEvent {
  kind: 'summary';
  startDate: Timestamp;
  endDate: Timestamp;
  features: {
    [k: string]: {
      default?: unknown;
      /**
       * @maxItems 10000
       */
      counters: SummaryCounter[];
      contextKinds?: string[];
    };
  };
}

export interface SummaryCounter {
  value?: unknown;
  count: number;
  variation?: number;
  version?: number;
  unknown?: boolean;
}
/**
 * A track() call: a conversion or metric event.
 */

export interface CustomEvent {
  kind: 'custom';
  creationDate: Timestamp;
  key: string;
  context?: Context;
  contextKeys?: {
    [k: string]: string;
  };
  data?: unknown;
  metricValue?: number;
  samplingRatio?: number;
}

export interface IdentifyEvent {
  kind: 'identify';
  creationDate: Timestamp;
  context: Context;
  samplingRatio?: number;
}
/**
 * Sent once per context the SDK has not seen recently, so contexts are known without a feature event per evaluation.
 */

export interface IndexEvent {
  kind: 'index';
  creationDate: Timestamp;
  context: Context;
}

export type ResourceKey = string;

export interface Tenants {
  [k: string]: unknown;
}
/**
 * This interface was referenced by `Tenants`'s JSON-Schema
 * via the `definition` "createTenant".
 */

export interface CreateTenantRequest {
  key: ResourceKey;
  name: string;
}
/**
 * This interface was referenced by `Tenants`'s JSON-Schema
 * via the `definition` "createEnvironment".
 */

export interface CreateEnvironmentRequest {
  key: ResourceKey;
}

export interface AnalysisDefinition {
  name: string;
  /**
   * The analysis in the catalog (CONTRACT §6): each kind has its params schema.
   */
  kind: 'flag-evaluations' | 'unique-contexts' | 'flag-usage' | 'experiment' | 'guardrail' | 'custom-sql';
  params: {};
  /**
   * Restrict the analysis to one of the tenant's environments; all of them when absent.
   */
  environment?: string;
}

export type Duration = string;

/**
 * Evaluation counts per tumbling event-time window, counted from summary events (a summary's counters count at its endDate).
 */

export interface FlagEvaluationsParams {
  /**
   * Window length: a whole number with unit s, m, h or d ("10s", "1m", "1h"); at least 1 s, at most 7 d.
   */
  window: string;
  /**
   * Only these flags; all flags when absent.
   *
   * @minItems 1
   * @maxItems 500
   */
  flagKeys?: string[];
  /**
   * Dimensions of each row.
   *
   * @maxItems 3
   */
  groupBy?: ('flagKey' | 'variation' | 'environment')[];
}

export interface FlagEvaluationsRow {
  windowStart: string;
  windowEnd: string;
  flagKey?: string;
  /**
   * The variation index; null when the SDK served the default (flag not found or error).
   */
  variation?: number | null;
  environment?: string;
  evaluations: number;
  /**
   * true once the row's window has closed (the job has read every shard of the events stream past windowEnd plus the allowed lateness); false while it is open: a row may appear before its window ends and grow. Late events (within the lateness horizon) may still change a final row, which then carries updatedAt.
   */
  final: boolean;
  /**
   * When late events last changed the row after it was final (ISO-8601 UTC); absent while they never did.
   */
  updatedAt?: string;
}

export interface UniqueContextsParams {
  /**
   * Window length: a whole number with unit s, m, h or d ("10s", "1m", "1h"); at least 1 s, at most 7 d.
   */
  window: string;
  /**
   * The context kind counted; a multi-kind context counts under each of its kinds.
   */
  contextKind?: string;
  /**
   * Only feature events of these flags.
   *
   * @minItems 1
   * @maxItems 500
   */
  flagKeys?: string[];
  /**
   * Dimensions of each row besides contextKind.
   *
   * @maxItems 3
   */
  groupBy?: ('flagKey' | 'variation' | 'environment')[];
}

export interface UniqueContextsRow {
  windowStart: string;
  windowEnd: string;
  contextKind: string;
  /**
   * The exact number of distinct context keys of contextKind seen in the window.
   */
  contexts: number;
  flagKey?: string;
  variation?: number | null;
  environment?: string;
  /**
   * As for flag-evaluations rows.
   */
  final: boolean;
  updatedAt?: string;
}

export interface FlagUsageParams {
  /**
   * How far back a flag's evaluations make it active or launched: "7d" by default, from 10s to 90d. Evaluations are bucketed by max(1 s, period / 168) of event time.
   */
  period?: string;
}

export interface FlagUsageRow {
  flagKey: string;
  environment: string;
  /**
   * active: two or more variations served in the last period; launched: one; inactive: none (it was evaluated before); unknown-flag: the SDKs evaluated a key they did not know, and nothing else.
   */
  status: 'active' | 'launched' | 'inactive' | 'unknown-flag';
  /**
   * When the flag entered its status (inactive: its last evaluation + period).
   */
  since: string;
  lastEvaluatedAt: string;
  /**
   * Evaluations in the buckets (period / 168, at least 1 s) that end after now − period.
   */
  evaluations: number;
  /**
   * Variation indices evaluated in the last period, ascending.
   */
  variationsServed: number[];
}

export interface ExperimentParams {
  flagKey: string;
  metric: Metric;
  controlVariation?: number;
  /**
   * Expected traffic share per variation index (normalised), for the sample ratio mismatch test; equal over the variations seen when absent.
   *
   * @minItems 2
   * @maxItems 100
   */
  weights?: number[];
  /**
   * The context kind whose key is the unit of randomization.
   */
  randomizationKind?: string;
  alpha?: number;
}
/**
 * This interface was referenced by `ExperimentParams`'s JSON-Schema
 * via the `definition` "metric".
 */

export interface Metric {
  /**
   * The custom event's key (track(eventKey)).
   */
  eventKey: string;
  /**
   * conversion: a unit converts or not; value: the sum of its metricValues.
   */
  type: 'conversion' | 'value';
}

export interface ExperimentRow {
  variation: number;
  /**
   * Contexts (of randomizationKind) whose first exposure was this variation.
   */
  units: number;
  /**
   * conversion metrics: units that converted at or after their first exposure.
   */
  conversions?: number;
  /**
   * value metrics: the sum of the units' metricValues at or after their first exposure.
   */
  valueSum?: number;
  mean: number | null;
  /**
   * conversion: sqrt(p(1−p)); value: the sample standard deviation (n−1) of the units' sums (0 for a unit that never converted).
   */
  stdDev: number | null;
  /**
   * (mean − control mean) / |control mean|.
   */
  relativeLift: number | null;
  /**
   * [low, high]: two-sided Welch confidence interval at 1 − alpha.
   */
  liftCi: number[] | null;
  /**
   * Two-sided Welch test of the relative lift (delta method).
   */
  pValue: number | null;
  /**
   * Always-valid figures: an asymptotic confidence sequence (tuning 5000 units), valid however often it is looked at.
   */
  sequential: {
    liftCi?: number[];
    pValue?: number;
  } | null;
  /**
   * P(relative lift > 0) under a Gaussian posterior with a flat prior.
   */
  chanceToBeatControl: number | null;
  /**
   * Chi-squared test of every variation's units against weights (the same on every row).
   */
  srmPValue: number | null;
  /**
   * Units counted here (first exposure) that were also exposed to another variation.
   */
  multipleExposures: number;
}

export interface GuardrailParams {
  flagKey: string;
  metric: {
    eventKey: string;
    type: 'conversion' | 'value';
    direction: 'lower-is-better' | 'higher-is-better';
  };
  controlVariation?: number;
  treatmentVariation: number;
  randomizationKind?: string;
  alpha?: number;
  minUnits?: number;
  /**
   * Where the row is POSTed (with analysisId) when the guardrail turns regressed, retried until answered 2xx: an https URL, or http on a loopback address.
   */
  webhook?: string;
}

export interface GuardrailRow {
  status: 'insufficient-data' | 'healthy' | 'regressed';
  /**
   * When the guardrail entered its status.
   */
  since: string;
  /**
   * Treatment mean − control mean.
   */
  delta: number | null;
  /**
   * The one-sided always-valid confidence bound of delta on the worse side's opposite: regressed when it lies wholly on the worse side of 0.
   */
  bound: number | null;
  units: {
    control: number;
    treatment: number;
  };
}

export interface CustomSqlParams {
  sql: string;
}
