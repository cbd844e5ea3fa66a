import {
  GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand, PutRecordsCommand, PutRecordsRequestEntry,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { AggregatedRecordBuilder, MAX_KINESIS_RECORD_BYTES, unpackRecord } from '../../control-plane/src/stream/aggregated-record';

/**
 * Direct access to the events stream, as a producer or a consumer outside Flagstream
 * would have it: read a tenant's events back and put them again (a producer's retry after a
 * lost answer: Kinesis then holds the record twice).
 *
 * A Kinesis record holds one event or, in the KPL aggregated format, many
 * (control-plane/src/stream/aggregated-record.ts): reading unpacks it, one StreamRecord per event.
 */
export const KINESIS_ENDPOINT = process.env.FLAGSTREAM_TEST_KINESIS ?? 'http://127.0.0.1:14568';
export const EVENTS_STREAM = 'flagstream-events';

export function kinesisClient(endpoint = KINESIS_ENDPOINT): KinesisClient {
  return new KinesisClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
    // HTTP/1.1, as the control plane speaks to the emulator (control-plane/src/stream/kinesis.ts).
    requestHandler: new NodeHttpHandler({ connectionTimeout: 3000, requestTimeout: 30_000 }),
  });
}

/** One event (or other item) of the stream: a plain Kinesis record, or one item of an aggregated one. */
export interface StreamRecord {
  shardId: string;
  /** The Kinesis record's sequence number (shared by the items of an aggregated record). */
  sequenceNumber: string;
  /** The item's place in its aggregated record (0 for a plain record). */
  subSequenceNumber: number;
  partitionKey: string;
  /** The item's bytes (a plain record's: the record's). */
  data: Uint8Array;
  /** The item's JSON (undefined when it is not JSON). */
  json: any;
  /** The Kinesis record as read: its bytes, and how many items it holds (1 for a plain record). */
  record: { data: Uint8Array; items: number };
}

/** Every event on the stream written since `since` (a little earlier, the iterator is coarse), for which `keep` holds; aggregated records unpacked. */
export async function readRecords(client: KinesisClient, since: Date, keep: (json: any) => boolean, stream = EVENTS_STREAM): Promise<StreamRecord[]> {
  const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
  const out: StreamRecord[] = [];
  for (const shard of shards) {
    let iterator = (
      await client.send(
        new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId!, ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(since.getTime() - 60_000) }),
      )
    ).ShardIterator;
    // Read until the shard's tip: an empty answer with nothing behind it.
    for (let calls = 0; iterator && calls < 500; calls++) {
      const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      for (const record of page.Records ?? []) {
        const data = record.Data ?? new Uint8Array();
        const items = unpackRecord(data);
        items.forEach((item, subSequenceNumber) => {
          const json = parse(item);
          if (json !== undefined && keep(json)) {
            out.push({
              shardId: shard.ShardId!, sequenceNumber: record.SequenceNumber!, subSequenceNumber, partitionKey: record.PartitionKey!,
              data: item, json, record: { data, items: items.length },
            });
          }
        });
      }
      if ((page.Records ?? []).length === 0 && (page.MillisBehindLatest ?? 0) === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return out;
}

/** PutRecords' limits: 500 records and 5 MiB (data and partition keys) a call. */
const PUT_RECORDS_MAX = 500;
const PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024;

/**
 * Puts the given events on the stream again, with their partition keys; fails loudly when the
 * stream refuses any. A Kinesis record all of whose events are given goes again as the very same
 * bytes (plain or aggregated); when only some events of an aggregated record are given, they go
 * again packed the same way (one aggregated record, its partition key), so exactly the given
 * events are delivered twice.
 */
export async function putAgain(client: KinesisClient, records: StreamRecord[], stream = EVENTS_STREAM): Promise<void> {
  const entries = reput(records);
  for (let i = 0; i < entries.length; ) {
    let batch: PutRecordsRequestEntry[] = [];
    let bytes = 0;
    for (; i < entries.length && batch.length < PUT_RECORDS_MAX; i++) {
      const size = entries[i].Data!.length + Buffer.byteLength(entries[i].PartitionKey!);
      if (batch.length && bytes + size > PUT_RECORDS_MAX_BYTES) break;
      batch.push(entries[i]);
      bytes += size;
    }
    for (let attempt = 0; batch.length && attempt < 10; attempt++) {
      const out = await client.send(new PutRecordsCommand({ StreamName: stream, Records: batch }));
      batch = batch.filter((_, j) => out.Records?.[j]?.ErrorCode);
      if (batch.length) await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
    if (batch.length) throw new Error(`the stream refused ${batch.length} re-delivered record(s)`);
  }
}

/** The Kinesis records that deliver the given events again, in the order of their first event. */
function reput(records: StreamRecord[]): PutRecordsRequestEntry[] {
  const groups = new Map<string, StreamRecord[]>();
  for (const r of records) {
    const id = `${r.shardId}/${r.sequenceNumber}`;
    const group = groups.get(id);
    if (group) group.push(r);
    else groups.set(id, [r]);
  }
  return [...groups.values()].map((group) => {
    const [first] = group;
    // Every item of the record (a plain record's one included): its very bytes.
    const whole = new Set(group.map((r) => r.subSequenceNumber)).size === first.record.items;
    if (whole) return { Data: first.record.data, PartitionKey: first.partitionKey };
    const builder = new AggregatedRecordBuilder(first.partitionKey, MAX_KINESIS_RECORD_BYTES);
    for (const r of [...group].sort((a, b) => a.subSequenceNumber - b.subSequenceNumber)) {
      // Fewer items of a record that fit, with the same key: they fit.
      if (!builder.tryAdd(r.data)) throw new Error(`events of record ${first.sequenceNumber} no longer fit in one record`);
    }
    return { Data: builder.build(), PartitionKey: first.partitionKey };
  });
}

function parse(item: Uint8Array): any {
  try {
    return JSON.parse(Buffer.from(item.buffer, item.byteOffset, item.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
}
