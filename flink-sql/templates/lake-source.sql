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
  'path' = {{path}},
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
WHERE tenant IN ({{tenants}})
  AND (dt > {{fromDate}} OR (dt = {{fromDate}} AND `hour` >= {{fromHour}}))
  AND receivedAt < {{until}};

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
