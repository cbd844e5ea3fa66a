package dev.flagstream.runner.bench;

import dev.flagstream.runner.SqlRunnerTestAccess;
import dev.flagstream.runner.pipeline.ReplayConnector;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

import java.io.BufferedReader;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The `catalog` section of `npm run bench` (bench/catalog.mjs): runs ONE script (a generated pool
 * script or its hand-written counterpart, both on the test-only {@link ReplayConnector}) on a
 * MiniCluster over a file of event records (one JSON record a line, as the events API writes
 * them to the stream), to completion, and prints one line:
 *
 * <pre>CATALOG-BENCH {"wallMs":…,"prepareMs":…,"netRuntimeMs":…,"jobCpuMs":…,"cpuMs":…,"inputRecords":…,"outputRecords":…,"rows":…,"digest":"…",
 *   "tables":{"result_rows":{"records":…,"digest":"…"},"result_late":{…},"result_progress":{…}}}</pre>
 *
 * wallMs = from a fresh TableEnvironment to the job's end (parsing the script, planning, the
 * MiniCluster's start, the run); netRuntimeMs = the job's own runtime as Flink reports it;
 * jobCpuMs = this JVM's CPU time from the job's submission to its end (cpuMs: from the start).
 *
 * <p>The result the bench compares: the output changelog (Debezium JSON: "c" adds `after`, "d"
 * removes `before`) applied as a multiset, over the records that are rows (a generated
 * script's progress and late records left out), each row flattened (a generated row's `fields`
 * JSON merged in) and projected on --columns, values normalised (numbers by value, ISO
 * timestamps as epoch ms). digest = SHA-256 of those rows sorted; --rows-out writes them.
 *
 * <p>And the full final records, per sink table: the same changelog applied as a multiset of
 * whole records (every column of the sink, exactly as the format wrote it: a row's `fields`
 * text, its version, its window; the late counts; the progress), the table told by its columns
 * (fields: result_rows, bucketStart: result_late, progressAt: result_progress; any other sink:
 * "other"). tables = per table the number of final records and the SHA-256 of them sorted;
 * --records-out writes them ("table record" or "table record ×n" a line). A hand-written job
 * that produces the generated job's outputs has the same three digests.
 *
 * <p>Not a test: a main, run by bench/catalog.mjs with the test classpath (`java -cp
 * target/test-classes:target/classes:&lt;mvn dependency:build-classpath&gt;`), never by surefire.
 *
 * <pre>--input FILE --script FILE --columns a,b,c [--rows-out FILE] [--records-out FILE] [--parallelism N]
 * --script FILE --explain       (prints the script's plan, runs nothing)</pre>
 */
public final class CatalogBench {
    static final String EVENTS_STREAM = "flagstream-events";
    static final String RESULTS_STREAM = "flagstream-results";
    static final ObjectMapper JSON = new ObjectMapper();

    private CatalogBench() {}

    public static void main(String[] args) throws Exception {
        Path input = null;
        Path script = null;
        Path rowsOut = null;
        Path recordsOut = null;
        List<String> columns = null;
        int parallelism = 1;
        boolean explain = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--input":
                    input = Path.of(args[++i]);
                    break;
                case "--script":
                    script = Path.of(args[++i]);
                    break;
                case "--columns":
                    columns = Arrays.asList(args[++i].split(","));
                    break;
                case "--rows-out":
                    rowsOut = Path.of(args[++i]);
                    break;
                case "--records-out":
                    recordsOut = Path.of(args[++i]);
                    break;
                case "--explain":
                    explain = true;
                    break;
                case "--parallelism":
                    parallelism = Integer.parseInt(args[++i]);
                    break;
                default:
                    throw new IllegalArgumentException("unknown argument: " + args[i]);
            }
        }
        if (explain && script != null) {
            // the optimized plan only (no input, no run): to see what a script costs
            TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
            tEnv.getConfig().set(CoreOptions.DEFAULT_PARALLELISM, parallelism);
            System.out.println(SqlRunnerTestAccess.prepare(tEnv, Files.readString(script, StandardCharsets.UTF_8)).explain());
            System.exit(0);
        }
        if (input == null || script == null || columns == null) {
            throw new IllegalArgumentException("usage: --input FILE --script FILE --columns a,b,c [--rows-out FILE] [--records-out FILE] [--parallelism N]");
        }

        List<Object> records = new ArrayList<>();
        try (BufferedReader in = Files.newBufferedReader(input, StandardCharsets.UTF_8)) {
            for (String line; (line = in.readLine()) != null; ) {
                if (!line.isEmpty()) {
                    records.add(line);
                }
            }
        }
        String sql = Files.readString(script, StandardCharsets.UTF_8);
        ReplayConnector.reset();
        ReplayConnector.input(EVENTS_STREAM, records);
        System.gc();

        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        long start = System.nanoTime();
        long cpuStart = os.getProcessCpuTime();
        TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        tEnv.getConfig().set(CoreOptions.DEFAULT_PARALLELISM, parallelism);
        StatementSet set = SqlRunnerTestAccess.prepare(tEnv, sql);
        long prepared = System.nanoTime();
        TableResult result = set.execute(); // planned, the MiniCluster started, the job submitted
        long cpuSubmitted = os.getProcessCpuTime();
        JobExecutionResult job = result.getJobClient().orElseThrow().getJobExecutionResult().get();
        long end = System.nanoTime();
        long cpuEnd = os.getProcessCpuTime();

        List<ReplayConnector.Output> output = ReplayConnector.output(RESULTS_STREAM);
        List<String> rows = materialize(output, columns);
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        for (String row : rows) {
            sha.update(row.getBytes(StandardCharsets.UTF_8));
            sha.update((byte) '\n');
        }
        if (rowsOut != null) {
            Files.write(rowsOut, rows, StandardCharsets.UTF_8);
        }
        Map<String, List<String>> tables = records(output);
        ObjectNode tablesNode = JSON.createObjectNode();
        List<String> allRecords = new ArrayList<>();
        for (Map.Entry<String, List<String>> t : tables.entrySet()) {
            MessageDigest tableSha = MessageDigest.getInstance("SHA-256");
            for (String r : t.getValue()) {
                tableSha.update(r.getBytes(StandardCharsets.UTF_8));
                tableSha.update((byte) '\n');
                allRecords.add(t.getKey() + " " + r);
            }
            ObjectNode tableNode = tablesNode.putObject(t.getKey());
            tableNode.put("records", t.getValue().size());
            tableNode.put("digest", HexFormat.of().formatHex(tableSha.digest()));
        }
        if (recordsOut != null) {
            Files.write(recordsOut, allRecords, StandardCharsets.UTF_8);
        }
        ObjectNode line = JSON.createObjectNode();
        line.put("wallMs", (end - start) / 1_000_000);
        line.put("prepareMs", (prepared - start) / 1_000_000);
        line.put("netRuntimeMs", job.getNetRuntime());
        // CPU time of this JVM (every thread: the job's tasks, the JIT, GC) from the job's submission
        // to its end, and from the start: less sensitive than wall time to other work on the machine
        line.put("jobCpuMs", (cpuEnd - cpuSubmitted) / 1_000_000);
        line.put("cpuMs", (cpuEnd - cpuStart) / 1_000_000);
        line.put("inputRecords", records.size());
        line.put("outputRecords", output.size());
        line.put("rows", rows.size());
        line.put("digest", HexFormat.of().formatHex(sha.digest()));
        line.set("tables", tablesNode);
        System.out.println("CATALOG-BENCH " + JSON.writeValueAsString(line));
        System.out.flush();
        // the MiniCluster's non-daemon threads may linger after the job: this JVM is done
        System.exit(0);
    }

    /** The final rows: the changelog as a multiset of projected rows, sorted, each "row" or "row ×n". */
    static List<String> materialize(List<ReplayConnector.Output> output, List<String> columns) throws IOException {
        Map<String, Integer> multiset = new HashMap<>();
        for (ReplayConnector.Output o : output) {
            JsonNode record = JSON.readTree(o.data);
            String op = record.get("op").asText();
            boolean add;
            if (op.equals("c") || op.equals("r")) {
                add = true;
            } else if (op.equals("d")) {
                add = false;
            } else {
                throw new IllegalStateException("unexpected Debezium op " + op + ": " + o.data);
            }
            JsonNode payload = add ? record.get("after") : record.get("before");
            JsonNode type = payload.get("type");
            if (type != null && (type.asText().equals("progress") || type.asText().equals("late"))) {
                continue;
            }
            multiset.merge(project(flatten(payload), columns), add ? 1 : -1, Integer::sum);
        }
        Map<String, Integer> sorted = new TreeMap<>(multiset);
        List<String> rows = new ArrayList<>();
        for (Map.Entry<String, Integer> e : sorted.entrySet()) {
            int n = e.getValue();
            if (n != 0) {
                rows.add(n == 1 ? e.getKey() : e.getKey() + " ×" + n);
            }
        }
        return rows;
    }

    /**
     * The full final records per sink table: the changelog applied as a multiset of whole records
     * (`after` / `before` as written, re-serialised by one ObjectMapper: field order and values
     * as the format wrote them), each table's sorted, each "record" or "record ×n".
     */
    static Map<String, List<String>> records(List<ReplayConnector.Output> output) throws IOException {
        Map<String, Map<String, Integer>> multisets = new TreeMap<>();
        for (ReplayConnector.Output o : output) {
            JsonNode record = JSON.readTree(o.data);
            String op = record.get("op").asText();
            boolean add;
            if (op.equals("c") || op.equals("r")) {
                add = true;
            } else if (op.equals("d")) {
                add = false;
            } else {
                throw new IllegalStateException("unexpected Debezium op " + op + ": " + o.data);
            }
            JsonNode payload = add ? record.get("after") : record.get("before");
            String table = payload.has("fields") ? "result_rows"
                    : payload.has("bucketStart") ? "result_late"
                    : payload.has("progressAt") ? "result_progress"
                    : "other";
            multisets.computeIfAbsent(table, k -> new HashMap<>())
                    .merge(JSON.writeValueAsString(payload), add ? 1 : -1, Integer::sum);
        }
        Map<String, List<String>> tables = new TreeMap<>();
        for (Map.Entry<String, Map<String, Integer>> t : multisets.entrySet()) {
            List<String> lines = new ArrayList<>();
            for (Map.Entry<String, Integer> e : new TreeMap<>(t.getValue()).entrySet()) {
                int n = e.getValue();
                if (n != 0) {
                    lines.add(n == 1 ? e.getKey() : e.getKey() + " ×" + n);
                }
            }
            tables.put(t.getKey(), lines);
        }
        return tables;
    }

    /** A generated row: its `fields` (JSON text) merged into the row; a hand-written row as it is. */
    static JsonNode flatten(JsonNode payload) throws IOException {
        JsonNode fields = payload.get("fields");
        if (fields == null || !fields.isTextual()) {
            return payload;
        }
        ObjectNode flat = ((ObjectNode) payload).deepCopy();
        flat.remove("fields");
        flat.setAll((ObjectNode) JSON.readTree(fields.asText()));
        return flat;
    }

    static String project(JsonNode row, List<String> columns) {
        StringBuilder out = new StringBuilder();
        for (String c : columns) {
            if (out.length() > 0) {
                out.append(", ");
            }
            out.append(c).append('=').append(normalise(row.get(c)));
        }
        return out.toString();
    }

    static String normalise(JsonNode v) {
        if (v == null || v.isNull()) {
            return "null";
        }
        if (v.isNumber()) {
            BigDecimal d = v.decimalValue().stripTrailingZeros();
            return d.signum() == 0 ? "0" : d.toPlainString();
        }
        if (v.isTextual()) {
            String s = v.asText();
            if (s.length() >= 20 && Character.isDigit(s.charAt(0)) && s.charAt(4) == '-' && s.endsWith("Z")) {
                try {
                    return Long.toString(Instant.parse(s).toEpochMilli());
                } catch (DateTimeParseException e) {
                    return s;
                }
            }
            return s;
        }
        return v.toString();
    }
}
