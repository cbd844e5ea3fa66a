package dev.flagstream.runner.kinesis;

import org.apache.flink.kinesis.shaded.com.amazonaws.services.kinesis.clientlibrary.types.UserRecord;
import org.apache.flink.kinesis.shaded.com.amazonaws.services.kinesis.model.HashKeyRange;
import org.apache.flink.kinesis.shaded.com.amazonaws.services.kinesis.model.Record;
import org.apache.flink.kinesis.shaded.com.amazonaws.services.kinesis.model.SequenceNumberRange;
import org.apache.flink.kinesis.shaded.com.amazonaws.services.kinesis.model.Shard;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.streaming.connectors.kinesis.internals.publisher.RecordBatch;
import org.apache.flink.streaming.connectors.kinesis.model.StreamShardHandle;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The events stream packs many events per Kinesis record in the KPL aggregated format
 * (control-plane/src/stream/aggregated-record.ts). The Kinesis connector bundled in the runner
 * (flink-connector-kinesis, legacy FlinkKinesisConsumer) unpacks such records itself: its
 * RecordBatch hands every record it reads to KCL's UserRecord.deaggregate with the shard's hash
 * key range. This test runs that very code (shaded in the connector jar) on the record the
 * control plane's encoder writes (resources/aggregated/record.bin, checked against the encoder
 * by aggregated-record.spec.ts; FLAGSTREAM_UPDATE_AGG_FIXTURE=1 there writes it anew).
 *
 * deaggregate drops the sub-records of a record whose partition key's MD5 (or explicit hash key)
 * lies outside the shard's hash range. Kinesis puts a record on the shard of its OUTER partition
 * key, so sub-records keyed the same way always pass; that is why the encoder writes one
 * partition key per record, the record's own, and no explicit hash keys.
 */
class AggregatedRecordTest {

    static final BigInteger MAX_HASH_KEY = BigInteger.ONE.shiftLeft(128).subtract(BigInteger.ONE);
    static final BigInteger HALF = BigInteger.ONE.shiftLeft(127);
    static final String SEQUENCE_NUMBER = "49590338271490256608559692538361571095921575989136588898";

    record Fixture(byte[] data, String partitionKey, List<String> items) {}

    static Fixture fixture() throws IOException {
        byte[] data = resource("/aggregated/record.bin");
        JsonNode description = new ObjectMapper().readTree(resource("/aggregated/record.json"));
        List<String> items = new ArrayList<>();
        description.get("items").forEach(item -> items.add(item.asText()));
        return new Fixture(data, description.get("partitionKey").asText(), items);
    }

    static byte[] resource(String path) throws IOException {
        try (InputStream in = AggregatedRecordTest.class.getResourceAsStream(path)) {
            if (in == null) throw new IOException(path + " is missing (npx jest control-plane/src/stream/aggregated-record.spec.ts with FLAGSTREAM_UPDATE_AGG_FIXTURE=1 writes it)");
            return in.readAllBytes();
        }
    }

    /** A record as GetRecords returns it; a new one per use (deaggregate reads its ByteBuffer). */
    static Record kinesisRecord(byte[] data, String partitionKey) {
        return new Record()
                .withData(ByteBuffer.wrap(data.clone()))
                .withPartitionKey(partitionKey)
                .withSequenceNumber(SEQUENCE_NUMBER)
                .withApproximateArrivalTimestamp(new Date(1795625104000L));
    }

    /** The hash key Kinesis routes a partition key by: its MD5, as an unsigned 128-bit integer. */
    static BigInteger hashKeyOf(String partitionKey) throws Exception {
        return new BigInteger(1, MessageDigest.getInstance("MD5").digest(partitionKey.getBytes(StandardCharsets.UTF_8)));
    }

    static String dataOf(UserRecord record) {
        ByteBuffer data = record.getData().duplicate();
        byte[] bytes = new byte[data.remaining()];
        data.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    static void assertItems(Fixture fixture, List<UserRecord> records) {
        assertEquals(fixture.items().size(), records.size());
        for (int i = 0; i < records.size(); i++) {
            UserRecord record = records.get(i);
            assertEquals(fixture.items().get(i), dataOf(record), "data of sub-record " + i);
            assertEquals(i, record.getSubSequenceNumber());
            assertTrue(record.isAggregated());
            assertEquals(fixture.partitionKey(), record.getPartitionKey());
            assertNull(record.getExplicitHashKey());
            assertEquals(SEQUENCE_NUMBER, record.getSequenceNumber());
        }
    }

    @Test
    void fixtureHoldsThreeEvents() throws Exception {
        Fixture fixture = fixture();
        assertEquals(3, fixture.items().size());
        assertEquals("pk-fixture", fixture.partitionKey());
        // The KPL magic, then protobuf whose partition key table is that one key, then the MD5.
        assertArrayEquals(new byte[] {(byte) 0xf3, (byte) 0x89, (byte) 0x9a, (byte) 0xc2}, Arrays.copyOf(fixture.data(), 4));
        for (String item : fixture.items()) assertTrue(item.startsWith("{\"tenant\":\"acme\""), item);
    }

    @Test
    void deaggregatesOverTheWholeHashRange() throws Exception {
        Fixture fixture = fixture();
        List<UserRecord> records = UserRecord.deaggregate(List.of(kinesisRecord(fixture.data(), fixture.partitionKey())), BigInteger.ZERO, MAX_HASH_KEY);
        assertItems(fixture, records);
    }

    @Test
    void deaggregatesOnTheShardThePartitionKeyHashesTo() throws Exception {
        Fixture fixture = fixture();
        BigInteger hash = hashKeyOf(fixture.partitionKey());
        // Two shards, each half the hash range: the record lands on the one holding its key's hash.
        boolean lower = hash.compareTo(HALF) < 0;
        BigInteger start = lower ? BigInteger.ZERO : HALF;
        BigInteger end = lower ? HALF.subtract(BigInteger.ONE) : MAX_HASH_KEY;
        assertItems(fixture, UserRecord.deaggregate(List.of(kinesisRecord(fixture.data(), fixture.partitionKey())), start, end));
        // The narrowest range that still holds it.
        assertItems(fixture, UserRecord.deaggregate(List.of(kinesisRecord(fixture.data(), fixture.partitionKey())), hash, hash));
    }

    @Test
    void dropsEverySubRecordOnAShardItsPartitionKeyDoesNotHashTo() throws Exception {
        Fixture fixture = fixture();
        BigInteger hash = hashKeyOf(fixture.partitionKey());
        boolean lower = hash.compareTo(HALF) < 0;
        BigInteger start = lower ? HALF : BigInteger.ZERO;
        BigInteger end = lower ? MAX_HASH_KEY : HALF.subtract(BigInteger.ONE);
        // Silently: no exception, no record. A sub-record with another partition key than the
        // outer record's (which decides the shard) would meet this fate on most shards.
        assertEquals(List.of(), UserRecord.deaggregate(List.of(kinesisRecord(fixture.data(), fixture.partitionKey())), start, end));
        assertEquals(List.of(), UserRecord.deaggregate(List.of(kinesisRecord(fixture.data(), fixture.partitionKey())), hash.add(BigInteger.ONE), MAX_HASH_KEY));
    }

    /** What the connector itself runs on every GetRecords / SubscribeToShard batch (RecordBatch → UserRecord.deaggregate with the shard's range). */
    @Test
    void theConnectorsRecordBatchDeaggregatesWithTheShardsRange() throws Exception {
        Fixture fixture = fixture();
        BigInteger hash = hashKeyOf(fixture.partitionKey());
        boolean lower = hash.compareTo(HALF) < 0;
        StreamShardHandle holding = shard("shardId-000000000000", lower ? BigInteger.ZERO : HALF, lower ? HALF.subtract(BigInteger.ONE) : MAX_HASH_KEY);
        StreamShardHandle other = shard("shardId-000000000001", lower ? HALF : BigInteger.ZERO, lower ? MAX_HASH_KEY : HALF.subtract(BigInteger.ONE));

        byte[] plain = "{\"tenant\":\"\",\"kind\":\"heartbeat\"}".getBytes(StandardCharsets.UTF_8);
        RecordBatch batch = new RecordBatch(List.of(kinesisRecord(fixture.data(), fixture.partitionKey()), kinesisRecord(plain, "heartbeat")), holding, 0L);
        assertEquals(2, batch.getAggregatedRecordSize());
        assertEquals(4, batch.getDeaggregatedRecordSize());
        List<UserRecord> records = batch.getDeaggregatedRecords();
        assertItems(fixture, records.subList(0, 3));
        // A plain record (no magic) passes through whole, as unpackRecord does.
        assertFalse(records.get(3).isAggregated());
        assertEquals(new String(plain, StandardCharsets.UTF_8), dataOf(records.get(3)));

        RecordBatch elsewhere = new RecordBatch(List.of(kinesisRecord(fixture.data(), fixture.partitionKey())), other, 0L);
        assertEquals(0, elsewhere.getDeaggregatedRecordSize());
    }

    /** A record with the magic whose checksum does not match is a plain record to KCL too (unpackRecord's rule). */
    @Test
    void aRecordWithAWrongChecksumIsPlain() throws Exception {
        Fixture fixture = fixture();
        byte[] corrupt = fixture.data().clone();
        corrupt[corrupt.length - 1] ^= 0x01;
        List<UserRecord> records = UserRecord.deaggregate(List.of(kinesisRecord(corrupt, fixture.partitionKey())), BigInteger.ZERO, MAX_HASH_KEY);
        assertEquals(1, records.size());
        assertFalse(records.get(0).isAggregated());
        ByteBuffer data = records.get(0).getData().duplicate();
        byte[] bytes = new byte[data.remaining()];
        data.get(bytes);
        assertArrayEquals(corrupt, bytes);
    }

    static StreamShardHandle shard(String id, BigInteger start, BigInteger end) {
        return new StreamShardHandle("flagstream-events", new Shard()
                .withShardId(id)
                .withHashKeyRange(new HashKeyRange().withStartingHashKey(start.toString()).withEndingHashKey(end.toString()))
                .withSequenceNumberRange(new SequenceNumberRange().withStartingSequenceNumber("0")));
    }
}
