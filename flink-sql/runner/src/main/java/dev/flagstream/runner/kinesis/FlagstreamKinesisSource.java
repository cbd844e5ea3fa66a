package dev.flagstream.runner.kinesis;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.streaming.connectors.kinesis.KinesisShardAssigner;
import org.apache.flink.streaming.connectors.kinesis.serialization.KinesisDeserializationSchema;
import org.apache.flink.streaming.connectors.kinesis.serialization.KinesisDeserializationSchemaWrapper;
import org.apache.flink.streaming.connectors.kinesis.table.KinesisDynamicShardAssignerFactory;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.ScanTableSource;
import org.apache.flink.table.connector.source.SourceFunctionProvider;
import org.apache.flink.table.connector.source.abilities.SupportsWatermarkPushDown;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.DataType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Objects;
import java.util.Properties;
import java.util.ServiceLoader;

/**
 * Kinesis scan source ('connector' = 'flagstream-kinesis'): the legacy {@code FlinkKinesisConsumer}
 * (same consumer properties, deserialization and shard assigner as the connector's 'kinesis'
 * source) plus {@link SupportsWatermarkPushDown}. The planner hands over the table's watermark
 * strategy instead of adding a WatermarkAssigner operator after the source, and the strategy is
 * applied per shard inside the consumer ({@link WatermarkStrategyAssigner}); the subtask's
 * watermark is the minimum over its (non-idle) shards ({@link PerShardWatermarkKinesisConsumer}).
 *
 * <p>Not supported (unlike 'kinesis'): METADATA columns (the connector's metadata enum is not
 * public); declare them on a 'kinesis' table if ever needed.
 */
public final class FlagstreamKinesisSource
        implements ScanTableSource, SupportsWatermarkPushDown {
    private static final Logger LOG = LoggerFactory.getLogger(FlagstreamKinesisSource.class);

    private final DataType physicalDataType;
    private final String stream;
    private final String shardAssignerId;
    private final Properties consumerProperties;
    private final DecodingFormat<DeserializationSchema<RowData>> decodingFormat;

    private WatermarkStrategy<RowData> watermarkStrategy;

    public FlagstreamKinesisSource(DataType physicalDataType, String stream, String shardAssignerId,
            Properties consumerProperties, DecodingFormat<DeserializationSchema<RowData>> decodingFormat) {
        this.physicalDataType = Objects.requireNonNull(physicalDataType);
        this.stream = Objects.requireNonNull(stream);
        this.shardAssignerId = Objects.requireNonNull(shardAssignerId);
        this.consumerProperties = Objects.requireNonNull(consumerProperties);
        this.decodingFormat = Objects.requireNonNull(decodingFormat);
    }

    public Properties getConsumerProperties() {
        return consumerProperties;
    }

    public WatermarkStrategy<RowData> getWatermarkStrategy() {
        return watermarkStrategy;
    }

    @Override
    public ChangelogMode getChangelogMode() {
        return decodingFormat.getChangelogMode();
    }

    @Override
    public ScanRuntimeProvider getScanRuntimeProvider(ScanContext context) {
        DeserializationSchema<RowData> decoder = decodingFormat.createRuntimeDecoder(context, physicalDataType);
        KinesisDeserializationSchema<RowData> schema = new KinesisDeserializationSchemaWrapper<>(decoder);
        PerShardWatermarkKinesisConsumer<RowData> consumer =
                new PerShardWatermarkKinesisConsumer<>(stream, schema, consumerProperties);
        KinesisShardAssigner assigner = findShardAssigner(shardAssignerId);
        if (assigner != null) {
            consumer.setShardAssigner(assigner);
        } else {
            LOG.warn("No shard assigner '{}' found; using the consumer's default.", shardAssignerId);
        }
        if (watermarkStrategy != null) {
            consumer.setPeriodicWatermarkAssigner(new WatermarkStrategyAssigner<>(watermarkStrategy));
        }
        return SourceFunctionProvider.of(consumer, false);
    }

    private static KinesisShardAssigner findShardAssigner(String id) {
        for (KinesisDynamicShardAssignerFactory f : ServiceLoader.load(
                KinesisDynamicShardAssignerFactory.class, FlagstreamKinesisSource.class.getClassLoader())) {
            if (f.shardAssignerIdentifer().equals(id)) {
                return f.getShardAssigner();
            }
        }
        return null;
    }

    @Override
    public void applyWatermark(WatermarkStrategy<RowData> watermarkStrategy) {
        this.watermarkStrategy = watermarkStrategy;
    }

    @Override
    public DynamicTableSource copy() {
        FlagstreamKinesisSource c = new FlagstreamKinesisSource(
                physicalDataType, stream, shardAssignerId, consumerProperties, decodingFormat);
        c.watermarkStrategy = watermarkStrategy;
        return c;
    }

    @Override
    public String asSummaryString() {
        return "FlagstreamKinesis";
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof FlagstreamKinesisSource)) {
            return false;
        }
        FlagstreamKinesisSource that = (FlagstreamKinesisSource) o;
        return physicalDataType.equals(that.physicalDataType) && stream.equals(that.stream)
                && shardAssignerId.equals(that.shardAssignerId)
                && consumerProperties.equals(that.consumerProperties)
                && decodingFormat.equals(that.decodingFormat)
                && Objects.equals(watermarkStrategy, that.watermarkStrategy);
    }

    @Override
    public int hashCode() {
        return Objects.hash(physicalDataType, stream, shardAssignerId, consumerProperties);
    }
}
