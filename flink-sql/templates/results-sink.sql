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
{{sinkOptions}}
);

-- The newest heartbeat the job has read, per shard of the events stream.
CREATE TEMPORARY TABLE result_progress (
  analysisId STRING,
  generation BIGINT,
  `type` STRING,
  shard STRING,
  progressAt TIMESTAMP_LTZ(3)
) PARTITIONED BY (analysisId) WITH (
{{sinkOptions}}
);

-- The analysis' events older than the lateness horizon, per minute (server time) received.
CREATE TEMPORARY TABLE result_late (
  analysisId STRING,
  generation BIGINT,
  `type` STRING,
  bucketStart TIMESTAMP_LTZ(3),
  lateEvents BIGINT
) PARTITIONED BY (analysisId) WITH (
{{sinkOptions}}
);
