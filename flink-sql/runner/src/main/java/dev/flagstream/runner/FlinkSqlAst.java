package dev.flagstream.runner;

import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableException;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.api.internal.TableEnvironmentInternal;
import org.apache.flink.table.delegation.Parser;

import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;

/**
 * Flink's own SQL parser (the one the TableEnvironment parses every statement with) and the
 * Calcite syntax tree it produces, reached by reflection.
 *
 * <p>Why reflection: a Flink distribution loads the planner through flink-table-planner-loader,
 * which keeps the planner, Flink's SQL grammar (FlinkSqlParserImpl) and Calcite in a class loader
 * of their own; none of them is on the runner's class path (compile or run time). The table
 * environment's {@link Parser} is the planner's ParserImpl; its CalciteParser (private field
 * {@code calciteParserSupplier}) carries the exact parser config of the environment (Flink's
 * grammar and conformance, Lex.JAVA: back-quoted, case-sensitive identifiers). Nodes are unparsed
 * with the dialect Flink itself uses to store a view's query
 * (SqlNodeConvertContext#toQuotedSqlString: AnsiSqlDialect with the parser's quoting and casing).
 * Pinned to Flink 1.20 by SandboxedQueryTest.
 *
 * <p>Nodes are plain {@code Object}s here (instances of org.apache.calcite.sql.SqlNode).
 */
final class FlinkSqlAst {
    private final Object parser;
    private final Object dialect;
    private final Class<?> node;
    private final Class<?> call;
    private final Class<?> identifier;
    private final Class<?> nodeList;
    private final Class<?> dataTypeSpec;
    private final Class<?> function;
    private final Class<?> unresolvedFunction;
    private final Class<?> basicTypeNameSpec;
    private final Class<?> collectionTypeNameSpec;
    private final Class<?> rowTypeNameSpec;
    private final Class<?> extendedRowTypeNameSpec;
    private final Class<?> mapTypeNameSpec;
    private final Class<?> sqlWriterConfig;
    private final Method parseSqlList;
    private final Method getKind;
    private final Method getParserPosition;
    private final Method getOperandList;
    private final Method setOperand;
    private final Method getOperator;
    private final Method operatorName;
    private final Method functionIdentifier;
    private final Method getList;
    private final Method lineNum;
    private final Method columnNum;
    private final Method toSqlString;
    private final Method getSql;
    private final Method typeNameSpec;
    private final Method specTypeName;
    private final Method elementTypeName;
    private final Method rowFieldTypes;
    private final Method extendedRowFieldTypes;
    private final Method mapKeyType;
    private final Method mapValType;
    private final Method withDialect;
    private final Method withClauseStartsLine;
    private final Method withSelectListItemsOnSeparateLines;
    private final Method createCall;
    private final Method selectHints;
    private final Field identifierNames;
    private final Field withList;
    private final Field withBody;
    private final Field withItemName;
    private final Field withItemQuery;
    private final Constructor<?> newIdentifier;
    private final Object asOperator;
    final int selectFromOperand;

    private FlinkSqlAst(Object calciteParser) throws ReflectiveOperationException {
        this.parser = calciteParser;
        ClassLoader cl = calciteParser.getClass().getClassLoader();
        node = cl.loadClass("org.apache.calcite.sql.SqlNode");
        call = cl.loadClass("org.apache.calcite.sql.SqlCall");
        identifier = cl.loadClass("org.apache.calcite.sql.SqlIdentifier");
        nodeList = cl.loadClass("org.apache.calcite.sql.SqlNodeList");
        dataTypeSpec = cl.loadClass("org.apache.calcite.sql.SqlDataTypeSpec");
        function = cl.loadClass("org.apache.calcite.sql.SqlFunction");
        unresolvedFunction = cl.loadClass("org.apache.calcite.sql.SqlUnresolvedFunction");
        basicTypeNameSpec = cl.loadClass("org.apache.calcite.sql.SqlBasicTypeNameSpec");
        collectionTypeNameSpec = cl.loadClass("org.apache.calcite.sql.SqlCollectionTypeNameSpec");
        rowTypeNameSpec = cl.loadClass("org.apache.calcite.sql.SqlRowTypeNameSpec");
        extendedRowTypeNameSpec = cl.loadClass("org.apache.flink.sql.parser.type.ExtendedSqlRowTypeNameSpec");
        mapTypeNameSpec = cl.loadClass("org.apache.flink.sql.parser.type.SqlMapTypeNameSpec");
        Class<?> operator = cl.loadClass("org.apache.calcite.sql.SqlOperator");
        Class<?> pos = cl.loadClass("org.apache.calcite.sql.parser.SqlParserPos");
        Class<?> sqlDialect = cl.loadClass("org.apache.calcite.sql.SqlDialect");
        Class<?> dialectContext = cl.loadClass("org.apache.calcite.sql.SqlDialect$Context");
        Class<?> parserConfig = cl.loadClass("org.apache.calcite.sql.parser.SqlParser$Config");
        Class<?> typeNameSpecClass = cl.loadClass("org.apache.calcite.sql.SqlTypeNameSpec");
        Class<?> with = cl.loadClass("org.apache.calcite.sql.SqlWith");
        Class<?> withItem = cl.loadClass("org.apache.calcite.sql.SqlWithItem");
        Class<?> select = cl.loadClass("org.apache.calcite.sql.SqlSelect");
        sqlWriterConfig = cl.loadClass("org.apache.calcite.sql.SqlWriterConfig");

        parseSqlList = calciteParser.getClass().getMethod("parseSqlList", String.class);
        getKind = node.getMethod("getKind");
        getParserPosition = node.getMethod("getParserPosition");
        toSqlString = node.getMethod("toSqlString", UnaryOperator.class);
        getSql = cl.loadClass("org.apache.calcite.sql.util.SqlString").getMethod("getSql");
        getOperandList = call.getMethod("getOperandList");
        setOperand = call.getMethod("setOperand", int.class, node);
        getOperator = call.getMethod("getOperator");
        operatorName = operator.getMethod("getName");
        functionIdentifier = function.getMethod("getSqlIdentifier");
        getList = nodeList.getMethod("getList");
        lineNum = pos.getMethod("getLineNum");
        columnNum = pos.getMethod("getColumnNum");
        typeNameSpec = dataTypeSpec.getMethod("getTypeNameSpec");
        specTypeName = typeNameSpecClass.getMethod("getTypeName");
        elementTypeName = collectionTypeNameSpec.getMethod("getElementTypeName");
        rowFieldTypes = rowTypeNameSpec.getMethod("getFieldTypes");
        extendedRowFieldTypes = extendedRowTypeNameSpec.getMethod("getFieldTypes");
        mapKeyType = mapTypeNameSpec.getMethod("getKeyType");
        mapValType = mapTypeNameSpec.getMethod("getValType");
        withDialect = sqlWriterConfig.getMethod("withDialect", sqlDialect);
        withClauseStartsLine = sqlWriterConfig.getMethod("withClauseStartsLine", boolean.class);
        withSelectListItemsOnSeparateLines = sqlWriterConfig.getMethod("withSelectListItemsOnSeparateLines", boolean.class);
        createCall = operator.getMethod("createCall", pos, Array.newInstance(node, 0).getClass());
        identifierNames = identifier.getField("names");
        withList = with.getField("withList");
        withBody = with.getField("body");
        withItemName = withItem.getField("name");
        withItemQuery = withItem.getField("query");
        newIdentifier = identifier.getConstructor(List.class, pos);
        asOperator = cl.loadClass("org.apache.calcite.sql.fun.SqlStdOperatorTable").getField("AS").get(null);
        selectFromOperand = select.getField("FROM_OPERAND").getInt(null);
        selectHints = select.getMethod("getHints");

        // new AnsiSqlDialect(EMPTY_CONTEXT.withQuotedCasing(c.unquotedCasing()).withConformance(c.conformance())
        //     .withUnquotedCasing(c.unquotedCasing()).withIdentifierQuoteString(c.quoting().string)), as Flink does
        Field configField = calciteParser.getClass().getDeclaredField("config");
        configField.setAccessible(true);
        Object config = configField.get(calciteParser);
        Object casing = parserConfig.getMethod("unquotedCasing").invoke(config);
        Object conformance = parserConfig.getMethod("conformance").invoke(config);
        Object quoting = parserConfig.getMethod("quoting").invoke(config);
        String quote = (String) quoting.getClass().getField("string").get(quoting);
        Object context = sqlDialect.getField("EMPTY_CONTEXT").get(null);
        context = dialectContext.getMethod("withQuotedCasing", casing.getClass()).invoke(context, casing);
        context = dialectContext.getMethod("withConformance", cl.loadClass("org.apache.calcite.sql.validate.SqlConformance"))
                .invoke(context, conformance);
        context = dialectContext.getMethod("withUnquotedCasing", casing.getClass()).invoke(context, casing);
        context = dialectContext.getMethod("withIdentifierQuoteString", String.class).invoke(context, quote);
        dialect = cl.loadClass("org.apache.calcite.sql.dialect.AnsiSqlDialect").getConstructor(dialectContext).newInstance(context);
    }

    /** The parser of this table environment (Flink's default SQL dialect). */
    static FlinkSqlAst of(TableEnvironment tEnv) {
        Parser p = ((TableEnvironmentInternal) tEnv).getParser();
        try {
            Field f = p.getClass().getDeclaredField("calciteParserSupplier");
            f.setAccessible(true);
            return new FlinkSqlAst(((Supplier<?>) f.get(p)).get());
        } catch (NoSuchFieldException e) {
            throw new ValidationException("custom SQL: needs Flink's default SQL dialect (table.sql-dialect = default); the parser is "
                    + p.getClass().getName());
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new TableException("custom SQL: cannot reach Flink's SQL parser (" + p.getClass().getName() + ")", e);
        }
    }

    /** Parses statements (';'-separated) exactly as the table environment would; a syntax error is Flink's SqlParserException. */
    List<Object> parse(String sql) {
        return list(invoke(parseSqlList, parser, sql));
    }

    /** One line, back-quoted identifiers, the dialect Flink stores a view's query with. */
    String unparse(Object sqlNode) {
        UnaryOperator<Object> config = c -> invoke(withSelectListItemsOnSeparateLines,
                invoke(withClauseStartsLine, invoke(withDialect, c, dialect), false), false);
        return (String) invoke(getSql, invoke(toSqlString, sqlNode, config));
    }

    String kind(Object n) {
        return ((Enum<?>) invoke(getKind, n)).name();
    }

    boolean isCall(Object n) {
        return call.isInstance(n);
    }

    boolean isIdentifier(Object n) {
        return identifier.isInstance(n);
    }

    boolean isNodeList(Object n) {
        return nodeList.isInstance(n);
    }

    boolean isDataTypeSpec(Object n) {
        return dataTypeSpec.isInstance(n);
    }

    /** A call's operands (some may be null), in the order {@link #setOperand} numbers them. */
    List<Object> operands(Object c) {
        return new ArrayList<>((List<?>) invoke(getOperandList, c));
    }

    void setOperand(Object c, int i, Object operand) {
        invoke(setOperand, c, i, operand);
    }

    List<Object> list(Object sqlNodeList) {
        return new ArrayList<>((List<?>) invoke(getList, sqlNodeList));
    }

    @SuppressWarnings("unchecked")
    List<String> names(Object id) {
        try {
            return new ArrayList<>((List<String>) identifierNames.get(id));
        } catch (IllegalAccessException e) {
            throw new TableException("custom SQL: cannot read an identifier", e);
        }
    }

    Object newIdentifier(List<String> names, Object positionOf) {
        try {
            return newIdentifier.newInstance(names, invoke(getParserPosition, positionOf));
        } catch (InvocationTargetException e) {
            throw rethrow(e);
        } catch (ReflectiveOperationException e) {
            throw new TableException("custom SQL: cannot build an identifier", e);
        }
    }

    /** {@code expr AS alias}. */
    Object as(Object expr, String alias) {
        Object operands = Array.newInstance(node, 2);
        Array.set(operands, 0, expr);
        Array.set(operands, 1, newIdentifier(List.of(alias), expr));
        return invoke(createCall, asOperator, invoke(getParserPosition, expr), operands);
    }

    /** "line 3, column 7" of a node in the parsed text. */
    String position(Object n) {
        Object pos = invoke(getParserPosition, n);
        return "line " + invoke(lineNum, pos) + ", column " + invoke(columnNum, pos);
    }

    String operatorName(Object c) {
        return (String) invoke(operatorName, invoke(getOperator, c));
    }

    /**
     * The name a function call was written with, when the parser left it to be resolved later
     * (every call by name: UPPER(x), COUNT(*), TUMBLE(...), myUdf(x)); null for operators and
     * the special-syntax built-ins the grammar resolves itself (CAST, +, CASE, JSON_OBJECT, ...).
     */
    List<String> unresolvedFunctionName(Object c) {
        Object op = invoke(getOperator, c);
        if (!unresolvedFunction.isInstance(op)) {
            return null;
        }
        Object id = invoke(functionIdentifier, op);
        return id == null ? List.of((String) invoke(operatorName, op)) : names(id);
    }

    /** A SELECT's hints (after SELECT: STATE_TTL, LOOKUP, join hints, ...), the node list among its operands. */
    Object selectHints(Object select) {
        return invoke(selectHints, select);
    }

    Object withList(Object with) {
        return get(withList, with);
    }

    Object withBody(Object with) {
        return get(withBody, with);
    }

    String withItemName(Object item) {
        List<String> n = names(get(withItemName, item));
        return String.join(".", n);
    }

    Object withItemQuery(Object item) {
        return get(withItemQuery, item);
    }

    /**
     * The types a CAST (or any type spec) names that are not plain SQL types: RAW('class',
     * 'serializer snapshot') would make the planner load a class and deserialize a snapshot the
     * query supplies; a user-defined type name refers to the catalog. Returns the first such type's
     * name, or null if every (nested) type is built from basic types, ARRAY, MULTISET, MAP and ROW.
     */
    String disallowedType(Object spec) {
        return disallowedTypeName(invoke(typeNameSpec, spec));
    }

    private String disallowedTypeName(Object nameSpec) {
        if (basicTypeNameSpec.isInstance(nameSpec)) {
            return null;
        }
        List<Object> nested = new ArrayList<>();
        if (collectionTypeNameSpec.isInstance(nameSpec)) {
            String inner = disallowedTypeName(invoke(elementTypeName, nameSpec));
            if (inner != null) {
                return inner;
            }
        } else if (mapTypeNameSpec.isInstance(nameSpec)) {
            nested.add(invoke(mapKeyType, nameSpec));
            nested.add(invoke(mapValType, nameSpec));
        } else if (rowTypeNameSpec.isInstance(nameSpec)) {
            nested.addAll((List<?>) invoke(rowFieldTypes, nameSpec));
        } else if (extendedRowTypeNameSpec.isInstance(nameSpec)) {
            nested.addAll((List<?>) invoke(extendedRowFieldTypes, nameSpec));
        } else {
            Object id = invoke(specTypeName, nameSpec);
            return id == null ? nameSpec.getClass().getSimpleName() : String.join(".", names(id));
        }
        for (Object s : nested) {
            String inner = disallowedType(s);
            if (inner != null) {
                return inner;
            }
        }
        return null;
    }

    private static Object get(Field f, Object o) {
        try {
            return f.get(o);
        } catch (IllegalAccessException e) {
            throw new TableException("custom SQL: cannot read " + f, e);
        }
    }

    private static Object invoke(Method m, Object target, Object... args) {
        try {
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw rethrow(e);
        } catch (IllegalAccessException e) {
            throw new TableException("custom SQL: cannot call " + m, e);
        }
    }

    private static RuntimeException rethrow(InvocationTargetException e) {
        Throwable cause = e.getCause();
        if (cause instanceof RuntimeException) {
            return (RuntimeException) cause;
        }
        if (cause instanceof Error) {
            throw (Error) cause;
        }
        return new TableException("custom SQL: " + cause, cause);
    }
}
