import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { customQueryColumns, generateSql, generatePoolSql, fill, AnalysisSpec, FlagEvaluationsParams, LakeBackfill, PoolMemberSpec, StreamSettings } from './sql-generator';
import { intervalParam, parseDuration, stringParam, option } from './literals';
import { loadTemplates, TEMPLATES_DIR } from './templates';

const streams: StreamSettings = {
  region: 'us-east-1', endpoint: 'http://127.0.0.1:4568', eventsStream: 'flagstream-events', resultsStream: 'flagstream-results',
  latenessHorizonSeconds: 3600, retentionHours: 24, pollIntervalMs: 3200,
};
const templates = loadTemplates();
const at = { at: new Date('2026-11-25T16:00:00.000Z') };
const base64Literals = (sql: string) => [...sql.matchAll(/FROM_BASE64\('([^']*)'\)/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8'));
type Common = { id?: string; tenantKey?: string; environment?: string; generation?: number };
const spec = (params: FlagEvaluationsParams, more: Common = {}): AnalysisSpec =>
  ({ id: 'a', tenantKey: 't', kind: 'flag-evaluations', generation: 1, params, ...more });
const member = (id: string, readFrom: string, params: FlagEvaluationsParams, more: Common = {}): PoolMemberSpec =>
  ({ ...spec(params, { id, ...more }), readFrom: new Date(readFrom) });
/** The statement starting with `head`, up to its `;`. */
const statement = (sql: string, head: string) => {
  const from = sql.indexOf(head);
  if (from < 0) throw new Error(`no statement ${head}`);
  return sql.slice(from, sql.indexOf(';', from) + 1);
};
const count = (text: string, needle: string) => text.split(needle).length - 1;

/**
 * The scripts the Java side runs in its tests (flink-sql/runner: SqlRunnerPlannerTest plans them with
 * the real connectors, FlagEvaluationsPipelineTest and PoolPipelineTest run them on a MiniCluster).
 * Regenerate them after a template change with FLAGSTREAM_UPDATE_SQL_FIXTURES=1 npx jest control-plane/src/analyses/sql.
 */
const FIXTURES = join(TEMPLATES_DIR, '..', 'runner', 'src', 'test', 'resources', 'generated');
const FIXTURE_SPEC: AnalysisSpec = {
  id: 'an-fixture', tenantKey: 'acme', environment: 'production', kind: 'flag-evaluations', generation: 7,
  params: { window: '10s', flagKeys: ['new-checkout', 'dark-mode'] },
};
/** Two tenants, different readFrom, groupBy and flagKeys (PoolPipelineTest's expectations follow from these). */
const POOL_FIXTURE: PoolMemberSpec[] = [
  { id: 'an-pool-a', tenantKey: 'acme', environment: 'production', kind: 'flag-evaluations', generation: 3,
    params: { window: '10s', flagKeys: ['new-checkout'] }, readFrom: new Date('2026-11-25T15:00:00.000Z') },
  { id: 'an-pool-b', tenantKey: 'globex', kind: 'flag-evaluations', generation: 11,
    params: { window: '1m', groupBy: ['environment', 'variation'] }, readFrom: new Date('2026-11-25T15:59:00.000Z') },
];

/** acme's member replays from before the stream: the pool also reads acme's lake files from 15:00 on. */
const LAKE_FIXTURE: LakeBackfill = {
  uri: 'file:///flagstream-lake-fixture/', tenantKeys: ['acme'], from: new Date('2026-11-25T15:00:00.000Z'),
  until: new Date('2026-11-25T16:00:30.000Z'), records: 5,
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
  });

  it('writes a row\'s dimensions and measure as one JSON object, dimensions in the fixed order, nulls kept', () => {
    const fields = (groupBy?: ('flagKey' | 'variation' | 'environment')[]) =>
      statement(generateSql(spec({ window: '1m', groupBy }), streams, at, templates), 'CREATE TEMPORARY VIEW rows_0').match(/JSON_OBJECT\(.*\) AS fields/)?.[0];
    expect(fields(undefined)).toBe("JSON_OBJECT(KEY 'flagKey' VALUE flagKey, KEY 'variation' VALUE variation, KEY 'evaluations' VALUE SUM(evaluations) NULL ON NULL) AS fields");
    expect(fields(['environment', 'variation', 'flagKey'])).toBe(
      "JSON_OBJECT(KEY 'flagKey' VALUE flagKey, KEY 'variation' VALUE variation, KEY 'environment' VALUE environment, KEY 'evaluations' VALUE SUM(evaluations) NULL ON NULL) AS fields",
    );
    expect(fields([])).toBe("JSON_OBJECT(KEY 'evaluations' VALUE SUM(evaluations) NULL ON NULL) AS fields");
    // one shape for every kind, grouping and member
    const sql = generateSql(spec({ window: '1m', groupBy: ['environment'] }), streams, at, templates);
    expect(statement(sql, 'CREATE TEMPORARY TABLE result_rows')).toContain(
      '  windowStart TIMESTAMP_LTZ(3),\n  windowEnd TIMESTAMP_LTZ(3),\n  fields STRING,\n  version BIGINT\n)',
    );
  });

  it('has no watermark: windows come from eventTime in an updating aggregate, late summaries count apart', () => {
    const sql = generateSql(spec({ window: '2h' }), streams, at, templates);
    expect(withoutComments(sql)).not.toMatch(/WATERMARK|TUMBLE|HOP\(|CUMULATE|DESCRIPTOR/);
    expect(sql).toContain('proc_time AS PROCTIME()');
    expect(sql).toContain('e.eventTime - MOD(e.eventTime, CAST(7200000 AS BIGINT)) AS windowStart');
    const rows = statement(sql, 'CREATE TEMPORARY VIEW rows_0');
    expect(rows).toContain('TO_TIMESTAMP_LTZ(windowStart, 3) AS windowStart, TO_TIMESTAMP_LTZ(windowStart + CAST(7200000 AS BIGINT), 3) AS windowEnd');
    expect(rows).toContain('COUNT(*) AS version');
    expect(statement(sql, 'CREATE TEMPORARY VIEW counters_0')).toContain('WHERE e.late IS NOT TRUE');
    const late = statement(sql, 'CREATE TEMPORARY VIEW late_0');
    expect(late).toContain('WHERE late IS TRUE');
    expect(late).toContain('receivedAt - MOD(receivedAt, 60000)');
  });

  it('deduplicates by (tenant, environment, payloadId, eventIndex), first by processing time, before the member\'s filters', () => {
    const sql = generateSql(spec({ window: '1m' }, { tenantKey: 'acme', environment: 'prod' }), streams, at, templates);
    const dedup = statement(sql, 'CREATE TEMPORARY VIEW deduplicated');
    expect(dedup).toContain('ROW_NUMBER() OVER (PARTITION BY tenant, environment, payloadId, eventIndex ORDER BY proc_time) AS occurrence');
    expect(dedup).toContain('WHERE occurrence = 1');
    expect(dedup).toContain(`WHERE kind IN ('summary')\n    AND tenant IN (${stringParam('acme')})`);
    const summaries = statement(sql, 'CREATE TEMPORARY VIEW summaries_0');
    expect(summaries).toContain('FROM deduplicated');
    expect(summaries).toContain(`AND tenant = ${stringParam('acme')}\n  AND environment = ${stringParam('prod')}\n  AND receivedAt >= CAST(1795622400000 AS BIGINT)`);
    expect(statement(sql, 'CREATE TEMPORARY VIEW counters_0')).toContain('FROM summaries_0 AS e');
    expect(statement(sql, 'CREATE TEMPORARY VIEW late_0')).toContain('FROM summaries_0 WHERE');
    // one dedup for every member and output: the view is planned once
    expect(sql).toContain("SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';");
    expect(generateSql(spec({ window: '1m' }), streams, at, templates)).not.toContain('AND environment =');
  });

  it('filters flags after unnesting the counters', () => {
    const sql = generateSql(spec({ window: '1m', flagKeys: ['x', 'y'] }), streams, at, templates);
    expect(statement(sql, 'CREATE TEMPORARY VIEW counters_0')).toContain(`AND f.flagKey IN (${stringParam('x')}, ${stringParam('y')})`);
    expect(generateSql(spec({ window: '1m', flagKeys: [] }), streams, at, templates)).not.toContain('f.flagKey IN');
  });

  it('bounds state by time-to-live (dedup: horizon + retention; rows: window + horizon + retention) and emits in 1 s mini-batches', () => {
    const sql = generateSql(spec({ window: '1h' }), { ...streams, latenessHorizonSeconds: 7200, retentionHours: 48 }, at, templates);
    expect(sql).toContain(`SET 'table.exec.state.ttl' = '${(7200 + 48 * 3600) * 1000} ms';`);
    expect(statement(sql, 'CREATE TEMPORARY VIEW rows_0')).toContain(`SELECT /*+ STATE_TTL('counters_0' = '${(3600 + 7200 + 48 * 3600) * 1000} ms') */`);
    expect(sql).toContain("SET 'table.exec.mini-batch.enabled' = 'true';");
    expect(sql).toContain("SET 'table.exec.mini-batch.allow-latency' = '1 s';");
    expect(sql).toContain("SET 'table.exec.mini-batch.size' = '1000';");
  });

  it('writes rows, progress and late counts with their generation, as Debezium JSON partitioned by analysisId', () => {
    const sql = generateSql(spec({ window: '1m' }, { id: 'an-9', generation: 12 }), streams, at, templates);
    for (const table of ['result_rows', 'result_progress', 'result_late']) {
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
    }
    const id = `${stringParam('an-9')} AS analysisId, CAST(12 AS BIGINT) AS generation`;
    expect(statement(sql, 'CREATE TEMPORARY VIEW rows_0')).toContain(`${id}, 'row' AS \`type\``);
    expect(statement(sql, 'CREATE TEMPORARY VIEW late_0')).toContain(`${id}, 'late' AS \`type\``);
    expect(statement(sql, 'INSERT INTO result_rows')).toBe('INSERT INTO result_rows\nSELECT analysisId, generation, `type`, windowStart, windowEnd, fields, version FROM rows_0;');
    expect(statement(sql, 'INSERT INTO result_late')).toBe('INSERT INTO result_late\nSELECT analysisId, generation, `type`, bucketStart, lateEvents FROM late_0;');
    expect(statement(sql, 'CREATE TEMPORARY TABLE result_progress (')).toContain('shard STRING,\n  progressAt TIMESTAMP_LTZ(3)\n)');
    expect(statement(sql, 'CREATE TEMPORARY TABLE result_late (')).toContain('bucketStart TIMESTAMP_LTZ(3),\n  lateEvents BIGINT\n)');
    const progress = statement(sql, 'INSERT INTO result_progress');
    expect(progress).toContain("SELECT m.analysisId, m.generation, 'progress', h.shard, TO_TIMESTAMP_LTZ(MAX(h.eventTime), 3)");
    expect(progress).toContain("WHERE kind = 'heartbeat' AND tenant = '' AND shard IS NOT NULL");
    expect(progress).toContain(`ARRAY[ROW(${stringParam('an-9')}, CAST(12 AS BIGINT))] AS members`);
    expect(progress).toContain('CROSS JOIN UNNEST(h.members) AS m (analysisId, generation)');
    expect(progress).toContain('GROUP BY m.analysisId, m.generation, h.shard;');
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
    // 16 polling readers at most (8 pools, each twice while it hands over) share 5 reads a second per shard.
    expect(source).toContain("'scan.shard.getrecords.intervalmillis' = '3200'");
    expect(source).toContain("'format' = 'json'");
    expect(source).toContain("'json.ignore-parse-errors' = 'true'");
    expect(sql.match(/'connector' = 'kinesis'/g)).toHaveLength(3);
  });

  it('leaves out the local endpoint and credentials on AWS', () => {
    const sql = generateSql(spec({ window: '1m' }), { ...streams, endpoint: undefined }, at, templates);
    expect(sql).not.toContain('aws.endpoint');
    expect(sql).not.toContain('aws.credentials');
  });

  it('generates exactly the scripts the Flink tests run (flink-sql/runner/src/test/resources/generated)', () => {
    const fixtures = {
      'flag-evaluations.sql': generateSql(FIXTURE_SPEC, streams, at, templates),
      'pool.sql': generatePoolSql(POOL_FIXTURE, streams, templates),
      'pool-lake.sql': generatePoolSql(POOL_FIXTURE, streams, templates, undefined, LAKE_FIXTURE),
    };
    for (const [name, sql] of Object.entries(fixtures)) {
      const file = join(FIXTURES, name);
      if (process.env.FLAGSTREAM_UPDATE_SQL_FIXTURES === '1') writeFileSync(file, sql);
      expect(existsSync(file)).toBe(true);
      expect(sql).toBe(readFileSync(file, 'utf8'));
    }
  });

  it('reads the data lake only when asked: its tenants and hours as bound literals, the stream as events_stream, progress gated on every lake record read', () => {
    const plain = generatePoolSql(POOL_FIXTURE, streams, templates);
    expect(plain).toContain('CREATE TEMPORARY TABLE events (');
    expect(plain).not.toContain('events_lake');
    expect(plain).not.toContain('FROM lake_read');
    const sql = generatePoolSql(POOL_FIXTURE, streams, templates, undefined, { ...LAKE_FIXTURE, tenantKeys: ["it's", "it's"] });
    expect(sql).toContain('CREATE TEMPORARY TABLE events_stream (');
    expect(sql).toContain("'path' = 'file:///flagstream-lake-fixture/'");
    expect(sql).toContain(`WHERE tenant IN (${stringParam("it's")})`); // once, whatever the members
    expect(sql).toContain(`dt > ${stringParam('2026-11-25')} OR (dt = ${stringParam('2026-11-25')} AND \`hour\` >= ${stringParam('15')})`);
    expect(sql).toContain(`receivedAt < CAST(${Date.parse('2026-11-25T16:00:30.000Z')} AS BIGINT)`);
    expect(sql).toContain('AND EXISTS (SELECT 1 FROM lake_read WHERE records >= CAST(5 AS BIGINT))');
    expect(sql).not.toContain("it's");
    expect(() => generatePoolSql(POOL_FIXTURE, streams, templates, undefined, { ...LAKE_FIXTURE, uri: "file:///x'\n" })).toThrow(/not a lake URI/);
    expect(() => generatePoolSql(POOL_FIXTURE, streams, templates, undefined, { ...LAKE_FIXTURE, tenantKeys: [] })).toThrow(/at least one tenant/);
  });

  it('rejects a template placeholder without a value, and a value without a placeholder', () => {
    expect(() => fill('SELECT {{a}}', {})).toThrow('{{a}}');
    expect(() => fill('SELECT 1', { a: 'x' })).toThrow('a');
  });
});

describe('pool SQL generator', () => {
  const a = member('an-a', '2026-11-25T15:50:00.000Z', { window: '10s', flagKeys: ['x'] }, { tenantKey: 'acme', environment: 'prod', generation: 4 });
  const b = member('an-b', '2026-11-25T15:40:00.000Z', { window: '1m', groupBy: ['environment'] }, { tenantKey: 'globex', generation: 9 });
  const c = member('an-c', '2026-11-25T15:55:00.000Z', { window: '1h' }, { tenantKey: 'acme', generation: 0 });
  const sql = generatePoolSql([a, b, c], streams, templates);

  it('is the single analysis\' script for a pool of one', () => {
    expect(generateSql(spec({ window: '1m' }), streams, at, templates)).toBe(generatePoolSql([{ ...spec({ window: '1m' }), readFrom: at.at }], streams, templates));
  });

  it('refuses no members, a duplicate id, an unknown kind and a readFrom that is no time', () => {
    expect(() => generatePoolSql([], streams, templates)).toThrow('at least one member');
    expect(() => generatePoolSql([a, b, { ...c, id: 'an-a' }], streams, templates)).toThrow('duplicate pool member "an-a"');
    expect(() => generatePoolSql([{ ...a, kind: 'nope' } as unknown as PoolMemberSpec], streams, templates)).toThrow('unknown kind');
    expect(() => generatePoolSql([{ ...a, readFrom: new Date('nope') }], streams, templates)).toThrow('readFrom');
  });

  it('reads one source from the earliest member\'s readFrom, and writes three sinks with one INSERT each', () => {
    expect(count(sql, 'CREATE TEMPORARY TABLE events')).toBe(1);
    expect(statement(sql, 'CREATE TEMPORARY TABLE events')).toContain("'scan.stream.initpos-timestamp' = '1795621200.000'"); // b: 15:40
    for (const table of ['result_rows', 'result_progress', 'result_late']) {
      expect(count(sql, `CREATE TEMPORARY TABLE ${table} (`)).toBe(1);
      expect(count(sql, `INSERT INTO ${table}`)).toBe(1);
    }
    expect(count(sql, 'INSERT INTO')).toBe(3);
    expect(sql.match(/'connector' = /g)).toHaveLength(4);
  });

  it('deduplicates once over the members\' tenants, each named once', () => {
    expect(count(sql, 'ROW_NUMBER()')).toBe(1);
    expect(statement(sql, 'CREATE TEMPORARY VIEW deduplicated')).toContain(`AND tenant IN (${stringParam('acme')}, ${stringParam('globex')})`);
  });

  it('gives every member its own views, suffixed by its index, filtered by its tenant, environment and readFrom', () => {
    const summaries = [0, 1, 2].map((i) => statement(sql, `CREATE TEMPORARY VIEW summaries_${i} AS`));
    expect(summaries[0]).toContain(`AND tenant = ${stringParam('acme')}\n  AND environment = ${stringParam('prod')}\n  AND receivedAt >= CAST(${Date.parse('2026-11-25T15:50:00Z')} AS BIGINT);`);
    expect(summaries[1]).toContain(`AND tenant = ${stringParam('globex')}\n  AND receivedAt >= CAST(${Date.parse('2026-11-25T15:40:00Z')} AS BIGINT);`);
    expect(summaries[2]).toContain(`AND tenant = ${stringParam('acme')}\n  AND receivedAt >= CAST(${Date.parse('2026-11-25T15:55:00Z')} AS BIGINT);`);
    expect(statement(sql, 'CREATE TEMPORARY VIEW counters_0')).toContain(`FROM summaries_0 AS e`);
    expect(statement(sql, 'CREATE TEMPORARY VIEW counters_0')).toContain(`AND f.flagKey IN (${stringParam('x')})`);
    expect(statement(sql, 'CREATE TEMPORARY VIEW counters_1')).not.toContain('f.flagKey IN');
    expect(statement(sql, 'CREATE TEMPORARY VIEW rows_1')).toContain("JSON_OBJECT(KEY 'environment' VALUE environment, KEY 'evaluations' VALUE SUM(evaluations) NULL ON NULL)");
    expect(statement(sql, 'CREATE TEMPORARY VIEW rows_1')).toContain('GROUP BY windowStart, environment;');
    // view names never carry user text
    const views = [...sql.matchAll(/CREATE TEMPORARY VIEW (\S+) AS/g)].map((m) => m[1]);
    expect(views).toEqual(['deduplicated', ...[0, 1, 2].flatMap((i) => [`summaries_${i}`, `counters_${i}`, `rows_${i}`, `late_${i}`])]);
  });

  it('keeps each member\'s own row state TTL and generation', () => {
    const ttl = (i: number) => /STATE_TTL\('counters_\d+' = '(\d+) ms'\)/.exec(statement(sql, `CREATE TEMPORARY VIEW rows_${i}`))?.[1];
    expect([0, 1, 2].map(ttl)).toEqual([10_000, 60_000, 3_600_000].map((w) => String(w + 3600_000 + 24 * 3600_000)));
    expect(statement(sql, 'CREATE TEMPORARY VIEW rows_1')).toContain(`${stringParam('an-b')} AS analysisId, CAST(9 AS BIGINT) AS generation`);
    expect(statement(sql, 'CREATE TEMPORARY VIEW late_2')).toContain(`${stringParam('an-c')} AS analysisId, CAST(0 AS BIGINT) AS generation`);
  });

  it('unions the members\' rows and late counts in the given order, and fans every heartbeat out to every member', () => {
    expect(statement(sql, 'INSERT INTO result_rows')).toBe(
      'INSERT INTO result_rows\n' +
        [0, 1, 2].map((i) => `SELECT analysisId, generation, \`type\`, windowStart, windowEnd, fields, version FROM rows_${i}`).join('\nUNION ALL\n') + ';',
    );
    expect(statement(sql, 'INSERT INTO result_late')).toBe(
      'INSERT INTO result_late\n' + [0, 1, 2].map((i) => `SELECT analysisId, generation, \`type\`, bucketStart, lateEvents FROM late_${i}`).join('\nUNION ALL\n') + ';',
    );
    expect(statement(sql, 'INSERT INTO result_progress')).toContain(
      `ARRAY[ROW(${stringParam('an-a')}, CAST(4 AS BIGINT)), ROW(${stringParam('an-b')}, CAST(9 AS BIGINT)), ROW(${stringParam('an-c')}, CAST(0 AS BIGINT))] AS members`,
    );
    // the order given is kept (callers sort)
    const reversed = generatePoolSql([c, b, a], streams, templates);
    expect(statement(reversed, 'CREATE TEMPORARY VIEW summaries_0')).toContain(`>= CAST(${Date.parse('2026-11-25T15:55:00Z')} AS BIGINT)`);
  });

  it('reports the job\'s own progress as pool:<pool> with the pool\'s generation when asked', () => {
    const probed = generatePoolSql([a, b], streams, templates, { pool: 'p3', generation: 7 });
    expect(statement(probed, 'INSERT INTO result_progress')).toContain(
      `ARRAY[ROW(${stringParam('an-a')}, CAST(4 AS BIGINT)), ROW(${stringParam('an-b')}, CAST(9 AS BIGINT)), ROW(${stringParam('pool:p3')}, CAST(7 AS BIGINT))] AS members`,
    );
  });

  it('explains a kind\'s views once, at its first member', () => {
    expect(statement(sql, '-- flag-evaluations, member 0')).toBeTruthy();
    expect(sql).not.toContain('-- flag-evaluations, member 1');
    expect(sql.slice(sql.indexOf('CREATE TEMPORARY VIEW summaries_1'), sql.indexOf('-- ONE INSERT per sink table'))).not.toMatch(/^--/m);
    expect(sql).not.toMatch(/\n\n\n/);
  });

  it('binds every member\'s user values as base64 literals', () => {
    const evil = member("x'); DROP --", '2026-11-25T15:00:00.000Z', { window: '10s', flagKeys: ['🚩 "k"'] }, { tenantKey: "t'1", environment: '{{e}}' });
    const pool = generatePoolSql([a, evil], streams, templates);
    expect(base64Literals(pool)).toEqual(expect.arrayContaining(["x'); DROP --", '🚩 "k"', "t'1", '{{e}}']));
    for (const text of ["x'); DROP --", '🚩', "t'1", '{{e}}']) expect(pool).not.toContain(text);
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
  it('carries a custom query only base64-encoded in the runner\'s directive, in a pool of its own with limits', () => {
    const query = "SELECT flagKey, COUNT(*) AS n FROM events WHERE flagKey = 'it''s' GROUP BY flagKey; DROP TABLE x";
    const custom: PoolMemberSpec = {
      id: '0b9d3c1e-8f1a-4c2b-9d3e-1f2a3b4c5d6e', tenantKey: 'acme', kind: 'custom-sql', generation: 4, params: { sql: query }, readFrom: new Date('2026-11-25T15:00:00.000Z'),
    };
    const sql = generatePoolSql([custom], { ...streams, customSqlStateTtlMs: 7200_000 }, templates);
    expect(sql).not.toContain('DROP TABLE');
    expect(sql).not.toContain('COUNT(*) AS n');
    expect(sql).toContain(`AS SANDBOXED QUERY '${Buffer.from(query, 'utf8').toString('base64')}' OVER events_0 FOR ANALYSIS '${custom.id}' GENERATION 4;`);
    expect(sql).toContain("SET 'table.exec.state.ttl' = '7200000 ms';");
    expect(sql).toContain("SET 'parallelism.default' = '1';");
    expect(generateSql(spec({ window: '1m' }), streams, at, templates)).not.toContain('parallelism.default');
    expect(() => generatePoolSql([custom, member('an-b', '2026-11-25T15:00:00.000Z', { window: '1m' })], streams, templates)).toThrow('custom-sql analyses share pools only with each other');
    expect(() => generatePoolSql([{ ...custom, id: "x' OR '1" }], streams, templates)).toThrow('not a UUID');
  });

  it('passes a custom query\'s dedup only the columns it can name; `*` (but COUNT(*)) or NATURAL keeps them all', () => {
    expect(customQueryColumns("SELECT flagKey, variation, COUNT(*) AS n FROM events WHERE kind = 'feature' GROUP BY flagKey, variation")).toEqual(new Set(['flagKey', 'variation']));
    // Names in string literals and comments name nothing; any case and backticks do.
    expect(customQueryColumns("SELECT `METRICVALUE` FROM events -- features\n WHERE eventKey = 'contextKeys' /* value */")).toEqual(new Set(['metricValue', 'eventKey']));
    expect(customQueryColumns('SELECT * FROM events')).toBe('all');
    expect(customQueryColumns('SELECT metricValue * 2 FROM events')).toBe('all');
    expect(customQueryColumns('SELECT COUNT(*) FROM events a NATURAL JOIN events b')).toBe('all');

    const custom = (sql: string): PoolMemberSpec => ({ id: '0b9d3c1e-8f1a-4c2b-9d3e-1f2a3b4c5d6e', tenantKey: 'acme', kind: 'custom-sql', generation: 1, params: { sql }, readFrom: new Date('2026-11-25T15:00:00.000Z') });
    const narrow = generatePoolSql([custom("SELECT flagKey, COUNT(*) AS n FROM events GROUP BY flagKey")], streams, templates);
    expect(narrow).toContain('SELECT tenant, environment, kind, eventTime, receivedAt, late, `key`\nFROM (');
    expect(narrow).toContain("  CASE WHEN kind = 'feature' THEN `key` END AS flagKey,");
    expect(narrow).toContain('  CAST(NULL AS DOUBLE) AS metricValue,');
    expect(narrow).toContain('  CAST(NULL AS MAP<STRING, STRING>) AS contextKeys,');
    const wide = generatePoolSql([custom('SELECT * FROM events')], streams, templates);
    expect(wide).toContain('SELECT tenant, environment, kind, eventTime, receivedAt, late, features, `key`, variation, version, `value`, contextKey, contextKeys, metricValue\nFROM (');
    expect(wide).not.toContain('CAST(NULL AS');
  });
});
