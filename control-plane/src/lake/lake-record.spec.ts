import { heartbeatRecord, toEventRecord } from '../events/event-record';
import { partitionPath, toLakeRecord } from './lake-record';

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

  it('leaves out heartbeats, garbage and a tenant that is no path segment', () => {
    expect(toLakeRecord(JSON.stringify(heartbeatRecord('shardId-000000000000', receivedAt)))).toBeUndefined();
    expect(toLakeRecord('not json')).toBeUndefined();
    expect(toLakeRecord('[1]')).toBeUndefined();
    expect(toLakeRecord(JSON.stringify({ ...record, tenant: '../etc' }))).toBeUndefined();
    expect(toLakeRecord(JSON.stringify({ ...record, receivedAt: 'soon' }))).toBeUndefined();
  });
});
