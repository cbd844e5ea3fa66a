/**
 * The KPL aggregated record format: many events in one Kinesis record. Pure: no I/O.
 *
 *   record   = MAGIC (F3 89 9A C2) · protobuf AggregatedRecord · MD5(protobuf) (16 bytes)
 *   message AggregatedRecord { repeated string partition_key_table = 1; repeated string explicit_hash_key_table = 2; repeated Record records = 3; }
 *   message Record { required uint64 partition_key_index = 1; optional uint64 explicit_hash_key_index = 2; required bytes data = 3; repeated Tag tags = 4; }
 *
 * Readers: the Flink Kinesis connector (KCL's UserRecord.deaggregate), the lake writer and the
 * lake Lambda (unpackRecord below). A record without the magic, too short, or whose checksum or
 * protobuf does not hold is a plain record: its bytes are the one item.
 *
 * Why the partition key table holds exactly ONE key, the record's own: KCL's deaggregate hashes
 * each sub-record's partition key (MD5, or its explicit hash key) and, when that hash is outside
 * the hash range of the shard the record was read from, drops the sub-records of that record.
 * Kinesis put the record on the shard of the OUTER record's partition key, so sub-records keyed
 * the same way always hash into that shard's range; any other key (or an explicit hash key,
 * also on the outer PutRecords entry) could land elsewhere and be silently lost. So: one key, every
 * record's partition_key_index 0, no explicit hash keys, and the record is put with that same key.
 */
import { createHash } from 'node:crypto';

/** Kinesis' limit on a record's data (before base64). */
export const MAX_KINESIS_RECORD_BYTES = 1024 * 1024;

const MAGIC = Buffer.from([0xf3, 0x89, 0x9a, 0xc2]);
const DIGEST_BYTES = 16;
/** Protobuf tags (field number << 3 | wire type). */
const TAG_PARTITION_KEY_TABLE = (1 << 3) | 2; // 0x0a
const TAG_EXPLICIT_HASH_KEY_TABLE = (2 << 3) | 2; // 0x12
const TAG_RECORDS = (3 << 3) | 2; // 0x1a
const TAG_PARTITION_KEY_INDEX = (1 << 3) | 0; // 0x08
const TAG_EXPLICIT_HASH_KEY_INDEX = (2 << 3) | 0; // 0x10
const TAG_DATA = (3 << 3) | 2; // 0x1a
/** A record's fixed part before its data: partition_key_index = 0 (tag, varint 0), then the data's tag. */
const RECORD_PREFIX = [TAG_PARTITION_KEY_INDEX, 0, TAG_DATA];

/** Bytes of `value` (a non-negative safe integer) as a protobuf varint. */
function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  let size = 4;
  for (let v = Math.floor(value / 0x10000000); v > 0; v = Math.floor(v / 0x80)) size++;
  return size;
}

function writeVarint(out: Buffer, pos: number, value: number): number {
  // Beyond 31 bits (never for Kinesis sizes) without the bit operators, which are 32-bit.
  while (value > 0x7fffffff) {
    out[pos++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  while (value >= 0x80) {
    out[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[pos++] = value;
  return pos;
}

/** Encoded size of one item in the records field: tag, length, then the record itself. */
function itemSize(dataLength: number): number {
  const inner = RECORD_PREFIX.length + varintSize(dataLength) + dataLength;
  return 1 + varintSize(inner) + inner;
}

/**
 * Packs items (events) into one aggregated record of at most `maxBytes` bytes. Items are held
 * by reference until build(): do not change their bytes in between. Sizes are tracked exactly
 * (build().length === bytes), in O(1) per item.
 */
export class AggregatedRecordBuilder {
  private readonly key: Buffer;
  private readonly items: Uint8Array[] = [];
  private size: number;

  /**
   * @param partitionKey the key the record is put with (1–256 characters): the one entry of the partition key table.
   * @param maxBytes the encoded record's limit (magic, protobuf and checksum included): at most MAX_KINESIS_RECORD_BYTES for Kinesis.
   */
  constructor(readonly partitionKey: string, readonly maxBytes: number) {
    if (typeof partitionKey !== 'string' || partitionKey.length === 0 || partitionKey.length > 256) {
      throw new RangeError('a Kinesis partition key has 1 to 256 characters');
    }
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new RangeError(`maxBytes must be a positive integer, not ${maxBytes}`);
    this.key = Buffer.from(partitionKey, 'utf8');
    this.size = MAGIC.length + 1 + varintSize(this.key.length) + this.key.length + DIGEST_BYTES;
  }

  /** Adds an item, unless the record would then exceed maxBytes (also when it is the first one): then false, and nothing changes. */
  tryAdd(data: Uint8Array): boolean {
    const next = this.size + itemSize(data.length);
    if (next > this.maxBytes) return false;
    this.items.push(data);
    this.size = next;
    return true;
  }

  get count(): number {
    return this.items.length;
  }

  /** The encoded record's exact size so far (with no item: the size of the frame alone, which build() refuses). */
  get bytes(): number {
    return this.size;
  }

  /**
   * The aggregated record (a new Buffer each call; the builder keeps its items). At least one
   * item: a record without one would be magic and checksum only, which readers take for a plain
   * record of those bytes.
   */
  build(): Buffer {
    if (!this.items.length) throw new Error('an aggregated record needs at least one item');
    const out = Buffer.allocUnsafe(this.size);
    let pos = MAGIC.copy(out, 0);
    const start = pos;
    out[pos++] = TAG_PARTITION_KEY_TABLE;
    pos = writeVarint(out, pos, this.key.length);
    pos += this.key.copy(out, pos);
    for (const data of this.items) {
      out[pos++] = TAG_RECORDS;
      pos = writeVarint(out, pos, RECORD_PREFIX.length + varintSize(data.length) + data.length);
      out[pos++] = RECORD_PREFIX[0];
      out[pos++] = RECORD_PREFIX[1];
      out[pos++] = RECORD_PREFIX[2];
      pos = writeVarint(out, pos, data.length);
      out.set(data, pos);
      pos += data.length;
    }
    const digest = createHash('md5').update(out.subarray(start, pos)).digest();
    pos += digest.copy(out, pos);
    if (pos !== out.length) throw new Error(`aggregated record size mismatch: wrote ${pos} of ${out.length} bytes`); // a bug, never the input
    return out;
  }
}

/** The protobuf did not parse (or does not hold what the schema requires): the record is a plain one. */
class Malformed extends Error {}

/** A cursor over protobuf bytes [pos, end). */
class Reader {
  constructor(readonly buf: Buffer, public pos: number, readonly end: number) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint of up to 10 bytes (uint64); values beyond 2^53 come back inexact, and only compare as huge. */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Malformed('truncated varint');
      const byte = this.buf[this.pos++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
    throw new Malformed('varint longer than 10 bytes');
  }

  /** A length-delimited field's bytes, as [start, end). */
  delimited(): [number, number] {
    const length = this.varint();
    if (length > this.end - this.pos) throw new Malformed('length beyond the message');
    const start = this.pos;
    this.pos += length;
    return [start, this.pos];
  }

  /** Skips a field of the given wire type (an unknown field, or a known one with another wire type, as protobuf does). */
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        return this.advance(8);
      case 2:
        this.delimited();
        return;
      case 5:
        return this.advance(4);
      default:
        // Groups (3, 4) are deprecated and never in this format; 6 and 7 do not exist.
        throw new Malformed(`wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new Malformed('truncated field');
    this.pos += n;
  }

  tag(): number {
    const tag = this.varint();
    if (tag < 8) throw new Malformed('field number 0'); // field 0 is invalid in protobuf
    return tag;
  }
}

/**
 * The items of a Kinesis record: those of an aggregated record (in order), or the record itself
 * when it is a plain one (no magic, too short for one, a checksum that does not match, or a
 * protobuf that does not parse or break its schema). Items are views into `data`, not copies.
 */
export function unpackRecord(data: Uint8Array): Buffer[] {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // KCL: an aggregated record has the magic and MORE than the checksum after it.
  if (buf.length <= MAGIC.length + DIGEST_BYTES || buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1] || buf[2] !== MAGIC[2] || buf[3] !== MAGIC[3]) return [buf];
  const end = buf.length - DIGEST_BYTES;
  const digest = createHash('md5').update(buf.subarray(MAGIC.length, end)).digest();
  if (!digest.equals(buf.subarray(end))) return [buf];
  try {
    return decode(buf, MAGIC.length, end);
  } catch (error) {
    if (error instanceof Malformed) return [buf];
    throw error;
  }
}

function decode(buf: Buffer, start: number, end: number): Buffer[] {
  const message = new Reader(buf, start, end);
  let partitionKeys = 0;
  let explicitHashKeys = 0;
  const records: { partitionKeyIndex: number; explicitHashKeyIndex?: number; data: Buffer }[] = [];
  while (!message.done) {
    const tag = message.tag();
    if (tag === TAG_PARTITION_KEY_TABLE) {
      message.delimited();
      partitionKeys++;
    } else if (tag === TAG_EXPLICIT_HASH_KEY_TABLE) {
      message.delimited();
      explicitHashKeys++;
    } else if (tag === TAG_RECORDS) {
      const [from, to] = message.delimited();
      records.push(decodeRecord(new Reader(buf, from, to)));
    } else {
      message.skip(tag & 7);
    }
  }
  // Indexes are checked once the tables are whole (protobuf allows any field order).
  for (const record of records) {
    if (record.partitionKeyIndex >= partitionKeys) throw new Malformed('partition key index out of the table');
    if (record.explicitHashKeyIndex !== undefined && record.explicitHashKeyIndex >= explicitHashKeys) throw new Malformed('explicit hash key index out of the table');
  }
  return records.map((r) => r.data);
}

function decodeRecord(reader: Reader): { partitionKeyIndex: number; explicitHashKeyIndex?: number; data: Buffer } {
  let partitionKeyIndex: number | undefined;
  let explicitHashKeyIndex: number | undefined;
  let data: Buffer | undefined;
  while (!reader.done) {
    const tag = reader.tag();
    if (tag === TAG_PARTITION_KEY_INDEX) partitionKeyIndex = reader.varint();
    else if (tag === TAG_EXPLICIT_HASH_KEY_INDEX) explicitHashKeyIndex = reader.varint();
    else if (tag === TAG_DATA) {
      const [from, to] = reader.delimited();
      data = reader.buf.subarray(from, to); // the last occurrence wins, as in protobuf
    } else reader.skip(tag & 7); // tags (field 4) and anything newer
  }
  // Both are `required`: a parser rejects a message without them.
  if (partitionKeyIndex === undefined || data === undefined) throw new Malformed('a record without its required fields');
  return { partitionKeyIndex, explicitHashKeyIndex, data };
}
