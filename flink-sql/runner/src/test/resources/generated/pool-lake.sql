-- Job settings (docs/counting.md §2). Nothing in an analysis waits on a watermark: rows
-- are updating aggregates, so their state is bounded by time-to-live instead.
-- * table.exec.state.ttl: every stateful operator without a STATE_TTL hint, i.e. the
--   pool's one (tenant, environment, payloadId, eventIndex) dedup, the progress and the
--   late counts. How long a
--   record's key is remembered after it was last seen (processing time): two deliveries
--   of one record are seconds apart; the horizon on top covers a backlog read unevenly
--   across shards, the stream's retention a job that was down and restores its state.
-- * mini-batches: an aggregate emits at most one update per key and second (plus the
--   retraction of the previous value), not one per event.
-- * a custom-sql pool's job (its members are custom-sql only) runs with a state TTL of its
--   own (FLAGSTREAM_CUSTOM_SQL_STATE_TTL) for every operator, the user's query included, and
--   parallelism 1: one query cannot take the cluster's memory or slots from the others.
-- * block reuse by digest: a view read by several INSERTs and members (the deduplicated
--   events) is planned once, so the job keeps ONE dedup state that every output agrees on
--   (without it, each INSERT prunes the view's columns differently and gets a dedup of its own).
SET 'table.exec.state.ttl' = '90000000 ms';
SET 'table.exec.mini-batch.enabled' = 'true';
SET 'table.exec.mini-batch.allow-latency' = '1 s';
SET 'table.exec.mini-batch.size' = '1000';
SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';

-- The event stream as a table: one row per record the events API writes
-- (control-plane/src/events/event-record.ts), plus the control plane's heartbeats
-- ({"kind":"heartbeat","tenant":"","shard":"<shard it was written to>","eventTime":…}).
-- eventTime (ms) is the SDK's time bounded by the server's clock; receivedAt (ms) the
-- server's receive time; late = older than the lateness horizon (docs/counting.md §1).
-- contextKeys = the context's key per kind, contextKey its canonical key (both written by
-- the events API from `context` or `contextKeys`); `key` is a feature event's flag key or a
-- custom event's event key.
-- No WATERMARK: windows are computed from eventTime, not closed by a watermark (§2).
-- Integers are BIGINT: a value beyond the declared type fails the record's decoding, and
-- json.ignore-parse-errors drops the whole record without a trace. Add a column only
-- with a type every valid event's field fits (STRING takes any JSON value as text).
-- Named `events`, or `events_stream` when the pool also reads the data lake (lake-source.sql
-- then defines the view `events` over both).
CREATE TEMPORARY TABLE events_stream (
  tenant STRING,
  environment STRING,
  payloadId STRING,
  eventIndex BIGINT,
  kind STRING,
  eventTime BIGINT,
  receivedAt BIGINT,
  late BOOLEAN,
  shard STRING,
  `key` STRING,
  variation BIGINT,
  version BIGINT,
  `value` STRING,
  context STRING,
  contextKey STRING,
  contextKeys MAP<STRING, STRING>,
  metricValue DOUBLE,
  features MAP<STRING, ROW<counters ARRAY<ROW<variation BIGINT, version BIGINT, `count` BIGINT, `unknown` BOOLEAN>>>>,
  proc_time AS PROCTIME()
) WITH (
  'connector' = 'flagstream-kinesis',
  'stream' = 'flagstream-events',
  'aws.region' = 'us-east-1',
  'aws.endpoint' = 'http://127.0.0.1:4568',
  'aws.credentials.provider' = 'BASIC',
  'aws.credentials.basic.accesskeyid' = 'local',
  'aws.credentials.basic.secretkey' = 'local',
  'scan.stream.initpos' = 'AT_TIMESTAMP',
  'scan.stream.initpos-timestamp' = '1795618800.000',
  'scan.shard.getrecords.intervalmillis' = '3200',
  'format' = 'json',
  'json.ignore-parse-errors' = 'true',
  'json.fail-on-missing-field' = 'false'
);

-- The data lake (CONTRACT §9), read only by a pool with a member replaying from before what
-- the events stream holds. The lake's files (GZIP JSON lines, one stream record per line, as
-- the lake Lambda → Firehose and the local lake writer write them) under
-- tenant=<tenant>/dt=<YYYY-MM-DD>/hour=<HH>/ of the hour each record was received. Bounded:
-- the files there when the job starts. Partition pruning reads only the replaying tenants'
-- hours from the earliest such member's readFrom; each member still keeps only records
-- received from its own readFrom (its view's filter).
-- The stream's columns (LIKE: one definition, events-source.sql) plus the partitions' date and hour.
CREATE TEMPORARY TABLE events_lake (
  dt STRING,
  `hour` STRING
) PARTITIONED BY (tenant, dt, `hour`) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///flagstream-lake-fixture/',
  'format' = 'json',
  'json.ignore-parse-errors' = 'true',
  'json.fail-on-missing-field' = 'false'
)
LIKE events_stream (EXCLUDING OPTIONS);

-- The lake records this job must read: the replaying tenants', received before the stream
-- begins (the stream holds the rest; an event in both would count once anyway, see below).
CREATE TEMPORARY VIEW lake_records AS
SELECT tenant, environment, payloadId, eventIndex, kind, eventTime, receivedAt, late, shard, `key`, variation, version,
  `value`, context, contextKey, contextKeys, metricValue, features, proc_time
FROM events_lake
WHERE tenant IN (FROM_BASE64('YWNtZQ=='))
  AND (dt > FROM_BASE64('MjAyNi0xMS0yNQ==') OR (dt = FROM_BASE64('MjAyNi0xMS0yNQ==') AND `hour` >= FROM_BASE64('MTU=')))
  AND receivedAt < CAST(1795622430000 AS BIGINT);

-- The events: the stream and the lake. An event in both (the lake overlaps the stream
-- where both hold it) is one (environment, payloadId, eventIndex): the pool's dedup keeps
-- its first arrival, so it counts once, and nothing is missed at the seam.
CREATE TEMPORARY VIEW events AS
SELECT tenant, environment, payloadId, eventIndex, kind, eventTime, receivedAt, late, shard, `key`, variation, version,
  `value`, context, contextKey, contextKeys, metricValue, features, proc_time
FROM events_stream
UNION ALL
SELECT * FROM lake_records;

-- How many lake records were read: progress waits until it reached what the lake held
-- (progress.sql).
CREATE TEMPORARY VIEW lake_read AS
SELECT COUNT(*) AS records FROM lake_records;

-- What the job writes to the results stream (docs/counting.md §3): three tables on the one
-- stream, each a changelog in Debezium JSON ({"before": …, "after": …, "op": "c" | "d"}; an
-- update is "d" of the old row, then "c" of the new one), partitioned by analysisId so an
-- analysis' records stay in order on one shard. `after` always has analysisId, generation
-- and type. Every member of a pool writes into these same three tables.

-- A window's row. fields: its dimensions and measures as the text of a JSON object
-- ({"evaluations":5,"flagKey":"x","variation":1}), so rows of every kind and grouping fit
-- one table.
CREATE TEMPORARY TABLE result_rows (
  analysisId STRING,
  generation BIGINT,
  `type` STRING,
  windowStart TIMESTAMP_LTZ(3),
  windowEnd TIMESTAMP_LTZ(3),
  fields STRING,
  version BIGINT
) PARTITIONED BY (analysisId) WITH (
  'connector' = 'kinesis',
  'stream' = 'flagstream-results',
  'aws.region' = 'us-east-1',
  'aws.endpoint' = 'http://127.0.0.1:4568',
  'aws.credentials.provider' = 'BASIC',
  'aws.credentials.basic.accesskeyid' = 'local',
  'aws.credentials.basic.secretkey' = 'local',
  'aws.http.protocol.version' = 'HTTP1_1',
  'sink.flush-buffer.timeout' = '1000',
  'format' = 'debezium-json',
  'debezium-json.timestamp-format.standard' = 'ISO-8601'
);

-- The newest heartbeat the job has read, per shard of the events stream.
CREATE TEMPORARY TABLE result_progress (
  analysisId STRING,
  generation BIGINT,
  `type` STRING,
  shard STRING,
  progressAt TIMESTAMP_LTZ(3)
) PARTITIONED BY (analysisId) WITH (
  'connector' = 'kinesis',
  'stream' = 'flagstream-results',
  'aws.region' = 'us-east-1',
  'aws.endpoint' = 'http://127.0.0.1:4568',
  'aws.credentials.provider' = 'BASIC',
  'aws.credentials.basic.accesskeyid' = 'local',
  'aws.credentials.basic.secretkey' = 'local',
  'aws.http.protocol.version' = 'HTTP1_1',
  'sink.flush-buffer.timeout' = '1000',
  'format' = 'debezium-json',
  'debezium-json.timestamp-format.standard' = 'ISO-8601'
);

-- The analysis' events older than the lateness horizon, per minute (server time) received.
CREATE TEMPORARY TABLE result_late (
  analysisId STRING,
  generation BIGINT,
  `type` STRING,
  bucketStart TIMESTAMP_LTZ(3),
  lateEvents BIGINT
) PARTITIONED BY (analysisId) WITH (
  'connector' = 'kinesis',
  'stream' = 'flagstream-results',
  'aws.region' = 'us-east-1',
  'aws.endpoint' = 'http://127.0.0.1:4568',
  'aws.credentials.provider' = 'BASIC',
  'aws.credentials.basic.accesskeyid' = 'local',
  'aws.credentials.basic.secretkey' = 'local',
  'aws.http.protocol.version' = 'HTTP1_1',
  'sink.flush-buffer.timeout' = '1000',
  'format' = 'debezium-json',
  'debezium-json.timestamp-format.standard' = 'ISO-8601'
);

-- In a pool that reads the data lake, heartbeats count only once every lake record it must
-- read has been read (lake-source.sql: lake_read): progress then never claims a window
-- complete while the lake's part of it is still being read.
-- Progress, the same for every kind and ONE aggregate for the whole pool: per member and
-- shard, the newest heartbeat read. Heartbeats (tenant '') are written by the control plane
-- to every shard every 2 s; a shard's records written before a heartbeat are read before it,
-- so every record older than progressAt on that shard has been counted. Each heartbeat is
-- fanned out to every member (analysisId, generation) by UNNEST of a constant array. The
-- array is a column of the heartbeats: an UNNEST that refers to no column of its left side
-- is planned as a regular join with the array's rows, which Flink cannot plan on a stream;
-- referring to h.members makes it a correlate (a stateless fan-out per heartbeat).
INSERT INTO result_progress
SELECT m.analysisId, m.generation, 'progress', h.shard, TO_TIMESTAMP_LTZ(MAX(h.eventTime), 3)
FROM (
  SELECT shard, eventTime, ARRAY[ROW(FROM_BASE64('YW4tcG9vbC1h'), CAST(3 AS BIGINT)), ROW(FROM_BASE64('YW4tcG9vbC1i'), CAST(11 AS BIGINT))] AS members
  FROM events
  WHERE kind = 'heartbeat' AND tenant = '' AND shard IS NOT NULL AND eventTime IS NOT NULL
    AND EXISTS (SELECT 1 FROM lake_read WHERE records >= CAST(5 AS BIGINT))
) AS h
CROSS JOIN UNNEST(h.members) AS m (analysisId, generation)
GROUP BY m.analysisId, m.generation, h.shard;

-- The pool's one deduplication: every record of its members' tenants, of the event kinds its
-- members read, each event (tenant, environment, payloadId, eventIndex) once: the first
-- delivery the job reads (a producer retry after a lost answer writes a record twice). The
-- dedup keeps only the key, for table.exec.state.ttl. Each member filters this view by its
-- own tenant, environment and readFrom (its kind's template): the dedup is shared, never
-- per member, so a record counts once for every member it belongs to. It passes on only the
-- columns its members' kinds read (the generator lists them): a wide map or JSON text no member
-- needs is not carried through the job.
CREATE TEMPORARY VIEW deduplicated AS
SELECT tenant, environment, kind, eventTime, receivedAt, late, features
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant, environment, payloadId, eventIndex ORDER BY proc_time) AS occurrence
  FROM events
  WHERE kind IN ('summary')
    AND tenant IN (FROM_BASE64('YWNtZQ=='), FROM_BASE64('Z2xvYmV4'))
)
WHERE occurrence = 1;

-- flag-evaluations, member 0 of the pool: evaluations per window of event time, per
-- the chosen dimensions, counted from summary events (each counter counts at the summary's
-- endDate, bounded by the server: eventTime). Every value from the definition arrives as a
-- bound literal; view names carry the member's index, never user text. The generator
-- writes the INSERTs: one per sink table, a UNION ALL of every member's rows_N / late_N.

-- The member's summaries, deduplicated by the pool: its tenant (and environment), received
-- from its readFrom on (the pool reads from its earliest member's).
CREATE TEMPORARY VIEW summaries_0 AS
SELECT environment, eventTime, receivedAt, late, features
FROM deduplicated
WHERE kind = 'summary'
  AND tenant = FROM_BASE64('YWNtZQ==')
  AND environment = FROM_BASE64('cHJvZHVjdGlvbg==')
  AND receivedAt >= CAST(1795618800000 AS BIGINT);

-- One row per counter of a summary within the horizon, with the window it counts in.
CREATE TEMPORARY VIEW counters_0 AS
SELECT e.eventTime - MOD(e.eventTime, CAST(10000 AS BIGINT)) AS windowStart, e.environment, f.flagKey, c.variation, c.evaluations
FROM summaries_0 AS e
CROSS JOIN UNNEST(e.features) AS f (flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c (variation, version, evaluations, `unknown`)
WHERE e.late IS NOT TRUE
  AND f.flagKey IN (FROM_BASE64('bmV3LWNoZWNrb3V0'));

-- An updating aggregate, no window operator: an event within the horizon, however late,
-- updates its window's row. fields = the row's dimensions and measure as a JSON object
-- (every kind and member fits the one result_rows sink; numbers stay JSON numbers, a null
-- stays null, Flink writes the keys sorted by name). version = the inputs the row
-- absorbed (only grows). The row's state lives window + horizon + retention after its last
-- update: a STATE_TTL hint in this view's own query block, keyed by the aggregate's input.
-- Flink 1.20 applies a hint inside a view, per member, also when the views meet in one
-- UNION ALL (the compiled plan gives each member's GlobalGroupAggregate its own ttl:
-- SqlRunnerPlannerTest). Keep the key = this block's input: a key naming no table is
-- refused, but one naming another view is dropped silently (global TTL).
-- The output columns are named like the sink's; GROUP BY windowStart is still the input's
-- (BIGINT) column.
CREATE TEMPORARY VIEW rows_0 AS
SELECT /*+ STATE_TTL('counters_0' = '90010000 ms') */
  FROM_BASE64('YW4tcG9vbC1h') AS analysisId, CAST(3 AS BIGINT) AS generation, 'row' AS `type`,
  TO_TIMESTAMP_LTZ(windowStart, 3) AS windowStart, TO_TIMESTAMP_LTZ(windowStart + CAST(10000 AS BIGINT), 3) AS windowEnd,
  JSON_OBJECT(KEY 'flagKey' VALUE flagKey, KEY 'variation' VALUE variation, KEY 'evaluations' VALUE SUM(evaluations) NULL ON NULL) AS fields,
  COUNT(*) AS version
FROM counters_0
GROUP BY windowStart, flagKey, variation;

-- Summaries older than the horizon count nowhere else: per minute they were received.
CREATE TEMPORARY VIEW late_0 AS
SELECT FROM_BASE64('YW4tcG9vbC1h') AS analysisId, CAST(3 AS BIGINT) AS generation, 'late' AS `type`,
  TO_TIMESTAMP_LTZ(bucketStart, 3) AS bucketStart, COUNT(*) AS lateEvents
FROM (SELECT receivedAt - MOD(receivedAt, 60000) AS bucketStart FROM summaries_0 WHERE late IS TRUE)
GROUP BY bucketStart;

CREATE TEMPORARY VIEW summaries_1 AS
SELECT environment, eventTime, receivedAt, late, features
FROM deduplicated
WHERE kind = 'summary'
  AND tenant = FROM_BASE64('Z2xvYmV4')
  AND receivedAt >= CAST(1795622340000 AS BIGINT);

CREATE TEMPORARY VIEW counters_1 AS
SELECT e.eventTime - MOD(e.eventTime, CAST(60000 AS BIGINT)) AS windowStart, e.environment, f.flagKey, c.variation, c.evaluations
FROM summaries_1 AS e
CROSS JOIN UNNEST(e.features) AS f (flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c (variation, version, evaluations, `unknown`)
WHERE e.late IS NOT TRUE;

CREATE TEMPORARY VIEW rows_1 AS
SELECT /*+ STATE_TTL('counters_1' = '90060000 ms') */
  FROM_BASE64('YW4tcG9vbC1i') AS analysisId, CAST(11 AS BIGINT) AS generation, 'row' AS `type`,
  TO_TIMESTAMP_LTZ(windowStart, 3) AS windowStart, TO_TIMESTAMP_LTZ(windowStart + CAST(60000 AS BIGINT), 3) AS windowEnd,
  JSON_OBJECT(KEY 'variation' VALUE variation, KEY 'environment' VALUE environment, KEY 'evaluations' VALUE SUM(evaluations) NULL ON NULL) AS fields,
  COUNT(*) AS version
FROM counters_1
GROUP BY windowStart, variation, environment;

CREATE TEMPORARY VIEW late_1 AS
SELECT FROM_BASE64('YW4tcG9vbC1i') AS analysisId, CAST(11 AS BIGINT) AS generation, 'late' AS `type`,
  TO_TIMESTAMP_LTZ(bucketStart, 3) AS bucketStart, COUNT(*) AS lateEvents
FROM (SELECT receivedAt - MOD(receivedAt, 60000) AS bucketStart FROM summaries_1 WHERE late IS TRUE)
GROUP BY bucketStart;

-- ONE INSERT per sink table, a UNION ALL over the members (in the pool's order): the job
-- has one sink per table however many members it has.
INSERT INTO result_rows
SELECT analysisId, generation, `type`, windowStart, windowEnd, fields, version FROM rows_0
UNION ALL
SELECT analysisId, generation, `type`, windowStart, windowEnd, fields, version FROM rows_1;

INSERT INTO result_late
SELECT analysisId, generation, `type`, bucketStart, lateEvents FROM late_0
UNION ALL
SELECT analysisId, generation, `type`, bucketStart, lateEvents FROM late_1;
