package dev.flagstream.runner.kinesis;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Holds back a consumer subtask's watermark while one of its shards has not delivered its first
 * record yet.
 *
 * <p>Why: the legacy Kinesis fetcher computes the subtask watermark as the minimum over the shards
 * that have emitted at least one record; a shard without any record is not part of the minimum. So
 * right after (re)start, when shard A's consumer thread emits a batch of backlog before shard B's
 * first GetRecords returned, the periodic emitter would emit A's watermark and B's older records
 * would be late. The gate closes that window: no watermark while a shard registered less than
 * {@code maxWaitMillis} ago has not emitted a record (an empty or finished shard only delays the
 * watermark by {@code maxWaitMillis}; after that the fetcher's own idleness rules apply).
 */
final class ShardStartGate {
    private final long maxWaitMillis;
    /** shard state index -> registration time, for shards that emitted no record yet. */
    private final Map<Integer, Long> waiting = new ConcurrentHashMap<>();

    ShardStartGate(long maxWaitMillis) {
        this.maxWaitMillis = maxWaitMillis;
    }

    void registered(int shardIndex, long nowMillis) {
        waiting.putIfAbsent(shardIndex, nowMillis);
    }

    void emitted(int shardIndex) {
        if (!waiting.isEmpty()) {
            waiting.remove(shardIndex);
        }
    }

    /** True if the watermark must not be emitted now. */
    boolean holding(long nowMillis) {
        if (waiting.isEmpty()) {
            return false;
        }
        waiting.values().removeIf(since -> nowMillis - since >= maxWaitMillis);
        return !waiting.isEmpty();
    }
}
