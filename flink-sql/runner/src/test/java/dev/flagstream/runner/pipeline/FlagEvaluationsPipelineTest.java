package dev.flagstream.runner.pipeline;

import dev.flagstream.runner.SqlRunnerTestAccess;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The generated flag-evaluations script (resources/generated/flag-evaluations.sql, written by the
 * control plane's sql-generator.spec.ts) RUN on a MiniCluster: the SQL verbatim, only its
 * connectors swapped for {@link ReplayConnector} (real json decoding, real debezium-json
 * encoding, the Kinesis sink's partition keys). Fixture spec: tenant acme, environment
 * production, generation 7, window 10 s, flagKeys new-checkout and dark-mode, analysis
 * an-fixture. One job run (~5 s) feeds every case; each test checks one property of its output.
 */
class FlagEvaluationsPipelineTest {
    static final String SCRIPT = "/generated/flag-evaluations.sql";
    static final long BASE = Instant.parse("2026-11-25T16:00:00Z").toEpochMilli();
    static final long OLD = BASE - 50 * 60_000; // 50 min back: within the 1 h horizon
    static final long HUGE_VERSION = 1L << 40;
    static final long HUGE_VARIATION = 1L << 33;
    static final ObjectMapper JSON = new ObjectMapper();

    static List<ReplayConnector.Output> output;
    static List<JsonNode> records;
    static ResultsLog results;

    static String generatedScript() throws IOException {
        try (InputStream in = FlagEvaluationsPipelineTest.class.getResourceAsStream(SCRIPT)) {
            return new String(Objects.requireNonNull(in, SCRIPT).readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** The generated script with its connectors (and nothing else) replaced by the replay connector. */
    static String replayScript() throws IOException {
        return replayScript(generatedScript());
    }

    static String replayScript(String script) {
        String swapped = script
                .replace("'connector' = 'flagstream-kinesis'", "'connector' = '" + ReplayConnector.IDENTIFIER + "'")
                .replace("'connector' = 'kinesis'", "'connector' = '" + ReplayConnector.IDENTIFIER + "'");
        assertEquals(4, (swapped.length() - swapped.replace(ReplayConnector.IDENTIFIER, "").length())
                / ReplayConnector.IDENTIFIER.length(), "one source and three sinks");
        return swapped;
    }

    static String summary(String tenant, String environment, String payloadId, int eventIndex, long eventTime,
            long receivedAt, boolean late, String features) {
        return String.format("{\"kind\":\"summary\",\"tenant\":\"%s\",\"environment\":\"%s\",\"payloadId\":\"%s\","
                + "\"eventIndex\":%d,\"eventTime\":%d,\"receivedAt\":%d,\"sdkTime\":%d,\"late\":%s,"
                + "\"startDate\":%d,\"endDate\":%d,\"features\":%s}",
                tenant, environment, payloadId, eventIndex, eventTime, receivedAt, eventTime, late,
                eventTime - 5000, eventTime, features);
    }

    static String counter(long variation, long version, long count) {
        return String.format("{\"value\":true,\"variation\":%d,\"version\":%d,\"count\":%d}", variation, version, count);
    }

    static String flag(String key, String... counters) {
        return "\"" + key + "\":{\"default\":false,\"counters\":[" + String.join(",", counters) + "]}";
    }

    static String heartbeat(String shard, long eventTime) {
        return String.format("{\"kind\":\"heartbeat\",\"tenant\":\"\",\"shard\":\"%s\",\"eventTime\":%d}", shard, eventTime);
    }

    @BeforeAll
    static void runTheJob() throws Exception {
        String p1 = summary("acme", "production", "p1", 0, BASE + 1000, BASE + 1500, false,
                "{" + flag("new-checkout", counter(0, 1, 3), counter(1, 1, 4)) + "," + flag("other-flag", counter(0, 1, 100)) + "}");
        String late = summary("acme", "production", "p3", 0, BASE - 2 * 3_600_000, BASE + 61_000, true,
                "{" + flag("new-checkout", counter(0, 1, 50)) + "}");
        List<Object> events = new ArrayList<>(List.of(
                p1,
                p1, // delivered twice (a producer retry): counts once
                summary("acme", "staging", "p2", 0, BASE + 1000, BASE + 1500, false, "{" + flag("new-checkout", counter(0, 1, 1000)) + "}"),
                summary("other", "production", "p9", 0, BASE + 1000, BASE + 1500, false, "{" + flag("new-checkout", counter(0, 1, 1000)) + "}"),
                // version beyond INT (2^40) and variation beyond INT (2^33): counted, not dropped
                summary("acme", "production", "p4", 0, BASE + 2000, BASE + 2100, false,
                        "{" + flag("dark-mode", counter(HUGE_VARIATION, HUGE_VERSION, 5)) + "}"),
                heartbeat("shardId-000000000000", BASE + 2000),
                heartbeat("shardId-000000000001", BASE + 2500),
                "{\"kind\":\"heartbeat\",\"tenant\":\"\",\"eventTime\":" + (BASE + 9000) + "}", // no shard: ignored
                late,
                late, // twice: one late event
                summary("acme", "production", "p5", 0, OLD + 1234, BASE + 1600, false, "{" + flag("new-checkout", counter(0, 1, 2)) + "}"),
                "{not json",
                "{\"kind\":\"feature\",\"tenant\":\"acme\",\"environment\":\"production\",\"payloadId\":\"p6\",\"eventIndex\":0,"
                        + "\"eventTime\":" + (BASE + 1000) + ",\"key\":\"new-checkout\",\"variation\":1,\"version\":1099511627776}",
                ReplayConnector.pause(2500), // the rows above are written; what follows updates them
                summary("acme", "production", "p7", 3, OLD + 5000, BASE + 4100, false, "{" + flag("new-checkout", counter(0, 1, 10)) + "}"),
                heartbeat("shardId-000000000000", BASE + 4000),
                p1, // a third delivery, long after the first: still counted once
                ReplayConnector.pause(1500)));
        ReplayConnector.reset();
        ReplayConnector.input("flagstream-events", events);

        TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        tEnv.getConfig().set(CoreOptions.DEFAULT_PARALLELISM, 1);
        StatementSet set = SqlRunnerTestAccess.prepare(tEnv, replayScript());
        set.execute().await();

        output = ReplayConnector.output("flagstream-results");
        results = ResultsLog.of(output);
        records = results.records;
    }

    static List<JsonNode> ofType(String type) {
        return results.ofType(type);
    }

    /** The changelog applied as the control plane does: "c" upserts `after` (its fields flattened) by its key, "d" is ignored. */
    static Map<String, JsonNode> latest(String type, String... keyFields) {
        return results.latest(type, keyFields);
    }

    static String iso(long ms) {
        return Instant.ofEpochMilli(ms).toString();
    }

    @Test
    void everyRecordIsADebeziumEnvelopePartitionedByAnalysisId() {
        assertFalse(records.isEmpty());
        for (int i = 0; i < records.size(); i++) {
            JsonNode r = records.get(i);
            assertEquals("an-fixture", output.get(i).partitionKey, output.get(i).toString());
            assertEquals(List.of("before", "after", "op"), fieldNames(r), r.toString());
            String op = r.get("op").asText();
            JsonNode row = op.equals("c") ? r.get("after") : r.get("before");
            if (op.equals("c")) {
                assertTrue(r.get("before").isNull(), r.toString());
            } else {
                assertEquals("d", op, r.toString());
                assertTrue(r.get("after").isNull(), r.toString());
            }
            assertEquals("an-fixture", row.get("analysisId").asText());
            assertEquals(7, row.get("generation").asLong());
            assertTrue(row.get("generation").isIntegralNumber());
        }
    }

    @Test
    void rowsCountEachSummaryOnceInTheWindowOfItsEventTime() {
        Map<String, JsonNode> rows = latest("row", "windowStart", "flagKey", "variation");
        assertEquals(Map.of(
                iso(BASE) + "|new-checkout|0", 3L,
                iso(BASE) + "|new-checkout|1", 4L,
                iso(BASE) + "|dark-mode|" + HUGE_VARIATION, 5L,
                iso(OLD) + "|new-checkout|0", 12L),
                rows.entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().get("evaluations").asLong())),
                ofType("row").toString());
        JsonNode row = rows.get(iso(BASE) + "|new-checkout|0");
        assertEquals(iso(BASE + 10_000), row.get("windowEnd").asText());
        assertEquals(1, row.get("version").asLong());
    }

    /**
     * A row is analysisId, generation, type, the window, fields and version; fields is the text of a
     * JSON object with the grouped dimensions and the measure, numbers written as JSON numbers (also
     * beyond INT). The SQL names them in a fixed order (flagKey, variation, environment, measure);
     * Flink 1.20's JSON_OBJECT writes the keys sorted by name (its mapper orders entries by key), so
     * the text is stable either way. Key order carries no meaning for the control plane.
     */
    @Test
    void aRowsDimensionsAndMeasureAreOneJsonObjectWithNumbersAsNumbers() {
        Map<String, JsonNode> rows = results.latestAsWritten("row", "windowStart", "flagKey", "variation");
        JsonNode after = rows.get(iso(BASE) + "|new-checkout|0");
        assertEquals(List.of("analysisId", "generation", "type", "windowStart", "windowEnd", "fields", "version"), fieldNames(after));
        assertTrue(after.get("fields").isTextual(), after.toString());
        assertEquals("{\"evaluations\":3,\"flagKey\":\"new-checkout\",\"variation\":0}", after.get("fields").asText());
        assertEquals("{\"evaluations\":5,\"flagKey\":\"dark-mode\",\"variation\":" + HUGE_VARIATION + "}",
                rows.get(iso(BASE) + "|dark-mode|" + HUGE_VARIATION).get("fields").asText());
    }

    @Test
    void aSummaryWithVersionAndVariationBeyondIntIsCounted() {
        JsonNode row = latest("row", "flagKey").get("dark-mode");
        assertEquals(HUGE_VARIATION, row.get("variation").asLong());
        assertTrue(row.get("variation").isIntegralNumber(), row.toString());
        assertEquals(5, row.get("evaluations").asLong());
    }

    @Test
    void aLateEventUpdatesItsOldWindowsRow() {
        List<JsonNode> changes = ofType("row").stream()
                .filter(r -> iso(OLD).equals(ResultsLog.payload(r).get("windowStart").asText()))
                .collect(Collectors.toList());
        assertEquals(List.of("c", "d", "c"), changes.stream().map(r -> r.get("op").asText()).collect(Collectors.toList()), changes.toString());
        assertEquals(2, ResultsLog.row(changes.get(0).get("after")).get("evaluations").asLong());
        assertEquals(1, changes.get(0).get("after").get("version").asLong());
        assertEquals(changes.get(0).get("after"), changes.get(1).get("before"), "the retraction carries the previous row");
        assertEquals(12, ResultsLog.row(changes.get(2).get("after")).get("evaluations").asLong());
        assertEquals(2, changes.get(2).get("after").get("version").asLong());
    }

    @Test
    void progressIsTheNewestHeartbeatPerShard() {
        Map<String, JsonNode> progress = latest("progress", "shard");
        // ISO-8601 in UTC with the fraction's trailing zeros left out: "2026-11-25T16:00:02.5Z"
        assertEquals("2026-11-25T16:00:02.5Z", progress.get("shardId-000000000001").get("progressAt").asText());
        assertEquals(Map.of("shardId-000000000000", BASE + 4000, "shardId-000000000001", BASE + 2500),
                progress.entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey,
                        e -> Instant.parse(e.getValue().get("progressAt").asText()).toEpochMilli())));
        assertEquals(List.of("analysisId", "generation", "type", "shard", "progressAt"),
                fieldNames(progress.get("shardId-000000000000")));
    }

    @Test
    void summariesOlderThanTheHorizonCountOnceAsLateEventsByReceiveMinute() {
        Map<String, JsonNode> late = latest("late", "bucketStart");
        assertEquals(Map.of(iso(BASE + 60_000), 1L),
                late.entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().get("lateEvents").asLong())));
        assertEquals(List.of("analysisId", "generation", "type", "bucketStart", "lateEvents"), fieldNames(late.values().iterator().next()));
        // and not in the rows: rowsCountEachSummaryOnceInTheWindowOfItsEventTime has no row for its window
    }

    @Test
    void printsOneRecordOfEachType() {
        Map<String, JsonNode> first = new HashMap<>();
        for (JsonNode r : records) {
            if (r.get("op").asText().equals("c")) {
                first.putIfAbsent(r.get("after").get("type").asText(), r);
            }
        }
        assertEquals(3, first.size(), records.toString());
        first.values().forEach(r -> System.out.println("results record: " + r));
    }

    static List<String> fieldNames(JsonNode node) {
        return ResultsLog.fieldNames(node);
    }
}
