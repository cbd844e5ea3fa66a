import { join } from 'node:path';
import { CreateStreamCommand, DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { eventually } from './client';
import { ManagedProcess, portOpen } from './kill-processes';
import { kinesisClient } from './stream';

/**
 * The local stream emulator as Flink's Kinesis connector speaks to it (scripts/kinesis-emulator.cjs
 * bridges two differences of kinesalite from Kinesis): the sink's CBOR answers must come whole
 * (kinesalite's CBOR encoder cut them at 16 KiB, and a 500-record PutRecords answer is ~50 KB),
 * and the source's AT_TIMESTAMP arrives in milliseconds (AWS SDK for Java v1). Raw requests,
 * shaped as those SDKs send them; an in-memory emulator of its own.
 */

// eslint-disable-next-line @typescript-eslint/no-require-imports
const cbor = require(require.resolve('cbor', { paths: [require.resolve('kinesalite')] }));

const ROOT = join(__dirname, '..', '..');
const PORT = 18090 + Number(process.env.FLAGSTREAM_TEST_PORT_OFFSET ?? 0);
const ENDPOINT = `http://127.0.0.1:${PORT}`;
const STREAM = `emulator-${Date.now().toString(36)}`;
const emulator = new ManagedProcess('emulator-bridges', [join(ROOT, 'scripts/kinesis-emulator.cjs')], {
  ...process.env,
  FLAGSTREAM_EMULATOR_PORT: String(PORT),
  FLAGSTREAM_EMULATOR_DIR: '',
}, join(process.env.FLAGSTREAM_TEST_DATA_DIR ?? '/tmp', 'logs'), ROOT);

async function kinesisCall(action: string, body: Buffer | string, contentType: string): Promise<{ status: number; body: Buffer }> {
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      'x-amz-target': `Kinesis_20131202.${action}`,
      // Any credentials: the emulator checks the header's shape only.
      authorization: 'AWS4-HMAC-SHA256 Credential=local/20261126/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0',
      'x-amz-date': '20261126T000000Z',
    },
    body,
  });
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

describe('the local stream emulator, as the Flink connector speaks to it', () => {
  let createdBetween: [number, number] = [0, 0];

  beforeAll(async () => {
    emulator.start();
    await eventually('the emulator to listen', async () => ((await portOpen(PORT)) ? true : undefined), 30_000, 100);
    const client = kinesisClient(ENDPOINT);
    try {
      const before = Date.now();
      await client.send(new CreateStreamCommand({ StreamName: STREAM, ShardCount: 1 }));
      createdBetween = [before, Date.now()];
      await eventually('the stream to be ACTIVE', async () => {
        const out = await client.send(new DescribeStreamSummaryCommand({ StreamName: STREAM }));
        return out.StreamDescriptionSummary?.StreamStatus === 'ACTIVE' ? true : undefined;
      }, 10_000, 100);
    } finally {
      client.destroy();
    }
  }, 60_000);

  afterAll(async () => {
    await emulator.stop();
    emulator.close();
  });

  it("reports a stream's creation to the millisecond, not seconds early (where a fresh stream begins)", async () => {
    const client = kinesisClient(ENDPOINT);
    try {
      const out = await client.send(new DescribeStreamSummaryCommand({ StreamName: STREAM }));
      const created = out.StreamDescriptionSummary!.StreamCreationTimestamp!.getTime();
      expect(created).toBeGreaterThanOrEqual(createdBetween[0]);
      expect(created).toBeLessThanOrEqual(createdBetween[1]);
    } finally {
      client.destroy();
    }
  });

  it('answers a CBOR PutRecords of 500 records whole', async () => {
    const records = Array.from({ length: 500 }, (_, i) => ({ Data: Buffer.from(`{"n":${i}}`), PartitionKey: `key-${i}` }));
    // encodeAsync: cbor's encode would cut this ~40 KB request at 16 KiB, as it did kinesalite's answers.
    const answer = await kinesisCall('PutRecords', await cbor.encodeAsync({ StreamName: STREAM, Records: records }), 'application/x-amz-cbor-1.1');
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBeGreaterThan(16 * 1024);
    const decoded = cbor.decodeFirstSync(answer.body);
    expect(decoded.FailedRecordCount).toBe(0);
    expect(decoded.Records).toHaveLength(500);
    expect(decoded.Records.every((r: { SequenceNumber?: string }) => typeof r.SequenceNumber === 'string')).toBe(true);
  });

  it('starts AT_TIMESTAMP at the first record at or after the time, and past the last record when none is yet', async () => {
    const shard = 'shardId-000000000000';
    const put = async (tag: string, n: number) => {
      const records = Array.from({ length: n }, (_, i) => ({ Data: Buffer.from(`{"${tag}":${i}}`).toString('base64'), PartitionKey: `${tag}-${i}` }));
      const answer = await kinesisCall('PutRecords', JSON.stringify({ StreamName: STREAM, Records: records }), 'application/x-amz-json-1.1');
      expect(answer.status).toBe(200);
    };
    const iteratorAt = async (ms: number) => {
      const started = Date.now();
      const answer = await kinesisCall('GetShardIterator', JSON.stringify({ StreamName: STREAM, ShardId: shard, ShardIteratorType: 'AT_TIMESTAMP', Timestamp: ms }), 'application/x-amz-json-1.1');
      expect(answer.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(2000);
      return JSON.parse(answer.body.toString()).ShardIterator as string;
    };
    const read = async (iterator: string) => {
      const page = JSON.parse((await kinesisCall('GetRecords', JSON.stringify({ ShardIterator: iterator, Limit: 10_000 }), 'application/x-amz-json-1.1')).body.toString());
      return { tags: (page.Records as { Data: string }[]).map((r) => Object.keys(JSON.parse(Buffer.from(r.Data, 'base64').toString()))[0]), next: page.NextShardIterator as string };
    };
    for (let i = 0; i < 20; i++) await put('before', 100);
    await new Promise((r) => setTimeout(r, 50));
    const between = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    await put('after', 300);
    const fromBetween = await read(await iteratorAt(between));
    expect(fromBetween.tags).toEqual(Array(300).fill('after'));

    // No record at or after now: an answer at once, and the iterator reads what comes later.
    await new Promise((r) => setTimeout(r, 50));
    const tip = await read(await iteratorAt(Date.now()));
    expect(tip.tags).toEqual([]);
    await put('later', 7);
    expect((await read(tip.next)).tags).toEqual(Array(7).fill('later'));
  });

  it('reads an AT_TIMESTAMP sent in milliseconds, as in seconds', async () => {
    const before = Date.now() - 60_000;
    const shard = 'shardId-000000000000';
    for (const timestamp of [before, before / 1000]) {
      const answer = await kinesisCall('GetShardIterator', JSON.stringify({ StreamName: STREAM, ShardId: shard, ShardIteratorType: 'AT_TIMESTAMP', Timestamp: timestamp }), 'application/x-amz-json-1.1');
      expect([timestamp, answer.status]).toEqual([timestamp, 200]);
      const iterator = JSON.parse(answer.body.toString()).ShardIterator;
      const page = await kinesisCall('GetRecords', JSON.stringify({ ShardIterator: iterator, Limit: 1000 }), 'application/x-amz-json-1.1');
      expect(JSON.parse(page.body.toString()).Records.length).toBeGreaterThanOrEqual(500);
    }
  });
});
