package dev.flagstream.runner.kinesis;

import dev.flagstream.runner.SqlRunner;
import dev.flagstream.runner.SqlRunnerPlannerTest;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.dag.Transformation;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.AssignerWithPeriodicWatermarks;
import org.apache.flink.streaming.api.operators.StreamSource;
import org.apache.flink.streaming.api.transformations.LegacySourceTransformation;
import org.apache.flink.streaming.connectors.kinesis.FlinkKinesisConsumer;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Field;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 'connector' = 'flagstream-kinesis': planned with the watermark pushed into the source, and the
 * pushed-down strategy applied per shard.
 */
class FlagstreamKinesisSourceTest {

    static final String AWS = "'aws.region'='us-east-1', 'aws.endpoint'='http://127.0.0.1:4568',"
            + " 'aws.credentials.provider'='BASIC', 'aws.credentials.basic.accesskeyid'='local',"
            + " 'aws.credentials.basic.secretkey'='local'";

    /** The events table as the control plane generates it, with the given connector (+ extra options). */
    static String eventsDdl(String connector, String extraOptions) {
        return String.join("\n",
                "CREATE TEMPORARY TABLE events (",
                "  tenant STRING, environment STRING, payloadId STRING, eventIndex INT, kind STRING, eventTime BIGINT,",
                "  `key` STRING, variation INT,",
                "  features MAP<STRING, ROW<counters ARRAY<ROW<variation INT, version INT, `count` BIGINT, `unknown` BOOLEAN>>>>,",
                "  ts AS TO_TIMESTAMP_LTZ(eventTime, 3),",
                "  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND(2)",
                ") WITH ('connector'='" + connector + "', 'stream'='flagstream-events', " + AWS + ",",
                "  'scan.stream.initpos'='AT_TIMESTAMP', 'scan.stream.initpos-timestamp'='1795625104',",
                "  'format'='json', 'json.ignore-parse-errors'='true', 'json.fail-on-missing-field'='false'"
                        + extraOptions + ");");
    }

    static String windowScript(String connector) {
        return String.join("\n",
                eventsDdl(connector, ""),
                "CREATE TEMPORARY TABLE results (analysisId STRING, windowStart TIMESTAMP_LTZ(3),",
                "  windowEnd TIMESTAMP_LTZ(3), flagKey STRING, variation INT, evaluations BIGINT)",
                "WITH ('connector'='kinesis', 'stream'='res', " + AWS + ", 'format'='json',",
                "  'aws.http.protocol.version'='HTTP1_1', 'sink.partitioner'='random',",
                "  'json.timestamp-format.standard'='ISO-8601');",
                "INSERT INTO results",
                "SELECT 'an-1', window_start, window_end, f.flagKey, c.variation, SUM(c.`count`)",
                "FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND)) AS e",
                "CROSS JOIN UNNEST(e.features) AS f(flagKey, flag)",
                "CROSS JOIN UNNEST(f.flag.counters) AS c(variation, version, `count`, `unknown`)",
                "WHERE e.tenant = 'acme' AND e.kind = 'summary'",
                "GROUP BY window_start, window_end, f.flagKey, c.variation;");
    }

    private static String optimizedPlan(String plan) {
        return plan.substring(plan.indexOf("== Optimized Physical Plan =="));
    }

    @Test
    void watermarkIsPushedIntoTheSourceAndTheWindowAggregatePlans() {
        String plan = SqlRunner.explain(windowScript("flagstream-kinesis"));
        String optimized = optimizedPlan(plan);

        assertFalse(optimized.contains("WatermarkAssigner"), plan);
        assertTrue(optimized.contains("TableSourceScan(table=[[default_catalog, default_database, events, watermark=["), plan);
        assertTrue(optimized.contains("GlobalWindowAggregate"), plan);
        assertTrue(optimized.contains("Sink(table=[default_catalog.default_database.results]"), plan);
    }

    @Test
    void legacyKinesisSourceStillPlansWithASeparateWatermarkAssigner() {
        String plan = SqlRunner.explain(windowScript("kinesis"));
        String optimized = optimizedPlan(plan);

        assertTrue(optimized.contains("WatermarkAssigner"), plan);
        assertTrue(optimized.contains("GlobalWindowAggregate"), plan);
    }

    @Test
    void unknownTopLevelOptionIsRejectedLikeTheLegacySource() {
        Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class, () -> SqlRunner.explain(
                windowScript("flagstream-kinesis").replace("'json.fail-on-missing-field'='false');",
                        "'json.fail-on-missing-field'='false', 'bogus'='1');")));
        String all = e.toString() + (e.getCause() == null ? "" : e.getCause().toString());
        assertTrue(all.contains("bogus"), all);
    }

    /** Plans "SELECT * FROM events" into a DataStream and returns the source function the planner built. */
    private static FlinkKinesisConsumer<RowData> plannedConsumer(String extraOptions) {
        return plannedConsumerOf(eventsDdl("flagstream-kinesis", extraOptions));
    }

    private static FlinkKinesisConsumer<RowData> plannedConsumerOf(String eventsDdl) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        StreamTableEnvironment tEnv = StreamTableEnvironment.create(env, EnvironmentSettings.inStreamingMode());
        tEnv.executeSql(eventsDdl.replaceAll(";\\s*$", ""));
        Transformation<?> root = tEnv.toDataStream(tEnv.sqlQuery("SELECT * FROM events")).getTransformation();
        Deque<Transformation<?>> todo = new ArrayDeque<>();
        todo.push(root);
        while (!todo.isEmpty()) {
            Transformation<?> t = todo.pop();
            if (t instanceof LegacySourceTransformation) {
                StreamSource<?, ?> op = ((LegacySourceTransformation<?>) t).getOperator();
                @SuppressWarnings("unchecked")
                FlinkKinesisConsumer<RowData> c = (FlinkKinesisConsumer<RowData>) op.getUserFunction();
                return c;
            }
            t.getInputs().forEach(todo::push);
        }
        throw new AssertionError("no legacy source in the plan");
    }

    /**
     * Analyses declare no watermark (docs/counting.md §2): the events table the generator writes
     * reads through the same consumer, without a watermark assigner or start gate.
     */
    @Test
    void generatedEventsTableReadsWithoutAWatermark() throws Exception {
        String script = SqlRunnerPlannerTest.generatedScript();
        int from = script.indexOf("CREATE TEMPORARY TABLE events (");
        String ddl = script.substring(from, script.indexOf(");", from) + 2);
        assertTrue(ddl.contains("'connector' = 'flagstream-kinesis'"), ddl);
        assertFalse(ddl.contains("WATERMARK"), ddl);

        FlinkKinesisConsumer<RowData> consumer = plannedConsumerOf(ddl);
        assertTrue(consumer instanceof PerShardWatermarkKinesisConsumer, consumer.getClass().getName());
        assertNull(consumer.getPeriodicWatermarkAssigner());
        assertEquals("AT_TIMESTAMP", configProps(consumer).getProperty("flink.stream.initpos"));
    }

    private static Properties configProps(FlinkKinesisConsumer<?> consumer) throws Exception {
        Field f = FlinkKinesisConsumer.class.getDeclaredField("configProps");
        f.setAccessible(true);
        return (Properties) f.get(consumer);
    }

    private static RowData event(long eventTime) {
        GenericRowData row = new GenericRowData(9);
        row.setField(0, StringData.fromString(""));
        row.setField(4, StringData.fromString("heartbeat"));
        row.setField(5, eventTime);
        return row;
    }

    /**
     * The strategy the real planner pushed down (computed column ts + "ts - 5 s", code-generated),
     * applied the way the consumer does: one clone per shard, subtask watermark = min over shards.
     */
    @Test
    void plannedStrategyIsAppliedPerShard() throws Exception {
        FlinkKinesisConsumer<RowData> consumer = plannedConsumer("");
        assertTrue(consumer instanceof PerShardWatermarkKinesisConsumer, consumer.getClass().getName());
        AssignerWithPeriodicWatermarks<RowData> assigner = consumer.getPeriodicWatermarkAssigner();
        assertNotNull(assigner, "no watermark assigner: the planner did not push the watermark down");
        assertEquals("10000", configProps(consumer).getProperty("flink.shard.idle.interval"));

        AssignerWithPeriodicWatermarks<RowData> shardA = InstantiationUtil.clone(assigner);
        AssignerWithPeriodicWatermarks<RowData> shardB = InstantiationUtil.clone(assigner);
        long t0 = 1_800_000_000_000L;
        // shard A's whole minute of backlog is emitted before shard B's first record
        for (int i = 0; i <= 60; i += 2) {
            shardA.extractTimestamp(event(t0 + i * 1000L), Long.MIN_VALUE);
        }
        assertEquals(t0 + 55_000, shardA.getCurrentWatermark().getTimestamp());
        shardB.extractTimestamp(event(t0 + 3_000), Long.MIN_VALUE);
        assertEquals(t0 - 2_000, shardB.getCurrentWatermark().getTimestamp());
        long subtask = Math.min(shardA.getCurrentWatermark().getTimestamp(), shardB.getCurrentWatermark().getTimestamp());
        // B's events at t0+3s.. are not late: the subtask watermark follows the slowest shard
        assertEquals(t0 - 2_000, subtask);
        // watermarks never go back
        shardB.extractTimestamp(event(t0), Long.MIN_VALUE);
        assertEquals(t0 - 2_000, shardB.getCurrentWatermark().getTimestamp());
        // a record that failed to deserialize (null) is passed through
        assertEquals(42L, shardB.extractTimestamp(null, 42L));
    }

    @Test
    void shardIdleIntervalCanBeOverriddenWithTheLegacyScanOption() throws Exception {
        FlinkKinesisConsumer<RowData> consumer = plannedConsumer(", 'scan.shard.idle.interval'='3000'");
        assertEquals("3000", configProps(consumer).getProperty("flink.shard.idle.interval"));
    }

    /** The adapter alone, with a DataStream-style strategy: cloned per shard, lazily initialised. */
    @Test
    void adapterClonesAreIndependentPerShard() throws Exception {
        WatermarkStrategy<Long> strategy = WatermarkStrategy.<Long>forBoundedOutOfOrderness(Duration.ofSeconds(5))
                .withTimestampAssigner((e, ts) -> e);
        WatermarkStrategyAssigner<Long> template = new WatermarkStrategyAssigner<>(strategy);
        WatermarkStrategyAssigner<Long> a = InstantiationUtil.clone(template);
        WatermarkStrategyAssigner<Long> b = InstantiationUtil.clone(template);

        assertEquals(20_000L, a.extractTimestamp(20_000L, 0));
        a.extractTimestamp(60_000L, 0);
        b.extractTimestamp(12_000L, 0);
        // bounded out-of-orderness: max - 5 s - 1 ms
        assertEquals(54_999L, a.getCurrentWatermark().getTimestamp());
        assertEquals(6_999L, b.getCurrentWatermark().getTimestamp());
        assertEquals(6_999L, Math.min(a.getCurrentWatermark().getTimestamp(), b.getCurrentWatermark().getTimestamp()));
        // before any record: no watermark yet
        assertEquals(Long.MIN_VALUE, InstantiationUtil.clone(template).getCurrentWatermark().getTimestamp());
    }

    @Test
    void startGateHoldsTheWatermarkUntilEveryShardEmittedOrTheWaitIsOver() {
        ShardStartGate gate = new ShardStartGate(10_000);
        assertFalse(gate.holding(0));
        gate.registered(0, 1_000);
        gate.registered(1, 1_000);
        gate.emitted(0);
        assertTrue(gate.holding(2_000), "shard 1 has not emitted yet");
        gate.emitted(1);
        assertFalse(gate.holding(2_000));
        // a shard discovered later (resharding) that never delivers: held for at most the wait
        gate.registered(2, 5_000);
        assertTrue(gate.holding(14_999));
        assertFalse(gate.holding(15_000));
        assertFalse(gate.holding(16_000));
    }
}
