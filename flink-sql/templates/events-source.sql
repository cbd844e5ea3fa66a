-- The tenant's event stream as a table. One row per SDK event record written by the
-- events API (control-plane/src/events/event-record.ts). `ts` is the event time:
-- a summary counts at its endDate, any other event at its creationDate. Heartbeat
-- records (tenant '') advance the watermark on every shard and match no tenant.
CREATE TEMPORARY TABLE events (
  tenant STRING,
  environment STRING,
  payloadId STRING,
  eventIndex INT,
  kind STRING,
  eventTime BIGINT,
  `key` STRING,
  variation INT,
  features MAP<STRING, ROW<counters ARRAY<ROW<variation INT, version INT, `count` BIGINT, `unknown` BOOLEAN>>>>,
  ts AS TO_TIMESTAMP_LTZ(eventTime, 3),
  WATERMARK FOR ts AS ts - {{allowedLateness}}
) WITH (
{{sourceOptions}}
);
