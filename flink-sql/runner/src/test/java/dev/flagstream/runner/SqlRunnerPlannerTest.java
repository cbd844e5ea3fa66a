package dev.flagstream.runner;

import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.ValidationException;
import org.junit.jupiter.api.Test;
import java.nio.file.Path;
import java.nio.file.Files;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SqlRunner.prepare / explain against the real planner (flink-table-planner-loader on the test
 * classpath), with the datagen / blackhole connectors. The first test in the JVM pays ~5 s of
 * planner start-up; later ones are sub-second.
 */
public class SqlRunnerPlannerTest {

    private static final String TABLES = String.join("\n",
            "-- source; with a comment that has a semicolon",
            "CREATE TABLE src (",
            "  id INT, name STRING, ts TIMESTAMP(3),",
            "  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND",
            ") WITH ('connector' = 'datagen', 'rows-per-second' = '1', 'fields.name.length' = '3');",
            "CREATE TABLE out1 (id INT, name STRING) WITH ('connector' = 'blackhole');",
            "CREATE TABLE out2 (name STRING, n BIGINT) WITH ('connector' = 'blackhole');",
            "");

    private static TableEnvironment newEnv() {
        return TableEnvironment.create(EnvironmentSettings.inStreamingMode());
    }

    private static int count(String haystack, String needle) {
        int n = 0;
        for (int i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }

    @Test
    void explainPlansAllInsertsOfAValidScriptAsOneStatementSet() {
        String script = TABLES + String.join("\n",
                "/* a view; used by the 2nd insert */",
                "CREATE TEMPORARY VIEW v AS SELECT name FROM src WHERE name <> 'a;b';",
                "INSERT INTO out1 SELECT id, CONCAT(name, ';', 'it''s') FROM src",
                ";",
                "-- EXECUTE INSERT is accepted too",
                "execute insert INTO out2 SELECT name, COUNT(*) FROM v GROUP BY name");

        String plan = SqlRunner.explain(script);

        String exec = plan.substring(plan.indexOf("== Optimized Execution Plan =="));
        assertEquals(1, count(exec, "Sink(table=[default_catalog.default_database.out1]"), plan);
        assertEquals(1, count(exec, "Sink(table=[default_catalog.default_database.out2]"), plan);
        assertTrue(plan.contains("'a;b'"), plan);
    }

    @Test
    void setStatementsAreAppliedToTheTableConfig() {
        TableEnvironment tEnv = newEnv();
        String script = String.join("\n",
                "SET 'pipeline.name' = 'it''s a job';",
                "set 'table.exec.source.idle-timeout'='5 s';",
                "-- a comment before SET",
                "SET 'custom.key' = '';",
                "SET 'custom.commented' = 'it''s' -- a comment before the ';'",
                ";",
                TABLES,
                "INSERT INTO out1 SELECT id, name FROM src;");

        StatementSet set = SqlRunner.prepare(tEnv, script);

        assertEquals("it's a job", tEnv.getConfig().get(PipelineOptions.NAME));
        assertEquals(Duration.ofSeconds(5),
                tEnv.getConfig().get(org.apache.flink.table.api.config.ExecutionConfigOptions.TABLE_EXEC_SOURCE_IDLE_TIMEOUT));
        assertEquals("", tEnv.getConfig().getConfiguration().toMap().get("custom.key"));
        assertEquals("it's", tEnv.getConfig().getConfiguration().toMap().get("custom.commented"));
        assertTrue(set.explain().contains("Sink(table=[default_catalog.default_database.out1]"));
    }

    @Test
    void scriptWithoutInsertIsRejected() {
        ValidationException e = assertThrows(ValidationException.class,
                () -> SqlRunner.prepare(newEnv(), TABLES + "CREATE TEMPORARY VIEW v AS SELECT id FROM src;"));
        assertEquals("The script has no INSERT statement.", e.getMessage());
    }

    /** Statements that would run a job of their own (a second job, or one inside the validator). */
    @ParameterizedTest
    @ValueSource(strings = {
            "SELECT * FROM src",
            "  -- comment first\n select id FROM src",
            "WITH x AS (SELECT id FROM src) SELECT * FROM x",
            "VALUES (1), (2)",
            "(SELECT id FROM src)",
            "CREATE TABLE copy WITH ('connector' = 'blackhole') AS SELECT id FROM src",
            "CREATE OR REPLACE TABLE copy WITH ('connector' = 'blackhole') AS SELECT id FROM src",
            "EXECUTE PLAN '/tmp/no-such-plan.json'",
    })
    void queriesAndStatementsStartingTheirOwnJobAreRefused(String stmt) {
        ValidationException e = assertThrows(ValidationException.class,
                () -> SqlRunner.prepare(newEnv(), TABLES + stmt + ";\nINSERT INTO out1 SELECT id, name FROM src;"));
        assertTrue(e.getMessage().startsWith("Only DDL, SET and INSERT statements are allowed"), e.getMessage());
    }

    @Test
    void plannerErrorsSurfaceFromPrepare() {
        ValidationException e = assertThrows(ValidationException.class,
                () -> SqlRunner.prepare(newEnv(), TABLES + "INSERT INTO out1 SELECT id, nope FROM src;"));
        assertTrue(e.getMessage().contains("Column 'nope' not found"), e.getMessage());
    }

    /**
     * A script the control plane generates (written to resources/generated by
     * control-plane/src/analyses/sql/sql-generator.spec.ts), verbatim with the bundled connectors.
     */
    public static String generated(String name) {
        try (InputStream in = SqlRunnerPlannerTest.class.getResourceAsStream("/generated/" + name)) {
            return new String(Objects.requireNonNull(in, "generated/" + name).readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The flag-evaluations script of one analysis (a pool of one). */
    public static String generatedScript() {
        return generated("flag-evaluations.sql");
    }

    /** A pool of two: an-pool-a (window 10 s, by flagKey and variation) and an-pool-b (window 1 min, by variation and environment). */
    public static String generatedPoolScript() {
        return generated("pool.sql");
    }

    private static String executionPlan(String script) {
        String plan = SqlRunner.explain(script);
        return plan.substring(plan.indexOf("== Optimized Execution Plan =="));
    }

    /**
     * No watermark and no window operator; ONE proc-time dedup shared by rows and late counts;
     * updating two-phase aggregates in 1 s mini-batches; three sinks (rows, progress, late).
     */
    @Test
    void generatedFlagEvaluationsScriptPlans() {
        String plan = SqlRunner.explain(generatedScript());
        String exec = plan.substring(plan.indexOf("== Optimized Execution Plan =="));

        assertFalse(plan.contains("WatermarkAssigner"), plan);
        assertFalse(plan.contains("watermark=["), plan);
        assertFalse(exec.contains("Window"), plan);
        assertEquals(1, count(exec, "TableSourceScan(table=[[default_catalog, default_database, events]]"), plan);
        // one tenant: the planner folds `tenant IN (<one>)` into a constant key column ($17: the events table has 17 columns since contextKey, contextKeys, metricValue)
        assertEquals(1, count(exec, "Deduplicate(keep=[FirstRow], key=[environment, payloadId, eventIndex, $17], order=[PROCTIME])"), plan);
        assertEquals(1, count(exec, "MiniBatchAssigner(interval=[1000ms], mode=[ProcTime])"), plan);
        assertEquals(3, count(exec, "GlobalGroupAggregate(groupBy=["), plan);
        assertEquals(1, count(exec, "GlobalGroupAggregate(groupBy=[windowStart, flagKey, variation]"), plan);
        assertEquals(1, count(exec, "GlobalGroupAggregate(groupBy=[analysisId, generation, shard]"), plan);
        assertEquals(1, count(exec, "GlobalGroupAggregate(groupBy=[bucketStart]"), plan);
        // the heartbeats' fan-out to the members is a stateless correlate, not a join
        assertEquals(1, count(exec, "Correlate(invocation=[$UNNEST_ROWS$1($cor0.members)]"), plan);
        assertFalse(exec.contains("Join("), plan);
        for (String sink : new String[] {"result_rows", "result_progress", "result_late"}) {
            assertEquals(1, count(exec, "Sink(table=[default_catalog.default_database." + sink + "]"), plan);
        }
    }

    /**
     * A pool of two members: still ONE source scan and ONE dedup (the members' filters stay above
     * it), one sink per table fed by a union of the members, and per member its own aggregates.
     */
    @Test
    void generatedPoolScriptPlansOneSourceOneDedupAndOneSinkPerTable() {
        String exec = executionPlan(generatedPoolScript());

        assertEquals(1, count(exec, "TableSourceScan(table=[[default_catalog, default_database, events]]"), exec);
        assertEquals(1, count(exec, "Deduplicate(keep=[FirstRow], key=[tenant, environment, payloadId, eventIndex], order=[PROCTIME])"), exec);
        assertEquals(1, count(exec, "MiniBatchAssigner("), exec);
        assertEquals(1, count(exec, "GlobalGroupAggregate(groupBy=[windowStart, flagKey, variation]"), exec);
        assertEquals(1, count(exec, "GlobalGroupAggregate(groupBy=[windowStart, variation, environment]"), exec);
        assertEquals(2, count(exec, "GlobalGroupAggregate(groupBy=[bucketStart]"), exec);
        assertEquals(1, count(exec, "GlobalGroupAggregate(groupBy=[analysisId, generation, shard]"), exec);
        assertEquals(5, count(exec, "GlobalGroupAggregate(groupBy=["), exec);
        assertEquals(2, count(exec, "Union(all=[true]"), exec);
        assertFalse(exec.contains("Join("), exec);
        for (String sink : new String[] {"result_rows", "result_progress", "result_late"}) {
            assertEquals(1, count(exec, "Sink(table=[default_catalog.default_database." + sink + "]"), exec);
        }
    }

    /**
     * The same pool with acme's member replaying from before the stream (generated/pool-lake.sql):
     * the stream and acme's lake hours from 15:00 feed the ONE dedup (an event in both counts
     * once), and progress passes a semi-join on how many lake records were read.
     */
    @Test
    void generatedLakePoolScriptUnitesStreamAndLakeBeforeItsOneDedup(@TempDir Path lake) throws IOException {
        // The planner lists the lake's partitions when it plans (at the job's start): acme's hours
        // from 15:00 on are read; an earlier hour and another tenant's are pruned.
        for (String partition : new String[] {"tenant=acme/dt=2026-11-25/hour=14", "tenant=acme/dt=2026-11-25/hour=15",
                "tenant=acme/dt=2026-11-26/hour=02", "tenant=globex/dt=2026-11-25/hour=16"}) {
            Files.createDirectories(lake.resolve(partition));
        }
        String exec = executionPlan(generated("pool-lake.sql").replace("file:///flagstream-lake-fixture/", lake.toUri().toString()));

        assertEquals(1, count(exec, "TableSourceScan(table=[[default_catalog, default_database, events_stream]]"), exec);
        assertTrue(exec.contains("TableSourceScan(table=[[default_catalog, default_database, events_lake, "
                + "partitions=[{tenant=acme, dt=2026-11-25, hour=15}, {tenant=acme, dt=2026-11-26, hour=02}]"), exec);
        assertEquals(1, count(exec, "Deduplicate(keep=[FirstRow], key=[tenant, environment, payloadId, eventIndex], order=[PROCTIME])"), exec);
        assertEquals(1, count(exec, "Join(joinType=[LeftSemiJoin]"), exec);
        for (String sink : new String[] {"result_rows", "result_progress", "result_late"}) {
            assertEquals(1, count(exec, "Sink(table=[default_catalog.default_database." + sink + "]"), exec);
        }
    }

    /** Each stateful operator's description (up to its select list) → its state's TTL, from the compiled plan. */
    private static Map<String, List<String>> stateTtls(String script) throws Exception {
        JsonNode compiled = new ObjectMapper().readTree(SqlRunner.prepare(newEnv(), script).compilePlan().asJsonString());
        Map<String, List<String>> ttl = new TreeMap<>();
        for (JsonNode node : compiled.get("nodes")) {
            if (node.has("state")) {
                assertEquals(1, node.get("state").size(), node.toString());
                String description = node.get("description").asText();
                int select = description.indexOf(", select=");
                ttl.computeIfAbsent(select < 0 ? description : description.substring(0, select), k -> new ArrayList<>())
                        .add(node.get("state").get(0).get("ttl").asText());
            }
        }
        return ttl;
    }

    /**
     * State time-to-live per operator, read from the compiled plan: the STATE_TTL hint gives the
     * rows' aggregate window + horizon + retention (10 s + 1 h + 24 h), table.exec.state.ttl the
     * rest (1 h + 24 h).
     */
    @Test
    void generatedScriptBoundsEveryStateByItsTimeToLive() throws Exception {
        assertEquals(Map.of(
                "Deduplicate(keep=[FirstRow], key=[environment, payloadId, eventIndex, $17], order=[PROCTIME])", List.of("25 h"),
                "GlobalGroupAggregate(groupBy=[windowStart, flagKey, variation]", List.of("90010 s"),
                "GlobalGroupAggregate(groupBy=[analysisId, generation, shard]", List.of("25 h"),
                "GlobalGroupAggregate(groupBy=[bucketStart]", List.of("25 h")), stateTtls(generatedScript()));
        TableEnvironment tEnv = newEnv();
        SqlRunner.prepare(tEnv, generatedScript());
        assertEquals("true", tEnv.getConfig().getConfiguration().toMap().get("table.exec.mini-batch.enabled"));
    }

    /**
     * The STATE_TTL hint sits in each member's rows_N view (keyed by its input, counters_N) and
     * still takes effect there, per member, though the views meet in one UNION ALL: member a's
     * aggregate keeps 10 s + 1 h + 24 h, member b's 1 min + 1 h + 24 h ("1501 min" = 90060 s);
     * the dedup, the progress and both late counts the global 25 h.
     */
    @Test
    void generatedPoolScriptKeepsEachMembersRowStateTtl() throws Exception {
        assertEquals(Map.of(
                "Deduplicate(keep=[FirstRow], key=[tenant, environment, payloadId, eventIndex], order=[PROCTIME])", List.of("25 h"),
                "GlobalGroupAggregate(groupBy=[windowStart, flagKey, variation]", List.of("90010 s"),
                "GlobalGroupAggregate(groupBy=[windowStart, variation, environment]", List.of("1501 min"),
                "GlobalGroupAggregate(groupBy=[analysisId, generation, shard]", List.of("25 h"),
                "GlobalGroupAggregate(groupBy=[bucketStart]", List.of("25 h", "25 h")), stateTtls(generatedPoolScript()));
    }

    /**
     * Why the TTLs are pinned from the compiled plan: a hint keyed by a name no table or view has
     * is refused, but one keyed by ANOTHER member's view (not its block's input) is dropped
     * silently, and that member's rows fall back to the global 25 h.
     */
    @Test
    void aStateTtlHintKeyedByTheWrongViewIsDroppedSilently() throws Exception {
        ValidationException e = assertThrows(ValidationException.class,
                () -> SqlRunner.explain(generatedPoolScript().replace("STATE_TTL('counters_1'", "STATE_TTL('no_such_view'")));
        assertTrue(e.getMessage().contains("cannot match the name of input tables or views"), e.getMessage());
        Map<String, List<String>> ttl = stateTtls(generatedPoolScript().replace("STATE_TTL('counters_1'", "STATE_TTL('counters_0'"));
        assertEquals(List.of("25 h"), ttl.get("GlobalGroupAggregate(groupBy=[windowStart, variation, environment]"), ttl.toString());
    }
}
