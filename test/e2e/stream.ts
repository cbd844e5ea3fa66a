import {
  GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand, PutRecordsCommand, _Record,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * Direct access to the events stream, as a producer or a consumer outside Flagstream
 * would have it: read a tenant's records back and put the very same bytes again
 * (a producer's retry after a lost answer: Kinesis then holds the record twice).
 */
export const KINESIS_ENDPOINT = process.env.FLAGSTREAM_TEST_KINESIS ?? 'http://127.0.0.1:14568';
export const EVENTS_STREAM = 'flagstream-events';

export function kinesisClient(): KinesisClient {
  return new KinesisClient({
    region: 'us-east-1',
    endpoint: KINESIS_ENDPOINT,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
    // HTTP/1.1: the emulator's HTTP/2 answers confuse the client (control-plane/src/stream/kinesis.ts).
    requestHandler: new NodeHttpHandler({ connectionTimeout: 3000, requestTimeout: 30_000 }),
  });
}

export interface StreamRecord {
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  data: Uint8Array;
  /** The record's JSON (undefined when it is not JSON). */
  json: any;
}

/** Every record on the stream written since `since` (a little earlier, the iterator is coarse), for which `keep` holds. */
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
        const json = parse(record);
        if (json !== undefined && keep(json)) {
          out.push({ shardId: shard.ShardId!, sequenceNumber: record.SequenceNumber!, partitionKey: record.PartitionKey!, data: record.Data!, json });
        }
      }
      if ((page.Records ?? []).length === 0 && (page.MillisBehindLatest ?? 0) === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return out;
}

/** PutRecords of the very same bytes and partition keys; fails loudly when the stream refuses any. */
export async function putAgain(client: KinesisClient, records: StreamRecord[], stream = EVENTS_STREAM): Promise<void> {
  for (let i = 0; i < records.length; i += 500) {
    let batch = records.slice(i, i + 500);
    for (let attempt = 0; batch.length && attempt < 10; attempt++) {
      const out = await client.send(new PutRecordsCommand({ StreamName: stream, Records: batch.map((r) => ({ Data: r.data, PartitionKey: r.partitionKey })) }));
      batch = batch.filter((_, j) => out.Records?.[j]?.ErrorCode);
      if (batch.length) await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
    if (batch.length) throw new Error(`the stream refused ${batch.length} re-delivered record(s)`);
  }
}

function parse(record: _Record): any {
  try {
    return JSON.parse(Buffer.from(record.Data ?? new Uint8Array()).toString('utf8'));
  } catch {
    return undefined;
  }
}
