package dev.flagstream.local;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.ValidationException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ValidatorServer.describe: the "error" text of POST /validate. */
class ValidatorServerTest {

    private static void assertNoStackTrace(String s) {
        for (String line : s.split("\n")) {
            assertFalse(line.strip().startsWith("at "), () -> "stack trace line in:\n" + s);
        }
        assertFalse(s.contains("at org.apache"), s);
    }

    @Test
    void keepsEachCauseMessageAndTheRootOne() {
        Exception e = new RuntimeException("Could not plan the script",
                new IllegalStateException("middle", new IllegalArgumentException("the root cause")));

        assertEquals("Could not plan the script\nCaused by: middle\nCaused by: the root cause",
                ValidatorServer.describe(e));
    }

    @Test
    void dropsCauseMessagesAlreadyContainedInTheOuterOne() {
        Exception root = new IllegalArgumentException("Object 'x' not found");
        Exception e = new RuntimeException("SQL validation failed. Object 'x' not found",
                new RuntimeException("Object 'x' not found", root));

        assertEquals("SQL validation failed. Object 'x' not found", ValidatorServer.describe(e));
    }

    @Test
    void usesTheClassNameWhenThereIsNoMessage() {
        assertEquals("boom\nCaused by: NullPointerException",
                ValidatorServer.describe(new RuntimeException("boom", new NullPointerException())));
    }

    @Test
    void cutsLongMessagesToTwelveLines() {
        StringBuilder msg = new StringBuilder("line 0");
        for (int i = 1; i < 40; i++) {
            msg.append("\nline ").append(i);
        }
        String d = ValidatorServer.describe(new RuntimeException(msg.toString(), new RuntimeException("root")));

        String[] lines = d.split("\n");
        assertEquals(14, lines.length, d);
        assertEquals("line 11", lines[11]);
        assertEquals("...", lines[12]);
        assertEquals("Caused by: root", lines[13]);
    }

    /** A real planner exception chain (ValidationException <- CalciteContextException <- ...). */
    @Test
    void realPlannerErrorBecomesAShortMessageWithTheRootCause() {
        TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        tEnv.executeSql("CREATE TABLE src (id INT) WITH ('connector' = 'datagen')");
        tEnv.executeSql("CREATE TABLE snk (id INT) WITH ('connector' = 'blackhole')");
        ValidationException e = assertThrows(ValidationException.class,
                () -> tEnv.explainSql("INSERT INTO snk SELECT nope FROM src"));

        String d = ValidatorServer.describe(e);

        assertTrue(d.contains("Column 'nope' not found in any table"), d);
        assertTrue(d.split("\n").length <= 6, d);
        assertNoStackTrace(d);
    }
}
