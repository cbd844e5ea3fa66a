package dev.flagstream.runner.kinesis;

import org.apache.flink.api.common.eventtime.TimestampAssigner;
import org.apache.flink.api.common.eventtime.TimestampAssignerSupplier;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkGeneratorSupplier;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.streaming.api.functions.AssignerWithPeriodicWatermarks;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.util.clock.RelativeClock;
import org.apache.flink.util.clock.SystemClock;

import java.util.Objects;

/**
 * Adapts a (new-API) {@link WatermarkStrategy} - e.g. the one the table planner hands to a source
 * via {@code SupportsWatermarkPushDown} - to the old {@link AssignerWithPeriodicWatermarks} API
 * that {@code FlinkKinesisConsumer#setPeriodicWatermarkAssigner} takes.
 *
 * <p>The consumer clones the assigner (Java serialization) once per shard, so each shard gets its
 * own {@link WatermarkGenerator}; it is created lazily on first use in the clone (the strategy
 * itself is serializable, the generator need not be). The consumer calls {@link
 * #extractTimestamp} and then {@link #getCurrentWatermark} for every record of a shard (from that
 * shard's consumer thread) and emits the minimum over the shards' latest watermarks.
 *
 * <p>Idleness signals of the generator ({@code markIdle}) are ignored: shard idleness is handled
 * by the consumer ({@code flink.shard.idle.interval}, table option {@code scan.shard.idle.interval}).
 */
public final class WatermarkStrategyAssigner<T> implements AssignerWithPeriodicWatermarks<T> {
    private static final long serialVersionUID = 1L;

    private final WatermarkStrategy<T> strategy;

    private transient TimestampAssigner<T> timestampAssigner;
    private transient WatermarkGenerator<T> generator;
    private transient MaxWatermark output;

    public WatermarkStrategyAssigner(WatermarkStrategy<T> strategy) {
        this.strategy = Objects.requireNonNull(strategy, "strategy");
    }

    public WatermarkStrategy<T> getStrategy() {
        return strategy;
    }

    @Override
    public long extractTimestamp(T element, long previousElementTimestamp) {
        if (element == null) {
            // the consumer calls this before it skips a record that failed to deserialize
            return previousElementTimestamp;
        }
        init();
        long timestamp = timestampAssigner.extractTimestamp(element, previousElementTimestamp);
        generator.onEvent(element, timestamp, output);
        return timestamp;
    }

    @Override
    public Watermark getCurrentWatermark() {
        init();
        generator.onPeriodicEmit(output);
        return new Watermark(output.max);
    }

    private void init() {
        if (generator != null) {
            return;
        }
        // Code-generated watermark expressions are compiled with the context class loader: use the
        // one that loaded this job's classes (the shard threads normally have it already).
        Thread thread = Thread.currentThread();
        ClassLoader previous = thread.getContextClassLoader();
        thread.setContextClassLoader(WatermarkStrategyAssigner.class.getClassLoader());
        try {
            SupplierContext context = new SupplierContext();
            timestampAssigner = strategy.createTimestampAssigner(context);
            output = new MaxWatermark();
            generator = strategy.createWatermarkGenerator(context);
        } finally {
            thread.setContextClassLoader(previous);
        }
    }

    /** Keeps the highest watermark the generator emitted. */
    private static final class MaxWatermark implements WatermarkOutput {
        long max = Long.MIN_VALUE;

        @Override
        public void emitWatermark(org.apache.flink.api.common.eventtime.Watermark watermark) {
            max = Math.max(max, watermark.getTimestamp());
        }

        @Override
        public void markIdle() {}

        @Override
        public void markActive() {}
    }

    private static final class SupplierContext
            implements WatermarkGeneratorSupplier.Context, TimestampAssignerSupplier.Context {
        @Override
        public MetricGroup getMetricGroup() {
            return new UnregisteredMetricsGroup();
        }

        @Override
        public RelativeClock getInputActivityClock() {
            return SystemClock.getInstance();
        }
    }
}
