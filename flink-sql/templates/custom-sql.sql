-- custom-sql, member {{member}} of the pool: the tenant's own query (params.sql, ONE SELECT) over
-- the view `events`. The query never appears in the script as text: the directive at the end
-- carries it base64-encoded, and the runner (SandboxedQuery) parses it with Flink's own SQL
-- parser, refuses anything but one query that reads only `events` (no other table or view,
-- no hints, no user functions or table functions but the window TVFs), rewrites each `events`
-- to this member's events_{{member}} and builds rows_{{member}} from the query's columns.

-- `events` as the query sees it: the tenant's events (tenant implied, no such column), of its
-- environment if the analysis names one, received from readFrom on, within the lateness
-- horizon; each event once (the pool's dedup). Columns:
--   environment  STRING   the LaunchDarkly environment the event was sent to
--   kind         STRING   'feature', 'custom', 'index', 'identify' or 'summary'
--   eventTime    BIGINT   the time the event counts at, epoch ms (the SDK's time, bounded by the server's)
--   eventTs      TIMESTAMP_LTZ(3)  eventTime as a timestamp
--   receivedAt   BIGINT   when the events API received it, epoch ms
--   flagKey      STRING   feature events: the flag's key (else NULL)
--   variation    BIGINT   feature events: the variation served
--   flagVersion  BIGINT   feature events: the flag's version
--   value        STRING   feature events: the value served, as JSON text
--   eventKey     STRING   custom events: the event's key (else NULL)
--   metricValue  DOUBLE   custom events: the metric value, if sent
--   contextKey   STRING   the context's canonical key (a user's key; else kind:key, multi-kind contexts
--                        kind:key pairs sorted by kind and joined with ':')
--   contextKeys  MAP<STRING, STRING>  the context's key per context kind
--   features     MAP<STRING, ROW<counters ARRAY<ROW<variation BIGINT, version BIGINT, `count` BIGINT,
--                `unknown` BOOLEAN>>>>  summary events: the counters per flag key
--   proc_time    TIMESTAMP_LTZ(3) *PROCTIME*  processing time, the time attribute for windows:
--                TABLE(TUMBLE(TABLE events, DESCRIPTOR(proc_time), INTERVAL '1' MINUTE)) (also HOP,
--                CUMULATE, SESSION) or GROUP BY TUMBLE(proc_time, INTERVAL '1' MINUTE). No event-time
--                attribute (the job has no watermark): group by eventTime arithmetic for event-time buckets.
-- The columns from flagKey to features come from the generator: each one the query may name
-- (customQueryColumns: by name, `*` or NATURAL), the others NULL of their type, so that the
-- pool's dedup carries only what its queries read.
CREATE TEMPORARY VIEW events_{{member}} AS
SELECT
  environment,
  kind,
  eventTime,
  TO_TIMESTAMP_LTZ(eventTime, 3) AS eventTs,
  receivedAt,
{{optionalColumns}}
  PROCTIME() AS proc_time
FROM deduplicated
WHERE kind IN ('feature', 'custom', 'index', 'identify', 'summary')
  AND tenant = {{tenant}}{{eventFilters}}
  AND receivedAt >= {{readFrom}}
  AND late IS NOT TRUE;

-- The tenant's events older than the lateness horizon (every kind the query could read) count
-- nowhere else: per minute they were received.
CREATE TEMPORARY VIEW late_{{member}} AS
SELECT {{analysisId}} AS analysisId, {{generation}} AS generation, 'late' AS `type`,
  TO_TIMESTAMP_LTZ(bucketStart, 3) AS bucketStart, COUNT(*) AS lateEvents
FROM (
  SELECT receivedAt - MOD(receivedAt, 60000) AS bucketStart
  FROM deduplicated
  WHERE kind IN ('feature', 'custom', 'index', 'identify', 'summary')
    AND tenant = {{tenant}}{{eventFilters}} AND receivedAt >= {{readFrom}} AND late IS TRUE
)
GROUP BY bucketStart;

-- The runner's directive: rows_{{member}} = analysisId, generation, type 'custom', windowStart /
-- windowEnd (the query's window_start / window_end, else NULL), fields = every column of the
-- query as one JSON object keyed by column name, version 0. A grouped query updates its rows
-- (a retraction, then the new row): the control plane keeps custom rows as a multiset.
CREATE TEMPORARY VIEW rows_{{member}} AS SANDBOXED QUERY '{{query}}' OVER events_{{member}} FOR ANALYSIS '{{analysisUuid}}' GENERATION {{generationNumber}};
