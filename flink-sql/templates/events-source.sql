-- The event stream as a table: one row per record the events API writes
-- (control-plane/src/events/event-record.ts), plus the control plane's heartbeats
-- ({"kind":"heartbeat","tenant":"","shard":"<shard it was written to>","eventTime":…}).
-- eventTime (ms) is the SDK's time bounded by the server's clock; receivedAt (ms) the
-- server's receive time; late = older than the lateness horizon (docs/counting.md §1).
-- contextKeys = the context's key per kind, contextKey its canonical key (both written by
-- the events API from `context` or `contextKeys`); `key` is a feature event's flag key or a
-- custom event's event key.
-- No WATERMARK: windows are computed from eventTime, not closed by a watermark (§2).
-- Integers are BIGINT: a value beyond the declared type fails the record's decoding, and
-- json.ignore-parse-errors drops the whole record without a trace. Add a column only
-- with a type every valid event's field fits (STRING takes any JSON value as text).
-- Named `events`, or `events_stream` when the pool also reads the data lake (lake-source.sql
-- then defines the view `events` over both).
CREATE TEMPORARY TABLE {{table}} (
  tenant STRING,
  environment STRING,
  payloadId STRING,
  eventIndex BIGINT,
  kind STRING,
  eventTime BIGINT,
  receivedAt BIGINT,
  late BOOLEAN,
  shard STRING,
  `key` STRING,
  variation BIGINT,
  version BIGINT,
  `value` STRING,
  context STRING,
  contextKey STRING,
  contextKeys MAP<STRING, STRING>,
  metricValue DOUBLE,
  features MAP<STRING, ROW<counters ARRAY<ROW<variation BIGINT, version BIGINT, `count` BIGINT, `unknown` BOOLEAN>>>>,
  proc_time AS PROCTIME()
) WITH (
{{sourceOptions}}
);
