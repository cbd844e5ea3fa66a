-- Job settings (docs/counting.md §2). Nothing in an analysis waits on a watermark: rows
-- are updating aggregates, so their state is bounded by time-to-live instead.
-- * table.exec.state.ttl: every stateful operator without a STATE_TTL hint, i.e. the
--   pool's one (tenant, environment, payloadId, eventIndex) dedup, the progress and the
--   late counts. How long a
--   record's key is remembered after it was last seen (processing time): two deliveries
--   of one record are seconds apart; the horizon on top covers a backlog read unevenly
--   across shards, the stream's retention a job that was down and restores its state.
-- * mini-batches: an aggregate emits at most one update per key and second (plus the
--   retraction of the previous value), not one per event.
-- * a custom-sql pool's job (its members are custom-sql only) runs with a state TTL of its
--   own (FLAGSTREAM_CUSTOM_SQL_STATE_TTL) for every operator, the user's query included, and
--   parallelism 1: one query cannot take the cluster's memory or slots from the others.
-- * block reuse by digest: a view read by several INSERTs and members (the deduplicated
--   events) is planned once, so the job keeps ONE dedup state that every output agrees on
--   (without it, each INSERT prunes the view's columns differently and gets a dedup of its own).
SET 'table.exec.state.ttl' = '{{stateTtl}}';
SET 'table.exec.mini-batch.enabled' = 'true';
SET 'table.exec.mini-batch.allow-latency' = '1 s';
SET 'table.exec.mini-batch.size' = '1000';
SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';
{{limits}}