package dev.flagstream.runner;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a Flink SQL script into statements on ';' that are outside of string literals
 * ('...' with '' escapes), quoted identifiers (`...`, "..."), and comments (-- and /* *&#47;).
 * A line containing only ';' is therefore also a valid separator.
 */
public final class SqlScript {
    private SqlScript() {}

    public static List<String> split(String script) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        int n = script.length();
        for (int i = 0; i < n; i++) {
            char c = script.charAt(i);
            char next = i + 1 < n ? script.charAt(i + 1) : '\0';
            if (c == '\'' || c == '`' || c == '"') {
                // copy the quoted section verbatim; a doubled quote char is an escape
                int j = i + 1;
                while (j < n) {
                    if (script.charAt(j) == c) {
                        if (j + 1 < n && script.charAt(j + 1) == c) {
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    j++;
                }
                cur.append(script, i, Math.min(j + 1, n));
                i = j;
            } else if (c == '-' && next == '-') {
                int j = script.indexOf('\n', i);
                j = j < 0 ? n : j;
                cur.append(script, i, j);
                i = j - 1;
            } else if (c == '/' && next == '*') {
                int j = script.indexOf("*/", i + 2);
                j = j < 0 ? n : j + 2;
                cur.append(script, i, j);
                i = j - 1;
            } else if (c == ';') {
                addIfNotBlank(out, cur.toString());
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        addIfNotBlank(out, cur.toString());
        return out;
    }

    /** Removes leading whitespace and comments, used to look at a statement's first keyword. */
    public static String stripLeadingComments(String stmt) {
        String s = stmt.strip();
        while (true) {
            if (s.startsWith("--")) {
                int j = s.indexOf('\n');
                s = j < 0 ? "" : s.substring(j + 1).strip();
            } else if (s.startsWith("/*")) {
                int j = s.indexOf("*/", 2); // "/*/" does not close the comment
                s = j < 0 ? "" : s.substring(j + 2).strip();
            } else {
                return s;
            }
        }
    }

    private static void addIfNotBlank(List<String> out, String stmt) {
        if (!stripLeadingComments(stmt).isEmpty()) {
            out.add(stmt.strip());
        }
    }
}
