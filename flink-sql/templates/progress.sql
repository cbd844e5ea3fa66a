-- Progress, the same for every kind: per shard, the newest heartbeat read. Heartbeats
-- (tenant '') are written by the control plane to every shard every 2 s; a shard's
-- records written before a heartbeat are read before it, so every record older than
-- progressAt on that shard has been counted.
INSERT INTO result_progress
SELECT {{analysisId}}, {{generation}}, 'progress', shard, TO_TIMESTAMP_LTZ(MAX(eventTime), 3)
FROM events
WHERE kind = 'heartbeat' AND tenant = '' AND shard IS NOT NULL AND eventTime IS NOT NULL
GROUP BY shard;
