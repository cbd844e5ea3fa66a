package dev.flagstream.runner;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class SqlScriptTest {

    @Test
    void splitsOnSemicolonsAndStripsEachStatement() {
        assertEquals(List.of("CREATE TABLE a (x INT)", "INSERT INTO a SELECT 1"),
                SqlScript.split("  CREATE TABLE a (x INT);\n  INSERT INTO a SELECT 1;\n"));
    }

    @Test
    void trailingStatementWithoutSemicolonIsKept() {
        assertEquals(List.of("SET 'a' = 'b'", "INSERT INTO t SELECT 1"),
                SqlScript.split("SET 'a' = 'b';\nINSERT INTO t SELECT 1\n"));
    }

    @Test
    void lineWithOnlyASemicolonSeparates() {
        assertEquals(List.of("CREATE TABLE a (x INT)", "INSERT INTO a SELECT 1"),
                SqlScript.split("CREATE TABLE a (x INT)\n;\nINSERT INTO a SELECT 1\n;\n"));
    }

    @Test
    void blankAndCommentOnlyStatementsAreDropped() {
        assertEquals(List.of("A", "B"), SqlScript.split(";; A ;\n ; \n\t;B;;\n-- the end\n/* really */;\n"));
        assertEquals(List.of(), SqlScript.split(""));
        assertEquals(List.of(), SqlScript.split("  ;\n-- only a comment; with a semicolon\n"));
    }

    @Test
    void semicolonInsideSingleQuotedStringDoesNotSplit() {
        assertEquals(List.of("SELECT 'a;b', 'c' FROM t", "X"), SqlScript.split("SELECT 'a;b', 'c' FROM t; X"));
    }

    @Test
    void doubledSingleQuoteIsAnEscapeInsideTheString() {
        // 'it''s; fine' is ONE literal (it's; fine); the ';' inside it must not split
        assertEquals(List.of("SELECT 'it''s; fine'", "X"), SqlScript.split("SELECT 'it''s; fine'; X"));
        // '''' is a literal holding one quote; '' is the empty string
        assertEquals(List.of("SELECT '''', ''", "SELECT ';'"), SqlScript.split("SELECT '''', '';SELECT ';'"));
        // a literal ending in an escaped quote: 'a''' = a'
        assertEquals(List.of("SELECT 'a''' AS q", "X"), SqlScript.split("SELECT 'a''' AS q; X"));
    }

    @Test
    void semicolonAndQuotesInsideLineCommentAreIgnored() {
        String script = "-- don't split; here\nCREATE TABLE a (x INT) -- nor; here\n;\nX";
        assertEquals(List.of("-- don't split; here\nCREATE TABLE a (x INT) -- nor; here", "X"),
                SqlScript.split(script));
    }

    @Test
    void semicolonAndQuotesInsideBlockCommentAreIgnored() {
        String script = "/* it's; a\n multi-line; comment */ CREATE TABLE a (x INT); /*+ hint; */ X";
        assertEquals(List.of("/* it's; a\n multi-line; comment */ CREATE TABLE a (x INT)", "/*+ hint; */ X"),
                SqlScript.split(script));
    }

    @Test
    void commentMarkersInsideStringsAreText() {
        assertEquals(List.of("SELECT '--;', '/*;*/' FROM t", "X"), SqlScript.split("SELECT '--;', '/*;*/' FROM t; X"));
    }

    @Test
    void semicolonInsideBackQuotedIdentifierDoesNotSplit() {
        assertEquals(List.of("SELECT `a;b`, `it's` FROM t", "X"), SqlScript.split("SELECT `a;b`, `it's` FROM t; X"));
        assertEquals(List.of("SELECT `x``;y` FROM t", "X"), SqlScript.split("SELECT `x``;y` FROM t; X"));
    }

    @Test
    void unterminatedStringOrCommentSwallowsTheRestWithoutFailing() {
        assertEquals(List.of("SELECT 'abc; def"), SqlScript.split("SELECT 'abc; def"));
        assertEquals(List.of("A"), SqlScript.split("A; /* no end; "));
    }

    @Test
    void crlfLineEndings() {
        assertEquals(List.of("-- c;\r\nA", "B"), SqlScript.split("-- c;\r\nA;\r\nB\r\n"));
    }

    @Test
    void stripLeadingCommentsRemovesWhitespaceAndComments() {
        assertEquals("INSERT INTO t SELECT 1",
                SqlScript.stripLeadingComments("  -- one\n /* two\n lines */ -- three\n\tINSERT INTO t SELECT 1  "));
        assertEquals("SELECT 1 -- trailing", SqlScript.stripLeadingComments("/**/SELECT 1 -- trailing"));
        assertEquals("", SqlScript.stripLeadingComments("-- only a comment"));
        assertEquals("", SqlScript.stripLeadingComments(" /* unterminated"));
        // "/*/" opens a comment but does not close it (same rule as split)
        assertEquals("SELECT 1", SqlScript.stripLeadingComments("/*/ INSERT */ SELECT 1"));
        assertEquals("", SqlScript.stripLeadingComments("   \n "));
        // a comment later in the statement is kept
        assertEquals("SET 'a' = 'b' /* x */", SqlScript.stripLeadingComments("SET 'a' = 'b' /* x */"));
    }
}
