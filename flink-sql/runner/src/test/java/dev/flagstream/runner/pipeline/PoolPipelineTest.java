package dev.flagstream.runner.pipeline;

import dev.flagstream.runner.SqlRunnerTestAccess;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.streaming.api.graph.StreamNode;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.bridge.java.StreamStatementSet;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static dev.flagstream.runner.pipeline.FlagEvaluationsPipelineTest.counter;
import static dev.flagstream.runner.pipeline.FlagEvaluationsPipelineTest.flag;
import static dev.flagstream.runner.pipeline.FlagEvaluationsPipelineTest.heartbeat;
import static dev.flagstream.runner.pipeline.FlagEvaluationsPipelineTest.summary;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The generated POOL script (resources/generated/pool.sql, written by sql-generator.spec.ts from
 * its POOL_FIXTURE) RUN on a MiniCluster with only its connectors swapped, like
 * {@link FlagEvaluationsPipelineTest}. Two members of two tenants in one job:
 * <ul>
 *   <li>A = an-pool-a, generation 3: tenant acme, environment production, window 10 s, flagKeys
 *       [new-checkout], grouped by flagKey and variation (default), readFrom 15:00;</li>
 *   <li>B = an-pool-b, generation 11: tenant globex, every environment, window 1 min, grouped by
 *       environment and variation, every flag, readFrom 15:59.</li>
 * </ul>
 * One job run (~5 s) feeds every case.
 */
class PoolPipelineTest {
    static final String SCRIPT = "/generated/pool.sql";
    static final String A = "an-pool-a";
    static final String B = "an-pool-b";
    static final long BASE = Instant.parse("2026-11-25T16:00:00Z").toEpochMilli();
    static final long B_READ_FROM = Instant.parse("2026-11-25T15:59:00Z").toEpochMilli();

    static ResultsLog results;

    static String poolScript() throws IOException {
        try (InputStream in = PoolPipelineTest.class.getResourceAsStream(SCRIPT)) {
            return new String(Objects.requireNonNull(in, SCRIPT).readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @BeforeAll
    static void runTheJob() throws Exception {
        String a1 = summary("acme", "production", "p1", 0, BASE + 1000, BASE + 1500, false,
                "{" + flag("new-checkout", counter(0, 1, 3), counter(1, 1, 4)) + "," + flag("dark-mode", counter(0, 1, 100)) + "}");
        String b1 = summary("globex", "production", "g1", 0, BASE + 2000, BASE + 2100, false,
                "{" + flag("x", counter(0, 1, 5)) + ","
                        // a counter without variation (an unknown flag): its variation is null
                        + flag("y", counter(0, 1, 6), "{\"value\":false,\"version\":1,\"count\":7,\"unknown\":true}") + "}");
        List<Object> events = new ArrayList<>(List.of(
                a1,
                a1, // delivered twice: counts once
                b1,
                summary("globex", "staging", "g2", 0, BASE + 3000, BASE + 3100, false, "{" + flag("x", counter(1, 1, 8)) + "}"),
                // the same (payloadId, eventIndex) in both tenants: two events, each counts for its tenant
                summary("acme", "production", "same", 0, BASE + 4000, BASE + 4100, false, "{" + flag("new-checkout", counter(0, 1, 10)) + "}"),
                summary("globex", "production", "same", 0, BASE + 4000, BASE + 4100, false, "{" + flag("x", counter(0, 1, 20)) + "}"),
                // received before B's readFrom (15:59): not B's; A (readFrom 15:00) counts its own such event
                summary("globex", "production", "g0", 0, BASE - 90_000, B_READ_FROM - 1, false, "{" + flag("x", counter(0, 1, 1000)) + "}"),
                summary("acme", "production", "a0", 0, BASE - 80_000, B_READ_FROM - 1, false, "{" + flag("new-checkout", counter(0, 1, 2)) + "}"),
                // not A's: other environment, other flag
                summary("acme", "staging", "a2", 0, BASE + 1000, BASE + 1500, false, "{" + flag("new-checkout", counter(0, 1, 1000)) + "}"),
                // no member's tenant
                summary("initech", "production", "i1", 0, BASE + 1000, BASE + 1500, false, "{" + flag("x", counter(0, 1, 1000)) + "}"),
                // late (beyond the horizon): one each, counted once though delivered twice; B's before its readFrom not at all
                summary("acme", "production", "al", 0, BASE - 7_200_000, BASE + 61_000, true, "{" + flag("new-checkout", counter(0, 1, 1)) + "}"),
                summary("globex", "staging", "bl", 0, BASE - 7_200_000, BASE + 62_000, true, "{" + flag("x", counter(0, 1, 1)) + "}"),
                summary("globex", "staging", "bl", 0, BASE - 7_200_000, BASE + 62_000, true, "{" + flag("x", counter(0, 1, 1)) + "}"),
                summary("globex", "staging", "bl0", 0, BASE - 7_200_000, B_READ_FROM - 1, true, "{" + flag("x", counter(0, 1, 1)) + "}"),
                heartbeat("shardId-000000000000", BASE + 2000),
                heartbeat("shardId-000000000001", BASE + 2500),
                ReplayConnector.pause(2500),
                b1, // again, long after: still once
                heartbeat("shardId-000000000000", BASE + 4000),
                ReplayConnector.pause(1500)));
        ReplayConnector.reset();
        ReplayConnector.input("flagstream-events", events);

        TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        tEnv.getConfig().set(CoreOptions.DEFAULT_PARALLELISM, 1);
        StatementSet set = SqlRunnerTestAccess.prepare(tEnv, FlagEvaluationsPipelineTest.replayScript(poolScript()));
        set.execute().await();
        results = ResultsLog.of(ReplayConnector.output("flagstream-results"));
    }

    static String iso(long ms) {
        return Instant.ofEpochMilli(ms).toString();
    }

    @Test
    void everyRecordCarriesItsMembersIdGenerationAndPartitionKey() {
        assertTrue(results.records.size() > 0);
        Map<String, Long> generations = Map.of(A, 3L, B, 11L);
        for (int i = 0; i < results.records.size(); i++) {
            JsonNode payload = ResultsLog.payload(results.records.get(i));
            String id = payload.get("analysisId").asText();
            assertTrue(generations.containsKey(id), payload.toString());
            assertEquals(id, results.output.get(i).partitionKey);
            assertEquals(generations.get(id), payload.get("generation").asLong(), payload.toString());
        }
    }

    @Test
    void memberAsRowsAreExactlyItsTenantEnvironmentAndFlags() {
        assertEquals(Map.of(
                iso(BASE) + "|new-checkout|0", 13L,
                iso(BASE) + "|new-checkout|1", 4L,
                iso(BASE - 80_000) + "|new-checkout|0", 2L),
                results.of(A).latestNumbers("evaluations", "row", "windowStart", "flagKey", "variation"));
        Map<String, JsonNode> rows = results.of(A).latestAsWritten("row", "windowStart", "flagKey", "variation");
        assertEquals("{\"evaluations\":13,\"flagKey\":\"new-checkout\",\"variation\":0}", rows.get(iso(BASE) + "|new-checkout|0").get("fields").asText());
        assertEquals(iso(BASE + 10_000), rows.get(iso(BASE) + "|new-checkout|0").get("windowEnd").asText());
    }

    @Test
    void memberBsRowsAreExactlyItsTenantFromItsReadFromByEnvironmentAndVariation() {
        assertEquals(Map.of(
                iso(BASE) + "|production|0", 31L,
                iso(BASE) + "|production|null", 7L,
                iso(BASE) + "|staging|1", 8L),
                results.of(B).latestNumbers("evaluations", "row", "windowStart", "environment", "variation"));
        Map<String, JsonNode> rows = results.of(B).latestAsWritten("row", "windowStart", "environment", "variation");
        // exactly the grouped dimensions and the measure (keys as Flink writes them: sorted); null stays null
        assertEquals("{\"environment\":\"production\",\"evaluations\":7,\"variation\":null}", rows.get(iso(BASE) + "|production|null").get("fields").asText());
        assertEquals("{\"environment\":\"production\",\"evaluations\":31,\"variation\":0}", rows.get(iso(BASE) + "|production|0").get("fields").asText());
        assertEquals(iso(BASE + 60_000), rows.get(iso(BASE) + "|production|0").get("windowEnd").asText());
    }

    @Test
    void lateEventsCountPerMemberOnce() {
        assertEquals(Map.of(iso(BASE + 60_000), 1L), results.of(A).latestNumbers("lateEvents", "late", "bucketStart"));
        assertEquals(Map.of(iso(BASE + 60_000), 1L), results.of(B).latestNumbers("lateEvents", "late", "bucketStart"));
    }

    @Test
    void everyMemberGetsTheNewestHeartbeatPerShard() {
        for (String id : List.of(A, B)) {
            assertEquals(Map.of("shardId-000000000000", iso(BASE + 4000), "shardId-000000000001", "2026-11-25T16:00:02.5Z"),
                    results.of(id).latest("progress", "shard").entrySet().stream()
                            .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().get("progressAt").asText())), id);
        }
    }

    /**
     * The job's operators (its stream graph; the planner's, not the SQL's): ONE source however many
     * members, one sink per sink table, each fed by a union of the members. With the real
     * connectors the sinks are Kinesis SinkWriters, with the replay connector sink functions: both.
     */
    @Test
    void theJobHasOneSourceAndOneSinkPerTable() throws Exception {
        for (String script : List.of(poolScript(), FlagEvaluationsPipelineTest.replayScript(poolScript()))) {
            StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
            StreamTableEnvironment tEnv = StreamTableEnvironment.create(env);
            ((StreamStatementSet) SqlRunnerTestAccess.prepare(tEnv, script)).attachAsDataStream();
            StreamGraph graph = env.getStreamGraph();
            assertEquals(List.of("Source: events"), graph.getSourceIDs().stream()
                    .map(id -> graph.getStreamNode(id).getOperatorName().replaceAll("\\[\\d+]$", "")).collect(Collectors.toList()));
            Map<String, Integer> sinks = new TreeMap<>();
            for (StreamNode node : graph.getStreamNodes()) {
                if (node.getOutEdges().isEmpty()) {
                    sinks.merge(node.getOperatorName().replaceAll("^Sink: ", "").replaceAll("\\[\\d+].*$", ""), 1, Integer::sum);
                }
            }
            assertEquals(Map.of("result_late", 1, "result_progress", 1, "result_rows", 1), sinks, graph.getStreamNodes().toString());
        }
    }
}
