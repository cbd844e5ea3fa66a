package dev.flagstream.runner.pipeline;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * What a job wrote to the results stream (via {@link ReplayConnector}), read like the control
 * plane reads it (docs/counting.md §3–§4): Debezium envelopes; "c" upserts `after`, "d" is the
 * retraction half of an update. A row's dimensions and measures travel in `fields`, the text of
 * a JSON object; {@link #row} flattens them into the row for the tests' keys.
 */
final class ResultsLog {
    static final ObjectMapper JSON = new ObjectMapper();

    final List<ReplayConnector.Output> output;
    final List<JsonNode> records;

    private ResultsLog(List<ReplayConnector.Output> output) {
        this.output = output;
        this.records = new ArrayList<>();
        for (ReplayConnector.Output o : output) {
            records.add(parse(o.data));
        }
    }

    static ResultsLog of(List<ReplayConnector.Output> output) {
        return new ResultsLog(output);
    }

    static JsonNode parse(String text) {
        try {
            return JSON.readTree(text);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The row a record carries: `after` of a "c", `before` of a "d". */
    static JsonNode payload(JsonNode record) {
        return record.get("op").asText().equals("c") ? record.get("after") : record.get("before");
    }

    /** A row with its `fields` (JSON text) merged in, without `fields` itself; other types as they are. */
    static JsonNode row(JsonNode payload) {
        if (!payload.has("fields")) {
            return payload;
        }
        ObjectNode flat = ((ObjectNode) payload).deepCopy();
        flat.remove("fields");
        flat.setAll((ObjectNode) parse(payload.get("fields").asText()));
        return flat;
    }

    /** The records of one analysis, in order. */
    ResultsLog of(String analysisId) {
        List<ReplayConnector.Output> mine = new ArrayList<>();
        for (int i = 0; i < records.size(); i++) {
            if (analysisId.equals(payload(records.get(i)).get("analysisId").asText())) {
                mine.add(output.get(i));
            }
        }
        return new ResultsLog(mine);
    }

    List<JsonNode> ofType(String type) {
        return records.stream().filter(r -> type.equals(payload(r).get("type").asText())).collect(Collectors.toList());
    }

    /** The changelog applied as the control plane does: "c" upserts `after` (flattened) by its key, "d" is ignored. */
    Map<String, JsonNode> latest(String type, String... keyFields) {
        return latest(true, type, keyFields);
    }

    /** {@link #latest} with each `after` as written (a row's fields still JSON text). */
    Map<String, JsonNode> latestAsWritten(String type, String... keyFields) {
        return latest(false, type, keyFields);
    }

    private Map<String, JsonNode> latest(boolean flatten, String type, String... keyFields) {
        Map<String, JsonNode> state = new LinkedHashMap<>();
        for (JsonNode r : ofType(type)) {
            if (r.get("op").asText().equals("c")) {
                JsonNode after = row(r.get("after"));
                List<String> key = new ArrayList<>();
                for (String f : keyFields) {
                    key.add(after.get(f).asText());
                }
                state.put(String.join("|", key), flatten ? after : r.get("after"));
            }
        }
        return state;
    }

    /** {@link #latest} as key → one of its numbers. */
    Map<String, Long> latestNumbers(String field, String type, String... keyFields) {
        return latest(type, keyFields).entrySet().stream()
                .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().get(field).asLong()));
    }

    static List<String> fieldNames(JsonNode node) {
        List<String> names = new ArrayList<>();
        ((ObjectNode) node).fieldNames().forEachRemaining(names::add);
        return names;
    }
}
