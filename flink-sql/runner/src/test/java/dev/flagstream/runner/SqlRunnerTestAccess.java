package dev.flagstream.runner;

import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;

/** {@link SqlRunner#prepare} for tests in other packages. */
public final class SqlRunnerTestAccess {
    private SqlRunnerTestAccess() {}

    public static StatementSet prepare(TableEnvironment tEnv, String script) {
        return SqlRunner.prepare(tEnv, script);
    }
}
