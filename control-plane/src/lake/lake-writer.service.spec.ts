import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ExpiredIteratorException, GetRecordsCommand, GetShardIteratorCommand, type Shard } from '@aws-sdk/client-kinesis';
import { Logger } from '@nestjs/common';
import { Config, loadConfig } from '../config/config';
import { MetricsService } from '../metrics/metrics.service';
import { Db, openDatabase } from '../store/database';
import type { StreamService } from '../stream/kinesis';
import { LakeFiles } from './lake-files';
import { listLakeFiles, readLakeLines } from './lake-files';
import { LAKE_FILE_EXTENSION, LAKE_FILE_PREFIX, LakeWriter } from './lake-writer.service';

const HOUR = 3600_000;
/** 2026-11-26T04:59:59.999Z and the next hour: two partitions a millisecond apart. */
const T0 = Date.UTC(2026, 10, 26, 4, 59, 59, 999);
const T1 = T0 + 1;

/** A stream record as the events API writes it (control-plane/src/events/event-record.ts). */
const event = (tenant: string, payloadId: string, eventIndex: number, receivedAt: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    kind: 'custom', key: 'checkout', creationDate: receivedAt - 5, contextKeys: { user: 'u1' },
    tenant, environment: 'production', payloadId, eventIndex, receivedAt, sdkTime: receivedAt - 5, eventTime: receivedAt - 5, late: false, contextKey: 'u1', ...extra,
  });
const heartbeat = (shard: string, at: number) => JSON.stringify({ kind: 'heartbeat', tenant: '', shard, eventTime: at });

/**
 * A Kinesis client over fixed, growing record lists per shard, with sequence numbers "<shard>-<n>"
 * (n from 1). A shard marked closed ends (no next iterator) once it is read to its end.
 */
class FakeKinesis {
  readonly iteratorRequests: Record<string, unknown>[] = [];
  readonly closed = new Set<string>();
  expireNext = false;
  constructor(readonly shards: Record<string, string[]>) {}

  async send(command: unknown): Promise<unknown> {
    if (command instanceof GetShardIteratorCommand) {
      const input = command.input;
      this.iteratorRequests.push({ ...input });
      const after = input.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER' ? Number(input.StartingSequenceNumber!.split('-').pop()) : 0;
      return { ShardIterator: `${input.ShardId}|${after}` };
    }
    if (command instanceof GetRecordsCommand) {
      if (this.expireNext) {
        this.expireNext = false;
        throw new ExpiredIteratorException({ message: 'Iterator expired', $metadata: {} });
      }
      const [shard, position] = command.input.ShardIterator!.split('|');
      const data = this.shards[shard].slice(Number(position));
      const records = data.map((text, i) => ({ SequenceNumber: `${shard}-${Number(position) + i + 1}`, Data: Buffer.from(text) }));
      const end = Number(position) + data.length;
      return { Records: records, NextShardIterator: this.closed.has(shard) ? undefined : `${shard}|${end}`, MillisBehindLatest: 0 };
    }
    throw new Error(`unexpected command ${(command as object).constructor.name}`);
  }
}

describe('LakeWriter', () => {
  let dir: string;
  let db: Db;
  let config: Config;
  let metrics: MetricsService;
  let kinesis: FakeKinesis;
  let oldestHeld = 0;

  const writer = () => {
    const stream = {
      client: kinesis,
      listShards: async () => Object.keys(kinesis.shards).map((ShardId) => ({ ShardId }) as Shard),
      oldestHeld: async () => new Date(oldestHeld),
    } as unknown as StreamService;
    return new LakeWriter(config, db, stream, metrics);
  };

  /** Every lake file on disk (also ones the manifest does not hold), by path below the lake's root. */
  const filesOnDisk = (): string[] => {
    const out: string[] = [];
    const walk = (at: string) => {
      if (!existsSync(at)) return;
      for (const name of readdirSync(at)) {
        const path = join(at, name);
        if (statSync(path).isDirectory()) walk(path);
        else out.push(relative(config.lakeDir, path).split(sep).join('/'));
      }
    };
    walk(config.lakeDir);
    return out.sort();
  };
  const linesOf = (path: string) => {
    const text = gunzipSync(readFileSync(join(config.lakeDir, path))).toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    return text.slice(0, -1).split('\n');
  };
  /** Every line on disk, parsed. */
  const allRecords = () => filesOnDisk().flatMap((path) => linesOf(path).map((line) => JSON.parse(line)));
  const keysOf = (records: { payloadId: string; eventIndex: number }[]) => records.map((r) => `${r.payloadId}/${r.eventIndex}`).sort();
  const checkpoints = () =>
    db.prepare("SELECT shard_id, sequence_number FROM stream_checkpoints WHERE stream = 'lake:flagstream-events' ORDER BY shard_id").all();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-lake-'));
    db = openDatabase(dir);
    config = loadConfig({ FLAGSTREAM_DATA_DIR: dir });
    metrics = new MetricsService();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'verbose').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    db.close();
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes GZIP JSON lines per tenant, date and hour of receivedAt, leaving heartbeats and non-events out', async () => {
    const lines = {
      s0: [event('acme', 'p1#a', 0, T0), heartbeat('s0', T0), event('acme', 'p1#a', 1, T1), '{"garbage', event('globex', 'p2#b', 0, T1)],
      s1: [heartbeat('s1', T0), event('acme', 'p3#c', 4, T1), JSON.stringify({ tenant: 'acme', kind: 'custom' })],
    };
    kinesis = new FakeKinesis(lines);
    const lake = writer();
    expect(await lake.pollOnce()).toBe(4);
    expect(filesOnDisk()).toEqual([]); // nothing before the flush
    expect(await lake.flush()).toBe(true);

    const files = filesOnDisk();
    expect(files).toHaveLength(3);
    const name = new RegExp(`^[^/]+/[^/]+/[^/]+/${LAKE_FILE_PREFIX}\\d{4}-\\d{2}-\\d{2}-\\d{2}-\\d{2}-\\d{2}-[0-9a-f]{16}\\${LAKE_FILE_EXTENSION}$`);
    for (const file of files) expect(file).toMatch(name);
    const dirs = files.map((f) => f.split('/').slice(0, 3).join('/'));
    expect(dirs).toEqual(['tenant=acme/dt=2026-11-26/hour=04', 'tenant=acme/dt=2026-11-26/hour=05', 'tenant=globex/dt=2026-11-26/hour=05']);
    // Each line is the stream record's JSON exactly as it was written, in stream order per shard.
    expect(linesOf(files[0])).toEqual([lines.s0[0]]);
    expect(linesOf(files[1]).sort()).toEqual([lines.s0[2], lines.s1[1]].sort());
    expect(linesOf(files[2])).toEqual([lines.s0[4]]);
    // The file name carries the time of its first record, as Firehose's carry theirs.
    expect(files[0]).toContain(`${LAKE_FILE_PREFIX}2026-11-26-04-59-59-`);

    // The positions moved with the files, heartbeats and garbage included.
    expect(checkpoints()).toEqual([{ shard_id: 's0', sequence_number: 's0-5' }, { shard_id: 's1', sequence_number: 's1-3' }]);
    const text = await metrics.render();
    expect(text).toContain('flagstream_lake_records_written_total 4');
    expect(text).toContain('flagstream_lake_files_written_total 3');
    expect(text).toMatch(/flagstream_lake_lag_seconds \d/);

    // The read side: the manifest's files of a tenant from an hour on, and their lines.
    expect(listLakeFiles(db, 'acme', T0).map((f) => f.path)).toEqual(files.slice(0, 2));
    expect(listLakeFiles(db, 'acme', T1).map((f) => f.path)).toEqual([files[1]]);
    expect(listLakeFiles(db, 'acme', T1 + HOUR)).toEqual([]);
    expect(listLakeFiles(db, 'globex', 0)).toMatchObject([{ path: files[2], tenant: 'globex', hourStart: T1, records: 1, minReceivedAt: T1, maxReceivedAt: T1 }]);
    const read: string[] = [];
    for await (const line of readLakeLines(join(config.lakeDir, files[1]))) read.push(line);
    expect(read).toEqual(linesOf(files[1]));
  });

  it('lands a record the stream delivers twice once, in the same read and in a later one', async () => {
    const first = event('acme', 'p1#a', 0, T1);
    kinesis = new FakeKinesis({ s0: [first, first, event('acme', 'p1#a', 1, T1)], s1: [first] });
    const lake = writer();
    await lake.pollOnce();
    await lake.flush();
    // Copied again after the commit (the events API retried a write whose answer it lost).
    kinesis.shards.s1.push(first, event('acme', 'p1#a', 1, T1));
    await lake.pollOnce();
    await lake.flush();
    expect(keysOf(allRecords())).toEqual(['p1#a/0', 'p1#a/1']);
    expect(await metrics.render()).toContain('flagstream_lake_duplicates_skipped_total 4');
    // The same payload and index in another environment or tenant is another event.
    kinesis.shards.s0.push(event('acme', 'p1#a', 0, T1, { environment: 'staging' }), event('globex', 'p1#a', 0, T1));
    await lake.pollOnce();
    await lake.flush();
    expect(allRecords()).toHaveLength(4);
  });

  it('after a crash between rename and commit, deletes the uncommitted files and writes their records once', async () => {
    kinesis = new FakeKinesis({ s0: [event('acme', 'p1#a', 0, T0), event('acme', 'p1#a', 1, T1)], s1: [event('globex', 'p2#b', 0, T1)] });
    const crashed = writer();
    await crashed.pollOnce();
    // The process dies right after the renames: no commit, no clean-up.
    const internals = crashed as unknown as { commit: () => void; discard: () => Promise<void> };
    jest.spyOn(internals, 'commit').mockImplementation(() => {
      throw new Error('killed');
    });
    jest.spyOn(internals, 'discard').mockResolvedValue(undefined);
    expect(await crashed.flush()).toBe(false);
    const orphans = filesOnDisk();
    expect(orphans).toHaveLength(3);
    expect(db.prepare('SELECT COUNT(*) AS n FROM lake_files').get()).toEqual({ n: 0 });
    expect(checkpoints()).toEqual([]);

    // More records arrive while it is down: the restarted writer's files hold other keys.
    kinesis.shards.s0.push(event('acme', 'p1#a', 2, T1));
    const restarted = writer();
    expect(await restarted.recover()).toBe(3);
    expect(filesOnDisk()).toEqual([]);
    await restarted.pollOnce();
    await restarted.flush();
    expect(keysOf(allRecords())).toEqual(['p1#a/0', 'p1#a/1', 'p1#a/2', 'p2#b/0']);
    // Everything on disk is in the manifest, and nothing is pending.
    expect((db.prepare('SELECT path FROM lake_files ORDER BY path').all() as { path: string }[]).map((r) => r.path)).toEqual(filesOnDisk());
    expect(db.prepare('SELECT COUNT(*) AS n FROM lake_pending_files').get()).toEqual({ n: 0 });
  });

  it('after a restart, reads on from its checkpoints without writing anything again', async () => {
    kinesis = new FakeKinesis({ s0: [event('acme', 'p1#a', 0, T1), heartbeat('s0', T1)], s1: [event('acme', 'p1#a', 1, T1)] });
    const first = writer();
    await first.pollOnce();
    await first.onApplicationShutdown(); // a stop's final flush
    expect(filesOnDisk()).toHaveLength(1);

    kinesis.shards.s0.push(event('acme', 'p1#a', 2, T1));
    kinesis.iteratorRequests.length = 0;
    const second = writer();
    expect(await second.pollOnce()).toBe(1);
    expect(kinesis.iteratorRequests.map((r) => [r.ShardId, r.ShardIteratorType, r.StartingSequenceNumber])).toEqual([
      ['s0', 'AFTER_SEQUENCE_NUMBER', 's0-2'],
      ['s1', 'AFTER_SEQUENCE_NUMBER', 's1-1'],
    ]);
    await second.flush();
    expect(filesOnDisk()).toHaveLength(2);
    expect(keysOf(allRecords())).toEqual(['p1#a/0', 'p1#a/1', 'p1#a/2']);
  });

  it('keeps what it read and its positions when a write fails, and writes it all on the next flush', async () => {
    kinesis = new FakeKinesis({ s0: [event('acme', 'p1#a', 0, T1), event('globex', 'p2#b', 0, T1)] });
    const lake = writer();
    await lake.pollOnce();
    // The lake directory cannot be written: its root is a read-only directory.
    mkdirSync(config.lakeDir, { recursive: true });
    chmodSync(config.lakeDir, 0o500);
    const writable = (() => {
      try {
        writeFileSync(join(config.lakeDir, 'probe'), '');
        return true; // running as root: permissions do not stop it, so use a file where a directory should be
      } catch {
        return false;
      }
    })();
    if (writable) {
      chmodSync(config.lakeDir, 0o700);
      rmSync(config.lakeDir, { recursive: true });
      writeFileSync(config.lakeDir, 'not a directory');
    }
    expect(await lake.flush()).toBe(false);
    expect(checkpoints()).toEqual([]);
    expect(db.prepare('SELECT COUNT(*) AS n FROM lake_files').get()).toEqual({ n: 0 });
    expect(await metrics.render()).toContain('flagstream_lake_flush_failures_total 1');

    kinesis.shards.s0.push(event('acme', 'p1#a', 1, T1));
    await lake.pollOnce();
    if (writable) rmSync(config.lakeDir);
    else chmodSync(config.lakeDir, 0o700);
    expect(await lake.flush()).toBe(true);
    expect(keysOf(allRecords())).toEqual(['p1#a/0', 'p1#a/1', 'p2#b/0']);
    expect(checkpoints()).toEqual([{ shard_id: 's0', sequence_number: 's0-3' }]);
  });

  it('goes on after an expired iterator from the last record read, and stops reading a closed shard at its end', async () => {
    kinesis = new FakeKinesis({ s0: [event('acme', 'p1#a', 0, T1)], s1: [event('acme', 'p1#a', 1, T1)] });
    kinesis.closed.add('s1');
    const lake = writer();
    await lake.pollOnce();
    kinesis.expireNext = true;
    kinesis.shards.s0.push(event('acme', 'p1#a', 2, T1));
    await lake.pollOnce(); // s0's iterator expired: a new one next pass
    await lake.pollOnce();
    expect(kinesis.iteratorRequests.map((r) => [r.ShardId, r.ShardIteratorType, r.StartingSequenceNumber])).toEqual([
      ['s0', 'TRIM_HORIZON', undefined],
      ['s1', 'TRIM_HORIZON', undefined],
      ['s0', 'AFTER_SEQUENCE_NUMBER', 's0-1'], // not the (empty) checkpoint: what is buffered stays buffered
    ]);
    await lake.flush();
    expect(keysOf(allRecords())).toEqual(['p1#a/0', 'p1#a/1', 'p1#a/2']);
  });

  it('records, when it first reads the stream, that the lake holds everything from what the stream held then; never again', async () => {
    const coverage = () => new LakeFiles(config, db).coveredFrom();
    kinesis = new FakeKinesis({ s0: [event('acme', 'p1#a', 0, T1)] });
    oldestHeld = T1 - 3600_000;
    const first = writer();
    await first.onApplicationBootstrap();
    await first.onApplicationShutdown();
    expect(coverage()).toEqual(new Date(T1 - 3600_000));
    oldestHeld = T1; // later the stream holds less (or another, newer stream is read): the lake still holds what it had
    const second = writer();
    await second.onApplicationBootstrap();
    await second.onApplicationShutdown();
    expect(coverage()).toEqual(new Date(T1 - 3600_000));
    expect(new LakeFiles(loadConfig({ FLAGSTREAM_DATA_DIR: dir, FLAGSTREAM_LAKE: 'off' }), db).coveredFrom()).toBeUndefined();
  });

  it('reads nothing with FLAGSTREAM_LAKE=off', async () => {
    config = loadConfig({ FLAGSTREAM_DATA_DIR: dir, FLAGSTREAM_LAKE: 'off' });
    kinesis = new FakeKinesis({ s0: [event('acme', 'p1#a', 0, T1)] });
    const lake = writer();
    await lake.onApplicationBootstrap();
    await new Promise((r) => setTimeout(r, 50));
    await lake.onApplicationShutdown();
    expect(kinesis.iteratorRequests).toEqual([]);
    expect(filesOnDisk()).toEqual([]);
  });

  it('forgets keys once no copy can come any more: FLAGSTREAM_STREAM_RETENTION_HOURS + 2 h and a margin before what it has read', async () => {
    const now = Date.now();
    const window = 26 * HOUR + 10 * 60_000;
    const old = event('acme', 'old#a', 0, now - window - HOUR);
    const recent = event('acme', 'recent#a', 0, now - window + HOUR);
    kinesis = new FakeKinesis({ s0: [old, recent] });
    const lake = writer();
    expect(lake.dedupWindowMs).toBe(window);
    await lake.pollOnce();
    await lake.flush();
    expect(db.prepare('SELECT received_at FROM lake_keys').all()).toEqual([{ received_at: JSON.parse(recent).receivedAt }]);
    // A longer lateness horizon keeps them longer.
    config = loadConfig({ FLAGSTREAM_DATA_DIR: dir, FLAGSTREAM_LATENESS_HORIZON: '3d' });
    expect(writer().dedupWindowMs).toBe(3 * 24 * HOUR + 10 * 60_000);
  });
});
