-- The pool's one deduplication: every record of its members' tenants, of the event kinds its
-- members read, each event (tenant, environment, payloadId, eventIndex) once: the first
-- delivery the job reads (a producer retry after a lost answer writes a record twice). The
-- dedup keeps only the key, for table.exec.state.ttl. Each member filters this view by its
-- own tenant, environment and readFrom (its kind's template): the dedup is shared, never
-- per member, so a record counts once for every member it belongs to. It passes on only the
-- columns its members' kinds read (the generator lists them): a wide map or JSON text no member
-- needs is not carried through the job.
CREATE TEMPORARY VIEW deduplicated AS
SELECT {{columns}}
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant, environment, payloadId, eventIndex ORDER BY proc_time) AS occurrence
  FROM events
  WHERE kind IN ({{kinds}})
    AND tenant IN ({{tenants}})
)
WHERE occurrence = 1;
