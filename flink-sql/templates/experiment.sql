-- experiment (and guardrail), member {{member}} of the pool: per variation, the sufficient
-- statistics of its units (contexts of the randomization kind) since the analysis began:
-- units n, Σy, Σy², where y is 1/0 (converted or not) or the sum of the unit's metricValues.
-- The statistics themselves are a pure function of these, computed when the rows are served
-- (control-plane/src/results/statistics.ts). Cumulative state never expires (STATE_TTL hints
-- of {{cumulativeTtl}}): a job that loses it recomputes as a new generation.

-- Exposures: feature events of the flag (the SDK sends one per evaluation in an experiment).
CREATE TEMPORARY VIEW exposures_{{member}} AS
SELECT e.contextKeys[{{unitKind}}] AS unit, e.variation, e.eventTime
FROM deduplicated AS e
WHERE e.kind = 'feature'
  AND e.tenant = {{tenant}}{{eventFilters}}
  AND e.receivedAt >= {{readFrom}}
  AND e.late IS NOT TRUE
  AND e.`key` = {{flagKey}}
  AND e.variation BETWEEN 0 AND 1023
  AND e.contextKeys[{{unitKind}}] IS NOT NULL;

-- Each unit's first exposure: its earliest (then lowest variation) as one packed MIN, an
-- aggregate (a Top-N could not carry its own state TTL). variations = how many it saw.
CREATE TEMPORARY VIEW first_exposures_{{member}} AS
SELECT /*+ STATE_TTL('exposures_{{member}}' = '{{cumulativeTtl}}') */
  unit, MIN(eventTime * 1024 + variation) AS packed, COUNT(DISTINCT variation) AS variations
FROM exposures_{{member}}
GROUP BY unit;

-- Conversions: custom events of the metric from a unit.
CREATE TEMPORARY VIEW conversions_{{member}} AS
SELECT e.contextKeys[{{unitKind}}] AS unit, e.eventTime, CAST(COALESCE(e.metricValue, 0) AS DOUBLE) AS metricValue
FROM deduplicated AS e
WHERE e.kind = 'custom'
  AND e.tenant = {{tenant}}{{eventFilters}}
  AND e.receivedAt >= {{readFrom}}
  AND e.late IS NOT TRUE
  AND e.`key` = {{eventKey}}
  AND e.contextKeys[{{unitKind}}] IS NOT NULL;

-- A conversion counts from the unit's first exposure on (a conversion before it does not).
CREATE TEMPORARY VIEW attributed_{{member}} AS
SELECT /*+ STATE_TTL('f' = '{{cumulativeTtl}}', 'c' = '{{cumulativeTtl}}') */
  f.unit, MOD(f.packed, 1024) AS variation, f.variations, c.unit AS converted, c.metricValue
FROM first_exposures_{{member}} AS f
-- packed = firstTime × 1024 + variation: a conversion at or after firstTime has time × 1024 + 1023 ≥ packed.
LEFT JOIN conversions_{{member}} AS c ON c.unit = f.unit AND c.eventTime * 1024 + 1023 >= f.packed;

CREATE TEMPORARY VIEW units_{{member}} AS
SELECT /*+ STATE_TTL('attributed_{{member}}' = '{{cumulativeTtl}}') */
  unit, variation, MAX(variations) AS variations, {{unitValue}} AS y
FROM attributed_{{member}}
GROUP BY unit, variation;

-- One row per variation, kept current; its window is a fixed marker (epoch .. year 9999): never
-- final, so a recomputing generation's rows wait until it has caught up (pending rows).
CREATE TEMPORARY VIEW rows_{{member}} AS
SELECT /*+ STATE_TTL('units_{{member}}' = '{{cumulativeTtl}}') */
  {{analysisId}} AS analysisId, {{generation}} AS generation, 'row' AS `type`,
  TO_TIMESTAMP_LTZ(0, 3) AS windowStart, TO_TIMESTAMP_LTZ(253402300799999, 3) AS windowEnd,
  JSON_OBJECT(
    KEY 'variation' VALUE variation, KEY 'units' VALUE COUNT(*), KEY 'sum' VALUE SUM(y), KEY 'sumSquares' VALUE SUM(y * y),
    KEY 'multipleExposures' VALUE SUM(CASE WHEN variations > 1 THEN 1 ELSE 0 END)
    NULL ON NULL) AS fields,
  CAST(0 AS BIGINT) AS version
FROM units_{{member}}
GROUP BY variation;

CREATE TEMPORARY VIEW late_{{member}} AS
SELECT {{analysisId}} AS analysisId, {{generation}} AS generation, 'late' AS `type`,
  TO_TIMESTAMP_LTZ(bucketStart, 3) AS bucketStart, COUNT(*) AS lateEvents
FROM (
  SELECT receivedAt - MOD(receivedAt, 60000) AS bucketStart
  FROM deduplicated
  WHERE kind IN ('feature', 'custom') AND tenant = {{tenant}}{{eventFilters}} AND receivedAt >= {{readFrom}} AND late IS TRUE
    AND `key` IN ({{flagKey}}, {{eventKey}})
)
GROUP BY bucketStart;
