package dev.flagstream.runner;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Tests' stand-in for the control plane's generator (sql-generator.ts) for custom-sql pools: the
 * script from the templates in flink-sql/templates (read from disk, so a template change shows
 * here at once, before the generated fixtures are refreshed), placeholders filled like the
 * generator fills them (`{{name}}`; every placeholder needs a value and every value a
 * placeholder), with the test-only replay connector for the source and sinks.
 */
public final class CustomSqlScript {
    public static final String SOURCE_OPTIONS = String.join(",\n",
            "  'connector' = 'flagstream-replay'",
            "  'stream' = 'flagstream-events'",
            "  'format' = 'json'",
            "  'json.ignore-parse-errors' = 'true'",
            "  'json.fail-on-missing-field' = 'false'");
    public static final String SINK_OPTIONS = String.join(",\n",
            "  'connector' = 'flagstream-replay'",
            "  'stream' = 'flagstream-results'",
            "  'format' = 'debezium-json'",
            "  'debezium-json.timestamp-format.standard' = 'ISO-8601'");
    /** The columns the dedup passes on to custom-sql members: all of them (sql-generator.ts columnsOf). */
    public static final String COLUMNS = "tenant, environment, kind, eventTime, receivedAt, late, features, `key`, variation, version, `value`, contextKey, contextKeys, metricValue";
    /** Every optional column of the member's `events` view, as the generator writes them for a query that may read all (`SELECT *`). */
    public static final String OPTIONAL_COLUMNS = String.join("\n",
            "  CASE WHEN kind = 'feature' THEN `key` END AS flagKey,",
            "  variation AS variation,",
            "  version AS flagVersion,",
            "  `value` AS `value`,",
            "  CASE WHEN kind = 'custom' THEN `key` END AS eventKey,",
            "  metricValue AS metricValue,",
            "  contextKey AS contextKey,",
            "  contextKeys AS contextKeys,",
            "  features AS features,");
    /** The event kinds a custom-sql member reads (sql-generator.ts eventKindsOf). */
    public static final String KINDS = "'index', 'identify', 'feature', 'custom', 'summary'";

    private static final Pattern PLACEHOLDER = Pattern.compile("\\{\\{(\\w+)}}");

    private CustomSqlScript() {}

    /** One custom-sql member of a pool. */
    public static final class Member {
        public final String id;
        public final long generation;
        public final String tenant;
        public final String environment;
        public final long readFrom;
        public final String sql;

        public Member(String id, long generation, String tenant, String environment, long readFrom, String sql) {
            this.id = id;
            this.generation = generation;
            this.tenant = tenant;
            this.environment = environment;
            this.readFrom = readFrom;
            this.sql = sql;
        }
    }

    public static Path templates() {
        for (Path p : List.of(Path.of("../templates"), Path.of("flink-sql/templates"), Path.of("templates"))) {
            if (Files.isRegularFile(p.resolve("custom-sql.sql"))) {
                return p;
            }
        }
        throw new IllegalStateException("flink-sql/templates not found from " + Path.of("").toAbsolutePath());
    }

    public static String template(String name) {
        try {
            return Files.readString(templates().resolve(name), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** sql-generator.ts fill(): every placeholder needs a value, every value a placeholder. */
    public static String fill(String template, Map<String, String> values) {
        Set<String> used = new HashSet<>();
        Matcher m = PLACEHOLDER.matcher(template);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String name = m.group(1);
            if (!values.containsKey(name)) {
                throw new IllegalArgumentException("template placeholder {{" + name + "}} has no value");
            }
            used.add(name);
            m.appendReplacement(out, Matcher.quoteReplacement(values.get(name)));
        }
        m.appendTail(out);
        Set<String> unused = new HashSet<>(values.keySet());
        unused.removeAll(used);
        if (!unused.isEmpty()) {
            throw new IllegalArgumentException("values without a placeholder: " + unused);
        }
        return out.toString();
    }

    /** A string as the generator writes user values: FROM_BASE64('...'). */
    public static String literal(String value) {
        return "FROM_BASE64('" + Base64.getEncoder().encodeToString(value.getBytes(StandardCharsets.UTF_8)) + "')";
    }

    public static String bigint(long value) {
        return "CAST(" + value + " AS BIGINT)";
    }

    /** custom-sql.sql for member n. */
    public static String member(int n, Member m) {
        Map<String, String> values = new LinkedHashMap<>();
        values.put("member", String.valueOf(n));
        values.put("tenant", literal(m.tenant));
        values.put("eventFilters", m.environment == null ? "" : "\n  AND environment = " + literal(m.environment));
        values.put("readFrom", bigint(m.readFrom));
        values.put("analysisId", literal(m.id));
        values.put("generation", bigint(m.generation));
        values.put("analysisUuid", m.id);
        values.put("generationNumber", String.valueOf(m.generation));
        values.put("query", Base64.getEncoder().encodeToString(m.sql.getBytes(StandardCharsets.UTF_8)));
        values.put("optionalColumns", OPTIONAL_COLUMNS);
        return fill(template("custom-sql.sql"), values);
    }

    /** The whole pool script, in the generator's order. */
    public static String pool(List<Member> members) {
        List<String> parts = new ArrayList<>();
        // A custom-sql pool's job settings, as the generator writes them: its own state TTL, parallelism 1.
        parts.add(fill(template("settings.sql"), Map.of("stateTtl", "3600000 ms", "limits", "SET 'parallelism.default' = '1';")));
        parts.add(fill(template("events-source.sql"), Map.of("table", "events", "sourceOptions", SOURCE_OPTIONS)));
        parts.add(fill(template("results-sink.sql"), Map.of("sinkOptions", SINK_OPTIONS)));
        parts.add(fill(template("progress.sql"), Map.of("lakeGate", "", "members", members.stream()
                .map(m -> "ROW(" + literal(m.id) + ", " + bigint(m.generation) + ")").collect(Collectors.joining(", ")))));
        parts.add(fill(template("deduplicate.sql"), Map.of("columns", COLUMNS, "kinds", KINDS, "tenants",
                members.stream().map(m -> m.tenant).distinct().map(CustomSqlScript::literal).collect(Collectors.joining(", ")))));
        List<String> rows = new ArrayList<>();
        List<String> late = new ArrayList<>();
        for (int i = 0; i < members.size(); i++) {
            parts.add(member(i, members.get(i)));
            rows.add("SELECT analysisId, generation, `type`, windowStart, windowEnd, fields, version FROM rows_" + i);
            late.add("SELECT analysisId, generation, `type`, bucketStart, lateEvents FROM late_" + i);
        }
        parts.add(fill(template("pool-inserts.sql"), Map.of(
                "rows", String.join("\nUNION ALL\n", rows), "late", String.join("\nUNION ALL\n", late))));
        return String.join("\n", parts);
    }
}
