package dev.flagstream.runner;

import org.apache.flink.table.api.ApiExpression;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.JsonOnNull;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.api.TableDescriptor;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.GenericInMemoryCatalog;
import org.apache.flink.table.expressions.Expression;
import org.apache.flink.table.module.CoreModule;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.LogicalTypeFamily;
import org.apache.flink.table.types.logical.MapType;
import org.apache.flink.table.types.logical.MultisetType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.TimestampType;
import org.apache.flink.table.types.logical.utils.LogicalTypeChecks;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.apache.flink.table.api.Expressions.$;
import static org.apache.flink.table.api.Expressions.jsonObject;
import static org.apache.flink.table.api.Expressions.lit;
import static org.apache.flink.table.api.Expressions.nullOf;

/**
 * The custom-sql sandbox (templates/custom-sql.sql): a tenant's own query over the view
 * {@code events}, which the script carries base64-encoded in a directive, never as text:
 *
 * <pre>CREATE TEMPORARY VIEW rows_N AS SANDBOXED QUERY '&lt;base64 of the UTF-8 query&gt;' OVER events_N
 *   FOR ANALYSIS '&lt;uuid&gt;' GENERATION &lt;n&gt;</pre>
 *
 * <p>The query is parsed with the table environment's own SQL parser ({@link FlinkSqlAst}) and
 * refused, with a reason the user sees (the validator returns the messages), unless it is ONE
 * query whose every table reference is the single-part name {@code events} (or a WITH item in
 * scope), with no hints, no functions but Flink's built-ins, no table functions but the window
 * TVFs (TUMBLE, HOP, CUMULATE, SESSION), no FOR SYSTEM_TIME AS OF and no RAW or user-defined
 * types. Each {@code events} is then rewritten in the syntax tree to the member's view
 * {@code `<catalog>`.`<database>`.`events_N` AS `events`} and the tree unparsed: the text handed
 * to {@code sqlQuery} is the parser's, not the user's (it is parsed and checked once more).
 * {@code rows_N} is built from the query's resolved schema with the Table API (no SQL text):
 * every column into the JSON object {@code fields}, {@code window_start}/{@code window_end} into
 * the row's window.
 */
final class SandboxedQuery {
    /** A statement that mentions the directive must be exactly the directive. */
    private static final Pattern MENTION = Pattern.compile("(?i)\\bSANDBOXED\\s+QUERY\\b");
    private static final Pattern DIRECTIVE = Pattern.compile(
            "CREATE\\s+TEMPORARY\\s+VIEW\\s+rows_(\\d{1,9})\\s+AS\\s+SANDBOXED\\s+QUERY\\s+'([A-Za-z0-9+/]*={0,2})'"
                    + "\\s+OVER\\s+events_(\\d{1,9})"
                    + "\\s+FOR\\s+ANALYSIS\\s+'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'"
                    + "\\s+GENERATION\\s+(\\d{1,18})\\s*");
    static final String SYNTAX = "CREATE TEMPORARY VIEW rows_<n> AS SANDBOXED QUERY '<base64>' OVER events_<n>"
            + " FOR ANALYSIS '<uuid>' GENERATION <number>";

    /** The only name a query may read (besides its own WITH items). */
    static final String EVENTS = "events";

    /** Statement kinds (Calcite SqlKind) that are queries. */
    private static final Set<String> QUERY_KINDS =
            Set.of("SELECT", "UNION", "INTERSECT", "EXCEPT", "ORDER_BY", "WITH", "VALUES", "EXPLICIT_TABLE");

    /** The only table functions: the window TVFs (they read the table passed as TABLE events). */
    private static final Set<String> WINDOW_FUNCTIONS = Set.of("TUMBLE", "HOP", "CUMULATE", "SESSION");

    private SandboxedQuery() {}

    static boolean mentions(String statement) {
        return MENTION.matcher(statement).find();
    }

    /** The directive, parsed. */
    static final class Directive {
        final int member;
        final String query;
        final String analysisId;
        final long generation;

        Directive(int member, String query, String analysisId, long generation) {
            this.member = member;
            this.query = query;
            this.analysisId = analysisId;
            this.generation = generation;
        }
    }

    static Directive parseDirective(String statement) {
        Matcher m = DIRECTIVE.matcher(statement);
        if (!m.matches()) {
            throw new ValidationException("custom SQL: malformed directive, expected " + SYNTAX + "; got: "
                    + statement.substring(0, Math.min(200, statement.length())));
        }
        if (!m.group(1).equals(m.group(3))) {
            throw new ValidationException("custom SQL: the directive must define rows_N over events_N of the same member; got rows_"
                    + m.group(1) + " over events_" + m.group(3));
        }
        byte[] bytes;
        try {
            bytes = Base64.getDecoder().decode(m.group(2));
        } catch (IllegalArgumentException e) {
            throw new ValidationException("custom SQL: the directive's query is not valid base64", e);
        }
        String query;
        try {
            query = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new ValidationException("custom SQL: the query is not valid UTF-8 text", e);
        }
        long generation;
        try {
            generation = Long.parseLong(m.group(5));
        } catch (NumberFormatException e) {
            throw new ValidationException("custom SQL: the directive's generation is out of range: " + m.group(5), e);
        }
        return new Directive(Integer.parseInt(m.group(1)), query, m.group(4), generation);
    }

    /** SqlRunner.prepare's handling of the directive: registers the temporary view rows_N. */
    static void register(TableEnvironment tEnv, String statement) {
        Directive d = parseDirective(statement);
        String events = "events_" + d.member;
        String rows = "rows_" + d.member;
        if (!Arrays.asList(tEnv.listViews()).contains(events)) {
            throw new ValidationException("custom SQL: the directive reads the view " + events + ", which the script does not define before it");
        }
        Table query = query(tEnv, d.query, events);
        tEnv.createTemporaryView(rows, rows(query, d.analysisId, d.generation));
    }

    /**
     * The user's query, checked and rewritten to read {@code eventsView} (a view of the current
     * catalog and database), planned by {@code tEnv}.
     */
    static Table query(TableEnvironment tEnv, String userQuery, String eventsView) {
        String sql = rewrite(tEnv, userQuery, eventsView);
        TableEnvironment isolated = isolated(tEnv, eventsView);
        validated(isolated, sql);
        return validated(tEnv, sql);
    }

    /**
     * Flink's own reason for a query it refuses (a column not found, a type mismatch, ...). Its
     * positions are in the query as rewritten, so that text goes along.
     */
    private static Table validated(TableEnvironment env, String sql) {
        try {
            return env.sqlQuery(sql);
        } catch (RuntimeException e) {
            throw new ValidationException("custom SQL: " + firstLine(e.getMessage())
                    + " (in the query as Flink reads it: " + sql + ")", e);
        }
    }

    /**
     * Defense in depth: the rewritten query is validated first in a TableEnvironment of its own
     * that holds nothing but a table named like the member's view, with its schema (processing
     * time included), and no function but the built-ins. A table or function reference the
     * checks had missed could not resolve there. Validation only: the table's connector (datagen)
     * is never run. ~10 ms when warm.
     */
    @SuppressWarnings("deprecation") // registerCatalog: only if the script left default_catalog (ours never do)
    static TableEnvironment isolated(TableEnvironment tEnv, String eventsView) {
        Schema.Builder schema = Schema.newBuilder();
        for (Column c : tEnv.from(eventsView).getResolvedSchema().getColumns()) {
            LogicalType t = c.getDataType().getLogicalType();
            if (LogicalTypeChecks.isProctimeAttribute(t)) {
                schema.columnByExpression(c.getName(), "PROCTIME()");
            } else if (LogicalTypeChecks.isTimeAttribute(t)) {
                throw new ValidationException("custom SQL: the view " + eventsView + " has a rowtime attribute; the sandbox does not support it");
            } else {
                schema.column(c.getName(), c.getDataType());
            }
        }
        TableEnvironment isolated = TableEnvironment.create(EnvironmentSettings.newInstance()
                .inStreamingMode()
                .withClassLoader(SandboxedQuery.class.getClassLoader())
                .build());
        String catalog = tEnv.getCurrentCatalog();
        String database = tEnv.getCurrentDatabase();
        if (!isolated.getCurrentCatalog().equals(catalog) || !isolated.getCurrentDatabase().equals(database)) {
            isolated.registerCatalog(catalog, new GenericInMemoryCatalog(catalog, database));
            isolated.useCatalog(catalog);
            isolated.useDatabase(database);
        }
        isolated.createTemporaryTable(eventsView, TableDescriptor.forConnector("datagen").schema(schema.build()).build());
        return isolated;
    }

    /**
     * Checks the user's query and returns it rewritten to read {@code eventsView}, as text
     * unparsed from the syntax tree. Throws {@link ValidationException} with the reason a query is
     * refused ("custom SQL: ...").
     */
    static String rewrite(TableEnvironment tEnv, String userQuery, String eventsView) {
        FlinkSqlAst ast = FlinkSqlAst.of(tEnv);
        List<String> target = List.of(tEnv.getCurrentCatalog(), tEnv.getCurrentDatabase(), eventsView);
        Functions functions = new Functions(tEnv);

        Object statement = single(ast, userQuery);
        new Walker(ast, functions, target, Mode.REWRITE).statement(statement);
        String rewritten = ast.unparse(statement);

        // What the planner gets is parsed and checked again: only the member's view, by its full name.
        Object again = single(ast, rewritten);
        try {
            new Walker(ast, functions, target, Mode.VERIFY).statement(again);
        } catch (ValidationException e) {
            throw new ValidationException("custom SQL: internal error: the rewritten query does not pass the sandbox: " + rewritten, e);
        }
        return rewritten;
    }

    /** The tables a query reads (each reference's name parts; WITH items not included), for tests. */
    static List<List<String>> tablesRead(TableEnvironment tEnv, String sql) {
        FlinkSqlAst ast = FlinkSqlAst.of(tEnv);
        Walker walker = new Walker(ast, new Functions(tEnv), null, Mode.COLLECT);
        walker.statement(single(ast, sql));
        return walker.tables;
    }

    private static Object single(FlinkSqlAst ast, String sql) {
        List<Object> statements;
        if (sql.isBlank()) {
            throw new ValidationException("custom SQL: must be one SELECT statement; got 0 statements");
        }
        try {
            statements = ast.parse(sql);
        } catch (RuntimeException e) {
            throw new ValidationException("custom SQL: " + parseError(e), e);
        }
        if (statements.size() != 1) {
            throw new ValidationException("custom SQL: must be one SELECT statement; got " + statements.size() + " statements");
        }
        return statements.get(0);
    }

    /** Flink's "SQL parse failed. Encountered ..." without the long list of expected tokens. */
    private static String parseError(RuntimeException e) {
        Throwable t = e.getCause() != null && e.getCause().getMessage() != null ? e.getCause() : e;
        String message = t.getMessage() == null ? t.toString() : t.getMessage();
        String first = firstLine(message);
        return first.startsWith("SQL parse failed") ? first : "SQL parse failed. " + first;
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "";
        }
        int nl = message.indexOf('\n');
        return (nl < 0 ? message : message.substring(0, nl)).strip();
    }

    /** Which function names are not Flink's built-ins in this environment. */
    static final class Functions {
        private final Set<String> userDefined = new HashSet<>();
        private final Set<String> otherModules = new HashSet<>();

        Functions(TableEnvironment tEnv) {
            for (String f : tEnv.listUserDefinedFunctions()) {
                userDefined.add(f.toLowerCase(Locale.ROOT));
            }
            Set<String> core = new HashSet<>();
            for (String f : CoreModule.INSTANCE.listFunctions()) {
                core.add(f.toLowerCase(Locale.ROOT));
            }
            for (String f : tEnv.listFunctions()) {
                String name = f.toLowerCase(Locale.ROOT);
                if (!core.contains(name) && !userDefined.contains(name)) {
                    otherModules.add(name); // a module other than Flink's core (LOAD MODULE ...)
                }
            }
        }

        /** Why a call by this name is refused, or null for a built-in (or unknown: the planner refuses that). */
        String refusal(List<String> name) {
            String shown = "\"" + String.join(".", name) + "\"";
            if (name.size() != 1) {
                return "may call only Flink's built-in functions; it calls " + shown;
            }
            String lower = name.get(0).toLowerCase(Locale.ROOT);
            if (userDefined.contains(lower)) {
                return "may call only Flink's built-in functions; " + shown + " is a user-defined function";
            }
            if (otherModules.contains(lower)) {
                return "may call only Flink's built-in functions; " + shown + " comes from a module";
            }
            return null;
        }
    }

    private enum Mode {
        /** the user's query: events becomes the target, any other table is refused */
        REWRITE,
        /** the rewritten query: the target (by its full name) is the only table allowed */
        VERIFY,
        /** tests: record the tables read */
        COLLECT
    }

    /**
     * Walks a parsed statement: refuses what is not allowed and handles each table reference
     * according to its {@link Mode}.
     */
    private static final class Walker {
        private final FlinkSqlAst ast;
        private final Functions functions;
        private final List<String> target;
        private final Mode mode;
        final List<List<String>> tables = new ArrayList<>();

        Walker(FlinkSqlAst ast, Functions functions, List<String> target, Mode mode) {
            this.ast = ast;
            this.functions = functions;
            this.target = target;
            this.mode = mode;
        }

        void statement(Object node) {
            String kind = ast.kind(node);
            if (!QUERY_KINDS.contains(kind)) {
                throw refuse("must be a query; got " + statementName(node, kind));
            }
            query(node, Set.of());
        }

        private void query(Object node, Set<String> withNames) {
            switch (ast.kind(node)) {
                case "SELECT":
                    select(node, withNames);
                    break;
                case "WITH":
                    with(node, withNames);
                    break;
                case "EXPLICIT_TABLE": // TABLE events
                    tableName(node, 0, false, withNames);
                    break;
                default: // UNION / INTERSECT / EXCEPT (queries), ORDER BY (a query, then expressions), VALUES
                    for (Object operand : ast.operands(node)) {
                        expression(operand, withNames);
                    }
            }
        }

        private void with(Object node, Set<String> outer) {
            // Each WITH item sees the items before it (not itself); the body sees them all.
            Set<String> scope = new HashSet<>(outer);
            for (Object item : ast.list(ast.withList(node))) {
                query(ast.withItemQuery(item), Set.copyOf(scope));
                scope.add(ast.withItemName(item));
            }
            query(ast.withBody(node), Set.copyOf(scope));
        }

        private void select(Object select, Set<String> withNames) {
            Object hintList = ast.selectHints(select);
            List<Object> hints = hintList == null ? List.of() : ast.list(hintList);
            if (!hints.isEmpty()) {
                // /*+ STATE_TTL(...) */, /*+ LOOKUP(...) */, join hints, ...
                throw refuse("may not use hints; it has /*+ " + ast.unparse(hints.get(0)) + " */ at " + ast.position(hints.get(0)));
            }
            List<Object> operands = ast.operands(select);
            for (int i = 0; i < operands.size(); i++) {
                Object operand = operands.get(i);
                if (operand == null || operand == hintList) {
                    continue;
                }
                if (i == ast.selectFromOperand) {
                    fromItem(select, i, true, withNames);
                } else {
                    expression(operand, withNames);
                }
            }
        }

        /** Operand i of parent is an item of a FROM clause. */
        private void fromItem(Object parent, int i, boolean mayAlias, Set<String> withNames) {
            Object item = ast.operands(parent).get(i);
            String kind = ast.kind(item);
            switch (kind) {
                case "IDENTIFIER":
                    tableName(parent, i, mayAlias, withNames);
                    break;
                case "AS": // item AS alias [(columns)]
                    fromItem(item, 0, false, withNames);
                    break;
                case "JOIN": { // left, natural, join type, right, condition type, condition
                    fromItem(item, 0, true, withNames);
                    fromItem(item, 3, true, withNames);
                    expression(ast.operands(item).get(5), withNames);
                    break;
                }
                case "LATERAL":
                    fromItem(item, 0, false, withNames);
                    break;
                case "COLLECTION_TABLE": // TABLE(fn(...))
                    tableFunction(item, withNames);
                    break;
                case "UNNEST":
                    expression(item, withNames);
                    break;
                case "MATCH_RECOGNIZE": {
                    fromItem(item, 0, false, withNames);
                    List<Object> operands = ast.operands(item);
                    for (int j = 1; j < operands.size(); j++) {
                        expression(operands.get(j), withNames);
                    }
                    break;
                }
                case "SNAPSHOT":
                    throw refuse("may not use FOR SYSTEM_TIME AS OF (at " + ast.position(item) + ")");
                case "TABLE_REF": { // a table with hints: events /*+ OPTIONS(...) */
                    List<Object> hints = ast.list(ast.operands(item).get(1));
                    throw refuse("may not use hints; it has /*+ " + (hints.isEmpty() ? "" : ast.unparse(hints.get(0)))
                            + " */ at " + ast.position(item));
                }
                default:
                    if (QUERY_KINDS.contains(kind)) {
                        query(item, withNames);
                    } else {
                        throw refuse("may read only the view \"events\"; it reads from " + kind.replace('_', ' ')
                                + " at " + ast.position(item));
                    }
            }
        }

        /** Operand i of parent is a table name. */
        private void tableName(Object parent, int i, boolean mayAlias, Set<String> withNames) {
            Object id = ast.operands(parent).get(i);
            if (!ast.isIdentifier(id)) {
                expression(id, withNames);
                return;
            }
            List<String> names = ast.names(id);
            if (names.size() == 1 && withNames.contains(names.get(0))) {
                return; // a WITH item in scope
            }
            if (mode == Mode.COLLECT) {
                tables.add(names);
                return;
            }
            if (mode == Mode.VERIFY) {
                if (!names.equals(target)) {
                    throw refuse("may read only the view \"events\"; it reads \"" + String.join(".", names) + "\"");
                }
                return;
            }
            if (names.size() == 1 && names.get(0).equals(EVENTS)) {
                // `catalog`.`database`.`events_N`, aliased `events` where the grammar allows (so events.kind resolves)
                Object replacement = ast.newIdentifier(target, id);
                ast.setOperand(parent, i, mayAlias ? ast.as(replacement, EVENTS) : replacement);
                return;
            }
            throw refuse("may read only the view \"events\"; it reads \"" + String.join(".", names) + "\" at " + ast.position(id));
        }

        private void tableFunction(Object collectionTable, Set<String> withNames) {
            Object fn = ast.operands(collectionTable).get(0);
            List<String> name = ast.isCall(fn) ? ast.unresolvedFunctionName(fn) : null;
            String shown = name != null ? String.join(".", name) : (ast.isCall(fn) ? ast.operatorName(fn) : ast.kind(fn));
            if (name == null || name.size() != 1 || !WINDOW_FUNCTIONS.contains(name.get(0).toUpperCase(Locale.ROOT))) {
                throw refuse("may call no table function but the windows TUMBLE, HOP, CUMULATE and SESSION; it calls \""
                        + shown + "\" at " + ast.position(fn));
            }
            expression(fn, withNames);
        }

        private void expression(Object node, Set<String> withNames) {
            if (node == null) {
                return;
            }
            if (ast.isNodeList(node)) {
                for (Object n : ast.list(node)) {
                    expression(n, withNames);
                }
                return;
            }
            if (ast.isDataTypeSpec(node)) {
                String type = ast.disallowedType(node);
                if (type != null) {
                    throw refuse("may not use the type " + type + " (at " + ast.position(node) + ")");
                }
                return;
            }
            if (!ast.isCall(node)) {
                return; // identifiers (columns), literals, interval qualifiers, ...
            }
            String kind = ast.kind(node);
            switch (kind) {
                case "SELECT":
                case "WITH":
                case "UNION":
                case "INTERSECT":
                case "EXCEPT":
                case "ORDER_BY":
                case "EXPLICIT_TABLE":
                    query(node, withNames); // a sub-query, or TABLE events as a window TVF's argument
                    return;
                case "COLLECTION_TABLE":
                    tableFunction(node, withNames);
                    return;
                case "SNAPSHOT":
                case "TABLE_REF":
                case "JOIN":
                case "MATCH_RECOGNIZE":
                case "LATERAL":
                    throw refuse("may not use " + kind.replace('_', ' ') + " here (at " + ast.position(node) + ")");
                default:
            }
            List<String> fn = ast.unresolvedFunctionName(node);
            if (fn != null) {
                String refusal = functions.refusal(fn);
                if (refusal != null) {
                    throw refuse(refusal + " (at " + ast.position(node) + ")");
                }
            }
            for (Object operand : ast.operands(node)) {
                expression(operand, withNames);
            }
        }

        private static ValidationException refuse(String reason) {
            return new ValidationException("custom SQL: " + reason);
        }

        /** INSERT, CREATE FUNCTION, LOAD MODULE, SET, ... from the statement node's class (RichSqlInsert, SqlCreateFunction, ...). */
        private static String statementName(Object node, String kind) {
            String name = node.getClass().getSimpleName();
            boolean stripped = true;
            while (stripped) {
                stripped = false;
                for (String prefix : List.of("Rich", "Sql")) {
                    if (name.startsWith(prefix) && name.length() > prefix.length()) {
                        name = name.substring(prefix.length());
                        stripped = true;
                    }
                }
            }
            if (name.isEmpty() || name.contains("Call") || name.contains("$")) {
                return kind.replace('_', ' ');
            }
            return name.replaceAll("([a-z])([A-Z])", "$1 $2").toUpperCase(Locale.ROOT);
        }
    }

    /**
     * rows_N from the query's resolved schema: analysisId, generation, type 'custom', the window
     * (window_start/window_end when the query has them), fields = every column as a JSON object,
     * version 0. Same column types as every kind's rows_N (the pool's UNION ALL).
     */
    static Table rows(Table query, String analysisId, long generation) {
        List<Object> keyValues = new ArrayList<>();
        ApiExpression windowStart = nullOf(DataTypes.TIMESTAMP_LTZ(3));
        ApiExpression windowEnd = nullOf(DataTypes.TIMESTAMP_LTZ(3));
        for (Column c : query.getResolvedSchema().getColumns()) {
            keyValues.add(c.getName());
            keyValues.add(jsonValue(c));
            if (c.getName().equals("window_start")) {
                windowStart = windowBound(c);
            } else if (c.getName().equals("window_end")) {
                windowEnd = windowBound(c);
            }
        }
        return query.select(
                lit(analysisId, DataTypes.STRING().notNull()).as("analysisId"),
                lit(generation, DataTypes.BIGINT().notNull()).as("generation"),
                lit("custom", DataTypes.STRING().notNull()).as("type"),
                windowStart.as("windowStart"),
                windowEnd.as("windowEnd"),
                jsonObject(JsonOnNull.NULL, keyValues.toArray()).as("fields"),
                lit(0L, DataTypes.BIGINT().notNull()).as("version"));
    }

    private static ApiExpression windowBound(Column c) {
        LogicalType t = c.getDataType().getLogicalType();
        if (t.is(LogicalTypeRoot.TIMESTAMP_WITHOUT_TIME_ZONE) || t.is(LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE)) {
            return $(c.getName()).cast(DataTypes.TIMESTAMP_LTZ(3));
        }
        throw new ValidationException("custom SQL: column \"" + c.getName() + "\" must be a TIMESTAMP or TIMESTAMP_LTZ (a window's bound); it is " + t);
    }

    /**
     * A column as JSON_OBJECT takes it: as it is when Flink writes it as JSON (strings, booleans,
     * numbers, binary as base64, timestamps as ISO-8601 text, and ARRAY / MULTISET / MAP with string
     * keys / ROW of such), a time attribute as a plain timestamp, anything else (DATE, TIME,
     * INTERVAL, RAW, NULL, a MAP with other keys, ...) as its CAST to STRING. JSON_OBJECT's
     * signature refuses DATE and TIME, and INTERVAL passes it but fails code generation.
     */
    static Expression jsonValue(Column c) {
        LogicalType t = c.getDataType().getLogicalType();
        if (LogicalTypeChecks.isTimeAttribute(t)) {
            return $(c.getName()).cast(t.is(LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE)
                    ? DataTypes.TIMESTAMP_LTZ(((LocalZonedTimestampType) t).getPrecision())
                    : DataTypes.TIMESTAMP(((TimestampType) t).getPrecision()));
        }
        return jsonNative(t) ? $(c.getName()) : $(c.getName()).cast(DataTypes.STRING());
    }

    private static boolean jsonNative(LogicalType t) {
        switch (t.getTypeRoot()) {
            case CHAR:
            case VARCHAR:
            case BOOLEAN:
            case TINYINT:
            case SMALLINT:
            case INTEGER:
            case BIGINT:
            case FLOAT:
            case DOUBLE:
            case DECIMAL:
            case BINARY:
            case VARBINARY:
            case TIMESTAMP_WITHOUT_TIME_ZONE:
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                return true;
            case ARRAY:
                return jsonNative(((ArrayType) t).getElementType());
            case MULTISET:
                return jsonNative(((MultisetType) t).getElementType());
            case MAP:
                return ((MapType) t).getKeyType().is(LogicalTypeFamily.CHARACTER_STRING) && jsonNative(((MapType) t).getValueType());
            case ROW:
                return t.getChildren().stream().allMatch(SandboxedQuery::jsonNative);
            default:
                return false;
        }
    }
}
