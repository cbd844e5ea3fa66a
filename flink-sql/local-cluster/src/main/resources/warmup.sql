-- Planned a few times at validator start so the planner/codegen paths are JIT-warm.
-- Shape mirrors what the control plane generates (source + sink + window TVF + UNNEST + dedup).
CREATE TABLE events (
  tenant STRING, environment STRING, payloadId STRING, eventIndex INT, kind STRING, eventTime BIGINT,
  features MAP<STRING, ROW<counters ARRAY<ROW<variation INT, version INT, `count` BIGINT, `unknown` BOOLEAN>>>>,
  ts AS TO_TIMESTAMP_LTZ(eventTime, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector'='kinesis', 'stream'='warmup-events', 'aws.region'='us-east-1',
  'aws.endpoint'='http://127.0.0.1:4568', 'aws.credentials.provider'='BASIC',
  'aws.credentials.basic.accesskeyid'='local', 'aws.credentials.basic.secretkey'='local',
  'scan.stream.initpos'='AT_TIMESTAMP', 'scan.stream.initpos-timestamp'='1700000000',
  'format'='json', 'json.ignore-parse-errors'='true', 'json.fail-on-missing-field'='false');
CREATE TABLE results (analysisId STRING, windowStart TIMESTAMP_LTZ(3), windowEnd TIMESTAMP_LTZ(3), flagKey STRING, variation INT, evaluations BIGINT)
WITH ('connector'='kinesis', 'stream'='warmup-results', 'aws.region'='us-east-1',
  'aws.endpoint'='http://127.0.0.1:4568', 'aws.credentials.provider'='BASIC',
  'aws.credentials.basic.accesskeyid'='local', 'aws.credentials.basic.secretkey'='local',
  'aws.http.protocol.version'='HTTP1_1', 'sink.partitioner'='random', 'sink.flush-buffer.timeout'='1000',
  'format'='json', 'json.timestamp-format.standard'='ISO-8601');
INSERT INTO results
SELECT 'w1', window_start, window_end, f.flagKey, c.variation, SUM(c.`count`)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND)) AS e
CROSS JOIN UNNEST(e.features) AS f(flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c(variation, version, `count`, `unknown`)
WHERE e.tenant = 'acme' AND e.kind = 'summary'
GROUP BY window_start, window_end, f.flagKey, c.variation;
INSERT INTO results
SELECT 'w2', window_start, window_end, f.flagKey, c.variation, SUM(c.`count`)
FROM (
  SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, payloadId, eventIndex ORDER BY ts) AS rn
    FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    WHERE tenant = 'acme' AND kind = 'summary'
  ) WHERE rn = 1
) AS e
CROSS JOIN UNNEST(e.features) AS f(flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c(variation, version, `count`, `unknown`)
GROUP BY window_start, window_end, f.flagKey, c.variation;
