-- flag-usage, member {{member}} of the pool: per flag, environment and variation (or the
-- SDK's "unknown flag" counters), the evaluations in buckets of {{bucketMs}} ms of event time
-- with their first and last evaluation time. Statuses (active, launched, inactive,
-- unknown-flag) and `since` are a function of these buckets and the time they are asked at:
-- the control plane computes them when serving, so a flag turns inactive with time alone
-- (control-plane/src/results/flag-usage.ts).
CREATE TEMPORARY VIEW usage_{{member}} AS
SELECT e.eventTime - MOD(e.eventTime, {{bucketMs}}) AS bucketStart, e.eventTime, e.environment, f.flagKey,
  CASE WHEN c.`unknown` IS TRUE THEN CAST(NULL AS BIGINT) ELSE c.variation END AS variation,
  c.`unknown` IS TRUE AS unknownFlag, c.evaluations
FROM deduplicated AS e
CROSS JOIN UNNEST(e.features) AS f (flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c (variation, version, evaluations, `unknown`)
WHERE e.kind = 'summary'
  AND e.tenant = {{tenant}}{{eventFilters}}
  AND e.receivedAt >= {{readFrom}}
  AND e.late IS NOT TRUE;

CREATE TEMPORARY VIEW rows_{{member}} AS
SELECT /*+ STATE_TTL('usage_{{member}}' = '{{rowStateTtl}}') */
  {{analysisId}} AS analysisId, {{generation}} AS generation, 'row' AS `type`,
  TO_TIMESTAMP_LTZ(bucketStart, 3) AS windowStart, TO_TIMESTAMP_LTZ(bucketStart + {{bucketMs}}, 3) AS windowEnd,
  JSON_OBJECT(
    KEY 'flagKey' VALUE flagKey, KEY 'environment' VALUE environment, KEY 'variation' VALUE variation, KEY 'unknown' VALUE unknownFlag,
    KEY 'evaluations' VALUE SUM(evaluations), KEY 'firstAt' VALUE MIN(eventTime), KEY 'lastAt' VALUE MAX(eventTime)
    NULL ON NULL) AS fields,
  COUNT(*) AS version
FROM usage_{{member}}
GROUP BY bucketStart, environment, flagKey, variation, unknownFlag;

CREATE TEMPORARY VIEW late_{{member}} AS
SELECT {{analysisId}} AS analysisId, {{generation}} AS generation, 'late' AS `type`,
  TO_TIMESTAMP_LTZ(bucketStart, 3) AS bucketStart, COUNT(*) AS lateEvents
FROM (
  SELECT receivedAt - MOD(receivedAt, 60000) AS bucketStart
  FROM deduplicated
  WHERE kind = 'summary' AND tenant = {{tenant}}{{eventFilters}} AND receivedAt >= {{readFrom}} AND late IS TRUE
)
GROUP BY bucketStart;
