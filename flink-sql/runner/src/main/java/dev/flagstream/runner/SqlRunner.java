package dev.flagstream.runner;

import com.amazonaws.services.kinesisanalytics.runtime.KinesisAnalyticsRuntime;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.table.api.internal.TableEnvironmentInternal;
import org.apache.flink.table.operations.CompileAndExecutePlanOperation;
import org.apache.flink.table.operations.ModifyOperation;
import org.apache.flink.table.operations.Operation;
import org.apache.flink.table.operations.QueryOperation;
import org.apache.flink.table.operations.StatementSetOperation;
import org.apache.flink.table.operations.command.ExecutePlanOperation;
import org.apache.flink.table.operations.command.SetOperation;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs (or, with --validate, only plans) the statement set of one Flagstream analysis.
 *
 * <p>Script: statements separated by ';' (see {@link SqlScript}). "SET 'k' = 'v'" statements set
 * table/pipeline config, INSERT statements are collected into ONE StatementSet (so they run as
 * one job), everything else (CREATE TABLE / VIEW / FUNCTION ...) goes through executeSql, except
 * custom-sql's SANDBOXED QUERY directive ({@link SandboxedQuery}).
 */
public final class SqlRunner {
    private static final Pattern SET =
            Pattern.compile("(?is)SET\\s+'([^']+)'\\s*=\\s*'((?:[^']|'')*)'\\s*");
    private static final Pattern INSERT = Pattern.compile("(?is)(INSERT|EXECUTE\\s+INSERT)\\b.*");

    /** The runtime properties group the control plane writes (control-plane/src/deployments/runtime-properties.ts). */
    static final String PROPERTY_GROUP = "FlinkApplicationProperties";

    private SqlRunner() {}

    /** What one run is asked to do: the script, the job's name, and whether only to plan it. */
    static final class Invocation {
        final String script;
        final String jobName;
        final boolean validate;

        Invocation(String script, String jobName, boolean validate) {
            this.script = script;
            this.jobName = jobName;
            this.validate = validate;
        }
    }

    /**
     * The script comes from --sql-file, --sql-base64, or runtime properties: --properties-base64
     * (the JSON of /etc/flink/application_properties.json, base64) or, with none of these, the
     * properties Managed Flink gives the application. --job-name wins over the properties' job.name.
     */
    static Invocation parse(String[] args) throws IOException {
        String script = null;
        String jobName = null;
        boolean validate = false;
        Map<String, Properties> groups = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--sql-file":
                    script = Files.readString(Path.of(args[++i]), StandardCharsets.UTF_8);
                    break;
                case "--sql-base64":
                    script = new String(Base64.getDecoder().decode(args[++i].trim()), StandardCharsets.UTF_8);
                    break;
                case "--properties-base64":
                    groups = propertiesFromBase64(args[++i]);
                    break;
                case "--job-name":
                    jobName = args[++i];
                    break;
                case "--validate":
                    validate = true;
                    break;
                default:
                    throw new IllegalArgumentException("unknown argument: " + args[i]);
            }
        }
        if (script == null) {
            // Amazon Managed Service for Apache Flink: no program args, only runtime properties.
            Properties p = flagstreamProperties(groups != null ? groups : managedFlinkPropertyGroups());
            script = concatSqlParts(p);
            if (p != null && jobName == null) {
                jobName = p.getProperty("job.name");
            }
        }
        if (script == null || script.isBlank()) {
            throw new IllegalArgumentException(
                    "no SQL: pass --sql-file <path>, --sql-base64 <b64> or --properties-base64 <b64>, or set FlinkApplicationProperties sql.0, sql.1, ...");
        }
        return new Invocation(script, jobName, validate);
    }

    public static void main(String[] args) throws Exception {
        Invocation invocation = parse(args);
        String script = invocation.script;
        String jobName = invocation.jobName;

        if (invocation.validate) {
            System.out.println(explain(script));
            return;
        }

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        StreamTableEnvironment tEnv =
                StreamTableEnvironment.create(env, EnvironmentSettings.inStreamingMode());
        if (jobName != null) {
            tEnv.getConfig().set(PipelineOptions.NAME, jobName);
        }
        StatementSet set = prepare(tEnv, script);
        TableResult result = set.execute();
        String jobId = result.getJobClient().map(c -> c.getJobID().toString()).orElse("?");
        System.out.println("flagstream-runner submitted job " + jobId + (jobName == null ? "" : " (" + jobName + ")"));
    }

    /**
     * Plans the script in a fresh streaming TableEnvironment and returns the EXPLAIN of its
     * statement set; throws the planner's exception if invalid. Called reflectively by the
     * validator server (with this JAR's classloader, so the connector/format factories resolve).
     */
    public static String explain(String script) {
        TableEnvironment tEnv =
                TableEnvironment.create(
                        EnvironmentSettings.newInstance()
                                .inStreamingMode()
                                .withClassLoader(SqlRunner.class.getClassLoader())
                                .build());
        StatementSet set = prepare(tEnv, script);
        return set.explain();
    }

    static StatementSet prepare(TableEnvironment tEnv, String script) {
        StatementSet set = tEnv.createStatementSet();
        int inserts = 0;
        for (String stmt : SqlScript.split(script)) {
            String head = SqlScript.stripLeadingComments(stmt);
            Matcher set_ = SET.matcher(head);
            if (SandboxedQuery.mentions(head)) {
                // custom-sql's directive (CREATE TEMPORARY VIEW rows_N AS SANDBOXED QUERY '<base64>' ...):
                // the tenant's query, parsed and checked by the sandbox, never pasted as text
                SandboxedQuery.register(tEnv, head);
            } else if (set_.matches()) {
                tEnv.getConfig().getConfiguration().setString(set_.group(1), set_.group(2).replace("''", "'"));
            } else if (INSERT.matcher(head).matches()) {
                set.addInsertSql(head.toUpperCase(Locale.ROOT).startsWith("EXECUTE")
                        ? head.substring("EXECUTE".length()).strip() : head);
                inserts++;
            } else if (head.regionMatches(true, 0, "SELECT", 0, 6) || head.regionMatches(true, 0, "WITH", 0, 4)) {
                // a bare query would start its own job (or collect to the client): not allowed here
                throw new org.apache.flink.table.api.ValidationException(
                        "Only DDL, SET and INSERT statements are allowed; got a query: " + preview(head));
            } else {
                // What executeSql(stmt) does, but refusing statements that would run a job of their
                // own: a query not starting with SELECT/WITH ("VALUES ...", "(SELECT ...)"),
                // CREATE/REPLACE TABLE ... AS SELECT, EXECUTE PLAN. With --validate (and in the
                // validator server) executeSql would really start such a job in this JVM.
                TableEnvironmentInternal env = (TableEnvironmentInternal) tEnv;
                List<Operation> ops = env.getParser().parse(stmt);
                if (ops.size() != 1) {
                    throw new org.apache.flink.table.api.ValidationException(
                            "Expected one statement, got " + ops.size() + ": " + preview(head));
                }
                Operation op = ops.get(0);
                if (op instanceof SetOperation && ((SetOperation) op).getKey().isPresent()
                        && ((SetOperation) op).getValue().isPresent()) {
                    // a SET the regex above did not match, e.g. with a comment before its ';'
                    tEnv.getConfig().getConfiguration().setString(
                            ((SetOperation) op).getKey().get(), ((SetOperation) op).getValue().get());
                    continue;
                }
                if (op instanceof QueryOperation) {
                    throw new org.apache.flink.table.api.ValidationException(
                            "Only DDL, SET and INSERT statements are allowed; got a query: " + preview(head));
                }
                if (op instanceof ModifyOperation || op instanceof StatementSetOperation
                        || op instanceof ExecutePlanOperation || op instanceof CompileAndExecutePlanOperation) {
                    throw new org.apache.flink.table.api.ValidationException(
                            "Only DDL, SET and INSERT statements are allowed; this statement would start a job of its own"
                                    + " (write it as CREATE TABLE + INSERT INTO): " + preview(head));
                }
                env.executeInternal(op);
            }
        }
        if (inserts == 0) {
            throw new org.apache.flink.table.api.ValidationException("The script has no INSERT statement.");
        }
        return set;
    }

    private static String preview(String stmt) {
        return stmt.substring(0, Math.min(80, stmt.length()));
    }

    /** sql.0, sql.1, ... concatenated in order (each value is at most 2048 chars in Managed Flink). */
    static String concatSqlParts(Properties p) {
        if (p == null) {
            return null;
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; p.containsKey("sql." + i); i++) {
            sb.append(p.getProperty("sql." + i));
        }
        return sb.length() == 0 ? null : sb.toString();
    }

    /**
     * FlinkApplicationProperties, then FlinkApplicationProperties.1, .2, ... (up to the first one
     * missing) merged into one: sql.N numbering goes on across groups, so a script of more than 49
     * parts fits (50 properties a group, 50 groups). A key in two groups is an error.
     */
    static Properties flagstreamProperties(Map<String, Properties> groups) {
        if (groups == null || groups.get(PROPERTY_GROUP) == null) {
            return null;
        }
        Properties merged = new Properties();
        merged.putAll(groups.get(PROPERTY_GROUP));
        for (int g = 1; groups.containsKey(PROPERTY_GROUP + "." + g); g++) {
            for (Map.Entry<Object, Object> e : groups.get(PROPERTY_GROUP + "." + g).entrySet()) {
                if (merged.containsKey(e.getKey())) {
                    throw new IllegalArgumentException("runtime property " + e.getKey() + " is in two groups");
                }
                merged.put(e.getKey(), e.getValue());
            }
        }
        return merged;
    }

    /**
     * --properties-base64: the JSON Managed Flink writes to /etc/flink/application_properties.json
     * ([{"PropertyGroupId": ..., "PropertyMap": {...}}]), read by the same library call as there.
     */
    static Map<String, Properties> propertiesFromBase64(String base64) throws IOException {
        byte[] json = Base64.getDecoder().decode(base64.trim());
        Path file = Files.createTempFile("flagstream-application-properties-", ".json");
        try {
            Files.write(file, json);
            Map<String, Properties> groups = KinesisAnalyticsRuntime.getApplicationProperties(file.toString());
            if (groups == null) {
                throw new IllegalArgumentException("--properties-base64 holds no property groups");
            }
            return groups;
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static Map<String, Properties> managedFlinkPropertyGroups() {
        try {
            // FLAGSTREAM_APP_PROPERTIES: same JSON format at another path (local testing)
            String file = System.getenv("FLAGSTREAM_APP_PROPERTIES");
            return file != null
                    ? KinesisAnalyticsRuntime.getApplicationProperties(file)
                    : KinesisAnalyticsRuntime.getApplicationProperties();
        } catch (Throwable t) {
            // not on Managed Flink (no /etc/flink/application_properties.json) or helper unusable
            System.err.println("flagstream-runner: no Managed Flink runtime properties: " + t);
            return null;
        }
    }
}
