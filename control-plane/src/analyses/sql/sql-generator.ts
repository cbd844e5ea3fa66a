import type { FlagEvaluationsParams } from '@flagstream/schemas';
import type { AnalysisKind, KindParams } from '../analysis-definitions';
import { bucketMsOf } from '../kind-traits';
import { durationSeconds, intParam, option, parseDuration, stringParam } from './literals';

/**
 * The SQL generator: a pure function from analysis definitions and the pipeline's settings
 * to the Flink SQL script of one job. A job is a pool (docs/pools.md): one `events` source
 * read once, one shared deduplication, and per member analysis its own views; every member
 * writes into the same three sink tables, with ONE INSERT per table (a UNION ALL over the
 * members). No I/O here: templates are passed in (see templates.ts), so every case can be
 * tested without Flink.
 */

/** The params' type comes from their JSON Schema (schemas/analyses), like everywhere else. */
export type { FlagEvaluationsParams };
export type GroupByField = NonNullable<FlagEvaluationsParams['groupBy']>[number];

export type AnalysisSpec = KindParams & {
  id: string;
  tenantKey: string;
  environment?: string;
  /** The analysis' recomputation count (docs/counting.md §5); every record the job writes carries it. */
  generation: number;
};

export type PoolMemberSpec = AnalysisSpec & {
  /** Records received (receivedAt, ms) before this are not this member's; the pool's source starts at the earliest member's readFrom. */
  readFrom: Date;
};

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
  /**
   * How often the job's source polls each shard (GetRecords). Kinesis allows 5 reads a second
   * per shard shared by every polling reader: with R readers, at least R × 200 ms. Unset: the
   * connector's default (200 ms, the whole budget for one reader).
   */
  pollIntervalMs?: number;
  /** Most records one poll of a shard returns (GetRecords Limit). Unset: the connector's default (10,000). */
  maxRecordsPerPoll?: number;
  /** FLAGSTREAM_CUSTOM_SQL_STATE_TTL (ms): the state TTL of a custom-sql pool's job. Unset: 1 h. */
  customSqlStateTtlMs?: number;
}

const DEFAULT_CUSTOM_SQL_STATE_TTL_MS = 3600_000;

/** Where the job starts reading (the caller computes it; docs/counting.md §5). */
export interface StartPosition {
  at: Date;
}

export interface Templates {
  settings: string;
  eventsSource: string;
  resultsSink: string;
  /** The pool's one dedup view (`deduplicated`). */
  deduplicate: string;
  progress: string;
  /** The data lake's table and the `events` view over stream and lake, for a pool that backfills. */
  lakeSource: string;
  /** The INSERTs of rows and late counts, one per sink table. */
  poolInserts: string;
  /** Per kind: the views of one member (`rows_N`, `late_N`), N = {{member}}; guardrail uses experiment's. */
  kinds: Record<Exclude<AnalysisKind, 'guardrail'>, string>;
}

export const DEFAULT_GROUP_BY: GroupByField[] = ['flagKey', 'variation'];

/** The dimensions in the fixed order of a row's fields (columns of the `counters_N` view), so rows are stable. */
const DIMENSION_ORDER: GroupByField[] = ['flagKey', 'variation', 'environment'];

/** Event kinds that carry a context (CONTRACT §6, unique-contexts). */
const CONTEXT_EVENTS = ['index', 'identify', 'feature', 'custom'];

/** The event kinds (`events.kind`) a member reads: the pool's dedup keeps only these. */
function eventKindsOf(spec: AnalysisSpec): string[] {
  switch (spec.kind) {
    case 'flag-evaluations':
    case 'flag-usage':
      return ['summary'];
    case 'unique-contexts':
      return perFlag(spec.params) ? ['feature'] : CONTEXT_EVENTS;
    case 'experiment':
    case 'guardrail':
      return ['feature', 'custom'];
    case 'custom-sql':
      return [...CONTEXT_EVENTS, 'summary'];
  }
}

/** Columns of `events` the deduplicated view passes on, in this order: every member filters on the first six. */
const DEDUP_COLUMNS = ['tenant', 'environment', 'kind', 'eventTime', 'receivedAt', 'late', 'features', '`key`', 'variation', 'version', '`value`', 'contextKey', 'contextKeys', 'metricValue'];
const BASE_COLUMNS = DEDUP_COLUMNS.slice(0, 6);

/** The further columns a member's template reads from `deduplicated`. */
function columnsOf(spec: AnalysisSpec): string[] {
  switch (spec.kind) {
    case 'flag-evaluations':
    case 'flag-usage':
      return ['features'];
    case 'unique-contexts':
      return ['`key`', 'variation', 'contextKeys'];
    case 'experiment':
    case 'guardrail':
      return ['`key`', 'variation', 'contextKeys', 'metricValue'];
    case 'custom-sql': {
      const named = customQueryColumns(spec.params.sql);
      return CUSTOM_VIEW_COLUMNS.filter((c) => named === 'all' || named.has(c.name)).map((c) => c.from);
    }
  }
}

/**
 * The custom-sql `events` view's columns past the base ones (custom-sql.sql): the view column,
 * its expression over `deduplicated`, the dedup column it reads and its type (for a NULL when the
 * query cannot name it).
 */
const CUSTOM_VIEW_COLUMNS = [
  { name: 'flagKey', expression: "CASE WHEN kind = 'feature' THEN `key` END", from: '`key`', type: 'STRING' },
  { name: 'variation', expression: 'variation', from: 'variation', type: 'BIGINT' },
  { name: 'flagVersion', expression: 'version', from: 'version', type: 'BIGINT' },
  { name: 'value', expression: '`value`', from: '`value`', type: 'STRING' },
  { name: 'eventKey', expression: "CASE WHEN kind = 'custom' THEN `key` END", from: '`key`', type: 'STRING' },
  { name: 'metricValue', expression: 'metricValue', from: 'metricValue', type: 'DOUBLE' },
  { name: 'contextKey', expression: 'contextKey', from: 'contextKey', type: 'STRING' },
  { name: 'contextKeys', expression: 'contextKeys', from: 'contextKeys', type: 'MAP<STRING, STRING>' },
  {
    name: 'features', expression: 'features', from: 'features',
    type: 'MAP<STRING, ROW<counters ARRAY<ROW<variation BIGINT, version BIGINT, `count` BIGINT, `unknown` BOOLEAN>>>>',
  },
];

/**
 * The optional `events` columns a custom query can read, or 'all'. Conservative, for the dedup's
 * width only (the runner's sandbox parses the query for what it allows): a column is read only
 * where its name appears as a word (any case, outside string literals and comments), and every
 * column where the query says `*` (other than COUNT(*)) or NATURAL (a join on all common columns).
 * A column wrongly left out fails the query's planning loudly (validated before deploy), never
 * silently.
 */
export function customQueryColumns(sql: string): Set<string> | 'all' {
  const code = sql
    .replace(/'(?:[^']|'')*'/g, "''") // string literals ('' escapes a quote)
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ');
  if (/\*/.test(code.replace(/\bcount\s*\(\s*\*\s*\)/gi, 'count(1)')) || /\bnatural\b/i.test(code)) return 'all';
  const words = new Set((code.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []).map((w) => w.toLowerCase()));
  return new Set(CUSTOM_VIEW_COLUMNS.map((c) => c.name).filter((name) => words.has(name.toLowerCase())));
}

/** unique-contexts counts only feature events when its rows are per flag or variation, or flags are chosen. */
function perFlag(params: { groupBy?: string[]; flagKeys?: string[] }): boolean {
  return Boolean(params.flagKeys?.length || params.groupBy?.some((d) => d === 'flagKey' || d === 'variation'));
}

/** State that must outlive any gap in a member's traffic (experiments since they began): ~100 years. */
const CUMULATIVE_TTL_MS = 36500 * 86400_000;

/** Columns of every member's `rows_N` and `late_N` views, in the sink tables' order. */
const ROW_COLUMNS = 'analysisId, generation, `type`, windowStart, windowEnd, fields, version';
const LATE_COLUMNS = 'analysisId, generation, `type`, bucketStart, lateEvents';

/** The script of one analysis: a pool of one, reading from `start`. */
export function generateSql(spec: AnalysisSpec, streams: StreamSettings, start: StartPosition, templates: Templates): string {
  return generatePoolSql([{ ...spec, readFrom: start.at }], streams, templates);
}

/**
 * Which job's progress this is: the pool job also reports its own progress under the id
 * `pool:<pool>` with its pool generation, so the control plane can tell when a new job has
 * caught up with the one it replaces (docs/pools.md).
 */
export interface ProgressProbe {
  pool: string;
  generation: number;
}

/**
 * What a pool reads from the data lake when a member replays from before what the stream
 * holds (templates/lake-source.sql): the lake's root, the replaying members' tenants, the
 * first hour to read, where the stream begins (the lake's records received before it are
 * read; the stream has the rest) and how many such records the lake holds (progress waits
 * until all were read).
 */
export interface LakeBackfill {
  /** The lake's root as Flink reads it, e.g. file:///…/lake or s3://bucket/prefix (operator configuration). */
  uri: string;
  tenantKeys: string[];
  from: Date;
  /** Exclusive: where the stream begins. */
  until: Date;
  records: number;
}

/** The script of a pool job: members in the order given (callers sort them by id); throws on no members or a duplicate id. */
export function generatePoolSql(
  members: PoolMemberSpec[],
  streams: StreamSettings,
  templates: Templates,
  probe?: ProgressProbe,
  lake?: LakeBackfill,
): string {
  if (!members.length) throw new Error('a pool needs at least one member');
  const ids = new Set<string>();
  for (const member of members) {
    if (ids.has(member.id)) throw new Error(`duplicate pool member ${JSON.stringify(member.id)}`);
    if (!KNOWN_KINDS.has(member.kind)) throw new Error(`unknown kind ${JSON.stringify(member.kind)}`);
    ids.add(member.id);
  }
  const horizonMs = nonNegative(streams.latenessHorizonSeconds, 'latenessHorizonSeconds') * 1000;
  const retentionMs = nonNegative(streams.retentionHours, 'retentionHours') * 3600 * 1000;
  const readFrom = members.map((m) => readFromMs(m));

  // custom-sql members run in pools of their own, with limits on every operator (the user's query has no hints).
  const custom = members.filter((m) => m.kind === 'custom-sql').length;
  if (custom && custom !== members.length) throw new Error('custom-sql analyses share pools only with each other');
  const settings = fill(templates.settings, {
    // the dedup, progress and late counts; the rows have their own (STATE_TTL hint)
    stateTtl: durationOption(custom ? nonNegative(streams.customSqlStateTtlMs ?? DEFAULT_CUSTOM_SQL_STATE_TTL_MS, 'customSqlStateTtlMs') : horizonMs + retentionMs),
    limits: custom ? "SET 'parallelism.default' = '1';" : '',
  });
  const source = fill(templates.eventsSource, {
    table: lake ? 'events_stream' : 'events',
    sourceOptions: [...kinesisOptions(streams, streams.eventsStream, SOURCE_CONNECTOR), ...sourceStart(Math.min(...readFrom), streams)].join(',\n'),
  });
  const sink = fill(templates.resultsSink, {
    sinkOptions: [...kinesisOptions(streams, streams.resultsStream, 'kinesis'), ...sinkSettings()].join(',\n'),
  });
  const needed = new Set([...BASE_COLUMNS, ...members.flatMap(columnsOf)]);
  const dedup = fill(templates.deduplicate, {
    columns: DEDUP_COLUMNS.filter((c) => needed.has(c)).join(', '),
    kinds: distinct(members.flatMap(eventKindsOf)).map(constantString).join(', '),
    tenants: distinct(members.map((m) => m.tenantKey)).map(stringParam).join(', '),
  });
  const progress = fill(templates.progress, {
    members: [...members.map((m) => ({ id: m.id, generation: m.generation })), ...(probe ? [{ id: `pool:${probe.pool}`, generation: probe.generation }] : [])]
      .map((m) => `ROW(${stringParam(m.id)}, ${bigintParam(nonNegative(m.generation, 'generation'))})`)
      .join(', '),
    lakeGate: lake ? `\n    AND EXISTS (SELECT 1 FROM lake_read WHERE records >= ${bigintParam(nonNegative(lake.records, 'lake records'))})` : '',
  });
  // The kind template's comments once, at the first member of the kind: a pool's script stays short.
  const commented = new Set<string>();
  const views = members.map((member, index) => {
    const text = memberViews(member, index, readFrom[index], horizonMs, retentionMs, templates);
    if (commented.has(member.kind)) return withoutCommentLines(text);
    commented.add(member.kind);
    return text;
  });
  const inserts = fill(templates.poolInserts, {
    rows: members.map((_, i) => `SELECT ${ROW_COLUMNS} FROM rows_${i}`).join('\nUNION ALL\n'),
    late: members.map((_, i) => `SELECT ${LATE_COLUMNS} FROM late_${i}`).join('\nUNION ALL\n'),
  });
  const lakeSource = lake ? [lakeSql(lake, templates)] : [];
  return [settings, source, ...lakeSource, sink, progress, dedup, ...views, inserts].map((part) => part.trim()).join('\n\n') + '\n';
}

function lakeSql(lake: LakeBackfill, templates: Templates): string {
  if (!lake.tenantKeys.length) throw new Error('a lake backfill needs at least one tenant');
  if (/[\u0000-\u001f\u007f]/.test(lake.uri) || !/^[a-z][a-z0-9+.-]*:\/\//.test(lake.uri)) throw new Error(`not a lake URI: ${JSON.stringify(lake.uri)}`);
  const from = lake.from.toISOString();
  return fill(templates.lakeSource, {
    // A WITH option must be a plain literal: the operator's setting, escaped, never request text.
    path: `'${lake.uri.replace(/'/g, "''")}'`,
    tenants: distinct(lake.tenantKeys).map(stringParam).join(', '),
    fromDate: stringParam(from.slice(0, 10)),
    fromHour: stringParam(from.slice(11, 13)),
    until: bigintParam(nonNegative(lake.until.getTime(), 'lake until')),
  });
}

/** The views of member `index` (its kind's template): `rows_N` and `late_N`, and the kind's own in between. */
function memberViews(spec: PoolMemberSpec, index: number, readFromMs: number, horizonMs: number, retentionMs: number, templates: Templates): string {
  const common = {
    member: String(index),
    tenant: stringParam(spec.tenantKey),
    eventFilters: spec.environment !== undefined ? `\n  AND environment = ${stringParam(spec.environment)}` : '',
    readFrom: bigintParam(readFromMs),
    analysisId: stringParam(spec.id),
    generation: bigintParam(nonNegative(spec.generation, 'generation')),
  };
  switch (spec.kind) {
    case 'flag-evaluations': {
      const windowMs = windowMsOf(spec.params.window);
      const dimensions = DIMENSION_ORDER.filter((d) => (spec.params.groupBy ?? DEFAULT_GROUP_BY).includes(d));
      // Exactly the grouped dimensions, in the fixed order, then the measure. (Flink 1.20's JSON_OBJECT writes the keys
      // sorted by name whatever this order; the text is deterministic either way.)
      const fields = [...dimensions.map((d) => `KEY '${d}' VALUE ${d}`), "KEY 'evaluations' VALUE SUM(evaluations)"];
      return fill(templates.kinds['flag-evaluations'], {
        ...common,
        counterFilters: spec.params.flagKeys?.length ? `\n  AND f.flagKey IN (${spec.params.flagKeys.map(stringParam).join(', ')})` : '',
        windowMs: bigintParam(windowMs),
        rowStateTtl: durationOption(windowMs + horizonMs + retentionMs),
        fields: fields.join(', '),
        groupDimensions: dimensions.map((d) => `, ${d}`).join(''),
      });
    }
    case 'unique-contexts': {
      const windowMs = windowMsOf(spec.params.window);
      const dimensions = DIMENSION_ORDER.filter((d) => (spec.params.groupBy ?? []).includes(d));
      const contextKind = stringParam(spec.params.contextKind ?? 'user');
      const fields = [`KEY 'contextKind' VALUE ${contextKind}`, ...dimensions.map((d) => `KEY '${d}' VALUE ${d}`), "KEY 'contexts' VALUE COUNT(DISTINCT contextKey)"];
      return fill(templates.kinds['unique-contexts'], {
        ...common,
        eventKinds: eventKindsOf(spec).map(constantString).join(', '),
        contextKind,
        flagFilters: spec.params.flagKeys?.length ? `\n  AND e.\`key\` IN (${spec.params.flagKeys.map(stringParam).join(', ')})` : '',
        windowMs: bigintParam(windowMs),
        rowStateTtl: durationOption(windowMs + horizonMs + retentionMs),
        fields: fields.join(', '),
        groupDimensions: dimensions.map((d) => `, ${d}`).join(''),
      });
    }
    case 'flag-usage': {
      const bucketMs = bucketMsOf(spec.params);
      return fill(templates.kinds['flag-usage'], {
        ...common,
        bucketMs: bigintParam(bucketMs),
        rowStateTtl: durationOption(bucketMs + horizonMs + retentionMs),
      });
    }
    case 'experiment':
    case 'guardrail': {
      const { flagKey, metric } = spec.params;
      return fill(templates.kinds.experiment, {
        ...common,
        unitKind: stringParam(spec.params.randomizationKind ?? 'user'),
        flagKey: stringParam(flagKey),
        eventKey: stringParam(metric.eventKey),
        unitValue: metric.type === 'conversion' ? 'CAST(CASE WHEN COUNT(converted) > 0 THEN 1 ELSE 0 END AS BIGINT)' : 'COALESCE(SUM(metricValue), CAST(0 AS DOUBLE))',
        cumulativeTtl: durationOption(CUMULATIVE_TTL_MS),
      });
    }
    case 'custom-sql': {
      const named = customQueryColumns(spec.params.sql);
      return fill(templates.kinds['custom-sql'], {
        ...common,
        optionalColumns: CUSTOM_VIEW_COLUMNS.map((c) => `  ${named === 'all' || named.has(c.name) ? c.expression : `CAST(NULL AS ${c.type})`} AS ${c.name === 'value' ? '`value`' : c.name},`).join('\n'),
        analysisUuid: uuid(spec.id),
        generationNumber: intParam(nonNegative(spec.generation, 'generation')),
        // The runner decodes, parses and checks the query with Flink's parser (its sandbox): it never appears as text here.
        query: Buffer.from(spec.params.sql, 'utf8').toString('base64'),
      });
    }
  }
}

const KNOWN_KINDS = new Set<string>(['flag-evaluations', 'unique-contexts', 'flag-usage', 'experiment', 'guardrail', 'custom-sql']);

function windowMsOf(text: string): number {
  const window = parseDuration(text);
  if (!window) throw new Error(`invalid window ${JSON.stringify(text)}`);
  return durationSeconds(window) * 1000;
}

/** The runner's directive takes the id bare: only a UUID's alphabet gets there. */
function uuid(id: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) throw new Error(`not a UUID: ${JSON.stringify(id)}`);
  return id;
}

function readFromMs(member: PoolMemberSpec): number {
  const ms = member.readFrom instanceof Date ? member.readFrom.getTime() : NaN;
  if (!Number.isSafeInteger(ms) || ms < 0) throw new Error(`readFrom of ${JSON.stringify(member.id)} is not a valid time`);
  return ms;
}

/** Drops whole `--` comment lines (user values are base64 literals: no line of theirs starts with `--`) and the blank lines they leave. */
function withoutCommentLines(sql: string): string {
  return sql.replace(/^--.*\n/gm, '').replace(/\n{3,}/g, '\n\n');
}

function distinct<T>(values: T[]): T[] {
  return [...new Set(values)];
}

/** A string literal of ours (an event kind), never user text: checked, then quoted. */
function constantString(value: string): string {
  if (!/^[a-z-]+$/.test(value)) throw new Error(`not a constant: ${JSON.stringify(value)}`);
  return `'${value}'`;
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

function sourceStart(fromMs: number, streams: StreamSettings): string[] {
  const { pollIntervalMs, maxRecordsPerPoll } = streams;
  return [
    option('scan.stream.initpos', 'AT_TIMESTAMP'),
    option('scan.stream.initpos-timestamp', (fromMs / 1000).toFixed(3)),
    ...(pollIntervalMs === undefined ? [] : [option('scan.shard.getrecords.intervalmillis', String(nonNegative(pollIntervalMs, 'pollIntervalMs')))]),
    ...(maxRecordsPerPoll === undefined ? [] : [option('scan.shard.getrecords.maxrecordcount', String(nonNegative(maxRecordsPerPoll, 'maxRecordsPerPoll')))]),
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
