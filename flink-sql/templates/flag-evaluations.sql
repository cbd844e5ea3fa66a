-- flag-evaluations: evaluations per window of event time, per the chosen dimensions,
-- counted from summary events (each counter counts at the summary's endDate, bounded by
-- the server: eventTime). Every value from the definition arrives as a bound literal.

-- The analysis' summaries, each event (payloadId, eventIndex) once: the first delivery
-- the job reads (a producer retry after a lost answer writes a record twice). The
-- dedup keeps only the key, for table.exec.state.ttl.
CREATE TEMPORARY VIEW summaries AS
SELECT environment, eventTime, receivedAt, late, features
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY payloadId, eventIndex ORDER BY proc_time) AS occurrence
  FROM events
  WHERE kind = 'summary'
    AND tenant = {{tenant}}{{eventFilters}}
)
WHERE occurrence = 1;

-- One row per counter of a summary within the horizon, with the window it counts in.
CREATE TEMPORARY VIEW counters AS
SELECT e.eventTime - MOD(e.eventTime, {{windowMs}}) AS windowStart, e.environment, f.flagKey, c.variation, c.evaluations
FROM summaries AS e
CROSS JOIN UNNEST(e.features) AS f (flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c (variation, version, evaluations, `unknown`)
WHERE e.late IS NOT TRUE{{counterFilters}};

-- An updating aggregate, no window operator: an event within the horizon, however late,
-- updates its window's row. version = the inputs the row absorbed (only grows). The
-- row's state lives window + horizon + retention after its last update.
INSERT INTO result_rows
SELECT /*+ STATE_TTL('counters' = '{{rowStateTtl}}') */
  {{analysisId}}, {{generation}}, 'row',
  TO_TIMESTAMP_LTZ(windowStart, 3), TO_TIMESTAMP_LTZ(windowStart + {{windowMs}}, 3){{selectDimensions}},
  SUM(evaluations), COUNT(*)
FROM counters
GROUP BY windowStart{{groupDimensions}};

-- Summaries older than the horizon count nowhere else: per minute they were received.
INSERT INTO result_late
SELECT {{analysisId}}, {{generation}}, 'late', TO_TIMESTAMP_LTZ(bucketStart, 3), COUNT(*)
FROM (SELECT receivedAt - MOD(receivedAt, 60000) AS bucketStart FROM summaries WHERE late IS TRUE)
GROUP BY bucketStart;
