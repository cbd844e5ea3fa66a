-- flag-evaluations: evaluations per tumbling event-time window, per the chosen
-- dimensions, counted from summary events (each counter counts at the summary's
-- endDate). Every value from the definition arrives as a bound literal.

-- Within its window an event (payloadId, eventIndex) counts once, even when the
-- stream delivers its record twice (a producer retry after a lost answer).
CREATE TEMPORARY VIEW summaries AS
SELECT window_start, window_end, environment, features
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, payloadId, eventIndex ORDER BY ts) AS occurrence
  FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), {{window}}))
  WHERE kind = 'summary'
    AND tenant = {{tenant}}{{eventFilters}}
)
WHERE occurrence = 1;

INSERT INTO results
SELECT {{analysisId}}, e.window_start, e.window_end{{selectDimensions}}, SUM(c.evaluations)
FROM summaries AS e
CROSS JOIN UNNEST(e.features) AS f (flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c (variation, version, evaluations, `unknown`){{counterFilters}}
GROUP BY e.window_start, e.window_end{{groupDimensions}};
