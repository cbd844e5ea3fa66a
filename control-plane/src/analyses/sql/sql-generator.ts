import type { FlagEvaluationsParams } from '@flagstream/schemas';
import { durationSeconds, intParam, option, parseDuration, stringParam } from './literals';

/**
 * The SQL generator: a pure function from an analysis definition and the pipeline's
 * settings to the Flink SQL script of that analysis' job. No I/O here: templates
 * are passed in (see templates.ts), so every case can be tested without Flink.
 */

/** The params' type comes from their JSON Schema (schemas/analyses), like everywhere else. */
export type { FlagEvaluationsParams };
export type GroupByField = NonNullable<FlagEvaluationsParams['groupBy']>[number];

export interface AnalysisSpec {
  id: string;
  tenantKey: string;
  environment?: string;
  kind: 'flag-evaluations';
  params: FlagEvaluationsParams;
  /** The analysis' recomputation count (docs/counting.md §5); every record the job writes carries it. */
  generation: number;
}

export interface StreamSettings {
  region: string;
  /** Set for the local emulator; absent on AWS. */
  endpoint?: string;
  eventsStream: string;
  resultsStream: string;
  /** FLAGSTREAM_LATENESS_HORIZON: an event older than this (by receive time) is `late`. */
  latenessHorizonSeconds: number;
  /** The events stream's retention: the longest a job may be down and still restore its state. */
  retentionHours: number;
}

/** Where the job starts reading (the caller computes it; docs/counting.md §5). */
export interface StartPosition {
  at: Date;
}

export interface Templates {
  settings: string;
  eventsSource: string;
  resultsSink: string;
  progress: string;
  kinds: { 'flag-evaluations': string };
}

export const DEFAULT_GROUP_BY: GroupByField[] = ['flagKey', 'variation'];

/** The result columns of each dimension (columns of the `counters` view); the order is fixed so rows are stable. */
const DIMENSIONS: Record<GroupByField, { column: string; type: string }> = {
  flagKey: { column: 'flagKey', type: 'STRING' },
  variation: { column: 'variation', type: 'BIGINT' },
  environment: { column: 'environment', type: 'STRING' },
};
const DIMENSION_ORDER: GroupByField[] = ['flagKey', 'variation', 'environment'];

export function generateSql(spec: AnalysisSpec, streams: StreamSettings, start: StartPosition, templates: Templates): string {
  const window = parseDuration(spec.params.window);
  if (!window) throw new Error(`invalid window ${JSON.stringify(spec.params.window)}`);
  const windowMs = durationSeconds(window) * 1000;
  const horizonMs = nonNegative(streams.latenessHorizonSeconds, 'latenessHorizonSeconds') * 1000;
  const retentionMs = nonNegative(streams.retentionHours, 'retentionHours') * 3600 * 1000;
  const groupBy = spec.params.groupBy ?? DEFAULT_GROUP_BY;
  const dimensions = DIMENSION_ORDER.filter((d) => groupBy.includes(d)).map((d) => DIMENSIONS[d]);

  const eventFilters = spec.environment !== undefined ? `\n    AND environment = ${stringParam(spec.environment)}` : '';
  const counterFilters = spec.params.flagKeys?.length ? `\n  AND f.flagKey IN (${spec.params.flagKeys.map(stringParam).join(', ')})` : '';
  const analysisId = stringParam(spec.id);
  const generation = bigintParam(nonNegative(spec.generation, 'generation'));

  const settings = fill(templates.settings, {
    // the dedup, progress and late counts; the rows have their own (STATE_TTL hint)
    stateTtl: durationOption(horizonMs + retentionMs),
  });
  const source = fill(templates.eventsSource, {
    sourceOptions: [...kinesisOptions(streams, streams.eventsStream, SOURCE_CONNECTOR), ...sourceStart(start)].join(',\n'),
  });
  const sink = fill(templates.resultsSink, {
    columns: [...dimensions.map((d) => `  ${d.column} ${d.type}`), '  evaluations BIGINT'].join(',\n'),
    sinkOptions: [...kinesisOptions(streams, streams.resultsStream, 'kinesis'), ...sinkSettings()].join(',\n'),
  });
  const progress = fill(templates.progress, { analysisId, generation });
  const query = fill(templates.kinds['flag-evaluations'], {
    tenant: stringParam(spec.tenantKey),
    analysisId,
    generation,
    eventFilters,
    counterFilters,
    windowMs: bigintParam(windowMs),
    rowStateTtl: durationOption(windowMs + horizonMs + retentionMs),
    selectDimensions: dimensions.map((d) => `, ${d.column}`).join(''),
    groupDimensions: dimensions.map((d) => `, ${d.column}`).join(''),
  });
  return [settings, source, sink, progress, query].map((part) => part.trim()).join('\n\n') + '\n';
}

function nonNegative(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${value}`);
  return value;
}

/** A BIGINT literal: a bare number is INT when it fits (and MOD(BIGINT, INT) is INT); the cast keeps the arithmetic BIGINT. */
function bigintParam(value: number): string {
  return `CAST(${intParam(value)} AS BIGINT)`;
}

/** A duration as Flink reads it in options and hints: whole milliseconds. */
function durationOption(ms: number): string {
  return `${intParam(ms)} ms`;
}

/**
 * The runner's own Kinesis source: the legacy connector's options (see flink-sql/README.md).
 * Analyses declare no watermark, so it reads exactly like the connector's 'kinesis' source.
 */
const SOURCE_CONNECTOR = 'flagstream-kinesis';

/** Connector options shared by the source and the sinks (see flink-sql/README.md). */
function kinesisOptions(streams: StreamSettings, stream: string, connector: string): string[] {
  const options = [option('connector', connector), option('stream', stream), option('aws.region', streams.region)];
  if (streams.endpoint) {
    options.push(
      option('aws.endpoint', streams.endpoint),
      option('aws.credentials.provider', 'BASIC'),
      option('aws.credentials.basic.accesskeyid', 'local'),
      option('aws.credentials.basic.secretkey', 'local'),
    );
  }
  return options;
}

function sourceStart(start: StartPosition): string[] {
  return [
    option('scan.stream.initpos', 'AT_TIMESTAMP'),
    option('scan.stream.initpos-timestamp', (start.at.getTime() / 1000).toFixed(3)),
    option('format', 'json'),
    option('json.ignore-parse-errors', 'true'),
    option('json.fail-on-missing-field', 'false'),
  ];
}

/** Partitioned by the tables' PARTITION BY (analysisId): the connector then keys records by that column. */
function sinkSettings(): string[] {
  return [
    // The emulator garbles some HTTP/2 answers; HTTP/1.1 works against it and AWS alike.
    option('aws.http.protocol.version', 'HTTP1_1'),
    // Records leave within a second instead of the default 5 s batch wait.
    option('sink.flush-buffer.timeout', '1000'),
    // A changelog: the sink takes the format's changelog mode, so updates are accepted.
    option('format', 'debezium-json'),
    option('debezium-json.timestamp-format.standard', 'ISO-8601'),
  ];
}

/** Replaces {{name}} placeholders; an unknown or unused placeholder is a bug, not a silent gap. */
export function fill(template: string, values: Record<string, string>): string {
  const used = new Set<string>();
  const out = template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`template placeholder {{${name}}} has no value`);
    used.add(name);
    return values[name];
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length) throw new Error(`values without a placeholder: ${unused.join(', ')}`);
  return out;
}
