-- unique-contexts, member {{member}} of the pool: the exact number of distinct context keys
-- of one kind per window of event time (a multi-kind context counts under each of its kinds:
-- contextKeys holds every kind's key, written by the events API). Without flagKey or variation
-- in groupBy, every event carrying a context counts; grouped by them (or with flagKeys) only
-- feature events, the only ones that say which flag and variation a context got.
CREATE TEMPORARY VIEW contexts_{{member}} AS
SELECT e.eventTime - MOD(e.eventTime, {{windowMs}}) AS windowStart, e.environment, e.`key` AS flagKey, e.variation, k.contextKey
FROM deduplicated AS e
CROSS JOIN UNNEST(e.contextKeys) AS k (contextKind, contextKey)
WHERE e.kind IN ({{eventKinds}})
  AND e.tenant = {{tenant}}{{eventFilters}}
  AND e.receivedAt >= {{readFrom}}
  AND e.late IS NOT TRUE
  AND k.contextKind = {{contextKind}}{{flagFilters}};

-- An updating aggregate like flag-evaluations' (see there for fields, version and the
-- STATE_TTL hint): COUNT(DISTINCT) keeps every key of the window until its state expires.
CREATE TEMPORARY VIEW rows_{{member}} AS
SELECT /*+ STATE_TTL('contexts_{{member}}' = '{{rowStateTtl}}') */
  {{analysisId}} AS analysisId, {{generation}} AS generation, 'row' AS `type`,
  TO_TIMESTAMP_LTZ(windowStart, 3) AS windowStart, TO_TIMESTAMP_LTZ(windowStart + {{windowMs}}, 3) AS windowEnd,
  JSON_OBJECT({{fields}} NULL ON NULL) AS fields,
  COUNT(*) AS version
FROM contexts_{{member}}
GROUP BY windowStart{{groupDimensions}};

-- Events older than the horizon count nowhere else: per minute they were received.
CREATE TEMPORARY VIEW late_{{member}} AS
SELECT {{analysisId}} AS analysisId, {{generation}} AS generation, 'late' AS `type`,
  TO_TIMESTAMP_LTZ(bucketStart, 3) AS bucketStart, COUNT(*) AS lateEvents
FROM (
  SELECT receivedAt - MOD(receivedAt, 60000) AS bucketStart
  FROM deduplicated
  WHERE kind IN ({{eventKinds}}) AND tenant = {{tenant}}{{eventFilters}} AND receivedAt >= {{readFrom}} AND late IS TRUE
)
GROUP BY bucketStart;
