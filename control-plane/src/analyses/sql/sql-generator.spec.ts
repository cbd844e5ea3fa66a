import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSql, fill, AnalysisSpec, StreamSettings } from './sql-generator';
import { intervalParam, parseDuration, stringParam, option } from './literals';
import { loadTemplates, TEMPLATES_DIR } from './templates';

const streams: StreamSettings = {
  region: 'us-east-1', endpoint: 'http://127.0.0.1:4568', eventsStream: 'flagstream-events', resultsStream: 'flagstream-results',
  latenessHorizonSeconds: 3600, retentionHours: 24,
};
const templates = loadTemplates();
const at = { at: new Date('2026-11-25T16:00:00.000Z') };
const base64Literals = (sql: string) => [...sql.matchAll(/FROM_BASE64\('([^']*)'\)/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8'));
const spec = (params: AnalysisSpec['params'], more: Partial<AnalysisSpec> = {}): AnalysisSpec =>
  ({ id: 'a', tenantKey: 't', kind: 'flag-evaluations', generation: 1, params, ...more });
/** The statement starting with `head`, up to its `;`. */
const statement = (sql: string, head: string) => {
  const from = sql.indexOf(head);
  if (from < 0) throw new Error(`no statement ${head}`);
  return sql.slice(from, sql.indexOf(';', from) + 1);
};

/**
 * The script the Java side runs in its tests (flink-sql/runner: SqlRunnerPlannerTest plans it with
 * the real connectors, FlagEvaluationsPipelineTest runs it on a MiniCluster). Regenerate it after a
 * template change with FLAGSTREAM_UPDATE_SQL_FIXTURES=1 npx jest control-plane/src/analyses/sql.
 */
const FIXTURE = join(TEMPLATES_DIR, '..', 'runner', 'src', 'test', 'resources', 'generated', 'flag-evaluations.sql');
const FIXTURE_SPEC: AnalysisSpec = {
  id: 'an-fixture', tenantKey: 'acme', environment: 'production', kind: 'flag-evaluations', generation: 7,
  params: { window: '10s', flagKeys: ['new-checkout', 'dark-mode'] },
};

describe('SQL generator', () => {
  it('binds every user value as a base64 literal that decodes to it exactly', () => {
    const keys = ["it's", 'a\\b', 'line\nbreak', '🚩 ünï', '{{tenant}}', "'); DROP TABLE x; --"];
    const sql = generateSql(
      { id: 'a1', tenantKey: 'acme', environment: "prod'uction", kind: 'flag-evaluations', generation: 2, params: { window: '10s', flagKeys: keys } },
      streams, at, templates,
    );
    expect(base64Literals(sql)).toEqual(expect.arrayContaining(['acme', 'a1', "prod'uction", ...keys]));
    for (const key of keys) expect(sql).not.toContain(key);
    expect(sql).not.toContain('{{');
  });

  it('refuses a generation, horizon or retention that is not a non-negative integer', () => {
    expect(() => generateSql(spec({ window: '1m' }, { generation: 1.5 }), streams, at, templates)).toThrow('generation');
    expect(() => generateSql(spec({ window: '1m' }, { generation: -1 }), streams, at, templates)).toThrow('generation');
    expect(() => generateSql(spec({ window: '1m' }), { ...streams, latenessHorizonSeconds: NaN }, at, templates)).toThrow('latenessHorizonSeconds');
    expect(() => generateSql(spec({ window: '1m' }), { ...streams, retentionHours: 0.5 }, at, templates)).toThrow('retentionHours');
  });

  it('groups by the window start and the chosen dimensions in a fixed order, by flag and variation by default', () => {
    const sql = (groupBy?: ('flagKey' | 'variation' | 'environment')[]) => generateSql(spec({ window: '1m', groupBy }), streams, at, templates);
    expect(sql(undefined)).toContain('GROUP BY windowStart, flagKey, variation;');
    expect(sql(['environment', 'flagKey'])).toContain('GROUP BY windowStart, flagKey, environment;');
    expect(sql([])).toContain('GROUP BY windowStart;');
    expect(statement(sql(['variation']), 'CREATE TEMPORARY TABLE result_rows')).toMatch(/windowEnd TIMESTAMP_LTZ\(3\),\n\s+variation BIGINT,\n\s+evaluations BIGINT,\n\s+version BIGINT\n/);
  });

  it('has no watermark: windows come from eventTime in an updating aggregate, late summaries count apart', () => {
    const sql = generateSql(spec({ window: '2h' }), streams, at, templates);
    expect(withoutComments(sql)).not.toMatch(/WATERMARK|TUMBLE|HOP\(|CUMULATE|DESCRIPTOR/);
    expect(sql).toContain('proc_time AS PROCTIME()');
    expect(sql).toContain('e.eventTime - MOD(e.eventTime, CAST(7200000 AS BIGINT)) AS windowStart');
    const rows = statement(sql, 'INSERT INTO result_rows');
    expect(rows).toContain('TO_TIMESTAMP_LTZ(windowStart, 3), TO_TIMESTAMP_LTZ(windowStart + CAST(7200000 AS BIGINT), 3)');
    expect(rows).toContain('SUM(evaluations), COUNT(*)');
    expect(statement(sql, 'CREATE TEMPORARY VIEW counters')).toContain('WHERE e.late IS NOT TRUE');
    const late = statement(sql, 'INSERT INTO result_late');
    expect(late).toContain('WHERE late IS TRUE');
    expect(late).toContain('receivedAt - MOD(receivedAt, 60000)');
  });

  it('deduplicates the tenant\'s summaries by (payloadId, eventIndex), first by processing time, for rows and late counts alike', () => {
    const sql = generateSql(spec({ window: '1m' }, { tenantKey: 'acme', environment: 'prod' }), streams, at, templates);
    const summaries = statement(sql, 'CREATE TEMPORARY VIEW summaries');
    expect(summaries).toContain('ROW_NUMBER() OVER (PARTITION BY payloadId, eventIndex ORDER BY proc_time) AS occurrence');
    expect(summaries).toContain('WHERE occurrence = 1');
    expect(summaries).toContain(`AND tenant = ${stringParam('acme')}\n    AND environment = ${stringParam('prod')}`);
    expect(statement(sql, 'CREATE TEMPORARY VIEW counters')).toContain('FROM summaries AS e');
    expect(statement(sql, 'INSERT INTO result_late')).toContain('FROM summaries WHERE');
    // one dedup for both: the view is planned once
    expect(sql).toContain("SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';");
    expect(generateSql(spec({ window: '1m' }), streams, at, templates)).not.toContain('AND environment =');
  });

  it('filters flags after unnesting the counters', () => {
    const sql = generateSql(spec({ window: '1m', flagKeys: ['x', 'y'] }), streams, at, templates);
    expect(statement(sql, 'CREATE TEMPORARY VIEW counters')).toContain(`AND f.flagKey IN (${stringParam('x')}, ${stringParam('y')})`);
    expect(generateSql(spec({ window: '1m', flagKeys: [] }), streams, at, templates)).not.toContain('f.flagKey IN');
  });

  it('bounds state by time-to-live (dedup: horizon + retention; rows: window + horizon + retention) and emits in 1 s mini-batches', () => {
    const sql = generateSql(spec({ window: '1h' }), { ...streams, latenessHorizonSeconds: 7200, retentionHours: 48 }, at, templates);
    expect(sql).toContain(`SET 'table.exec.state.ttl' = '${(7200 + 48 * 3600) * 1000} ms';`);
    expect(statement(sql, 'INSERT INTO result_rows')).toContain(`SELECT /*+ STATE_TTL('counters' = '${(3600 + 7200 + 48 * 3600) * 1000} ms') */`);
    expect(sql).toContain("SET 'table.exec.mini-batch.enabled' = 'true';");
    expect(sql).toContain("SET 'table.exec.mini-batch.allow-latency' = '1 s';");
    expect(sql).toContain("SET 'table.exec.mini-batch.size' = '1000';");
  });

  it('writes rows, progress and late counts with their generation, as Debezium JSON partitioned by analysisId', () => {
    const sql = generateSql(spec({ window: '1m' }, { id: 'an-9', generation: 12 }), streams, at, templates);
    const tables = { result_rows: 'row', result_progress: 'progress', result_late: 'late' };
    for (const [table, type] of Object.entries(tables)) {
      const ddl = statement(sql, `CREATE TEMPORARY TABLE ${table} (`);
      expect(ddl).toMatch(/^CREATE TEMPORARY TABLE \w+ \(\n  analysisId STRING,\n  generation BIGINT,\n  `type` STRING,\n/);
      expect(ddl).toContain(') PARTITIONED BY (analysisId) WITH (');
      expect(ddl).toContain("'connector' = 'kinesis'");
      expect(ddl).toContain("'stream' = 'flagstream-results'");
      expect(ddl).toContain("'format' = 'debezium-json'");
      expect(ddl).toContain("'debezium-json.timestamp-format.standard' = 'ISO-8601'");
      expect(ddl).toContain("'aws.http.protocol.version' = 'HTTP1_1'");
      expect(ddl).toContain("'sink.flush-buffer.timeout' = '1000'");
      expect(ddl).not.toContain('sink.partitioner');
      expect(statement(sql, `INSERT INTO ${table}`)).toMatch(new RegExp(`SELECT (/\\*\\+ .* \\*/\\s+)?${escape(stringParam('an-9'))}, CAST\\(12 AS BIGINT\\), '${type}',`));
    }
    expect(statement(sql, 'CREATE TEMPORARY TABLE result_progress (')).toContain('shard STRING,\n  progressAt TIMESTAMP_LTZ(3)\n)');
    expect(statement(sql, 'CREATE TEMPORARY TABLE result_late (')).toContain('bucketStart TIMESTAMP_LTZ(3),\n  lateEvents BIGINT\n)');
    const progress = statement(sql, 'INSERT INTO result_progress');
    expect(progress).toContain("WHERE kind = 'heartbeat' AND tenant = '' AND shard IS NOT NULL");
    expect(progress).toContain('TO_TIMESTAMP_LTZ(MAX(eventTime), 3)');
    expect(progress).toContain('GROUP BY shard;');
  });

  it('reads every integer as BIGINT, so a version or variation beyond INT cannot drop a summary', () => {
    const sql = generateSql(spec({ window: '1m' }), streams, at, templates);
    const events = statement(sql, 'CREATE TEMPORARY TABLE events');
    expect(events).toContain('features MAP<STRING, ROW<counters ARRAY<ROW<variation BIGINT, version BIGINT, `count` BIGINT, `unknown` BOOLEAN>>>>');
    for (const column of ['eventIndex BIGINT', 'eventTime BIGINT', 'receivedAt BIGINT', 'late BOOLEAN', 'shard STRING', 'variation BIGINT']) expect(events).toContain(`  ${column},`);
    expect(withoutComments(sql)).not.toMatch(/\b(INT|INTEGER|SMALLINT|TINYINT)\b/);
  });

  it('reads with the flagstream-kinesis source from the given time, and writes with the stock Kinesis sink', () => {
    const sql = generateSql(spec({ window: '1m' }), streams, at, templates);
    const source = statement(sql, 'CREATE TEMPORARY TABLE events');
    expect(source).toContain("'connector' = 'flagstream-kinesis'");
    expect(source).toContain("'scan.stream.initpos' = 'AT_TIMESTAMP'");
    expect(source).toContain("'scan.stream.initpos-timestamp' = '1795622400.000'");
    expect(source).toContain("'format' = 'json'");
    expect(source).toContain("'json.ignore-parse-errors' = 'true'");
    expect(sql.match(/'connector' = 'kinesis'/g)).toHaveLength(3);
  });

  it('leaves out the local endpoint and credentials on AWS', () => {
    const sql = generateSql(spec({ window: '1m' }), { ...streams, endpoint: undefined }, at, templates);
    expect(sql).not.toContain('aws.endpoint');
    expect(sql).not.toContain('aws.credentials');
  });

  it('generates exactly the script the Flink tests run (flink-sql/runner/src/test/resources/generated)', () => {
    const sql = generateSql(FIXTURE_SPEC, streams, at, templates);
    if (process.env.FLAGSTREAM_UPDATE_SQL_FIXTURES === '1') writeFileSync(FIXTURE, sql);
    expect(existsSync(FIXTURE)).toBe(true);
    expect(sql).toBe(readFileSync(FIXTURE, 'utf8'));
  });

  it('rejects a template placeholder without a value, and a value without a placeholder', () => {
    expect(() => fill('SELECT {{a}}', {})).toThrow('{{a}}');
    expect(() => fill('SELECT 1', { a: 'x' })).toThrow('a');
  });
});

function withoutComments(sql: string): string {
  return sql.replace(/--.*$/gm, '');
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('SQL literals', () => {
  it('parses durations and refuses zero, words and fractions', () => {
    expect(parseDuration('10s')).toEqual({ amount: 10, unit: 's' });
    expect(parseDuration('7d')).toEqual({ amount: 7, unit: 'd' });
    for (const bad of ['0s', 'ten', '1.5m', '10', '-1s', '10S', ' 10s']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('encodes strings with an alphabet that cannot leave the literal', () => {
    expect(stringParam("'")).toBe("FROM_BASE64('Jw==')");
    expect(stringParam('x'.repeat(100))).toMatch(/^FROM_BASE64\('[A-Za-z0-9+/=]+'\)$/);
  });

  it('widens interval precision for long windows', () => {
    expect(intervalParam(604800)).toBe("INTERVAL '604800' SECOND(6)");
  });

  it('escapes connector options and refuses control characters', () => {
    expect(option('stream', "a'b")).toBe("  'stream' = 'a''b'");
    expect(() => option('stream', 'a\nb')).toThrow('control character');
  });
});
