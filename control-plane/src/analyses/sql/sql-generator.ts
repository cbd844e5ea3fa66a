import type { FlagEvaluationsParams } from '@flagstream/schemas';
import { durationSeconds, intervalParam, option, parseDuration, stringParam } from './literals';

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
}

export interface StreamSettings {
  region: string;
  /** Set for the local emulator; absent on AWS. */
  endpoint?: string;
  eventsStream: string;
  resultsStream: string;
  allowedLatenessSeconds: number;
}

/** Where the job starts reading: new analyses start at their creation, replays at the replay time. */
export interface StartPosition {
  at: Date;
}

export interface Templates {
  eventsSource: string;
  resultsSink: string;
  kinds: { 'flag-evaluations': string };
}

export const DEFAULT_GROUP_BY: GroupByField[] = ['flagKey', 'variation'];

/** The result columns of each dimension; the order is fixed so rows are stable. */
const DIMENSIONS: Record<GroupByField, { column: string; type: string; expression: string }> = {
  flagKey: { column: 'flagKey', type: 'STRING', expression: 'f.flagKey' },
  variation: { column: 'variation', type: 'INT', expression: 'c.variation' },
  environment: { column: 'environment', type: 'STRING', expression: 'e.environment' },
};
const DIMENSION_ORDER: GroupByField[] = ['flagKey', 'variation', 'environment'];

export function generateSql(spec: AnalysisSpec, streams: StreamSettings, start: StartPosition, templates: Templates): string {
  const window = parseDuration(spec.params.window);
  if (!window) throw new Error(`invalid window ${JSON.stringify(spec.params.window)}`);
  const groupBy = spec.params.groupBy ?? DEFAULT_GROUP_BY;
  const dimensions = DIMENSION_ORDER.filter((d) => groupBy.includes(d)).map((d) => DIMENSIONS[d]);

  const eventFilters = spec.environment !== undefined ? `\n    AND environment = ${stringParam(spec.environment)}` : '';
  const counterFilters = spec.params.flagKeys?.length ? `\nWHERE f.flagKey IN (${spec.params.flagKeys.map(stringParam).join(', ')})` : '';

  const source = fill(templates.eventsSource, {
    allowedLateness: intervalParam(streams.allowedLatenessSeconds || 0),
    sourceOptions: [...kinesisOptions(streams, streams.eventsStream, SOURCE_CONNECTOR), ...sourceStart(start)].join(',\n'),
  });
  const sink = fill(templates.resultsSink, {
    columns: [...dimensions.map((d) => `  ${d.column} ${d.type}`), '  evaluations BIGINT'].join(',\n'),
    sinkOptions: [...kinesisOptions(streams, streams.resultsStream, 'kinesis'), ...sinkPartitioning()].join(',\n'),
  });
  const query = fill(templates.kinds['flag-evaluations'], {
    tenant: stringParam(spec.tenantKey),
    analysisId: stringParam(spec.id),
    eventFilters,
    counterFilters,
    window: intervalParam(durationSeconds(window)),
    selectDimensions: dimensions.map((d) => `, ${d.expression}`).join(''),
    groupDimensions: dimensions.map((d) => `, ${d.expression}`).join(''),
  });
  return [source.trim(), sink.trim(), query.trim()].join('\n\n') + '\n';
}

/**
 * The runner's own Kinesis source: the legacy connector's options, with the watermark
 * taken per shard, so a backlog (replay, restore) read faster on one shard than on
 * another drops no event as late (see flink-sql/README.md, "Per-shard watermarks").
 */
const SOURCE_CONNECTOR = 'flagstream-kinesis';

/** Connector options shared by the source and the sink (see flink-sql/README.md). */
function kinesisOptions(streams: StreamSettings, stream: string, connector: string): string[] {
  const options = [option('connector', connector), option('stream', stream), option('aws.region', streams.region), option('format', 'json')];
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
    option('json.ignore-parse-errors', 'true'),
    option('json.fail-on-missing-field', 'false'),
  ];
}

function sinkPartitioning(): string[] {
  return [
    option('sink.partitioner', 'random'),
    // The emulator garbles some HTTP/2 answers; HTTP/1.1 works against it and AWS alike.
    option('aws.http.protocol.version', 'HTTP1_1'),
    // Rows leave within a second instead of the default 5 s batch wait.
    option('sink.flush-buffer.timeout', '1000'),
    option('json.timestamp-format.standard', 'ISO-8601'),
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
