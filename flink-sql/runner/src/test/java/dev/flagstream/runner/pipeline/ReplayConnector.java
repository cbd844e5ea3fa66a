package dev.flagstream.runner.pipeline;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.serialization.RuntimeContextInitializationContextAdapters;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kinesis.table.RowDataFieldsKinesisPartitionKeyGenerator;
import org.apache.flink.streaming.api.functions.sink.RichSinkFunction;
import org.apache.flink.streaming.api.functions.source.RichSourceFunction;
import org.apache.flink.table.catalog.ResolvedCatalogTable;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.format.EncodingFormat;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.sink.SinkFunctionProvider;
import org.apache.flink.table.connector.sink.abilities.SupportsPartitioning;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.ScanTableSource;
import org.apache.flink.table.connector.source.SourceFunctionProvider;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableSinkFactory;
import org.apache.flink.table.factories.DynamicTableSourceFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.SerializationFormatFactory;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Test-only stand-in for the Kinesis source and sink ('connector' = 'flagstream-replay'), so a
 * generated script runs on a MiniCluster with only its connector names swapped: every other
 * option is accepted and ignored, except the format ones, which go to the REAL format factories
 * (the source decodes records with 'json' and its json.* options, the sink encodes with
 * 'debezium-json'). Like {@code KinesisDynamicSink} the sink takes the format's changelog mode and
 * keys each record with {@link RowDataFieldsKinesisPartitionKeyGenerator} over the table's
 * PARTITIONED BY columns.
 *
 * <p>"Streams" are static lists keyed by the table's 'stream' option (the MiniCluster runs in
 * the test's JVM). A source plays its list in order, sleeping at {@link #pause} entries (so
 * mini-batches flush in between), then ends.
 */
public final class ReplayConnector implements DynamicTableSourceFactory, DynamicTableSinkFactory {
    public static final String IDENTIFIER = "flagstream-replay";

    private static final Map<String, List<Object>> INPUTS = new ConcurrentHashMap<>();
    private static final Map<String, List<Output>> OUTPUTS = new ConcurrentHashMap<>();

    /** One record as the sink wrote it. */
    public static final class Output {
        public final String partitionKey;
        public final String data;

        Output(String partitionKey, String data) {
            this.partitionKey = partitionKey;
            this.data = data;
        }

        @Override
        public String toString() {
            return partitionKey + " " + data;
        }
    }

    /** A marker in a source's list: sleep this long before the next record. */
    public static Object pause(long millis) {
        return Long.valueOf(millis);
    }

    /** The records (String: UTF-8 bytes of a record; Long: a pause) a source with 'stream' = name plays. */
    public static void input(String stream, List<Object> records) {
        INPUTS.put(stream, new ArrayList<>(records));
    }

    /** What the sinks with 'stream' = name wrote so far, in order. */
    public static List<Output> output(String stream) {
        return new ArrayList<>(OUTPUTS.getOrDefault(stream, Collections.emptyList()));
    }

    public static void reset() {
        INPUTS.clear();
        OUTPUTS.clear();
    }

    private static final ConfigOption<String> STREAM = org.apache.flink.configuration.ConfigOptions
            .key("stream").stringType().noDefaultValue();

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(STREAM, FactoryUtil.FORMAT);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of();
    }

    @Override
    public DynamicTableSource createDynamicTableSource(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        DecodingFormat<DeserializationSchema<RowData>> format =
                helper.discoverDecodingFormat(DeserializationFormatFactory.class, FactoryUtil.FORMAT);
        return new Source(helper.getOptions().get(STREAM), format,
                context.getCatalogTable().getResolvedSchema().toPhysicalRowDataType());
    }

    @Override
    public DynamicTableSink createDynamicTableSink(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        EncodingFormat<SerializationSchema<RowData>> format =
                helper.discoverEncodingFormat(SerializationFormatFactory.class, FactoryUtil.FORMAT);
        ResolvedCatalogTable table = context.getCatalogTable();
        DataType rowType = table.getResolvedSchema().toPhysicalRowDataType();
        return new Sink(helper.getOptions().get(STREAM), format, rowType, table.getPartitionKeys());
    }

    static final class Source implements ScanTableSource {
        private final String stream;
        private final DecodingFormat<DeserializationSchema<RowData>> format;
        private final DataType rowType;

        Source(String stream, DecodingFormat<DeserializationSchema<RowData>> format, DataType rowType) {
            this.stream = stream;
            this.format = format;
            this.rowType = rowType;
        }

        @Override
        public ChangelogMode getChangelogMode() {
            return format.getChangelogMode();
        }

        @Override
        public ScanRuntimeProvider getScanRuntimeProvider(ScanContext context) {
            return SourceFunctionProvider.of(new Player(stream, format.createRuntimeDecoder(context, rowType)), true);
        }

        @Override
        public DynamicTableSource copy() {
            return new Source(stream, format, rowType);
        }

        @Override
        public String asSummaryString() {
            return IDENTIFIER;
        }
    }

    static final class Player extends RichSourceFunction<RowData> {
        private final String stream;
        private final DeserializationSchema<RowData> decoder;
        private volatile boolean running = true;

        Player(String stream, DeserializationSchema<RowData> decoder) {
            this.stream = stream;
            this.decoder = decoder;
        }

        @Override
        public void open(Configuration parameters) throws Exception {
            decoder.open(RuntimeContextInitializationContextAdapters.deserializationAdapter(getRuntimeContext()));
        }

        @Override
        public void run(SourceContext<RowData> ctx) throws Exception {
            for (Object item : INPUTS.getOrDefault(stream, Collections.emptyList())) {
                if (!running) {
                    return;
                }
                if (item instanceof Long) {
                    Thread.sleep((Long) item);
                    continue;
                }
                // what the Kinesis source does: the format decodes the record's bytes; with
                // json.ignore-parse-errors an undecodable record is null and skipped
                RowData row = decoder.deserialize(((String) item).getBytes(StandardCharsets.UTF_8));
                if (row != null) {
                    synchronized (ctx.getCheckpointLock()) {
                        ctx.collect(row);
                    }
                }
            }
        }

        @Override
        public void cancel() {
            running = false;
        }
    }

    static final class Sink implements DynamicTableSink, SupportsPartitioning {
        private final String stream;
        private final EncodingFormat<SerializationSchema<RowData>> format;
        private final DataType rowType;
        private final List<String> partitionKeys;

        Sink(String stream, EncodingFormat<SerializationSchema<RowData>> format, DataType rowType, List<String> partitionKeys) {
            this.stream = stream;
            this.format = format;
            this.rowType = rowType;
            this.partitionKeys = partitionKeys;
        }

        @Override
        public ChangelogMode getChangelogMode(ChangelogMode requestedMode) {
            return format.getChangelogMode(); // as KinesisDynamicSink does
        }

        @Override
        public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
            return SinkFunctionProvider.of(new Writer(stream, format.createRuntimeEncoder(context, rowType),
                    new RowDataFieldsKinesisPartitionKeyGenerator((RowType) rowType.getLogicalType(), partitionKeys)));
        }

        @Override
        public void applyStaticPartition(Map<String, String> partition) {
            if (!partition.isEmpty()) {
                throw new UnsupportedOperationException("static partitions");
            }
        }

        @Override
        public DynamicTableSink copy() {
            return new Sink(stream, format, rowType, partitionKeys);
        }

        @Override
        public String asSummaryString() {
            return IDENTIFIER;
        }
    }

    static final class Writer extends RichSinkFunction<RowData> {
        private final String stream;
        private final SerializationSchema<RowData> encoder;
        private final RowDataFieldsKinesisPartitionKeyGenerator partitioner;

        Writer(String stream, SerializationSchema<RowData> encoder, RowDataFieldsKinesisPartitionKeyGenerator partitioner) {
            this.stream = stream;
            this.encoder = encoder;
            this.partitioner = partitioner;
        }

        @Override
        public void open(Configuration parameters) throws Exception {
            encoder.open(RuntimeContextInitializationContextAdapters.serializationAdapter(getRuntimeContext()));
        }

        @Override
        public void invoke(RowData row, Context context) {
            Output out = new Output(partitioner.apply(row), new String(encoder.serialize(row), StandardCharsets.UTF_8));
            OUTPUTS.computeIfAbsent(stream, s -> Collections.synchronizedList(new ArrayList<>())).add(out);
        }
    }
}
