package dev.flagstream.runner.lake;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a replay older than the stream relies on (templates/lake-source.sql): Flink's filesystem
 * connector reads the lake's GZIP JSON lines (as Firehose and the local lake writer write them),
 * prunes partitions by tenant and hour even when the tenant arrives as FROM_BASE64 (the
 * generator's literals), the union with the stream still deduplicates on processing time, and
 * the uncorrelated EXISTS that gates progress plans as a semi-join.
 */
class LakeSourceTest {
    @Test
    void readsGzipJsonLinesPrunesPartitionsAndDeduplicatesTheUnion(@TempDir Path dir) throws Exception {
        Path part = dir.resolve("tenant=acme/dt=2026-11-25/hour=16");
        Files.createDirectories(part);
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(part.resolve("flagstream-lake-a.json.gz")))) {
            out.write("{\"tenant\":\"acme\",\"kind\":\"custom\",\"eventIndex\":0,\"receivedAt\":5}\n{\"tenant\":\"acme\",\"kind\":\"index\",\"eventIndex\":1,\"receivedAt\":6}\n".getBytes(StandardCharsets.UTF_8));
        }
        Path other = dir.resolve("tenant=globex/dt=2026-11-25/hour=16");
        Files.createDirectories(other);
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(other.resolve("flagstream-lake-b.json.gz")))) {
            out.write("{\"tenant\":\"globex\",\"kind\":\"custom\",\"eventIndex\":0,\"receivedAt\":7}\n".getBytes(StandardCharsets.UTF_8));
        }
        TableEnvironment env = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        env.executeSql("CREATE TEMPORARY TABLE lake (kind STRING, eventIndex BIGINT, receivedAt BIGINT, proc_time AS PROCTIME(), tenant STRING, dt STRING, `hour` STRING) PARTITIONED BY (tenant, dt, `hour`) WITH ("
                + "'connector' = 'filesystem', 'path' = '" + dir.toUri() + "', 'format' = 'json', 'json.ignore-parse-errors' = 'true')");
        List<String> rows = new ArrayList<>();
        try (CloseableIterator<Row> it = env.executeSql("SELECT kind, eventIndex, receivedAt, tenant, dt, `hour` FROM lake WHERE tenant = 'acme' AND dt >= '2026-11-25'").collect()) {
            it.forEachRemaining(r -> rows.add(r.toString()));
        }
        assertEquals(List.of("+I[custom, 0, 5, acme, 2026-11-25, 16]", "+I[index, 1, 6, acme, 2026-11-25, 16]"), rows);
        String pruned = env.explainSql("SELECT kind FROM lake WHERE tenant IN (FROM_BASE64('YWNtZQ==')) AND (dt > '2026-11-25' OR (dt = '2026-11-25' AND `hour` >= '16'))");
        assertTrue(pruned.contains("partitions=[{tenant=acme, dt=2026-11-25, hour=16}]"), pruned);
        assertFalse(pruned.contains("globex"), pruned);
        env.executeSql("CREATE TEMPORARY TABLE stream_t (kind STRING, eventIndex BIGINT, receivedAt BIGINT, tenant STRING, proc_time AS PROCTIME()) WITH ('connector' = 'datagen', 'number-of-rows' = '5')");
        env.executeSql("CREATE TEMPORARY VIEW events AS SELECT kind, eventIndex, receivedAt, tenant, proc_time FROM stream_t UNION ALL SELECT kind, eventIndex, receivedAt, tenant, proc_time FROM lake WHERE tenant IN (FROM_BASE64('YWNtZQ==')) AND receivedAt <= 100");
        env.executeSql("CREATE TEMPORARY VIEW lake_read AS SELECT COUNT(*) AS records FROM lake WHERE tenant IN (FROM_BASE64('YWNtZQ==')) AND receivedAt <= 100");
        env.executeSql("CREATE TEMPORARY TABLE sink_t (kind STRING, n BIGINT) WITH ('connector' = 'blackhole')");
        String gated = env.explainSql("INSERT INTO sink_t SELECT kind, COUNT(*) FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant, eventIndex ORDER BY proc_time) AS o FROM events) WHERE o = 1 AND EXISTS (SELECT 1 FROM lake_read WHERE records >= CAST(2 AS BIGINT)) GROUP BY kind");
        assertTrue(gated.contains("Deduplicate(keep=[FirstRow]"), gated);
        assertTrue(gated.contains("LeftSemiJoin"), gated);
    }
}
