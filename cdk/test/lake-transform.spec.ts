/**
 * The lake's Lambda handler against a fake Firehose. `@aws-sdk/client-firehose` is not in
 * node_modules, so the requests are checked against the handler's structural types (shaped
 * after the SDK's PutRecordBatchInput/Output) and the service's limits.
 */
import type { KinesisStreamEvent } from 'aws-lambda';
import { heartbeatRecord, toEventRecord } from '../../control-plane/src/events/event-record';
import { toLakeRecord } from '../../control-plane/src/lake/lake-record';
import { AggregatedRecordBuilder, MAX_KINESIS_RECORD_BYTES } from '../../control-plane/src/stream/aggregated-record';
import { createHandler, FirehoseSender, LIMITS, MAX_ATTEMPTS, pack, PutRecordBatchInput, PutRecordBatchOutput } from '../lambda/lake-transform';

const receivedAt = Date.UTC(2026, 10, 26, 23, 59, 59, 999);

function eventRecord(eventIndex: number, tenant = 'acme', extra: Record<string, unknown> = {}) {
  return toEventRecord(
    { kind: 'custom', creationDate: receivedAt - 10, key: 'buy', context: { kind: 'user', key: `u${eventIndex}` }, ...extra } as never,
    { tenant, environment: 'production', payloadId: 'p#1', eventIndex, receivedAt },
    3600_000,
  );
}

/** Records packed into one Kinesis record in the KPL aggregated format, as the events API may write them. */
function aggregated(records: unknown[], partitionKey = 'k'): Buffer {
  const builder = new AggregatedRecordBuilder(partitionKey, MAX_KINESIS_RECORD_BYTES);
  for (const record of records) {
    if (!builder.tryAdd(Buffer.from(typeof record === 'string' ? record : JSON.stringify(record)))) throw new Error('does not fit in one Kinesis record');
  }
  return builder.build();
}

/** A Lambda event of Kinesis records: a Buffer is a record's bytes as they are, anything else its JSON (a string as it is). */
function kinesisEvent(records: unknown[]): KinesisStreamEvent {
  return {
    Records: records.map((record, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: 'k',
        sequenceNumber: String(i),
        data: (Buffer.isBuffer(record) ? record : Buffer.from(typeof record === 'string' ? record : JSON.stringify(record))).toString('base64'),
        approximateArrivalTimestamp: receivedAt / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${i}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/lake',
      awsRegion: 'us-east-1',
      eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/Flagstream-events',
    })),
  };
}

/** A fake Firehose: records every request and answers with what `answer` says for each call. */
class FakeFirehose implements FirehoseSender {
  readonly calls: PutRecordBatchInput[] = [];
  constructor(private readonly answer: (call: number, input: PutRecordBatchInput) => PutRecordBatchOutput | Error = () => ({ FailedPutCount: 0, RequestResponses: [] })) {}

  async putRecordBatch(input: PutRecordBatchInput): Promise<PutRecordBatchOutput> {
    // The request as the SDK would send it: a stream name, 1–500 records of bytes, ≤ 4 MiB.
    expect(Object.keys(input).sort()).toEqual(['DeliveryStreamName', 'Records']);
    expect(input.DeliveryStreamName).toBe('Flagstream-lake');
    expect(input.Records.length).toBeGreaterThan(0);
    expect(input.Records.length).toBeLessThanOrEqual(500);
    for (const record of input.Records) {
      expect(Object.keys(record)).toEqual(['Data']);
      expect(record.Data).toBeInstanceOf(Uint8Array);
      expect(record.Data.length).toBeLessThanOrEqual(1000 * 1024);
    }
    expect(input.Records.reduce((n, r) => n + r.Data.length, 0)).toBeLessThanOrEqual(4 * 1024 * 1024);
    this.calls.push({ ...input, Records: [...input.Records] });
    const out = this.answer(this.calls.length, input);
    if (out instanceof Error) throw out;
    return out;
  }

  /** Every JSON line Firehose was given, in order (each Firehose record holds lines joined by "\n"). */
  lines(calls = this.calls): string[] {
    return calls.flatMap((c) => c.Records.flatMap((r) => Buffer.from(r.Data).toString('utf8').split('\n')));
  }
}

const handlerFor = (firehose: FirehoseSender, log: string[] = []) =>
  createHandler({ deliveryStreamName: 'Flagstream-lake', sender: firehose, backoffMs: () => 0, log: (m) => log.push(m) });

describe('the lake transform (Lambda handler)', () => {
  it('sends every event record as its lake line (toLakeRecords), and skips heartbeats and garbage', async () => {
    const firehose = new FakeFirehose();
    const records = [eventRecord(0), heartbeatRecord('shardId-000000000000', receivedAt), eventRecord(1, 'globex'), 'not json', { tenant: '../x' }];
    const outcome = await handlerFor(firehose)(kinesisEvent(records));

    expect(outcome).toEqual({ records: 5, lines: 2, skipped: 3, firehoseRecords: 1, calls: 1 });
    expect(firehose.lines()).toEqual([toLakeRecord(JSON.stringify(records[0]))!.line, toLakeRecord(JSON.stringify(records[2]))!.line]);
    // Each line is the stream record unchanged.
    expect(firehose.lines().map((l) => JSON.parse(l))).toEqual([records[0], records[2]]);
  });

  it('sends every event of an aggregated (KPL) record as its own line, in order, beside plain records', async () => {
    const firehose = new FakeFirehose();
    const packed = [eventRecord(0), heartbeatRecord('shardId-000000000000', receivedAt), eventRecord(1, 'globex'), 'not json', eventRecord(2)];
    const records = [aggregated(packed), eventRecord(3), aggregated([heartbeatRecord('shardId-000000000001', receivedAt)]), aggregated([eventRecord(4)])];
    const outcome = await handlerFor(firehose)(kinesisEvent(records));

    // 4 Kinesis records, 5 events; the record of a heartbeat alone gives no line.
    expect(outcome).toEqual({ records: 4, lines: 5, skipped: 1, firehoseRecords: 1, calls: 1 });
    const events = [packed[0], packed[2], packed[4], records[1], eventRecord(4)];
    expect(firehose.lines()).toEqual(events.map((e) => toLakeRecord(JSON.stringify(e))!.line));
    expect(firehose.lines().map((l) => JSON.parse(l))).toEqual(events);
  });

  it('packs the events of one Kinesis record into as many Firehose records and calls as the limits need', async () => {
    // One Kinesis record of 1,201 events: 3 Firehose records (500 lines each at most), one call.
    const firehose = new FakeFirehose();
    const many = Array.from({ length: 1201 }, (_, i) => eventRecord(i));
    const outcome = await handlerFor(firehose)(kinesisEvent([aggregated(many)]));
    expect(outcome).toMatchObject({ records: 1, lines: 1201, skipped: 0, firehoseRecords: 3, calls: 1 });
    expect(firehose.calls[0].Records.map((r) => Buffer.from(r.Data).toString().split('\n').length)).toEqual([500, 500, 201]);
    expect(firehose.lines()).toEqual(many.map((r) => JSON.stringify(r)));

    // Six Kinesis records of two ~400 KiB events each: two lines per Firehose record (~800 KiB,
    // a third would pass 1,000 KiB), five such records per call (4 MiB).
    const big = new FakeFirehose((_, input) => ({ FailedPutCount: 0, RequestResponses: input.Records.map(() => ({ RecordId: 'r' })) }));
    const blobs = Array.from({ length: 12 }, (_, i) => eventRecord(i, 'acme', { data: { blob: 'z'.repeat(400 * 1024) } }));
    const kinesisRecords = Array.from({ length: 6 }, (_, i) => aggregated(blobs.slice(2 * i, 2 * i + 2)));
    const bigOutcome = await handlerFor(big)(kinesisEvent(kinesisRecords));
    expect(bigOutcome).toMatchObject({ records: 6, lines: 12, firehoseRecords: 6, calls: 2 });
    expect(big.calls.map((c) => c.Records.length)).toEqual([5, 1]);
    expect(big.lines()).toEqual(blobs.map((r) => JSON.stringify(r)));
  });

  it('sends nothing for a batch of heartbeats only', async () => {
    const firehose = new FakeFirehose();
    const outcome = await handlerFor(firehose)(kinesisEvent([heartbeatRecord('shardId-000000000000', receivedAt), heartbeatRecord('shardId-000000000001', receivedAt)]));
    expect(outcome).toMatchObject({ lines: 0, skipped: 2, calls: 0 });
    expect(firehose.calls).toHaveLength(0);
  });

  it('packs at most 500 lines (Firehose deaggregation\'s limit) and ~1,000 KiB into a record', async () => {
    const firehose = new FakeFirehose();
    const records = Array.from({ length: 1201 }, (_, i) => eventRecord(i));
    const outcome = await handlerFor(firehose)(kinesisEvent(records));
    expect(outcome).toMatchObject({ lines: 1201, firehoseRecords: 3, calls: 1 });
    expect(firehose.calls[0].Records.map((r) => Buffer.from(r.Data).toString().split('\n').length)).toEqual([500, 500, 201]);
    expect(firehose.lines()).toEqual(records.map((r) => JSON.stringify(r)));

    // Big lines: the byte limit closes a record first.
    const big = 'x'.repeat(300 * 1024);
    const packed = pack([big, big, big, big]);
    expect(packed.map((b) => b.length)).toEqual([3 * big.length + 2, big.length]);
    expect(() => pack(['y'.repeat(LIMITS.bytesPerRecord + 1)])).toThrow(/larger than a Firehose record/);
  });

  it('sends only the records that failed again, until they land', async () => {
    const log: string[] = [];
    const firehose = new FakeFirehose((call, input) => {
      if (call === 1) {
        // The second of three records is throttled.
        return {
          FailedPutCount: 1,
          RequestResponses: input.Records.map((_, i) => (i === 1 ? { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'Slow down.' } : { RecordId: `r${i}` })),
        };
      }
      return { FailedPutCount: 0, RequestResponses: input.Records.map((_, i) => ({ RecordId: `again${i}` })) };
    });
    const records = Array.from({ length: 1500 }, (_, i) => eventRecord(i));
    const outcome = await handlerFor(firehose, log)(kinesisEvent(records));

    expect(outcome).toMatchObject({ firehoseRecords: 3, calls: 2 });
    expect(firehose.calls.map((c) => c.Records.length)).toEqual([3, 1]);
    expect(firehose.calls[1].Records[0].Data).toBe(firehose.calls[0].Records[1].Data);
    // Every line landed once.
    const landed = [...firehose.lines([firehose.calls[0]]).slice(0, 500), ...firehose.lines([firehose.calls[1]]), ...firehose.lines([firehose.calls[0]]).slice(1000)];
    expect(landed).toEqual(records.map((r) => JSON.stringify(r)));
    expect(log.some((m) => m.includes('1 of 3 records failed (ServiceUnavailableException)'))).toBe(true);
  });

  it('retries a call that failed as a whole (throttled)', async () => {
    const firehose = new FakeFirehose((call) => (call === 1 ? Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }) : { FailedPutCount: 0, RequestResponses: [{ RecordId: 'r' }] }));
    const outcome = await handlerFor(firehose)(kinesisEvent([eventRecord(0)]));
    expect(outcome.calls).toBe(2);
    expect(firehose.calls[1]).toEqual(firehose.calls[0]);
  });

  it('throws when records still fail after every attempt, so the event source mapping retries and bisects the batch', async () => {
    const firehose = new FakeFirehose((_, input) => ({
      FailedPutCount: 1,
      RequestResponses: input.Records.map((_r, i) => (i === input.Records.length - 1 ? { ErrorCode: 'InternalFailure', ErrorMessage: 'boom' } : { RecordId: `r${i}` })),
    }));
    const records = Array.from({ length: 1001 }, (_, i) => eventRecord(i));
    await expect(handlerFor(firehose)(kinesisEvent(records))).rejects.toThrow(`1 of 3 Firehose records still failed after ${MAX_ATTEMPTS} attempts (InternalFailure)`);
    expect(firehose.calls.map((c) => c.Records.length)).toEqual([3, 1, 1, 1]);
  });

  it('throws when Firehose keeps refusing the whole call', async () => {
    const firehose = new FakeFirehose(() => Object.assign(new Error('down'), { name: 'ServiceUnavailableException' }));
    await expect(handlerFor(firehose)(kinesisEvent([eventRecord(0)]))).rejects.toThrow(/1 of 1 Firehose records still failed after 4 attempts \(ServiceUnavailableException\)/);
    expect(firehose.calls).toHaveLength(MAX_ATTEMPTS);
  });

  it('splits a batch into calls of at most 500 records and 4 MiB', async () => {
    const firehose = new FakeFirehose((_, input) => ({ FailedPutCount: 0, RequestResponses: input.Records.map(() => ({ RecordId: 'r' })) }));
    // Lines of ~600 KiB: one per Firehose record, six per call at most (4 MiB).
    const records = Array.from({ length: 13 }, (_, i) => eventRecord(i, 'acme', { data: { blob: 'z'.repeat(600 * 1024) } }));
    const outcome = await handlerFor(firehose)(kinesisEvent(records));
    expect(outcome).toMatchObject({ firehoseRecords: 13, calls: 3 });
    expect(firehose.calls.map((c) => c.Records.length)).toEqual([6, 6, 1]);
  });
});
