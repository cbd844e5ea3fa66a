import type { PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { loadConfig } from '../config/config';
import type { AnalysesRepository } from '../analyses/analyses.repository';
import type { StreamService } from '../stream/kinesis';
import { HeartbeatService } from './heartbeat.service';

describe('HeartbeatService', () => {
  const shards = [
    { ShardId: 'shard-0', HashKeyRange: { StartingHashKey: '0', EndingHashKey: '1' } },
    { ShardId: 'shard-1', HashKeyRange: { StartingHashKey: '2', EndingHashKey: '3' } },
    { ShardId: 'shard-old', HashKeyRange: { StartingHashKey: '0', EndingHashKey: '3' }, SequenceNumberRange: { StartingSequenceNumber: '1', EndingSequenceNumber: '9' } },
  ];
  let sent: PutRecordsRequestEntry[];
  let running: boolean;
  const stream = {
    listShards: async () => shards,
    putRecords: async (_: string, entries: PutRecordsRequestEntry[]) => {
      sent.push(...entries);
      return { failed: [] };
    },
  } as unknown as StreamService;
  const analyses = { anyToRun: () => running } as unknown as AnalysesRepository;
  const service = new HeartbeatService(loadConfig({}), analyses, stream);

  beforeEach(() => {
    sent = [];
    running = true;
  });

  it('puts one heartbeat on every open shard, aimed at it by its starting hash key', async () => {
    const before = Date.now();
    expect(await service.beat()).toBe(2);
    expect(sent.map((e) => e.ExplicitHashKey)).toEqual(['0', '2']);
    const records = sent.map((e) => JSON.parse(Buffer.from(e.Data!).toString('utf8')));
    expect(records.map((r) => r.shard)).toEqual(['shard-0', 'shard-1']);
    for (const record of records) {
      expect(Object.keys(record)).toEqual(['kind', 'tenant', 'shard', 'eventTime']);
      expect(record).toMatchObject({ kind: 'heartbeat', tenant: '' });
      expect(record.eventTime).toBeGreaterThanOrEqual(before);
      expect(record.eventTime).toBeLessThanOrEqual(Date.now());
    }
  });

  it('names in each heartbeat the shard it is aimed at, also when the hash keys are listed out of order', async () => {
    const reversed = { ...stream, listShards: async () => [...shards].reverse() } as unknown as StreamService;
    await new HeartbeatService(loadConfig({}), analyses, reversed).beat();
    const byHashKey = Object.fromEntries(sent.map((e) => [e.ExplicitHashKey, JSON.parse(Buffer.from(e.Data!).toString('utf8')).shard]));
    expect(byHashKey).toEqual({ '0': 'shard-0', '2': 'shard-1' });
  });

  it('writes nothing while no analysis should run', async () => {
    running = false;
    expect(await service.beat()).toBe(0);
    expect(sent).toEqual([]);
  });
});
