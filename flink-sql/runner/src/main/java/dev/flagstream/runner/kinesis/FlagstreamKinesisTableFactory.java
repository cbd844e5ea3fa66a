package dev.flagstream.runner.kinesis;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.connector.kinesis.table.KinesisConnectorOptions;
import org.apache.flink.streaming.connectors.kinesis.config.ConsumerConfigConstants;
import org.apache.flink.streaming.connectors.kinesis.table.KinesisConnectorOptionsUtil;
import org.apache.flink.table.catalog.ResolvedCatalogTable;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableSourceFactory;
import org.apache.flink.table.factories.FactoryUtil;

import java.util.Properties;
import java.util.Set;

/**
 * {@code 'connector' = 'flagstream-kinesis'}: a Kinesis scan source with per-shard watermarks
 * ({@link FlagstreamKinesisSource}). Accepts exactly the options of the connector's legacy
 * {@code 'kinesis'} source ({@code stream}, {@code format} + format options, {@code aws.*},
 * {@code scan.*} mapped to the consumer's {@code flink.*} properties, {@code shard-assigner}, and the
 * ignored {@code sink.partitioner*}); the only difference in behaviour besides the watermarks:
 * {@code scan.shard.idle.interval} (ms; consumer property {@code flink.shard.idle.interval})
 * defaults to {@value #DEFAULT_SHARD_IDLE_INTERVAL_MS} instead of "never idle", so a shard that
 * stops delivering records does not hold the watermark forever. Source only: the sink stays
 * {@code 'kinesis'}.
 */
public final class FlagstreamKinesisTableFactory implements DynamicTableSourceFactory {
    public static final String IDENTIFIER = "flagstream-kinesis";
    public static final String DEFAULT_SHARD_IDLE_INTERVAL_MS = "10000";

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(KinesisConnectorOptions.STREAM, FactoryUtil.FORMAT);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        // the same set the legacy 'kinesis' table source factory declares
        return Set.of(KinesisConnectorOptions.SHARD_ASSIGNER, KinesisConnectorOptions.SINK_PARTITIONER,
                KinesisConnectorOptions.SINK_PARTITIONER_FIELD_DELIMITER);
    }

    @Override
    public Set<ConfigOption<?>> forwardOptions() {
        return Set.of(KinesisConnectorOptions.STREAM, KinesisConnectorOptions.SHARD_ASSIGNER,
                KinesisConnectorOptions.SINK_PARTITIONER, KinesisConnectorOptions.SINK_PARTITIONER_FIELD_DELIMITER);
    }

    @Override
    public DynamicTableSource createDynamicTableSource(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        ReadableConfig options = helper.getOptions();
        ResolvedCatalogTable table = context.getCatalogTable();
        KinesisConnectorOptionsUtil util = new KinesisConnectorOptionsUtil(table.getOptions(), options);
        // discover the format first so that its options count as consumed in the validation below
        DecodingFormat<DeserializationSchema<RowData>> format =
                helper.discoverDecodingFormat(DeserializationFormatFactory.class, FactoryUtil.FORMAT);
        helper.validateExcept(util.getNonValidatedPrefixes().toArray(new String[0]));
        Properties consumer = util.getValidatedSourceConfigurations();
        consumer.putIfAbsent(ConsumerConfigConstants.SHARD_IDLE_INTERVAL_MILLIS, DEFAULT_SHARD_IDLE_INTERVAL_MS);
        return new FlagstreamKinesisSource(
                table.getResolvedSchema().toPhysicalRowDataType(),
                options.get(KinesisConnectorOptions.STREAM),
                options.get(KinesisConnectorOptions.SHARD_ASSIGNER),
                consumer,
                format);
    }
}
