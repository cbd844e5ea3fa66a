package dev.flagstream.runner.pipeline;

import dev.flagstream.runner.CustomSqlScript;
import dev.flagstream.runner.SqlRunnerTestAccess;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

import static dev.flagstream.runner.pipeline.FlagEvaluationsPipelineTest.counter;
import static dev.flagstream.runner.pipeline.FlagEvaluationsPipelineTest.flag;
import static dev.flagstream.runner.pipeline.FlagEvaluationsPipelineTest.heartbeat;
import static dev.flagstream.runner.pipeline.FlagEvaluationsPipelineTest.summary;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A pool of custom-sql members built from templates/custom-sql.sql (CustomSqlScript, like the
 * generator) RUN on a MiniCluster with the replay connector, like {@link PoolPipelineTest}. Four
 * members, one job run (~6 s) feeds every case:
 * <ul>
 *   <li>A: acme, every environment: flag, variation and count of its feature events (GROUP BY);</li>
 *   <li>B: acme, production: SELECT * FROM events (the view's documented columns);</li>
 *   <li>C: acme, every environment: events per kind in 1 s TUMBLE windows of processing time;</li>
 *   <li>D: globex: sum of metric values per custom event key.</li>
 * </ul>
 * Records of both tenants: each member sees only its tenant's (and environment's), each event once.
 */
class CustomSqlPipelineTest {
    static final String A = "00000000-0000-4000-8000-00000000000a";
    static final String B = "00000000-0000-4000-8000-00000000000b";
    static final String C = "00000000-0000-4000-8000-00000000000c";
    static final String D = "00000000-0000-4000-8000-00000000000d";
    static final long BASE = Instant.parse("2026-11-25T16:00:00Z").toEpochMilli();
    static final long READ_FROM = BASE - 60_000;
    static final long HUGE_VARIATION = 1L << 33;
    static final long LATE_RECEIVED_AT = BASE + 61_000;

    static ResultsLog results;

    static String feature(String tenant, String environment, String payloadId, int eventIndex, long eventTime,
            String flagKey, long variation, long version, String value, String user, boolean late) {
        return String.format("{\"kind\":\"feature\",\"tenant\":\"%s\",\"environment\":\"%s\",\"payloadId\":\"%s\",\"eventIndex\":%d,"
                        + "\"eventTime\":%d,\"receivedAt\":%d,\"sdkTime\":%d,\"late\":%s,\"creationDate\":%d,\"key\":\"%s\","
                        + "\"variation\":%d,\"version\":%d,\"value\":%s,\"default\":false,"
                        + "\"context\":{\"kind\":\"user\",\"key\":\"%s\"},\"contextKeys\":{\"user\":\"%s\"},\"contextKey\":\"%s\"}",
                tenant, environment, payloadId, eventIndex, eventTime, eventTime + 100, eventTime, late, eventTime,
                flagKey, variation, version, value, user, user, user);
    }

    static String custom(String tenant, String environment, String payloadId, int eventIndex, long eventTime,
            String eventKey, double metricValue, String user) {
        return String.format("{\"kind\":\"custom\",\"tenant\":\"%s\",\"environment\":\"%s\",\"payloadId\":\"%s\",\"eventIndex\":%d,"
                        + "\"eventTime\":%d,\"receivedAt\":%d,\"sdkTime\":%d,\"late\":false,\"creationDate\":%d,\"key\":\"%s\","
                        + "\"metricValue\":%s,\"contextKeys\":{\"user\":\"%s\"},\"contextKey\":\"%s\"}",
                tenant, environment, payloadId, eventIndex, eventTime, eventTime + 100, eventTime, eventTime,
                eventKey, metricValue, user, user);
    }

    static String identify(String tenant, String environment, String payloadId, long eventTime) {
        return String.format("{\"kind\":\"identify\",\"tenant\":\"%s\",\"environment\":\"%s\",\"payloadId\":\"%s\",\"eventIndex\":0,"
                        + "\"eventTime\":%d,\"receivedAt\":%d,\"sdkTime\":%d,\"late\":false,\"creationDate\":%d,"
                        + "\"context\":{\"kind\":\"multi\",\"user\":{\"key\":\"u1\"},\"org\":{\"key\":\"o1\"}},"
                        + "\"contextKeys\":{\"org\":\"o1\",\"user\":\"u1\"},\"contextKey\":\"org:o1:user:u1\"}",
                tenant, environment, payloadId, eventTime, eventTime + 100, eventTime, eventTime);
    }

    static final String F1 = feature("acme", "production", "p1", 0, BASE + 1000, "new-checkout", 1, 7, "true", "u1", false);

    @BeforeAll
    static void runTheJob() throws Exception {
        List<Object> events = new ArrayList<>(List.of(
                F1,
                F1, // delivered twice: one event
                feature("acme", "production", "p1", 1, BASE + 1200, "new-checkout", 1, 7, "true", "u2", false),
                feature("acme", "staging", "p2", 0, BASE + 1300, "new-checkout", 0, 7, "false", "u1", false),
                feature("acme", "production", "p3", 0, BASE + 1400, "dark-mode", HUGE_VARIATION, 1L << 40, "{\"theme\":\"dark\"}", "u3", false),
                custom("acme", "production", "p4", 0, BASE + 1500, "purchase", 9.5, "u1"),
                identify("acme", "production", "p5", BASE + 1600),
                summary("acme", "production", "p6", 0, BASE + 1700, BASE + 1800, false, "{" + flag("new-checkout", counter(1, 7, 3)) + "}"),
                // not in the view: late (counted in late_N), received before readFrom
                feature("acme", "production", "p7", 0, BASE - 7_200_000, "new-checkout", 1, 7, "true", "u9", true)
                        .replace("\"receivedAt\":" + (BASE - 7_200_000 + 100), "\"receivedAt\":" + LATE_RECEIVED_AT),
                feature("acme", "production", "p8", 0, READ_FROM - 5000, "new-checkout", 1, 7, "true", "u9", false),
                // the other tenant, also with acme's (payloadId, eventIndex): its own event
                feature("globex", "production", "p1", 0, BASE + 1000, "new-checkout", 1, 7, "true", "g1", false),
                custom("globex", "production", "g2", 0, BASE + 1100, "purchase", 100.25, "g1"),
                custom("globex", "production", "g3", 0, BASE + 1200, "signup", 1, "g2"),
                heartbeat("shardId-000000000000", BASE + 2000),
                ReplayConnector.pause(2500), // processing-time windows of 1 s close; mini-batches flush
                F1, // again, long after: still once
                ReplayConnector.pause(1500)));
        ReplayConnector.reset();
        ReplayConnector.input("flagstream-events", events);

        String script = CustomSqlScript.pool(List.of(
                new CustomSqlScript.Member(A, 3, "acme", null, READ_FROM,
                        "SELECT flagKey, variation, COUNT(*) AS n FROM events WHERE kind = 'feature' GROUP BY flagKey, variation"),
                new CustomSqlScript.Member(B, 4, "acme", "production", READ_FROM, "SELECT * FROM events"),
                new CustomSqlScript.Member(C, 5, "acme", null, READ_FROM,
                        "SELECT window_start, window_end, kind, COUNT(*) AS n\n"
                                + "FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(proc_time), INTERVAL '1' SECOND))\n"
                                + "GROUP BY window_start, window_end, kind"),
                new CustomSqlScript.Member(D, 6, "globex", null, READ_FROM,
                        "SELECT eventKey, SUM(metricValue) AS total FROM events WHERE kind = 'custom' GROUP BY eventKey")));
        TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        tEnv.getConfig().set(CoreOptions.DEFAULT_PARALLELISM, 1);
        SqlRunnerTestAccess.prepare(tEnv, script).execute().await();
        results = ResultsLog.of(ReplayConnector.output("flagstream-results"));
    }

    /**
     * A member's rows as the control plane keeps custom rows: a multiset of `after`s ("c" adds one,
     * "d" removes its `before`), each as its window and fields text.
     */
    static Map<String, Integer> rows(String id) {
        Map<String, Integer> multiset = new TreeMap<>();
        for (JsonNode r : results.of(id).ofType("custom")) {
            boolean add = r.get("op").asText().equals("c");
            JsonNode row = add ? r.get("after") : r.get("before");
            String key = row.get("windowStart").asText() + "|" + row.get("windowEnd").asText() + "|" + row.get("fields").asText();
            multiset.merge(key, add ? 1 : -1, Integer::sum);
        }
        multiset.values().removeIf(n -> n == 0);
        return multiset;
    }

    static List<JsonNode> fields(String id) {
        List<JsonNode> out = new ArrayList<>();
        rows(id).forEach((key, n) -> {
            for (int i = 0; i < n; i++) {
                out.add(ResultsLog.parse(key.substring(key.indexOf("|{") + 1)));
            }
        });
        return out;
    }

    @Test
    void everyRecordIsAMembersRowOrLateCountWithItsIdGenerationAndPartitionKey() {
        Map<String, Long> generations = Map.of(A, 3L, B, 4L, C, 5L, D, 6L);
        assertTrue(results.records.size() > 0);
        for (int i = 0; i < results.records.size(); i++) {
            JsonNode payload = ResultsLog.payload(results.records.get(i));
            String id = payload.get("analysisId").asText();
            assertEquals(generations.get(id), payload.get("generation").asLong(), payload.toString());
            assertEquals(id, results.output.get(i).partitionKey);
            assertTrue(List.of("custom", "late", "progress").contains(payload.get("type").asText()), payload.toString());
            if (payload.get("type").asText().equals("custom")) {
                assertEquals(List.of("analysisId", "generation", "type", "windowStart", "windowEnd", "fields", "version"),
                        ResultsLog.fieldNames(payload));
                assertEquals(0, payload.get("version").asLong());
            }
        }
    }

    /** A grouped query: exactly its tenant's feature events (every environment), each once; nothing of globex. */
    @Test
    void aGroupedQueryCountsTheTenantsOwnEventsOnly() {
        assertEquals(Map.of(
                        "null|null|{\"flagKey\":\"dark-mode\",\"n\":1,\"variation\":8589934592}", 1,
                        "null|null|{\"flagKey\":\"new-checkout\",\"n\":1,\"variation\":0}", 1,
                        "null|null|{\"flagKey\":\"new-checkout\",\"n\":2,\"variation\":1}", 1),
                rows(A), results.of(A).records.toString());
    }

    /** SELECT *: one row per event of the tenant's environment, with the view's documented columns. */
    @Test
    void selectStarRowsCarryTheDocumentedColumns() {
        List<JsonNode> rows = fields(B);
        assertEquals(6, rows.size(), rows.toString()); // p1#0, p1#1, p3, p4, p5, p6 (not staging, late, old, globex)
        Map<String, JsonNode> byKind = new HashMap<>();
        for (JsonNode f : rows) {
            assertEquals(List.of("contextKey", "contextKeys", "environment", "eventKey", "eventTime", "eventTs", "features",
                    "flagKey", "flagVersion", "kind", "metricValue", "proc_time", "receivedAt", "value", "variation"), ResultsLog.fieldNames(f));
            assertEquals("production", f.get("environment").asText());
            // TIMESTAMP_LTZ in JSON_OBJECT: ISO-8601 UTC, the fraction's trailing zeros left out ("…:01.6Z")
            assertEquals(f.get("eventTime").asLong(), Instant.parse(f.get("eventTs").asText()).toEpochMilli(), f.toString());
            assertEquals(f.get("eventTime").asLong() + 100, f.get("receivedAt").asLong(), f.toString());
            assertTrue(f.get("proc_time").asText().endsWith("Z"), f.toString());
            byKind.put(f.get("kind").asText() + (f.get("kind").asText().equals("feature") ? ":" + f.get("flagKey").asText() : ""), f);
        }
        assertEquals(new TreeSet<>(List.of("feature:new-checkout", "feature:dark-mode", "custom", "identify", "summary")), new TreeSet<>(byKind.keySet()));

        JsonNode dark = byKind.get("feature:dark-mode");
        assertEquals(HUGE_VARIATION, dark.get("variation").asLong());
        assertTrue(dark.get("variation").isIntegralNumber(), dark.toString());
        assertEquals(1L << 40, dark.get("flagVersion").asLong());
        assertEquals("{\"theme\":\"dark\"}", dark.get("value").asText()); // the served value as JSON text
        assertTrue(dark.get("eventKey").isNull(), dark.toString());
        assertEquals("u3", dark.get("contextKey").asText());
        assertEquals("{\"user\":\"u3\"}", dark.get("contextKeys").toString());
        assertEquals("true", byKind.get("feature:new-checkout").get("value").asText());

        JsonNode purchase = byKind.get("custom");
        assertEquals("purchase", purchase.get("eventKey").asText());
        assertTrue(purchase.get("flagKey").isNull(), purchase.toString());
        assertEquals(9.5, purchase.get("metricValue").asDouble());

        JsonNode identify = byKind.get("identify");
        assertEquals("org:o1:user:u1", identify.get("contextKey").asText());
        assertEquals("{\"org\":\"o1\",\"user\":\"u1\"}", identify.get("contextKeys").toString());

        JsonNode summary = byKind.get("summary");
        assertEquals("{\"new-checkout\":{\"counters\":[{\"count\":3,\"unknown\":null,\"variation\":1,\"version\":7}]}}",
                summary.get("features").toString());
        assertTrue(summary.get("contextKey").isNull(), summary.toString());
    }

    /** TUMBLE on proc_time: rows carry their window (window_start/window_end, 1 s), counts add up to the tenant's events. */
    @Test
    void aWindowTvfOnProcessingTimeRunsAndFillsTheRowsWindow() {
        Map<String, Long> perKind = new TreeMap<>();
        for (JsonNode r : results.of(C).ofType("custom")) {
            assertEquals("c", r.get("op").asText(), "a window aggregate only appends: " + r);
            JsonNode after = r.get("after");
            long start = Instant.parse(after.get("windowStart").asText()).toEpochMilli();
            assertEquals(start + 1000, Instant.parse(after.get("windowEnd").asText()).toEpochMilli(), after.toString());
            JsonNode f = ResultsLog.parse(after.get("fields").asText());
            assertEquals(List.of("kind", "n", "window_end", "window_start"), ResultsLog.fieldNames(f));
            perKind.merge(f.get("kind").asText(), f.get("n").asLong(), Long::sum);
        }
        assertEquals(Map.of("custom", 1L, "feature", 4L, "identify", 1L, "summary", 1L), perKind, results.of(C).records.toString());
    }

    @Test
    void theOtherTenantsMemberSeesOnlyItsOwnEvents() {
        assertEquals(Map.of(
                        "null|null|{\"eventKey\":\"purchase\",\"total\":100.25}", 1,
                        "null|null|{\"eventKey\":\"signup\",\"total\":1.0}", 1),
                rows(D), results.of(D).records.toString());
    }

    /** late_N counts the tenant's late records of every kind, per receive minute (not summaries only). */
    @Test
    void lateEventsOfEveryKindCountPerReceiveMinute() {
        for (String id : List.of(A, B, C)) {
            assertEquals(Map.of(Instant.ofEpochMilli(BASE + 60_000).toString(), 1L), results.of(id).latestNumbers("lateEvents", "late", "bucketStart"), id);
        }
        assertEquals(Map.of(), results.of(D).latestNumbers("lateEvents", "late", "bucketStart"));
    }
}
