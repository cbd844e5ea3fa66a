import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetRecordsCommand, GetShardIteratorCommand, type Shard } from '@aws-sdk/client-kinesis';
import { Logger } from '@nestjs/common';
import { Config, loadConfig } from '../config/config';
import { MetricsService } from '../metrics/metrics.service';
import { Db, openDatabase } from '../store/database';
import type { StreamService } from '../stream/kinesis';
import { ResultsIngestor, parseResultRecord } from './results-ingestor.service';
import { SqliteResultsRepository } from './results.repository';

const A = '00000000-0000-4000-8000-00000000000a';

/** What the Flink job writes (docs/counting.md §3): Debezium envelopes. */
const created = (after: Record<string, unknown>) => JSON.stringify({ before: null, after, op: 'c' });
const retracted = (before: Record<string, unknown>) => JSON.stringify({ before, after: null, op: 'd' });
/** A row as the job writes it: its dimensions and measures in `fields`, the text of a JSON object (keys sorted, as Flink's JSON_OBJECT writes them). */
const rowOf = (evaluations: number, version: number, extra: Record<string, unknown> = {}, fields: Record<string, unknown> = {}) => ({
  analysisId: A,
  generation: 1,
  type: 'row',
  windowStart: '2026-11-26T04:00:00Z',
  windowEnd: '2026-11-26T04:00:10Z',
  fields: JSON.stringify({ evaluations, flagKey: 'checkout', variation: 1, ...fields }),
  version,
  ...extra,
});
const progressOf = (shard: string, progressAt: string, generation = 1) => ({ analysisId: A, generation, type: 'progress', shard, progressAt });

describe('parseResultRecord', () => {
  it('reads a custom-sql row as an addition, and its retraction as a removal of the same row', () => {
    const image = { analysisId: A, generation: 2, type: 'custom', windowStart: null, windowEnd: null, fields: '{"flagKey":"x","n":3}', version: 0 };
    const added = parseResultRecord(JSON.stringify({ before: null, after: image, op: 'c' }));
    const removed = parseResultRecord(JSON.stringify({ before: image, after: null, op: 'd' }));
    expect(added).toMatchObject({ type: 'custom', record: { analysisId: A, generation: 2, delta: 1, row: { flagKey: 'x', n: 3 } } });
    expect(removed).toMatchObject({ type: 'custom', record: { delta: -1, row: { flagKey: 'x', n: 3 } } });
    expect((added as { record: { rowKey: string } }).record.rowKey).toBe((removed as { record: { rowKey: string } }).record.rowKey);
    // Another value is another row; a window is part of the row.
    const other = parseResultRecord(JSON.stringify({ before: null, after: { ...image, fields: '{"flagKey":"x","n":4}' }, op: 'c' }));
    expect((other as { record: { rowKey: string } }).record.rowKey).not.toBe((added as { record: { rowKey: string } }).record.rowKey);
    const windowed = parseResultRecord(JSON.stringify({ before: null, after: { ...image, windowStart: '2026-11-26 04:00:00.000', windowEnd: '2026-11-26 04:01:00.000' }, op: 'c' }));
    expect(windowed).toMatchObject({ record: { windowStart: '2026-11-26T04:00:00.000Z', row: { windowStart: '2026-11-26T04:00:00.000Z', windowEnd: '2026-11-26T04:01:00.000Z', n: 3 } } });
    expect(parseResultRecord(JSON.stringify({ before: null, after: { ...image, fields: 'nope' }, op: 'c' }))).toMatchObject({ type: 'malformed' });
  });

  it('reads a row: the window as ISO-8601 with milliseconds, the dimensions as its key, never the envelope fields', () => {
    expect(parseResultRecord(created(rowOf(5, 7)))).toEqual({
      type: 'row',
      record: {
        analysisId: A,
        generation: 1,
        version: 7,
        dims: '[["flagKey","checkout"],["variation",1]]',
        row: { windowStart: '2026-11-26T04:00:00.000Z', windowEnd: '2026-11-26T04:00:10.000Z', flagKey: 'checkout', variation: 1, evaluations: 5 },
      },
    });
    // Millis, Flink's SQL format, and an offset all name the same window.
    for (const windowStart of ['2026-11-26T04:00:00.000Z', '2026-11-26 04:00:00.000', '2026-11-26T05:00:00+01:00']) {
      const parsed = parseResultRecord(created(rowOf(5, 7, { windowStart })));
      expect(parsed).toMatchObject({ type: 'row', record: { row: { windowStart: '2026-11-26T04:00:00.000Z' } } });
    }
    // The dimensions' order does not change the key; a null variation is a dimension value.
    const { windowStart, windowEnd } = rowOf(1, 1);
    const reordered = parseResultRecord(
      created({
        fields: '{"variation":null,"evaluations":1,"flagKey":"x","environment":"prod"}',
        version: 1,
        type: 'row',
        windowEnd,
        windowStart,
        generation: 1,
        analysisId: A,
      }),
    );
    expect(reordered).toMatchObject({
      record: { dims: '[["environment","prod"],["flagKey","x"],["variation",null]]', row: { windowStart: '2026-11-26T04:00:00.000Z', variation: null, flagKey: 'x', environment: 'prod', evaluations: 1 } },
    });
  });

  it('reads a row\'s dimensions and measures from its fields only: exactly the grouped ones, whatever else `after` has', () => {
    // grouped by environment alone: one dimension
    const parsed = parseResultRecord(created({ ...rowOf(1, 1), fields: '{"environment":"prod","evaluations":4}', flagKey: 'ignored' }));
    expect(parsed).toEqual({
      type: 'row',
      record: {
        analysisId: A,
        generation: 1,
        version: 1,
        dims: '[["environment","prod"]]',
        row: { windowStart: '2026-11-26T04:00:00.000Z', windowEnd: '2026-11-26T04:00:10.000Z', environment: 'prod', evaluations: 4 },
      },
    });
    // no dimension at all: the window is the key
    expect(parseResultRecord(created({ ...rowOf(1, 1), fields: '{"evaluations":9}' }))).toMatchObject({ record: { dims: '[]', row: { evaluations: 9 } } });
    // the window and version come from the envelope, never from fields
    expect(parseResultRecord(created({ ...rowOf(1, 1), fields: '{"windowStart":"x","version":99,"evaluations":2}' }))).toMatchObject({
      record: { version: 1, dims: '[]', row: { windowStart: '2026-11-26T04:00:00.000Z', evaluations: 2 } },
    });
  });

  it('reads progress and late records', () => {
    expect(parseResultRecord(created(progressOf('shardId-000000000001', '2026-11-26T04:00:10Z')))).toEqual({
      type: 'progress',
      record: { analysisId: A, generation: 1, shard: 'shardId-000000000001', progressAt: '2026-11-26T04:00:10.000Z' },
    });
    expect(parseResultRecord(created({ analysisId: A, generation: 2, type: 'late', bucketStart: '2026-11-26T04:00Z', lateEvents: 3 }))).toEqual({
      type: 'late',
      record: { analysisId: A, generation: 2, bucketStart: '2026-11-26T04:00:00.000Z', lateEvents: 3 },
    });
  });

  it('ignores retractions and tells malformed records apart without throwing', () => {
    expect(parseResultRecord(retracted(rowOf(5, 7)))).toEqual({ type: 'retraction' });
    const garbage = [
      'not json',
      '42',
      'null',
      '[]',
      JSON.stringify({ after: rowOf(1, 1) }),
      JSON.stringify({ op: 'c', after: null }),
      JSON.stringify({ op: 'u', after: rowOf(1, 1) }),
      created({ ...rowOf(1, 1), analysisId: 7 }),
      created({ ...rowOf(1, 1), generation: '1' }),
      created({ ...rowOf(1, 1), type: 'other' }),
      created({ ...rowOf(1, 1), version: undefined }),
      created({ ...rowOf(1, 1), version: -1 }),
      created({ ...rowOf(1, 1), windowStart: 'yesterday' }),
      created({ ...rowOf(1, 1), windowEnd: 12 }),
      created({ ...rowOf(1, 1), windowStart: '2026-13-45T99:00:00Z' }),
      // fields must be the text of a JSON object
      created({ ...rowOf(1, 1), fields: undefined }),
      created({ ...rowOf(1, 1), fields: '{"evaluations":1' }),
      created({ ...rowOf(1, 1), fields: '[1]' }),
      created({ ...rowOf(1, 1), fields: 'null' }),
      created({ ...rowOf(1, 1), fields: '"text"' }),
      created({ ...rowOf(1, 1), fields: { evaluations: 1 } }),
      created({ analysisId: A, generation: 1, type: 'row', windowStart: '2026-11-26T04:00:00Z', windowEnd: '2026-11-26T04:00:10Z', flagKey: 'x', evaluations: 1, version: 1 }),
      created({ ...progressOf('s0', 'soon') }),
      created({ ...progressOf('', '2026-11-26T04:00:10Z') }),
      created({ analysisId: A, generation: 1, type: 'late', bucketStart: '2026-11-26T04:00Z', lateEvents: 1.5 }),
    ];
    for (const text of garbage) expect(parseResultRecord(text)).toMatchObject({ type: 'malformed' });
  });
});

/** A Kinesis client serving fixed records per shard, with sequence numbers "<shard>-<n>" (n from 1). */
class FakeKinesis {
  readonly iteratorRequests: Record<string, unknown>[] = [];
  constructor(private readonly shards: Record<string, string[]>) {}

  async send(command: unknown): Promise<unknown> {
    if (command instanceof GetShardIteratorCommand) {
      const input = command.input;
      this.iteratorRequests.push({ ...input });
      const after = input.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER' ? Number(input.StartingSequenceNumber!.split('-').pop()) : 0;
      return { ShardIterator: `${input.ShardId}|${after}` };
    }
    if (command instanceof GetRecordsCommand) {
      const [shard, position] = command.input.ShardIterator!.split('|');
      const data = this.shards[shard].slice(Number(position));
      const records = data.map((text, i) => ({ SequenceNumber: `${shard}-${Number(position) + i + 1}`, Data: Buffer.from(text) }));
      return { Records: records, NextShardIterator: `${shard}|${Number(position) + data.length}`, MillisBehindLatest: 0 };
    }
    throw new Error(`unexpected command ${(command as object).constructor.name}`);
  }
}

describe('ResultsIngestor', () => {
  let dir: string;
  let db: Db;
  let config: Config;
  let metrics: MetricsService;
  let eventShards: Shard[];
  let warnings: jest.SpyInstance;

  const ingestor = (kinesis: FakeKinesis) => {
    const stream = {
      client: kinesis,
      listShards: async (name: string) => (name === config.resultsStream ? ['r0', 'r1'].map((ShardId) => ({ ShardId })) : eventShards),
    } as unknown as StreamService;
    return new ResultsIngestor(config, db, new SqliteResultsRepository(db, config), stream, metrics);
  };
  const rows = () =>
    db.prepare('SELECT row, generation, version FROM results ORDER BY window_start, dims').all() as { row: string; generation: number; version: number }[];
  const analysis = () => db.prepare('SELECT progress_at, late_events, last_result_at FROM analyses WHERE id = ?').get(A) as Record<string, unknown>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-ingestor-'));
    db = openDatabase(dir);
    config = loadConfig({ FLAGSTREAM_DATA_DIR: dir });
    metrics = new MetricsService();
    warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    eventShards = [
      { ShardId: 'e0', HashKeyRange: undefined, SequenceNumberRange: { StartingSequenceNumber: '1', EndingSequenceNumber: '9' } },
      { ShardId: 'e1', HashKeyRange: undefined, SequenceNumberRange: { StartingSequenceNumber: '10' } },
      { ShardId: 'e2', HashKeyRange: undefined, SequenceNumberRange: { StartingSequenceNumber: '10' } },
    ];
    db.prepare(`INSERT INTO tenants (id, key, name, api_key_hash, created_at) VALUES ('t1', 't1', 't1', 'h', '')`).run();
    db.prepare(
      `INSERT INTO analyses (id, tenant_id, name, kind, params, status, desired_state, status_changed_at, sql, created_at, updated_at, generation)
       VALUES (?, 't1', 'n', 'flag-evaluations', '{}', 'RUNNING', 'RUNNING', '', '', '', '', 2)`,
    ).run(A);
  });

  afterEach(() => {
    warnings.mockRestore();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores what the current generation wrote and skips the rest, counting why', async () => {
    const kinesis = new FakeKinesis({
      r0: [
        created(rowOf(9, 9)), // generation 1: a replaced job's row still on the stream
        created(rowOf(2, 2, { generation: 2 })),
        retracted(rowOf(2, 2, { generation: 2 })),
        created(rowOf(4, 4, { generation: 2 })),
        '{"garbage', // never stops the ingestor
        created(rowOf(3, 3, { generation: 2 })), // reordered: older than the stored one
        created({ analysisId: A, generation: 2, type: 'late', bucketStart: '2026-11-26T05:00:00Z', lateEvents: 2 }),
      ],
      r1: [
        created(progressOf('e0', '2026-11-26T04:09:00Z', 2)), // a closed shard
        created(progressOf('e1', '2026-11-26T04:00:17Z', 2)),
        created(progressOf('e2', '2026-11-26T04:00:30Z', 2)),
        created({ analysisId: A, generation: 2, type: 'late', bucketStart: '2026-11-26T05:01:00Z', lateEvents: 5 }),
      ],
    });
    const reader = ingestor(kinesis);
    expect(await reader.pollOnce()).toBe(2);
    expect(rows().map((r) => [JSON.parse(r.row).evaluations, r.generation, r.version])).toEqual([[4, 2, 4]]);
    // Progress is read but believed only PROGRESS_LAG_MS later: a row it covers may still be in the job's sink buffer.
    expect(analysis().progress_at).toBeNull();
    reader.progressLagMs = 0;
    expect(await reader.pollOnce()).toBe(0);
    expect(JSON.parse(rows()[0].row)).toEqual({
      windowStart: '2026-11-26T04:00:00.000Z',
      windowEnd: '2026-11-26T04:00:10.000Z',
      flagKey: 'checkout',
      variation: 1,
      evaluations: 4,
    });
    expect(analysis()).toMatchObject({ progress_at: '2026-11-26T04:00:17.000Z', late_events: 7, last_result_at: expect.any(String) });
    const text = await metrics.render();
    expect(text).toContain('flagstream_result_rows_stored_total 2');
    for (const reason of ['stale-generation', 'retraction', 'malformed', 'outdated']) {
      expect(text).toContain(`flagstream_result_records_skipped_total{reason="${reason}"} 1`);
    }
  });

  it('warns about malformed records at most once a minute, and reads on past them', async () => {
    const kinesis = new FakeKinesis({ r0: ['{', '[]', created({ ...rowOf(1, 1), type: 'nope' }), created(rowOf(1, 1, { generation: 2 }))], r1: ['x'] });
    expect(await ingestor(kinesis).pollOnce()).toBe(1);
    expect(warnings).toHaveBeenCalledTimes(1);
    expect(await metrics.render()).toContain('flagstream_result_records_skipped_total{reason="malformed"} 4');
    expect(db.prepare('SELECT sequence_number FROM stream_checkpoints WHERE shard_id = ?').get('r1')).toEqual({ sequence_number: 'r1-1' });
  });

  it('keeps a checkpoint per results shard and goes on from it after a restart', async () => {
    const records = {
      r0: [created(rowOf(1, 1, { generation: 2 })), created(rowOf(2, 2, { generation: 2 }))],
      r1: [created(rowOf(5, 5, { generation: 2 }, { flagKey: 'other' }))],
    };
    const first = new FakeKinesis(records);
    await ingestor(first).pollOnce();
    expect(first.iteratorRequests.map((r) => [r.ShardId, r.ShardIteratorType])).toEqual([
      ['r0', 'TRIM_HORIZON'],
      ['r1', 'TRIM_HORIZON'],
    ]);
    expect(db.prepare('SELECT shard_id, sequence_number FROM stream_checkpoints WHERE stream = ? ORDER BY shard_id').all(config.resultsStream)).toEqual([
      { shard_id: 'r0', sequence_number: 'r0-2' },
      { shard_id: 'r1', sequence_number: 'r1-1' },
    ]);

    records.r1.push(created(rowOf(6, 6, { generation: 2 }, { flagKey: 'other' })));
    const restarted = new FakeKinesis(records);
    expect(await ingestor(restarted).pollOnce()).toBe(1);
    expect(restarted.iteratorRequests.map((r) => [r.ShardId, r.ShardIteratorType, r.StartingSequenceNumber])).toEqual([
      ['r0', 'AFTER_SEQUENCE_NUMBER', 'r0-2'],
      ['r1', 'AFTER_SEQUENCE_NUMBER', 'r1-1'],
    ]);
    expect(rows().map((r) => JSON.parse(r.row).evaluations)).toEqual([2, 6]);
  });

  it('stores per-shard progress but leaves the analysis progress alone while the events shards cannot be listed', async () => {
    db.prepare(`UPDATE analyses SET progress_at = '2026-11-26T04:00:00.000Z' WHERE id = ?`).run(A);
    const kinesis = new FakeKinesis({ r0: [created(progressOf('e1', '2026-11-26T04:00:17Z', 2))], r1: [] });
    const failing = ingestor(kinesis);
    failing.progressLagMs = 0;
    (failing as unknown as { stream: { listShards: unknown } }).stream.listShards = async (name: string) => {
      if (name === config.resultsStream) return [{ ShardId: 'r0' }, { ShardId: 'r1' }];
      throw new Error('throttled');
    };
    await failing.pollOnce();
    expect(analysis().progress_at).toBe('2026-11-26T04:00:00.000Z');
    expect(db.prepare('SELECT shard, progress_at FROM result_progress').all()).toEqual([{ shard: 'e1', progress_at: '2026-11-26T04:00:17.000Z' }]);
  });
});
