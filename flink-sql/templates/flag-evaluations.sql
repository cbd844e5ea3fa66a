-- flag-evaluations, member {{member}} of the pool: evaluations per window of event time, per
-- the chosen dimensions, counted from summary events (each counter counts at the summary's
-- endDate, bounded by the server: eventTime). Every value from the definition arrives as a
-- bound literal; view names carry the member's index, never user text. The generator
-- writes the INSERTs: one per sink table, a UNION ALL of every member's rows_N / late_N.

-- The member's summaries, deduplicated by the pool: its tenant (and environment), received
-- from its readFrom on (the pool reads from its earliest member's).
CREATE TEMPORARY VIEW summaries_{{member}} AS
SELECT environment, eventTime, receivedAt, late, features
FROM deduplicated
WHERE kind = 'summary'
  AND tenant = {{tenant}}{{eventFilters}}
  AND receivedAt >= {{readFrom}};

-- One row per counter of a summary within the horizon, with the window it counts in.
CREATE TEMPORARY VIEW counters_{{member}} AS
SELECT e.eventTime - MOD(e.eventTime, {{windowMs}}) AS windowStart, e.environment, f.flagKey, c.variation, c.evaluations
FROM summaries_{{member}} AS e
CROSS JOIN UNNEST(e.features) AS f (flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c (variation, version, evaluations, `unknown`)
WHERE e.late IS NOT TRUE{{counterFilters}};

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
CREATE TEMPORARY VIEW rows_{{member}} AS
SELECT /*+ STATE_TTL('counters_{{member}}' = '{{rowStateTtl}}') */
  {{analysisId}} AS analysisId, {{generation}} AS generation, 'row' AS `type`,
  TO_TIMESTAMP_LTZ(windowStart, 3) AS windowStart, TO_TIMESTAMP_LTZ(windowStart + {{windowMs}}, 3) AS windowEnd,
  JSON_OBJECT({{fields}} NULL ON NULL) AS fields,
  COUNT(*) AS version
FROM counters_{{member}}
GROUP BY windowStart{{groupDimensions}};

-- Summaries older than the horizon count nowhere else: per minute they were received.
CREATE TEMPORARY VIEW late_{{member}} AS
SELECT {{analysisId}} AS analysisId, {{generation}} AS generation, 'late' AS `type`,
  TO_TIMESTAMP_LTZ(bucketStart, 3) AS bucketStart, COUNT(*) AS lateEvents
FROM (SELECT receivedAt - MOD(receivedAt, 60000) AS bucketStart FROM summaries_{{member}} WHERE late IS TRUE)
GROUP BY bucketStart;
