-- flag-evaluations: evaluations per tumbling event-time window, per the chosen
-- dimensions, counted from summary events (each counter counts at the summary's
-- endDate). Every value from the definition arrives as a bound literal.
CREATE TEMPORARY VIEW summary_counters AS
SELECT e.ts, e.environment, f.flagKey, c.variation, c.evaluations
FROM events AS e
CROSS JOIN UNNEST(e.features) AS f (flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c (variation, version, evaluations, `unknown`)
WHERE e.kind = 'summary'
  AND e.tenant = {{tenant}}{{filters}};

INSERT INTO results
SELECT {{analysisId}}, window_start, window_end{{selectDimensions}}, SUM(evaluations)
FROM TABLE(TUMBLE(TABLE summary_counters, DESCRIPTOR(ts), {{window}}))
GROUP BY window_start, window_end{{groupDimensions}};
