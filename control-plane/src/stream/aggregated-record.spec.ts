import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AggregatedRecordBuilder, MAX_KINESIS_RECORD_BYTES, unpackRecord } from './aggregated-record';

/**
 * aws-kinesis-agg (devDependency, tests only): the KPL format's reference implementation for
 * Node.js, as an independent cross-check. Its typings import `aws-sdk` (v2), which is not
 * installed: the part used here, typed locally.
 */
interface AggUserRecord {
  partitionKey: string;
  explicitPartitionKey?: string;
  sequenceNumber: string;
  subSequenceNumber?: number;
  /** base64 */
  data: string;
}
interface AggLib {
  deaggregateSync(
    record: { partitionKey: string; sequenceNumber: string; data: string },
    computeChecksums: boolean,
    done: (error: Error | null | undefined, records?: AggUserRecord[]) => void,
  ): void;
  aggregate(
    records: { partitionKey: string; explicitHashKey?: string; data: Buffer }[],
    onEncoded: (encoded: { partitionKey: string; data: Buffer }, callback: (error?: Error) => void) => void,
    afterAll: () => void,
    onError: (error: Error) => void,
  ): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const agg = require('aws-kinesis-agg') as AggLib;

const MAGIC = Buffer.from('f3899ac2', 'hex');
const md5 = (data: Uint8Array) => createHash('md5').update(data).digest();
/** Magic · protobuf · MD5: an aggregated record around hand-made protobuf bytes. */
const frame = (protobuf: number[] | Buffer) => {
  const pb = Buffer.from(protobuf);
  return Buffer.concat([MAGIC, pb, md5(pb)]);
};

function build(partitionKey: string, items: Uint8Array[], maxBytes = MAX_KINESIS_RECORD_BYTES): Buffer {
  const builder = new AggregatedRecordBuilder(partitionKey, maxBytes);
  for (const item of items) expect(builder.tryAdd(item)).toBe(true);
  const out = builder.build();
  expect(out.length).toBe(builder.bytes);
  return out;
}

function deaggregateWithLib(data: Buffer, partitionKey: string): AggUserRecord[] {
  let out: AggUserRecord[] | undefined;
  agg.deaggregateSync({ partitionKey, sequenceNumber: '49590338271490256608559692538361571095921575989136588898', data: data.toString('base64') }, true, (error, records) => {
    if (error) throw error;
    out = records;
  });
  return out!;
}

function aggregateWithLib(records: { partitionKey: string; explicitHashKey?: string; data: Buffer }[]): Promise<{ partitionKey: string; data: Buffer }[]> {
  return new Promise((resolve, reject) => {
    const encoded: { partitionKey: string; data: Buffer }[] = [];
    agg.aggregate(
      records,
      (record, callback) => {
        encoded.push(record);
        callback();
      },
      () => resolve(encoded),
      reject,
    );
  });
}

const events = (n: number, tenant = 'acme') =>
  Array.from({ length: n }, (_, i) => Buffer.from(JSON.stringify({ tenant, environment: 'production', payloadId: 'p#1', eventIndex: i, kind: 'custom', key: 'buy', receivedAt: 1_795_625_104_000 + i })));

describe('aggregated records (KPL format)', () => {
  it('round trip: the items come back in order, byte for byte', () => {
    const items = [...events(5), Buffer.from([0xf3, 0x89, 0x9a, 0xc2, 0, 1, 2, 0xff]), Buffer.from('ünïcödé ✓', 'utf8')];
    const record = build('pk-1', items);
    expect(record.subarray(0, 4)).toEqual(MAGIC);
    const back = unpackRecord(record);
    expect(back).toHaveLength(items.length);
    back.forEach((item, i) => expect(item.equals(items[i])).toBe(true));
    // Also from a Uint8Array that is not a Buffer, at an offset in a larger ArrayBuffer.
    const larger = new Uint8Array(record.length + 7);
    larger.set(record, 7);
    expect(unpackRecord(larger.subarray(7)).map((b) => b.toString('hex'))).toEqual(items.map((b) => b.toString('hex')));
  });

  it('knows its exact size after every item, across varint boundaries of lengths', () => {
    const sizes = [0, 1, 2, 119, 120, 121, 122, 123, 127, 128, 129, 16_370, 16_371, 16_372, 16_373, 16_383, 16_384, 16_385, 70_000, 2_097_151 - 8, 2_097_152];
    for (const pk of ['k', 'a'.repeat(127), 'b'.repeat(128), 'ü'.repeat(100), 'z'.repeat(256)]) {
      const builder = new AggregatedRecordBuilder(pk, 8 * 1024 * 1024);
      const items: Buffer[] = [];
      for (const size of sizes) {
        const item = Buffer.alloc(size, size % 251);
        expect(builder.tryAdd(item)).toBe(true);
        items.push(item);
        const built = builder.build();
        expect(built.length).toBe(builder.bytes);
        expect(builder.count).toBe(items.length);
      }
      expect(unpackRecord(builder.build()).map((b) => b.length)).toEqual(sizes);
    }
  });

  it('refuses an item that would take the record over maxBytes, and changes nothing then', () => {
    const items = events(10);
    const full = build('pk', items);
    // Exactly at the limit: every item fits, and not one byte more.
    const builder = new AggregatedRecordBuilder('pk', full.length);
    for (const item of items) expect(builder.tryAdd(item)).toBe(true);
    expect(builder.bytes).toBe(full.length);
    expect(builder.tryAdd(Buffer.alloc(0))).toBe(false);
    expect(builder.count).toBe(10);
    expect(builder.bytes).toBe(full.length);
    expect(builder.build().equals(full)).toBe(true);

    // One byte less: the last item no longer fits.
    const tight = new AggregatedRecordBuilder('pk', full.length - 1);
    expect(items.map((item) => tight.tryAdd(item))).toEqual([...Array(9).fill(true), false]);
    expect(tight.build().length).toBeLessThanOrEqual(full.length - 1);

    // A first item that alone is too large is refused too: the builder stays empty.
    const one = build('pk', [items[0]]);
    expect(new AggregatedRecordBuilder('pk', one.length).tryAdd(items[0])).toBe(true);
    const tooSmall = new AggregatedRecordBuilder('pk', one.length - 1);
    expect(tooSmall.tryAdd(items[0])).toBe(false);
    expect(tooSmall.count).toBe(0);
    expect(() => tooSmall.build()).toThrow(/at least one item/);
    expect(new AggregatedRecordBuilder('pk', MAX_KINESIS_RECORD_BYTES).tryAdd(Buffer.alloc(MAX_KINESIS_RECORD_BYTES))).toBe(false);
  });

  it('checks its arguments', () => {
    expect(() => new AggregatedRecordBuilder('', 1000)).toThrow(RangeError);
    expect(() => new AggregatedRecordBuilder('x'.repeat(257), 1000)).toThrow(RangeError);
    expect(() => new AggregatedRecordBuilder('pk', 0)).toThrow(RangeError);
    expect(() => new AggregatedRecordBuilder('pk', 1.5)).toThrow(RangeError);
  });

  it('writes what aws-kinesis-agg reads: our items, our partition key, sub-sequence numbers in order', () => {
    const items = [...events(20), Buffer.alloc(0), randomBytes(3000)];
    const record = build('tenant-acme-7', items);
    const records = deaggregateWithLib(record, 'tenant-acme-7');
    expect(records.map((r) => Buffer.from(r.data, 'base64').toString('hex'))).toEqual(items.map((b) => b.toString('hex')));
    expect(records.map((r) => r.partitionKey)).toEqual(items.map(() => 'tenant-acme-7'));
    expect(records.map((r) => r.explicitPartitionKey)).toEqual(items.map(() => undefined));
    expect(records.map((r) => r.subSequenceNumber)).toEqual(items.map((_, i) => i));
  });

  it('writes the very bytes aws-kinesis-agg writes for the same items and key', async () => {
    const items = events(50);
    const theirs = await aggregateWithLib(items.map((data) => ({ partitionKey: 'pk-same', data })));
    expect(theirs).toHaveLength(1);
    expect(theirs[0].partitionKey).toBe('pk-same');
    expect(build('pk-same', items).equals(theirs[0].data)).toBe(true);
  });

  it('reads what aws-kinesis-agg writes, also with several partition keys and explicit hash keys', async () => {
    const items = events(30);
    const mixed = items.map((data, i) => ({
      partitionKey: `pk-${i % 4}`,
      ...(i % 3 === 0 ? { explicitHashKey: String(BigInt(i) * 10n ** 30n) } : {}),
      data,
    }));
    const theirs = await aggregateWithLib(mixed);
    expect(theirs).toHaveLength(1);
    expect(unpackRecord(theirs[0].data).map((b) => b.toString())).toEqual(items.map((b) => b.toString()));

    // Large: the library splits into several records at its limit; each unpacks to its share, in order.
    const big = Array.from({ length: 5 }, (_, i) => Buffer.alloc(400 * 1024, 65 + i));
    const split = await aggregateWithLib(big.map((data) => ({ partitionKey: 'pk-big', data })));
    expect(split.length).toBeGreaterThan(1);
    expect(split.flatMap((r) => unpackRecord(r.data)).map((b) => b.toString('base64'))).toEqual(big.map((b) => b.toString('base64')));
  });

  it('passes plain records through as their one item', () => {
    const json = Buffer.from(JSON.stringify({ tenant: '', kind: 'heartbeat' }));
    expect(unpackRecord(json)).toEqual([json]);
    expect(unpackRecord(new Uint8Array(0))).toEqual([Buffer.alloc(0)]);
    // Magic, but too short to hold a checksum and any protobuf (KCL: more than 16 bytes after the magic).
    const short = Buffer.concat([MAGIC, Buffer.alloc(5)]);
    expect(unpackRecord(short)).toEqual([short]);
    const emptyProtobuf = frame([]);
    expect(emptyProtobuf.length).toBe(20);
    expect(unpackRecord(emptyProtobuf)).toEqual([emptyProtobuf]);
    // Almost the magic.
    const record = build('pk', events(2));
    const notMagic = Buffer.from(record);
    notMagic[3] ^= 1;
    expect(unpackRecord(notMagic)).toEqual([notMagic]);
  });

  it('takes a record whose checksum does not match for a plain record', () => {
    const record = build('pk', events(3));
    const badDigest = Buffer.from(record);
    badDigest[badDigest.length - 1] ^= 0x80;
    expect(unpackRecord(badDigest)).toEqual([badDigest]);
    const badBody = Buffer.from(record);
    badBody[20] ^= 0x01;
    expect(unpackRecord(badBody)).toEqual([badBody]);
    // aws-kinesis-agg agrees that the checksum is wrong.
    expect(() => deaggregateWithLib(badDigest, 'pk')).toThrow(/checksum/);
  });

  it('takes a malformed protobuf (with a right checksum) for a plain record, and never throws', () => {
    const pk = [0x0a, 0x02, 0x70, 0x6b]; // partition_key_table: "pk"
    const malformed = [
      [...pk, 0x1a, 0x05, 0x08, 0x00, 0x1a], // a record longer than the message
      [...pk, 0x1a, 0x03, 0x08, 0x00, 0x1a, 0x05], // data longer than its record
      [...pk, 0x1a, 0x04, 0x08, 0x01, 0x1a, 0x00], // partition key index 1 of a table of 1
      [0x1a, 0x04, 0x08, 0x00, 0x1a, 0x00], // no partition key table at all
      [...pk, 0x1a, 0x02, 0x1a, 0x00], // no partition_key_index (required)
      [...pk, 0x1a, 0x02, 0x08, 0x00], // no data (required)
      [...pk, 0x1a, 0x06, 0x08, 0x00, 0x10, 0x00, 0x1a, 0x00], // explicit hash key index without a table
      [...pk, 0x1b, 0x1c], // a group (wire type 3)
      [...pk, 0x1f], // wire type 7
      [...pk, 0x02, 0x00], // field number 0
      [...pk, 0x1a, 0x80], // truncated varint
      [...pk, 0x1a, ...Array(11).fill(0xff), 0x01], // a varint of more than 10 bytes
      [0xff, 0xff, 0xff, 0xff], // nonsense
    ];
    for (const protobuf of malformed) {
      const record = frame(protobuf);
      expect(unpackRecord(record)).toEqual([record]);
    }
    // Random protobuf bytes with a right checksum: an array, never an exception.
    for (let i = 0; i < 2000; i++) {
      const record = frame(randomBytes(1 + (i % 60)));
      const out = unpackRecord(record);
      expect(Array.isArray(out)).toBe(true);
    }
  });

  it('reads what protobuf allows beyond what we write: unknown fields, tags, any field order, no records', () => {
    // A record with a tag (field 4: { key: "k", value: "v" }) and an unknown varint field 9, the table after the records.
    const tag = [0x22, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76];
    const record = [0x08, 0x00, 0x1a, 0x02, 0x68, 0x69, ...tag, 0x48, 0x05];
    const protobuf = [0x1a, record.length, ...record, 0x0a, 0x02, 0x70, 0x6b, 0x15, 1, 2, 3, 4, 0x09, 1, 2, 3, 4, 5, 6, 7, 8];
    expect(unpackRecord(frame(protobuf)).map((b) => b.toString())).toEqual(['hi']);
    // The tables but no records: an aggregated record of no item (KCL yields none either).
    expect(unpackRecord(frame([0x0a, 0x02, 0x70, 0x6b]))).toEqual([]);
  });

  it('packs empty items', () => {
    const items = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(0), Buffer.alloc(0)];
    const record = build('pk-empty', items);
    expect(unpackRecord(record)).toEqual(items);
    expect(deaggregateWithLib(record, 'pk-empty').map((r) => r.data)).toEqual(['', 'eA==', '', '']);
  });

  it('packs large items (~500 KB): two fit in a Kinesis record, a third does not', () => {
    const a = randomBytes(500 * 1024);
    const b = randomBytes(500 * 1024);
    const builder = new AggregatedRecordBuilder('pk-large', MAX_KINESIS_RECORD_BYTES);
    expect(builder.tryAdd(a)).toBe(true);
    expect(builder.tryAdd(b)).toBe(true);
    expect(builder.tryAdd(randomBytes(500 * 1024))).toBe(false);
    expect(builder.tryAdd(randomBytes(MAX_KINESIS_RECORD_BYTES - builder.bytes))).toBe(false);
    const record = builder.build();
    expect(record.length).toBe(builder.bytes);
    expect(record.length).toBeLessThanOrEqual(MAX_KINESIS_RECORD_BYTES);
    const back = unpackRecord(record);
    expect(back[0].equals(a) && back[1].equals(b)).toBe(true);
    const theirs = deaggregateWithLib(record, 'pk-large').map((r) => Buffer.from(r.data, 'base64'));
    expect(theirs).toHaveLength(2);
    expect(theirs[0].equals(a) && theirs[1].equals(b)).toBe(true);
  });

  it('fills a record with many small items quickly and exactly', () => {
    const item = Buffer.from(JSON.stringify({ tenant: 'acme', eventIndex: 1, kind: 'feature', key: 'flag' }));
    const builder = new AggregatedRecordBuilder('pk-many', MAX_KINESIS_RECORD_BYTES);
    while (builder.tryAdd(item));
    expect(builder.count).toBeGreaterThan(10_000);
    const record = builder.build();
    expect(record.length).toBe(builder.bytes);
    expect(MAX_KINESIS_RECORD_BYTES - record.length).toBeLessThan(item.length + 4);
    expect(unpackRecord(record)).toHaveLength(builder.count);
  });

  /**
   * The fixture flink-sql/runner's AggregatedRecordTest deaggregates with the Kinesis connector's
   * own KCL code. FLAGSTREAM_UPDATE_AGG_FIXTURE=1 writes it anew; otherwise the committed one
   * must be what the encoder writes now.
   */
  it('matches the fixture the Flink runner\'s AggregatedRecordTest reads', () => {
    const dir = join(__dirname, '..', '..', '..', 'flink-sql', 'runner', 'src', 'test', 'resources', 'aggregated');
    const partitionKey = 'pk-fixture';
    const items = [
      { tenant: 'acme', environment: 'production', payloadId: 'fixture#0000000000000000', eventIndex: 0, kind: 'custom', key: 'buy', receivedAt: 1795625104000 },
      { tenant: 'acme', environment: 'production', payloadId: 'fixture#0000000000000000', eventIndex: 1, kind: 'feature', key: 'new-checkout', variation: 1, receivedAt: 1795625104000 },
      { tenant: 'acme', environment: 'production', payloadId: 'fixture#0000000000000000', eventIndex: 2, kind: 'custom', key: 'ünïcödé ✓', receivedAt: 1795625104001 },
    ].map((event) => JSON.stringify(event));
    const record = build(partitionKey, items.map((line) => Buffer.from(line, 'utf8')));
    const description = `${JSON.stringify({ partitionKey, items }, null, 2)}\n`;
    if (process.env.FLAGSTREAM_UPDATE_AGG_FIXTURE === '1') {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'record.bin'), record);
      writeFileSync(join(dir, 'record.json'), description);
    }
    expect(existsSync(join(dir, 'record.bin'))).toBe(true);
    expect(readFileSync(join(dir, 'record.bin')).equals(record)).toBe(true);
    expect(readFileSync(join(dir, 'record.json'), 'utf8')).toBe(description);
  });
});
