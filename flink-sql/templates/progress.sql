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
  SELECT shard, eventTime, ARRAY[{{members}}] AS members
  FROM events
  WHERE kind = 'heartbeat' AND tenant = '' AND shard IS NOT NULL AND eventTime IS NOT NULL{{lakeGate}}
) AS h
CROSS JOIN UNNEST(h.members) AS m (analysisId, generation)
GROUP BY m.analysisId, m.generation, h.shard;
