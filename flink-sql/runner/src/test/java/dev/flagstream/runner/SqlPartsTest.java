package dev.flagstream.runner;

import org.junit.jupiter.api.Test;

import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** Managed Flink runtime properties: sql.0, sql.1, ... concatenated (SqlRunner.concatSqlParts). */
class SqlPartsTest {

    private static Properties props(String... kv) {
        Properties p = new Properties();
        for (int i = 0; i < kv.length; i += 2) {
            p.setProperty(kv[i], kv[i + 1]);
        }
        return p;
    }

    @Test
    void joinsPartsInNumericOrderWithoutSeparator() {
        // inserted out of order; sql.10 must come after sql.9 (numeric, not lexical order)
        Properties p = new Properties();
        for (int i = 10; i >= 0; i--) {
            p.setProperty("sql." + i, "<" + i + ">");
        }
        assertEquals("<0><1><2><3><4><5><6><7><8><9><10>", SqlRunner.concatSqlParts(p));
    }

    @Test
    void partsAreConcatenatedVerbatimSoAStatementMaySpanTwoParts() {
        assertEquals("INSERT INTO t SELECT 'a b' FROM s;",
                SqlRunner.concatSqlParts(props("sql.1", " b' FROM s;", "sql.0", "INSERT INTO t SELECT 'a")));
    }

    @Test
    void stopsAtTheFirstMissingIndex() {
        assertEquals("ab", SqlRunner.concatSqlParts(props("sql.0", "a", "sql.1", "b", "sql.3", "d", "job.name", "j")));
    }

    @Test
    void nullWhenThereAreNoParts() {
        assertNull(SqlRunner.concatSqlParts(null));
        assertNull(SqlRunner.concatSqlParts(new Properties()));
        assertNull(SqlRunner.concatSqlParts(props("job.name", "j", "sql", "x")));
        // sql.1 without sql.0: nothing is read
        assertNull(SqlRunner.concatSqlParts(props("sql.1", "b")));
    }
}
