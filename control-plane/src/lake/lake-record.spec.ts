import { heartbeatRecord, toEventRecord } from '../events/event-record';
import { AggregatedRecordBuilder, MAX_KINESIS_RECORD_BYTES } from '../stream/aggregated-record';
import { partitionPath, toLakeRecord, toLakeRecords } from './lake-record';

/** Events packed into one aggregated stream record (the KPL format), with the given partition key. */
function packed(items: (string | Buffer)[], partitionKey = 'shard-key'): Buffer {
  const builder = new AggregatedRecordBuilder(partitionKey, MAX_KINESIS_RECORD_BYTES);
  for (const item of items) expect(builder.tryAdd(typeof item === 'string' ? Buffer.from(item) : item)).toBe(true);
  return builder.build();
}

describe('lake records', () => {
  const receivedAt = Date.UTC(2026, 10, 26, 23, 59, 59, 999);
  const record = toEventRecord(
    { kind: 'custom', creationDate: receivedAt - 10, key: 'buy', context: { kind: 'user', key: 'u' } } as never,
    { tenant: 'acme', environment: 'production', payloadId: 'p#1', eventIndex: 3, receivedAt },
    3600_000,
  );

  it('is the stream record unchanged, in the partition of the hour it was received (UTC)', () => {
    const lake = toLakeRecord(JSON.stringify(record))!;
    expect(JSON.parse(lake.line)).toEqual(record);
    expect(lake.partition).toEqual({ tenant: 'acme', dt: '2026-11-26', hour: '23' });
    expect(partitionPath(lake.partition)).toBe('tenant=acme/dt=2026-11-26/hour=23/');
    expect(toLakeRecord(Buffer.from(JSON.stringify({ ...record, receivedAt: receivedAt + 1 })))!.partition).toEqual({ tenant: 'acme', dt: '2026-11-27', hour: '00' });
  });

  it('keys an event by tenant, environment, payload and index, so a second delivery is the same', () => {
    const a = toLakeRecord(JSON.stringify(record))!;
    const again = toLakeRecord(JSON.stringify({ ...record }))!;
    const other = toLakeRecord(JSON.stringify({ ...record, eventIndex: 4 }))!;
    expect(again.key).toBe(a.key);
    expect(other.key).not.toBe(a.key);
  });

  it('turns a plain stream record into its one line, as toLakeRecord does', () => {
    expect(toLakeRecords(JSON.stringify(record))).toEqual([toLakeRecord(JSON.stringify(record))]);
    expect(toLakeRecords(Buffer.from(JSON.stringify(record)))).toEqual([toLakeRecord(JSON.stringify(record))]);
    expect(toLakeRecords(new Uint8Array(Buffer.from(JSON.stringify(record))))).toEqual([toLakeRecord(JSON.stringify(record))]);
    expect(toLakeRecords(JSON.stringify(heartbeatRecord('shardId-000000000000', receivedAt)))).toEqual([]);
    expect(toLakeRecords(Buffer.from(JSON.stringify(heartbeatRecord('shardId-000000000000', receivedAt))))).toEqual([]);
    expect(toLakeRecords('not json')).toEqual([]);
    expect(toLakeRecords(new Uint8Array(0))).toEqual([]);
  });

  it('turns an aggregated stream record into one line per event, in order, each with its own key and partition', () => {
    const events = [
      record,
      { ...record, eventIndex: 4 },
      { ...record, eventIndex: 5, receivedAt: receivedAt + 1 },
      { ...record, tenant: 'globex', eventIndex: 0 },
    ];
    const lakes = toLakeRecords(packed(events.map((e) => JSON.stringify(e))));
    expect(lakes).toEqual(events.map((e) => toLakeRecord(JSON.stringify(e))));
    expect(lakes.map((l) => JSON.parse(l.line))).toEqual(events);
    expect(new Set(lakes.map((l) => l.key)).size).toBe(4);
    expect(lakes.map((l) => partitionPath(l.partition))).toEqual([
      'tenant=acme/dt=2026-11-26/hour=23/', 'tenant=acme/dt=2026-11-26/hour=23/', 'tenant=acme/dt=2026-11-27/hour=00/', 'tenant=globex/dt=2026-11-26/hour=23/',
    ]);
    // The same event, plain or packed, is the same line with the same key.
    expect(toLakeRecords(packed([JSON.stringify(record)]))).toEqual(toLakeRecords(JSON.stringify(record)));
  });

  it('leaves out the items of an aggregated record that are no event, and keeps the others', () => {
    const heartbeat = JSON.stringify(heartbeatRecord('shardId-000000000000', receivedAt));
    const lakes = toLakeRecords(packed([heartbeat, JSON.stringify(record), 'not json', Buffer.alloc(0), JSON.stringify({ ...record, tenant: '../etc' }), JSON.stringify({ ...record, eventIndex: 9 })]));
    expect(lakes.map((l) => JSON.parse(l.line).eventIndex)).toEqual([3, 9]);
    expect(toLakeRecords(packed([heartbeat]))).toEqual([]);
    // A record that only looks aggregated (its checksum is wrong) is a plain record: binary, so no event.
    const corrupt = packed([JSON.stringify(record)]);
    corrupt[corrupt.length - 1] ^= 1;
    expect(toLakeRecords(corrupt)).toEqual([]);
  });

  it('leaves out heartbeats, garbage and a tenant that is no path segment', () => {
    expect(toLakeRecord(JSON.stringify(heartbeatRecord('shardId-000000000000', receivedAt)))).toBeUndefined();
    expect(toLakeRecord('not json')).toBeUndefined();
    expect(toLakeRecord('[1]')).toBeUndefined();
    expect(toLakeRecord(JSON.stringify({ ...record, tenant: '../etc' }))).toBeUndefined();
    expect(toLakeRecord(JSON.stringify({ ...record, receivedAt: 'soon' }))).toBeUndefined();
  });
});
