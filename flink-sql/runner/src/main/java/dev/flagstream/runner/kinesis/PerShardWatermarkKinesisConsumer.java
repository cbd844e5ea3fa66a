package dev.flagstream.runner.kinesis;

import org.apache.flink.api.common.functions.RuntimeContext;
import org.apache.flink.streaming.api.functions.source.SourceFunction;
import org.apache.flink.streaming.connectors.kinesis.FlinkKinesisConsumer;
import org.apache.flink.streaming.connectors.kinesis.config.ConsumerConfigConstants;
import org.apache.flink.streaming.connectors.kinesis.internals.KinesisDataFetcher;
import org.apache.flink.streaming.connectors.kinesis.model.KinesisStreamShardState;
import org.apache.flink.streaming.connectors.kinesis.model.SentinelSequenceNumber;
import org.apache.flink.streaming.connectors.kinesis.model.SequenceNumber;
import org.apache.flink.streaming.connectors.kinesis.serialization.KinesisDeserializationSchema;

import java.util.List;
import java.util.Properties;

/**
 * The legacy {@link FlinkKinesisConsumer} (per-shard watermarks via {@link
 * #setPeriodicWatermarkAssigner}) whose fetcher additionally holds the watermark back until every
 * subscribed shard has emitted its first record (see {@link ShardStartGate}); bounded by the
 * shard idle interval ({@code flink.shard.idle.interval}, or {@link #DEFAULT_START_WAIT_MILLIS}
 * when that is not positive).
 */
public class PerShardWatermarkKinesisConsumer<T> extends FlinkKinesisConsumer<T> {
    private static final long serialVersionUID = 1L;

    static final long DEFAULT_START_WAIT_MILLIS = 10_000L;

    public PerShardWatermarkKinesisConsumer(
            String stream, KinesisDeserializationSchema<T> deserializer, Properties configProps) {
        super(stream, deserializer, configProps);
    }

    @Override
    protected KinesisDataFetcher<T> createFetcher(
            List<String> streams,
            SourceFunction.SourceContext<T> sourceContext,
            RuntimeContext runtimeContext,
            Properties configProps,
            KinesisDeserializationSchema<T> deserializationSchema) {
        if (getPeriodicWatermarkAssigner() == null) {
            return super.createFetcher(streams, sourceContext, runtimeContext, configProps, deserializationSchema);
        }
        long idle = Long.parseLong(configProps.getProperty(
                ConsumerConfigConstants.SHARD_IDLE_INTERVAL_MILLIS,
                Long.toString(ConsumerConfigConstants.DEFAULT_SHARD_IDLE_INTERVAL_MILLIS)));
        return new GatedFetcher<>(streams, sourceContext, runtimeContext, configProps, deserializationSchema,
                this, new ShardStartGate(idle > 0 ? idle : DEFAULT_START_WAIT_MILLIS));
    }

    /** The connector's fetcher plus the {@link ShardStartGate}. */
    static final class GatedFetcher<T> extends KinesisDataFetcher<T> {
        private final ShardStartGate gate;

        GatedFetcher(List<String> streams, SourceFunction.SourceContext<T> sourceContext,
                RuntimeContext runtimeContext, Properties configProps,
                KinesisDeserializationSchema<T> deserializationSchema,
                FlinkKinesisConsumer<T> consumer, ShardStartGate gate) {
            super(streams, sourceContext, runtimeContext, configProps, deserializationSchema,
                    consumer.getShardAssigner(), consumer.getPeriodicWatermarkAssigner(),
                    consumer.getWatermarkTracker());
            this.gate = gate;
        }

        @Override
        public int registerNewSubscribedShardState(KinesisStreamShardState state) {
            int index = super.registerNewSubscribedShardState(state);
            if (!SentinelSequenceNumber.SENTINEL_SHARD_ENDING_SEQUENCE_NUM.get()
                    .equals(state.getLastProcessedSequenceNum())) {
                gate.registered(index, getCurrentTimeMillis());
            }
            return index;
        }

        @Override
        protected void emitRecordAndUpdateState(
                T record, long recordTimestamp, int shardStateIndex, SequenceNumber lastSequenceNumber) {
            super.emitRecordAndUpdateState(record, recordTimestamp, shardStateIndex, lastSequenceNumber);
            if (record != null) {
                // without watermark sync (no WatermarkTracker) the record was emitted synchronously
                // above, so the shard now takes part in the fetcher's min-over-shards watermark
                gate.emitted(shardStateIndex);
            }
        }

        @Override
        protected void emitWatermark() {
            if (!gate.holding(getCurrentTimeMillis())) {
                super.emitWatermark();
            }
        }
    }
}
