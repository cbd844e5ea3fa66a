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
 * one job), everything else (CREATE TABLE / VIEW / FUNCTION ...) goes through executeSql.
 */
public final class SqlRunner {
    private static final Pattern SET =
            Pattern.compile("(?is)SET\\s+'([^']+)'\\s*=\\s*'((?:[^']|'')*)'\\s*");
    private static final Pattern INSERT = Pattern.compile("(?is)(INSERT|EXECUTE\\s+INSERT)\\b.*");

    private SqlRunner() {}

    public static void main(String[] args) throws Exception {
        String script = null;
        String jobName = null;
        boolean validate = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--sql-file":
                    script = Files.readString(Path.of(args[++i]), StandardCharsets.UTF_8);
                    break;
                case "--sql-base64":
                    script = new String(Base64.getDecoder().decode(args[++i].trim()), StandardCharsets.UTF_8);
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
            Properties p = managedFlinkProperties();
            script = concatSqlParts(p);
            if (p != null && jobName == null) {
                jobName = p.getProperty("job.name");
            }
        }
        if (script == null || script.isBlank()) {
            throw new IllegalArgumentException(
                    "no SQL: pass --sql-file <path> or --sql-base64 <b64>, or set FlinkApplicationProperties sql.0, sql.1, ...");
        }

        if (validate) {
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
            if (set_.matches()) {
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

    private static Properties managedFlinkProperties() {
        try {
            // FLAGSTREAM_APP_PROPERTIES: same JSON format at another path (local testing)
            String file = System.getenv("FLAGSTREAM_APP_PROPERTIES");
            Map<String, Properties> groups = file != null
                    ? KinesisAnalyticsRuntime.getApplicationProperties(file)
                    : KinesisAnalyticsRuntime.getApplicationProperties();
            return groups == null ? null : groups.get("FlinkApplicationProperties");
        } catch (Throwable t) {
            // not on Managed Flink (no /etc/flink/application_properties.json) or helper unusable
            System.err.println("flagstream-runner: no Managed Flink runtime properties: " + t);
            return null;
        }
    }
}
