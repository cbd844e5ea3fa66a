package dev.flagstream.runner;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.table.functions.TableFunction;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The custom-sql sandbox ({@link SandboxedQuery}): what a tenant's query may and may not do, the
 * reason the user sees, the rewrite to the member's view, and the directive in a whole script
 * (templates/custom-sql.sql, planned by {@link SqlRunner#explain} as the validator does).
 */
class SandboxedQueryTest {
    static final String ID = "0b5e7f8a-1c2d-4e3f-9a8b-7c6d5e4f3a2b";
    static final long READ_FROM = Instant.parse("2026-11-25T15:00:00Z").toEpochMilli();
    static final List<String> TARGET = List.of("default_catalog", "default_database", "events_0");

    static TableEnvironment tEnv;

    /** A user-defined scalar function, to be refused by name. */
    public static class Echo extends ScalarFunction {
        public String eval(String s) {
            return s;
        }
    }

    /** A user-defined table function, to be refused by name. */
    public static class Split extends TableFunction<String> {
        public void eval(String s) {
            collect(s);
        }
    }

    static CustomSqlScript.Member member(String sql) {
        return new CustomSqlScript.Member(ID, 3, "acme", "production", READ_FROM, sql);
    }

    static String script(String sql) {
        return CustomSqlScript.pool(List.of(member(sql)));
    }

    @BeforeAll
    static void environment() {
        // the pool's views (events, deduplicated, events_0, late_0, rows_0, ...) as a real script defines them
        tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        SqlRunner.prepare(tEnv, script("SELECT * FROM events"));
        tEnv.executeSql("CREATE TEMPORARY FUNCTION myfn AS '" + Echo.class.getName() + "'");
        tEnv.executeSql("CREATE TEMPORARY FUNCTION split AS '" + Split.class.getName() + "'");
        // a temporary system function shadows the built-in of that name
        tEnv.executeSql("CREATE TEMPORARY SYSTEM FUNCTION `upper` AS '" + Echo.class.getName() + "'");
    }

    static Stream<Arguments> refused() {
        return Stream.of(
                Arguments.of("SELECT * FROM events; SELECT kind FROM events", "must be one SELECT statement; got 2 statements"),
                Arguments.of("", "must be one SELECT statement; got 0 statements"),
                Arguments.of("  -- nothing", "SQL parse failed. Encountered \"<EOF>\" at line 1, column 12"),
                Arguments.of("INSERT INTO result_rows SELECT 'x', 1, 'row', NULL, NULL, kind, 1 FROM events", "must be a query; got INSERT"),
                Arguments.of("CREATE TABLE t (a INT) WITH ('connector' = 'datagen')", "must be a query; got CREATE TABLE"),
                Arguments.of("CREATE TEMPORARY VIEW v AS SELECT * FROM deduplicated", "must be a query; got CREATE VIEW"),
                Arguments.of("CREATE TEMPORARY FUNCTION f AS 'com.example.F'", "must be a query; got CREATE FUNCTION"),
                Arguments.of("SET 'table.exec.state.ttl' = '1 ms'", "must be a query; got SET"),
                Arguments.of("LOAD MODULE hive", "must be a query; got LOAD MODULE"),
                Arguments.of("EXPLAIN SELECT * FROM deduplicated", "must be a query; got EXPLAIN"),
                Arguments.of("SHOW TABLES", "must be a query; got SHOW TABLES"),
                Arguments.of("USE CATALOG other", "must be a query; got USE CATALOG"),
                Arguments.of("SELECT * FROM orders", "may read only the view \"events\"; it reads \"orders\" at line 1, column 15"),
                Arguments.of("SELECT * FROM deduplicated", "it reads \"deduplicated\""),
                Arguments.of("SELECT * FROM events_0", "it reads \"events_0\""),
                Arguments.of("SELECT * FROM `events_1`", "it reads \"events_1\""),
                Arguments.of("SELECT * FROM rows_0", "it reads \"rows_0\""),
                Arguments.of("SELECT * FROM EVENTS", "it reads \"EVENTS\""),
                Arguments.of("SELECT * FROM default_catalog.default_database.events", "it reads \"default_catalog.default_database.events\""),
                Arguments.of("SELECT tenant FROM default_catalog.default_database.deduplicated", "it reads \"default_catalog.default_database.deduplicated\""),
                Arguments.of("SELECT * FROM events /*+ OPTIONS('scan.stream.initpos' = 'TRIM_HORIZON') */", "may not use hints; it has /*+ `OPTIONS`('scan.stream.initpos' = 'TRIM_HORIZON') */"),
                Arguments.of("SELECT /*+ STATE_TTL('events' = '1 d') */ kind, COUNT(*) FROM events GROUP BY kind", "may not use hints"),
                Arguments.of("SELECT myfn(kind) FROM events", "may call only Flink's built-in functions; \"myfn\" is a user-defined function"),
                Arguments.of("SELECT UPPER(kind) FROM events", "\"UPPER\" is a user-defined function"),
                Arguments.of("SELECT default_catalog.default_database.myfn(kind) FROM events", "may call only Flink's built-in functions; it calls \"default_catalog.default_database.myfn\""),
                Arguments.of("SELECT * FROM events, LATERAL TABLE(split(kind)) AS t (part)", "may call no table function but the windows TUMBLE, HOP, CUMULATE and SESSION; it calls \"split\""),
                Arguments.of("SELECT * FROM LATERAL TABLE(split('a'))", "it calls \"split\""),
                Arguments.of("SELECT * FROM events WHERE kind IN (SELECT kind FROM deduplicated)", "it reads \"deduplicated\""),
                Arguments.of("SELECT * FROM events WHERE EXISTS (SELECT 1 FROM events_0 WHERE events_0.kind = events.kind)", "it reads \"events_0\""),
                Arguments.of("SELECT (SELECT COUNT(*) FROM deduplicated) AS n FROM events", "it reads \"deduplicated\""),
                Arguments.of("SELECT * FROM events e, LATERAL (SELECT * FROM deduplicated d WHERE d.kind = e.kind)", "it reads \"deduplicated\""),
                Arguments.of("SELECT * FROM events a JOIN (SELECT * FROM deduplicated) b ON a.kind = b.kind", "it reads \"deduplicated\""),
                Arguments.of("WITH x AS (SELECT * FROM orders) SELECT * FROM x", "it reads \"orders\""),
                Arguments.of("WITH events AS (SELECT * FROM deduplicated) SELECT * FROM events", "it reads \"deduplicated\""),
                Arguments.of("WITH x AS (SELECT * FROM events) SELECT * FROM x UNION ALL SELECT * FROM y", "it reads \"y\""),
                Arguments.of("SELECT * FROM (WITH x AS (SELECT 1 AS a1) SELECT * FROM x) AS a, x", "it reads \"x\""), // x is out of scope
                Arguments.of("SELECT * FROM TABLE(TUMBLE(TABLE deduplicated, DESCRIPTOR(proc_time), INTERVAL '1' MINUTE))", "it reads \"deduplicated\""),
                Arguments.of("SELECT * FROM TABLE(SESSION(TABLE deduplicated PARTITION BY kind, DESCRIPTOR(proc_time), INTERVAL '1' MINUTE))", "it reads \"deduplicated\""),
                Arguments.of("SELECT * FROM TABLE(TUMBLE(DATA => TABLE `default_catalog`.`default_database`.`events`, TIMECOL => DESCRIPTOR(proc_time), SIZE => INTERVAL '1' MINUTE))", "it reads \"default_catalog.default_database.events\""),
                Arguments.of("SELECT * FROM (TABLE deduplicated)", "it reads \"deduplicated\""),
                Arguments.of("SELECT * FROM deduplicated MATCH_RECOGNIZE (ORDER BY eventTime MEASURES A.kind AS k PATTERN (A) DEFINE A AS TRUE)", "it reads \"deduplicated\""),
                Arguments.of("SELECT * FROM events FOR SYSTEM_TIME AS OF TIMESTAMP '2026-01-01 00:00:00'", "may not use FOR SYSTEM_TIME AS OF"),
                Arguments.of("SELECT e.kind FROM events AS e JOIN events FOR SYSTEM_TIME AS OF e.proc_time AS d ON e.kind = d.kind", "may not use FOR SYSTEM_TIME AS OF"),
                Arguments.of("SELECT CAST(kind AS RAW('java.lang.String', 'AAAA')) FROM events", "may not use the type RAW"),
                Arguments.of("SELECT CAST(contextKeys AS MAP<STRING, RAW('java.lang.String', 'AAAA')>) FROM events", "may not use the type RAW"),
                Arguments.of("SELECT * FORM events", "SQL parse failed. Encountered \"events\" at line 1, column 15"),
                // allowed by the sandbox, refused by Flink: its reason, with the text it read
                Arguments.of("SELECT nope FROM events", "Column 'nope' not found in any table (in the query as Flink reads it: SELECT `nope` FROM `default_catalog`.`default_database`.`events_0` AS `events`)"));
    }

    @ParameterizedTest
    @MethodSource
    void refused(String query, String reason) {
        ValidationException e = assertThrows(ValidationException.class, () -> SandboxedQuery.query(tEnv, query, "events_0"), query);
        assertTrue(e.getMessage().startsWith("custom SQL: "), e.getMessage());
        assertTrue(e.getMessage().contains(reason), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "SELECT * FROM events",
            "SELECT events.kind, flagKey, `value` FROM events WHERE kind = 'feature' AND environment = 'production'",
            "SELECT flagKey, variation, COUNT(DISTINCT contextKey) AS contexts FROM events WHERE kind = 'feature' GROUP BY flagKey, variation",
            "SELECT window_start, window_end, kind, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(proc_time), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, kind",
            "SELECT window_start, window_end, COUNT(*) AS n FROM TABLE(HOP(DATA => TABLE events, TIMECOL => DESCRIPTOR(proc_time), SLIDE => INTERVAL '1' MINUTE, SIZE => INTERVAL '5' MINUTE)) GROUP BY window_start, window_end",
            "SELECT window_start, window_end, COUNT(*) AS n FROM TABLE(CUMULATE(TABLE events, DESCRIPTOR(proc_time), INTERVAL '1' MINUTE, INTERVAL '1' HOUR)) GROUP BY window_start, window_end",
            "SELECT window_start, window_end, contextKey, COUNT(*) AS n FROM TABLE(SESSION(TABLE events PARTITION BY contextKey, DESCRIPTOR(proc_time), INTERVAL '5' MINUTE)) GROUP BY window_start, window_end, contextKey",
            "SELECT TUMBLE_START(proc_time, INTERVAL '1' MINUTE) AS window_start, COUNT(*) AS n FROM events GROUP BY TUMBLE(proc_time, INTERVAL '1' MINUTE)",
            "SELECT eventTime - MOD(eventTime, 60000) AS bucket, COUNT(*) AS n FROM events GROUP BY eventTime - MOD(eventTime, 60000)",
            "WITH f AS (SELECT * FROM events WHERE kind = 'feature'), c AS (SELECT * FROM events WHERE kind = 'custom') "
                    + "SELECT f.flagKey, f.variation, COUNT(*) AS conversions FROM f JOIN c ON f.contextKey = c.contextKey GROUP BY f.flagKey, f.variation",
            "WITH events AS (SELECT * FROM events WHERE kind = 'custom') SELECT eventKey, SUM(metricValue) AS total FROM events GROUP BY eventKey",
            "SELECT a.contextKey FROM events AS a JOIN events b ON a.contextKey = b.contextKey WHERE a.kind = 'feature' AND b.kind = 'custom'",
            "SELECT kind FROM events WHERE kind = 'feature' UNION ALL SELECT kind FROM events WHERE kind = 'custom'",
            "SELECT * FROM events WHERE contextKey IN (SELECT contextKey FROM events WHERE kind = 'identify')",
            "SELECT k.contextKind, COUNT(DISTINCT k.contextKey) AS n FROM events CROSS JOIN UNNEST(events.contextKeys) AS k (contextKind, contextKey) GROUP BY k.contextKind",
            "SELECT f.flagKey, SUM(c.`count`) AS evaluations FROM events AS e CROSS JOIN UNNEST(e.features) AS f (flagKey, flag) CROSS JOIN UNNEST(f.flag.counters) AS c (variation, version, `count`, `unknown`) GROUP BY f.flagKey",
            "SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY contextKey ORDER BY proc_time MEASURES A.flagKey AS flagKey, B.eventKey AS eventKey ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (A B) DEFINE A AS A.kind = 'feature', B AS B.kind = 'custom') AS T",
            "SELECT kind, `value` AS `the value`, JSON_VALUE(`value`, '$.a') AS a, UPPER(kind) IS NULL AS u, CAST(variation AS STRING) AS v FROM `events` WHERE kind = 'it''s'",
            "TABLE events",
            "VALUES (1, 'a'), (2, 'b')",
    })
    void accepted(String query) {
        if (query.contains("UPPER(")) {
            query = query.replace("UPPER(", "LOWER("); // upper is shadowed by a user function in this environment
        }
        String rewritten = SandboxedQuery.rewrite(tEnv, query, "events_0");
        // the text the planner gets reads the member's view only, by its full name; no bare events is left
        List<List<String>> tables = SandboxedQuery.tablesRead(tEnv, rewritten);
        assertTrue(tables.stream().allMatch(TARGET::equals), rewritten + " reads " + tables);
        assertEquals(SandboxedQuery.tablesRead(tEnv, query).size(), tables.size(), rewritten);
        if (!query.startsWith("VALUES")) {
            assertFalse(tables.isEmpty(), rewritten);
        }
        Table rows = SandboxedQuery.rows(SandboxedQuery.query(tEnv, query, "events_0"), ID, 3);
        assertEquals(List.of("analysisId", "generation", "type", "windowStart", "windowEnd", "fields", "version"),
                rows.getResolvedSchema().getColumnNames());
    }

    @Test
    void theRewriteAliasesEachEventsAsEventsSoQualifiedColumnsResolve() {
        assertEquals("SELECT `events`.`kind` FROM `default_catalog`.`default_database`.`events_0` AS `events` WHERE `events`.`kind` = 'feature'",
                SandboxedQuery.rewrite(tEnv, "SELECT events.kind FROM events WHERE events.kind = 'feature'", "events_0"));
        assertEquals("SELECT * FROM `default_catalog`.`default_database`.`events_0` AS `e`",
                SandboxedQuery.rewrite(tEnv, "select * from events e", "events_0"));
        // a WITH item named events hides the view in the body, not in its own query
        assertEquals("WITH `events` AS (SELECT * FROM `default_catalog`.`default_database`.`events_0` AS `events` WHERE `kind` = 'custom') (SELECT * FROM `events`)",
                SandboxedQuery.rewrite(tEnv, "WITH events AS (SELECT * FROM events WHERE kind = 'custom') SELECT * FROM events", "events_0"));
        assertEquals("SELECT * FROM TABLE(TUMBLE(TABLE `default_catalog`.`default_database`.`events_0`, DESCRIPTOR(`proc_time`), INTERVAL '1' MINUTE))",
                SandboxedQuery.rewrite(tEnv, "SELECT * FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(proc_time), INTERVAL '1' MINUTE))", "events_0"));
        // user text reaches the planner only as the parser's tokens: literals and identifiers re-quoted
        assertEquals("SELECT 'a''; DROP TABLE x; --' AS `x``y` FROM `default_catalog`.`default_database`.`events_0` AS `events`",
                SandboxedQuery.rewrite(tEnv, "SELECT 'a''; DROP TABLE x; --' AS `x``y` FROM events -- trailing comment", "events_0"));
    }

    /** The member's rows view fits the pool's UNION ALL into result_rows: the sink's columns and types. */
    @Test
    void rowsHaveTheSinksColumnsWithEveryQueryColumnInFields() {
        Table rows = tEnv.from("rows_0");
        assertEquals("[`analysisId` STRING NOT NULL, `generation` BIGINT NOT NULL, `type` STRING NOT NULL, `windowStart` TIMESTAMP_LTZ(3), "
                        + "`windowEnd` TIMESTAMP_LTZ(3), `fields` STRING NOT NULL, `version` BIGINT NOT NULL]",
                rows.getResolvedSchema().getColumns().stream().map(Column::toString).collect(Collectors.toList()).toString());
        Table windowed = SandboxedQuery.rows(SandboxedQuery.query(tEnv,
                "SELECT window_start, window_end, window_time, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(proc_time), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, window_time",
                "events_0"), ID, 3);
        assertEquals("[`windowStart` TIMESTAMP_LTZ(3) NOT NULL, `windowEnd` TIMESTAMP_LTZ(3) NOT NULL]",
                windowed.getResolvedSchema().getColumns().subList(3, 5).stream().map(Column::toString).collect(Collectors.toList()).toString());
        ValidationException e = assertThrows(ValidationException.class, () -> SandboxedQuery.rows(
                SandboxedQuery.query(tEnv, "SELECT eventTime AS window_start FROM events", "events_0"), ID, 3));
        assertEquals("custom SQL: column \"window_start\" must be a TIMESTAMP or TIMESTAMP_LTZ (a window's bound); it is BIGINT", e.getMessage());
    }

    /** Through SqlRunner.explain, as the validator plans a definition: the reason is the exception's message. */
    @Test
    void aRefusedQueryFailsTheWholeScriptWithItsReason() {
        ValidationException e = assertThrows(ValidationException.class, () -> SqlRunner.explain(script("SELECT * FROM deduplicated")));
        assertEquals("custom SQL: may read only the view \"events\"; it reads \"deduplicated\" at line 1, column 15", e.getMessage());
    }

    /** Two custom members (a window TVF, a grouped query) and a flag-evaluations-like reader: one source, ONE dedup. */
    @Test
    void acceptedQueriesPlanWithThePoolsOneDedup() {
        String plan = SqlRunner.explain(CustomSqlScript.pool(List.of(
                member("SELECT window_start, window_end, kind, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(proc_time), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, kind"),
                new CustomSqlScript.Member("1b5e7f8a-1c2d-4e3f-9a8b-7c6d5e4f3a2b", 1, "globex", null, READ_FROM,
                        "SELECT flagKey, COUNT(DISTINCT contextKey) AS contexts FROM events WHERE kind = 'feature' GROUP BY flagKey"))));
        String exec = plan.substring(plan.indexOf("== Optimized Execution Plan =="));
        assertTrue(exec.contains("WindowAggregate(groupBy=[kind], window=[TUMBLE(time_col=[proc_time], size=[1 min])]"), exec);
        assertEquals(1, count(exec, "Deduplicate(keep=[FirstRow]"), exec);
        assertEquals(1, count(exec, "TableSourceScan("), exec);
        assertEquals(1, count(exec, "Sink(table=[default_catalog.default_database.result_rows]"), exec);
    }

    static int count(String haystack, String needle) {
        int n = 0;
        for (int i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }

    @Test
    void theDirectiveMustBeExact() {
        String ok = "CREATE TEMPORARY VIEW rows_0 AS SANDBOXED QUERY '" + b64("SELECT * FROM events") + "' OVER events_0 FOR ANALYSIS '" + ID + "' GENERATION 3";
        SandboxedQuery.Directive d = SandboxedQuery.parseDirective(ok);
        assertEquals(List.of(0, "SELECT * FROM events", ID, 3L), List.of(d.member, d.query, d.analysisId, d.generation));
        for (String bad : List.of(
                ok.replace("rows_0", "rows_x"),
                ok.replace("OVER events_0", "OVER events_1"),
                ok.replace("OVER events_0", "OVER deduplicated"),
                ok.replace(ID, "an-fixture"),
                ok.replace("GENERATION 3", "GENERATION -3"),
                ok.replace("'" + b64("SELECT * FROM events") + "'", "'SELECT * FROM events'"),
                ok.replace("'" + b64("SELECT * FROM events") + "'", "'!!!!'"),
                ok.replace("'" + b64("SELECT * FROM events") + "'", "'QUJD='"),
                ok.replace("'" + b64("SELECT * FROM events") + "'", "'" + Base64.getEncoder().encodeToString(new byte[] {(byte) 0xff, 0x41}) + "'"),
                ok + " extra",
                ok.replace("SANDBOXED QUERY", "sandboxed query"),
                "SELECT 'SANDBOXED QUERY' FROM x")) {
            assertTrue(SandboxedQuery.mentions(bad), bad);
            ValidationException e = assertThrows(ValidationException.class, () -> SandboxedQuery.parseDirective(bad), bad);
            assertTrue(e.getMessage().startsWith("custom SQL: "), e.getMessage());
        }
        // in a script: the directive is recognised by SqlRunner.prepare, a near-miss is an error, not DDL
        String script = script("SELECT * FROM events");
        assertTrue(script.contains(" AS SANDBOXED QUERY '"), script);
        ValidationException e = assertThrows(ValidationException.class,
                () -> SqlRunner.explain(script.replace(" GENERATION 3;", " GENERATION three;")));
        assertTrue(e.getMessage().startsWith("custom SQL: malformed directive, expected " + SandboxedQuery.SYNTAX), e.getMessage());
    }

    static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    /** The isolated environment the rewritten query is validated in first knows the member's view only. */
    @Test
    void theIsolatedEnvironmentHoldsOnlyTheMembersView() {
        TableEnvironment isolated = SandboxedQuery.isolated(tEnv, "events_0");
        assertEquals(tEnv.from("events_0").getResolvedSchema().getColumnDataTypes().toString(),
                isolated.from("`default_catalog`.`default_database`.`events_0`").getResolvedSchema().getColumnDataTypes().toString());
        assertEquals(tEnv.from("events_0").getResolvedSchema().getColumnNames(),
                isolated.from("events_0").getResolvedSchema().getColumnNames());
        for (String q : List.of("SELECT * FROM deduplicated", "SELECT * FROM events", "SELECT myfn(kind) FROM events_0")) {
            assertThrows(ValidationException.class, () -> isolated.sqlQuery(q), q);
        }
    }

    /** Every placeholder of the template is used (sql-generator.ts fill() refuses a value without one). */
    @Test
    void theTemplateUsesEveryPlaceholder() {
        String sql = CustomSqlScript.member(4, member("SELECT 1"));
        assertFalse(sql.contains("{{"), sql);
        assertTrue(sql.contains("CREATE TEMPORARY VIEW events_4 AS"), sql);
        assertTrue(sql.contains("CREATE TEMPORARY VIEW late_4 AS"), sql);
        assertTrue(sql.contains("CREATE TEMPORARY VIEW rows_4 AS SANDBOXED QUERY '" + b64("SELECT 1") + "' OVER events_4 FOR ANALYSIS '" + ID + "' GENERATION 3;"), sql);
    }
}
