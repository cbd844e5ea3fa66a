package dev.flagstream.local;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.InetSocketAddress;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executors;

/**
 * Warm SQL validator: GET /health, POST /validate {"sql": "..."} -> {"valid":true,"plan":...} or
 * {"valid":false,"error":...}. Each request plans in a fresh streaming TableEnvironment via
 * SqlRunner.explain() loaded from the runner JAR, so validation uses exactly the connector,
 * format and statement handling that the submitted job will use.
 */
final class ValidatorServer {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_ERROR_LINES = 12;
    private static final int WARMUP_ROUNDS = 3;

    private final ClassLoader runnerLoader;
    private final Method explain;

    private ValidatorServer(Path runnerJar) throws Exception {
        if (!Files.isRegularFile(runnerJar)) {
            throw new IllegalArgumentException("runner jar not found: " + runnerJar.toAbsolutePath()
                    + " (build it: mvn -q -f flink-sql/pom.xml package -DskipTests)");
        }
        // parent-first: Flink classes come from this JVM, connector + json + runner from the jar
        runnerLoader = new URLClassLoader(new URL[] {runnerJar.toUri().toURL()}, ValidatorServer.class.getClassLoader());
        explain = runnerLoader.loadClass("dev.flagstream.runner.SqlRunner").getMethod("explain", String.class);
    }

    static ValidatorServer start(int port, Path runnerJar) throws Exception {
        ValidatorServer v = new ValidatorServer(runnerJar);
        v.warmUp();
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 16);
        server.setExecutor(Executors.newFixedThreadPool(2));
        server.createContext("/health", ex -> v.reply(ex, 200, "{\"status\":\"ok\"}"));
        server.createContext("/validate", v::handleValidate);
        server.start();
        return v;
    }

    /** Plans a representative script (resources/warmup.sql) a few times so the planner is JIT-warm. */
    private void warmUp() throws IOException {
        String sql;
        try (var in = ValidatorServer.class.getResourceAsStream("/warmup.sql")) {
            sql = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        for (int i = 0; i < WARMUP_ROUNDS; i++) {
            ObjectNode r = validate(sql);
            if (!r.get("valid").asBoolean()) {
                throw new IllegalStateException("validator warm-up failed: " + r.get("error").asText());
            }
        }
    }

    private void handleValidate(HttpExchange ex) throws IOException {
        try {
            if (!"POST".equals(ex.getRequestMethod())) {
                reply(ex, 405, "{\"error\":\"POST only\"}");
                return;
            }
            JsonNode body = JSON.readTree(ex.getRequestBody());
            JsonNode sql = body == null ? null : body.get("sql");
            if (sql == null || !sql.isTextual()) {
                reply(ex, 400, "{\"error\":\"body must be JSON {\\\"sql\\\": \\\"...\\\"}\"}");
                return;
            }
            reply(ex, 200, JSON.writeValueAsString(validate(sql.asText())));
        } catch (Exception e) {
            reply(ex, 400, JSON.writeValueAsString(JSON.createObjectNode().put("error", String.valueOf(e.getMessage()))));
        }
    }

    ObjectNode validate(String sql) {
        ObjectNode r = JSON.createObjectNode();
        Thread t = Thread.currentThread();
        ClassLoader prev = t.getContextClassLoader();
        t.setContextClassLoader(runnerLoader);
        try {
            String plan = (String) explain.invoke(null, sql);
            r.put("valid", true).put("plan", plan);
        } catch (InvocationTargetException e) {
            r.put("valid", false).put("error", describe(e.getCause()));
        } catch (Exception e) {
            r.put("valid", false).put("error", describe(e));
        } finally {
            t.setContextClassLoader(prev);
        }
        return r;
    }

    /** The exception chain's messages (first lines each, no stack traces), deduplicated. */
    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        String last = null;
        for (Throwable c = e; c != null && c != c.getCause(); c = c.getCause()) {
            String msg = c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage().strip();
            if (msg.equals(last) || (last != null && last.contains(msg))) {
                continue;
            }
            String[] lines = msg.split("\n");
            StringBuilder m = new StringBuilder();
            for (int i = 0; i < Math.min(lines.length, MAX_ERROR_LINES); i++) {
                m.append(i == 0 ? "" : "\n").append(lines[i]);
            }
            if (lines.length > MAX_ERROR_LINES) {
                m.append("\n...");
            }
            sb.append(sb.length() == 0 ? "" : "\nCaused by: ").append(m);
            last = msg;
        }
        return sb.toString();
    }

    private void reply(HttpExchange ex, int status, String json) throws IOException {
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(b);
        }
    }
}
