package dev.flagstream.runner;

import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.ValidationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SqlRunner.prepare / explain against the real planner (flink-table-planner-loader on the test
 * classpath), with the datagen / blackhole connectors. The first test in the JVM pays ~5 s of
 * planner start-up; later ones are sub-second.
 */
class SqlRunnerPlannerTest {

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

    /** The shape the control plane generates, with the bundled kinesis connector + json format. */
    @Test
    void kinesisWindowAggregateScriptPlans() {
        String kinesis = "'connector'='kinesis', 'aws.region'='us-east-1', 'aws.endpoint'='http://127.0.0.1:4568',"
                + " 'aws.credentials.provider'='BASIC', 'aws.credentials.basic.accesskeyid'='local',"
                + " 'aws.credentials.basic.secretkey'='local', 'format'='json'";
        String script = String.join("\n",
                "CREATE TEMPORARY TABLE events (",
                "  tenant STRING, payloadId STRING, eventIndex INT, kind STRING, eventTime BIGINT,",
                "  features MAP<STRING, ROW<counters ARRAY<ROW<variation INT, version INT, `count` BIGINT, `unknown` BOOLEAN>>>>,",
                "  ts AS TO_TIMESTAMP_LTZ(eventTime, 3),",
                "  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND",
                ") WITH (" + kinesis + ", 'stream'='ev', 'scan.stream.initpos'='TRIM_HORIZON',",
                "  'json.ignore-parse-errors'='true', 'json.fail-on-missing-field'='false');",
                "CREATE TEMPORARY TABLE results (analysisId STRING, windowStart TIMESTAMP_LTZ(3),",
                "  windowEnd TIMESTAMP_LTZ(3), flagKey STRING, variation INT, evaluations BIGINT)",
                "WITH (" + kinesis + ", 'stream'='res', 'aws.http.protocol.version'='HTTP1_1',",
                "  'sink.partitioner'='random', 'json.timestamp-format.standard'='ISO-8601');",
                "INSERT INTO results",
                "SELECT 'an-1', window_start, window_end, f.flagKey, c.variation, SUM(c.`count`)",
                "FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND)) AS e",
                "CROSS JOIN UNNEST(e.features) AS f(flagKey, flag)",
                "CROSS JOIN UNNEST(f.flag.counters) AS c(variation, version, `count`, `unknown`)",
                "WHERE e.tenant = 'acme' AND e.kind = 'summary'",
                "GROUP BY window_start, window_end, f.flagKey, c.variation;");

        String plan = SqlRunner.explain(script);

        assertTrue(plan.contains("GlobalWindowAggregate"), plan);
        assertTrue(plan.contains("Sink(table=[default_catalog.default_database.results]"), plan);
    }
}
