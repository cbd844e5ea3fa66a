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
   * The analysis in the catalog. Only flag-evaluations can be deployed so far.
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
