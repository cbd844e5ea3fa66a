import { createHash } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ExpiredIteratorException, GetRecordsCommand, GetShardIteratorCommand, ResourceNotFoundException, _Record } from '@aws-sdk/client-kinesis';
import { CONFIG, Config } from '../config/config';
import { MetricsService } from '../metrics/metrics.service';
import { DATABASE, Db } from '../store/database';
import { StreamService } from '../stream/kinesis';
import { hourStartOf } from './lake-files';
import { LakeRecord, partitionPath, toLakeRecords } from './lake-record';

const gzipAsync = promisify(gzip);

/** Firehose's object names start with the delivery stream's name; the local lake's with this. */
export const LAKE_FILE_PREFIX = 'flagstream-lake-';
/** Firehose's `fileExtension` in cdk/lib/lake.ts: GZIP JSON lines. */
export const LAKE_FILE_EXTENSION = '.json.gz';
/** A flush comes early once this much is buffered; reading pauses while a failing flush keeps it there. */
export const MAX_BUFFER_BYTES = 8 * 1024 * 1024;
/** How long a stop waits for a read in flight before its last commit. */
const SHUTDOWN_WAIT_MS = 3000;
/** How often the events stream is read (at most; never more often than the flush). */
const POLL_MS = 1000;
/** GetRecords calls per shard and pass while the shard is behind, and records per call (Kinesis' maximum). */
const PAGES_PER_PASS = 20;
const RECORDS_PER_CALL = 10_000;
const HOUR_MS = 3600_000;
/**
 * How long after its `receivedAt` the stream can carry another copy of an event: the events API
 * writes a payload's events again only while its ledger remembers the payload (a retry of the
 * same X-LaunchDarkly-Payload-ID stamps the first try's `receivedAt`): FLAGSTREAM_STREAM_RETENTION_HOURS
 * + 1 h, forgotten by an hourly sweep, so up to one hour more (EventsService.forgetOldPayloads).
 * A retry after that is a new payload with a new `receivedAt`.
 */
const LEDGER_SLACK_MS = 2 * HOUR_MS;
/** Clock skew between the stream's arrival times and ours, the write deadline, and the like. */
const DEDUP_MARGIN_MS = 10 * 60_000;
const PRUNE_EVERY_MS = 60_000;

/** A partition's lines read since the last commit. */
interface PartitionBuffer {
  partition: LakeRecord['partition'];
  lines: string[];
  /** 16-byte hashes of the lines' keys (lake-record.ts), in line order. */
  keys: Buffer[];
  receivedAts: number[];
  minReceivedAt: number;
  maxReceivedAt: number;
  bytes: number;
}

interface ShardState {
  iterator?: string;
  /** Sequence number of the last record read; committed with the files that hold what it read. */
  position?: string;
  committed?: string;
  /** Every record that arrived on the shard before this time (ms) has been read (GetRecords' MillisBehindLatest). */
  readThrough?: number;
  /** A closed shard (after a reshard) read to its end. */
  finished: boolean;
}

/** A file of one flush: where it goes and what it holds. */
interface PlannedFile {
  path: string;
  buffer: PartitionBuffer;
  /** Compressed size, once written. */
  size?: number;
}

/**
 * The local data lake (CONTRACT §9): reads the events stream, runs every record through the
 * one transform the AWS Lambda runs (`toLakeRecords`: a line per event, also of records that
 * pack many in the KPL aggregated format), and writes what Firehose writes in the
 * CDK app: GZIP JSON lines under `<lake dir>/tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/`.
 *
 * Every event lands once, also across a crash: what it read stays in memory until a flush
 * writes each partition's lines to a file (temp file, fsync, rename) and then, in ONE store
 * transaction, records the files (the manifest), the keys they hold and the new stream
 * positions. A crash before that commit leaves files the manifest does not know: they were
 * noted as pending before the rename and are deleted at the next start, whose reading starts
 * again from the old positions. An event the stream delivers twice (the events API's retry of
 * a write whose outcome it did not learn) has a key the store already holds, and is skipped:
 * keys are per event, not per stream record.
 */
@Injectable()
export class LakeWriter implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Lake');
  private readonly shards = new Map<string, ShardState>();
  private readonly buffers = new Map<string, PartitionBuffer>();
  /** Keys (hex of their hash) buffered and not committed yet: a copy read before the commit. */
  private readonly bufferedKeys = new Set<string>();
  private bufferedBytes = 0;
  private bufferedRecords = 0;
  private checkpointsLoaded = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private running?: Promise<void>;
  private flushing?: Promise<boolean>;
  private lastFlushAt = Date.now();
  private lastPruneAt = -Infinity;
  private pollFailing = false;
  private flushFailing = false;
  /** readThrough of every open shard at the last commit: no copy of an event received long before it can still come. */
  private committedReadThrough?: number;
  /** The newest `receivedAt` written (for the lag metric). */
  private newestWritten?: number;
  /** Shard ids of the last listing (the shards that count for readThrough). */
  private listed: string[] = [];
  private keyStored?: ReturnType<Db['prepare']>;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(DATABASE) private readonly db: Db,
    private readonly stream: StreamService,
    private readonly metrics: MetricsService,
  ) {
    metrics.gauge('flagstream_lake_lag_seconds', () =>
      this.newestWritten === undefined ? [] : [{ labels: {}, value: Math.max(0, (Date.now() - this.newestWritten) / 1000) }],
    );
    metrics.gauge('flagstream_lake_buffered_records', () => [{ labels: {}, value: this.bufferedRecords }]);
  }

  /** Stream checkpoints of the lake, apart from the results ingestor's (which keys them by the results stream's name). */
  get checkpointStream(): string {
    return `lake:${this.config.eventsStream}`;
  }

  /** How long a key is kept (see LEDGER_SLACK_MS): at least the lateness horizon. */
  get dedupWindowMs(): number {
    return Math.max(this.config.streamRetentionHours * HOUR_MS + LEDGER_SLACK_MS, this.config.latenessHorizonSeconds * 1000) + DEDUP_MARGIN_MS;
  }

  async onApplicationBootstrap() {
    if (!this.config.lakeEnabled) {
      this.logger.log('the local lake writer is off (FLAGSTREAM_LAKE=off)');
      return;
    }
    await this.recover().catch((error: Error) => this.logger.warn(`could not look for uncommitted lake files (tried again at the first flush): ${error.message}`));
    await this.recordCoverage().catch((error: Error) => this.logger.warn(`could not record since when the lake holds every event: ${error.message}`));
    const tick = async () => {
      if (this.stopped) return;
      this.running = this.tick();
      await this.running;
      if (!this.stopped) this.timer = setTimeout(() => void tick(), Math.min(POLL_MS, this.config.lakeFlushMs));
    };
    void tick();
  }

  /**
   * The first time the writer reads the stream (no position yet) it starts at the stream's
   * oldest record: from then on the lake holds every event the stream held, and a replay may
   * reach back that far (LakeFiles.coveredFrom). Kept for good: later streams add to it.
   */
  private async recordCoverage(): Promise<void> {
    const known = this.db.prepare('SELECT 1 FROM lake_coverage WHERE id = 1').get();
    const started = this.db.prepare('SELECT 1 FROM stream_checkpoints WHERE stream = ? LIMIT 1').get(this.checkpointStream);
    if (known || started) return;
    const from = await this.stream.oldestHeld(this.config.eventsStream);
    this.db.prepare('INSERT OR IGNORE INTO lake_coverage (id, covered_from) VALUES (1, ?)').run(from.getTime());
  }

  async onApplicationShutdown() {
    if (!this.config.lakeEnabled || this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // A read in flight when the stream client closed may never settle: wait a little, not forever
    // (what it read is not committed, and is read again after the restart).
    await Promise.race([this.running, new Promise((resolve) => setTimeout(resolve, SHUTDOWN_WAIT_MS).unref())]);
    // The stream client may be gone by now (StreamService closes it first); the store and the disk are not.
    await this.flush();
  }

  /** One pass: read, and commit when due. Never throws. */
  async tick(): Promise<void> {
    try {
      if (this.bufferedBytes < MAX_BUFFER_BYTES) await this.pollOnce();
      // A full buffer commits at once, unless committing fails: then every FLAGSTREAM_LAKE_FLUSH_MS, like any retry.
      const full = this.bufferedBytes >= MAX_BUFFER_BYTES && !this.flushFailing;
      if (full || Date.now() - this.lastFlushAt >= this.config.lakeFlushMs) await this.flush();
    } catch (error) {
      // The store itself failed (reading checkpoints or the manifest): nothing moved, the next pass tries again.
      this.logger.warn(`lake pass failed (tried again in ${POLL_MS} ms): ${(error as Error).message}`);
    }
  }

  /**
   * Deletes what a crash (or a failed flush) left: files noted as pending that the manifest does
   * not hold, and their temp files. Their records are read again from the committed positions.
   */
  async recover(): Promise<number> {
    const pending = this.db.prepare('SELECT path FROM lake_pending_files').all() as { path: string }[];
    const inManifest = this.db.prepare('SELECT 1 FROM lake_files WHERE path = ?');
    const done = this.db.prepare('DELETE FROM lake_pending_files WHERE path = ?');
    let deleted = 0;
    for (const { path } of pending) {
      try {
        if (!inManifest.get(path)) {
          const absolute = join(this.config.lakeDir, path);
          if (await removeIfPresent(absolute)) deleted++;
          await removeIfPresent(tempPathOf(absolute));
        }
        done.run(path);
      } catch (error) {
        this.logger.warn(`could not delete the uncommitted lake file ${path} (tried again at the next flush): ${(error as Error).message}`);
      }
    }
    if (deleted) this.logger.log(`deleted ${deleted} lake file(s) written but never committed (a crash or a failed flush); their records are written again`);
    return deleted;
  }

  /** Reads every shard once (up to PAGES_PER_PASS pages while it is behind); returns the number of lake records buffered. */
  async pollOnce(): Promise<number> {
    this.loadCheckpoints();
    let taken = 0;
    try {
      const shards = await this.stream.listShards(this.config.eventsStream, 30_000);
      this.listed = shards.map((s) => s.ShardId!);
    } catch (error) {
      this.pollFailed(`listing the shards of ${this.config.eventsStream}`, error);
      return 0;
    }
    let failed = false;
    for (const shardId of this.listed) {
      if (this.bufferedBytes >= MAX_BUFFER_BYTES) break;
      try {
        taken += await this.pollShard(shardId);
      } catch (error) {
        failed = true;
        this.pollFailed(`reading shard ${shardId} of ${this.config.eventsStream}`, error);
      }
    }
    if (!failed && this.pollFailing) {
      this.pollFailing = false;
      this.logger.log(`reading ${this.config.eventsStream} works again`);
    }
    return taken;
  }

  private async pollShard(shardId: string): Promise<number> {
    const state = this.shard(shardId);
    if (state.finished) return 0;
    const client = this.stream.client;
    if (!state.iterator) {
      const after = state.position ?? state.committed;
      const out = await client.send(
        new GetShardIteratorCommand({
          StreamName: this.config.eventsStream,
          ShardId: shardId,
          ...(after ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after } : { ShardIteratorType: 'TRIM_HORIZON' }),
        }),
      );
      state.iterator = out.ShardIterator;
    }
    let taken = 0;
    for (let page = 0; state.iterator && page < PAGES_PER_PASS && this.bufferedBytes < MAX_BUFFER_BYTES; page++) {
      const calledAt = Date.now();
      let out;
      try {
        out = await client.send(new GetRecordsCommand({ ShardIterator: state.iterator, Limit: RECORDS_PER_CALL }));
      } catch (error) {
        // A new iterator from the last record read (not the committed one: what is buffered stays).
        if (error instanceof ExpiredIteratorException || error instanceof ResourceNotFoundException) {
          state.iterator = undefined;
          return taken;
        }
        throw error;
      }
      const records = out.Records ?? [];
      for (const record of records) taken += this.take(record);
      if (records.length) state.position = records[records.length - 1].SequenceNumber;
      state.readThrough = calledAt - (out.MillisBehindLatest ?? 0);
      state.iterator = out.NextShardIterator;
      // A closed shard ends with no next iterator: every record of it has been read.
      if (!state.iterator) state.finished = true;
      if (!records.length || !out.MillisBehindLatest) break;
    }
    return taken;
  }

  /**
   * Buffers the lake lines of one stream record (one per event it carries: an aggregated record
   * holds many), each unless it is a copy of an event already taken. All of a record's events
   * are buffered before its sequence number becomes the shard's position, so they are committed
   * together with it.
   */
  private take(record: _Record): number {
    if (!record.Data) return 0;
    let taken = 0;
    // Heartbeats and anything else that is no event record give no line.
    for (const lake of toLakeRecords(record.Data)) taken += this.takeEvent(lake);
    return taken;
  }

  /** Buffers one event's lake line, unless it is a copy of one already taken (by its key). */
  private takeEvent(lake: LakeRecord): number {
    const hash = keyHash(lake.key);
    const hex = hash.toString('hex');
    this.keyStored ??= this.db.prepare('SELECT 1 FROM lake_keys WHERE key_hash = ?');
    if (this.bufferedKeys.has(hex) || this.keyStored.get(hash)) {
      this.metrics.inc('flagstream_lake_duplicates_skipped_total');
      return 0;
    }
    const path = partitionPath(lake.partition);
    let buffer = this.buffers.get(path);
    if (!buffer) {
      buffer = { partition: lake.partition, lines: [], keys: [], receivedAts: [], minReceivedAt: Infinity, maxReceivedAt: -Infinity, bytes: 0 };
      this.buffers.set(path, buffer);
    }
    const bytes = Buffer.byteLength(lake.line) + 1;
    buffer.lines.push(lake.line);
    buffer.keys.push(hash);
    // toLakeRecords checked it is a safe integer; it stays pure and returns only the line.
    const receivedAt = (JSON.parse(lake.line) as { receivedAt: number }).receivedAt;
    buffer.receivedAts.push(receivedAt);
    buffer.minReceivedAt = Math.min(buffer.minReceivedAt, receivedAt);
    buffer.maxReceivedAt = Math.max(buffer.maxReceivedAt, receivedAt);
    buffer.bytes += bytes;
    this.bufferedKeys.add(hex);
    this.bufferedBytes += bytes;
    this.bufferedRecords++;
    return 1;
  }

  /**
   * Commits what was read: each partition's lines to a new file, then the manifest, keys and
   * stream positions in one transaction. On any failure nothing is committed: the files of this
   * flush are deleted, the lines stay buffered and the positions where they were, and the next
   * flush tries again. Resolves true when everything read is committed.
   */
  /** One flush at a time (a stop's last one may come while a pass's is still writing). */
  flush(): Promise<boolean> {
    const next = (this.flushing ?? Promise.resolve(true)).then(() => this.flushOnce());
    this.flushing = next.catch(() => false);
    return next;
  }

  private async flushOnce(): Promise<boolean> {
    this.lastFlushAt = Date.now();
    const moved = [...this.shards.entries()].filter(([, s]) => s.position !== undefined && s.position !== s.committed);
    if (!this.buffers.size && !moved.length) return true;
    await this.recover(); // what a failed flush could not delete
    const planned = this.plan();
    const readThrough = this.openShardsReadThrough();
    const started = Date.now();
    try {
      if (planned.length) {
        const note = this.db.prepare('INSERT OR IGNORE INTO lake_pending_files (path) VALUES (?)');
        this.db.transaction(() => planned.forEach((file) => note.run(file.path)))();
      }
      for (const file of planned) await this.writeFile(file);
      this.commit(planned, moved);
    } catch (error) {
      this.metrics.inc('flagstream_lake_flush_failures_total');
      this.logger.warn(
        `lake flush failed, retried in ${this.config.lakeFlushMs} ms with the ${this.bufferedRecords} record(s) it keeps in memory ` +
          `(stream positions not moved): ${(error as Error).message}`,
      );
      await this.discard(planned);
      this.flushFailing = true;
      return false;
    }
    if (this.flushFailing) this.logger.log('lake flushes work again');
    this.flushFailing = false;

    let records = 0;
    for (const { buffer } of planned) {
      records += buffer.lines.length;
      this.newestWritten = Math.max(this.newestWritten ?? 0, buffer.maxReceivedAt);
    }
    for (const [, state] of moved) state.committed = state.position;
    this.buffers.clear();
    this.bufferedKeys.clear();
    this.bufferedBytes = 0;
    this.bufferedRecords = 0;
    if (readThrough !== undefined) this.committedReadThrough = readThrough;
    if (planned.length) {
      this.metrics.inc('flagstream_lake_records_written_total', records);
      this.metrics.inc('flagstream_lake_files_written_total', planned.length);
      this.logger.verbose(`wrote ${records} record(s) in ${planned.length} file(s) to ${this.config.lakeDir} in ${Date.now() - started} ms`);
    }
    this.prune();
    return true;
  }

  /** One file per buffered partition, named like Firehose's objects: deterministic, and new. */
  private plan(): PlannedFile[] {
    const taken = this.db.prepare('SELECT 1 FROM lake_files WHERE path = ?');
    return [...this.buffers.entries()].map(([partition, buffer]) => {
      const first = new Date(buffer.minReceivedAt).toISOString();
      const stamp = `${first.slice(0, 10)}-${first.slice(11, 13)}-${first.slice(14, 16)}-${first.slice(17, 19)}`;
      const digest = createHash('sha256');
      for (const key of buffer.keys) digest.update(key);
      const base = `${partition}${LAKE_FILE_PREFIX}${stamp}-${digest.digest('hex').slice(0, 16)}`;
      // The keys are new, so the name is too; should a pruned key come back in the very same set, never overwrite.
      let path = `${base}${LAKE_FILE_EXTENSION}`;
      for (let n = 2; taken.get(path); n++) path = `${base}-${n}${LAKE_FILE_EXTENSION}`;
      return { path, buffer };
    });
  }

  /** Temp file, fsync, rename, fsync of the directory: the file is whole under its final name, or absent. */
  private async writeFile(file: PlannedFile): Promise<void> {
    const absolute = join(this.config.lakeDir, file.path);
    const temp = tempPathOf(absolute);
    await mkdir(dirname(absolute), { recursive: true });
    const data = await gzipAsync(Buffer.from(file.buffer.lines.join('\n') + '\n', 'utf8'));
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, absolute);
    await syncDirectory(dirname(absolute));
    file.size = data.length;
  }

  /** The manifest, the keys and the positions, in one transaction; the files leave the pending list. */
  private commit(planned: PlannedFile[], moved: [string, ShardState][]): void {
    const insertFile = this.db.prepare(
      `INSERT INTO lake_files (path, tenant, hour_start, records, bytes, min_received_at, max_received_at, written_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    );
    // Keys are checked before they are buffered, so none is there yet; IGNORE keeps a surprise from blocking the lake.
    const insertKey = this.db.prepare('INSERT OR IGNORE INTO lake_keys (key_hash, received_at, file_id) VALUES (?, ?, ?)');
    const unpend = this.db.prepare('DELETE FROM lake_pending_files WHERE path = ?');
    const checkpoint = this.db.prepare(
      `INSERT INTO stream_checkpoints (stream, shard_id, sequence_number) VALUES (?, ?, ?)
       ON CONFLICT (stream, shard_id) DO UPDATE SET sequence_number = excluded.sequence_number`,
    );
    const now = Date.now();
    this.db.transaction(() => {
      for (const file of planned) {
        const { buffer } = file;
        const { id } = insertFile.get(
          file.path,
          buffer.partition.tenant,
          hourStartOf(buffer.partition),
          buffer.lines.length,
          file.size ?? 0,
          buffer.minReceivedAt,
          buffer.maxReceivedAt,
          now,
        ) as { id: number };
        buffer.keys.forEach((key, i) => insertKey.run(key, buffer.receivedAts[i], id));
        unpend.run(file.path);
      }
      for (const [shardId, state] of moved) checkpoint.run(this.checkpointStream, shardId, state.position!);
    })();
  }

  /** A failed flush's files leave the disk; what cannot be deleted now stays pending and goes at the next flush or start. */
  private async discard(planned: PlannedFile[]): Promise<void> {
    for (const file of planned) {
      const absolute = join(this.config.lakeDir, file.path);
      try {
        await removeIfPresent(absolute);
        await removeIfPresent(tempPathOf(absolute));
        this.db.prepare('DELETE FROM lake_pending_files WHERE path = ?').run(file.path);
      } catch {
        /* stays in lake_pending_files: recover() deletes it later */
      }
    }
  }

  /** Forgets keys no copy can come for any more (see LEDGER_SLACK_MS), by what has been committed. */
  private prune(): void {
    const now = Date.now();
    if (this.committedReadThrough === undefined || now - this.lastPruneAt < PRUNE_EVERY_MS) return;
    this.lastPruneAt = now;
    try {
      this.db.prepare('DELETE FROM lake_keys WHERE received_at < ?').run(this.committedReadThrough - this.dedupWindowMs);
    } catch (error) {
      this.logger.warn(`could not prune the lake's keys (tried again in a minute): ${(error as Error).message}`);
    }
  }

  /** The oldest readThrough over the listed shards still open; undefined until each has been read. */
  private openShardsReadThrough(): number | undefined {
    let oldest = Infinity;
    for (const shardId of this.listed) {
      const state = this.shards.get(shardId);
      if (state?.finished) continue;
      if (state?.readThrough === undefined) return undefined;
      oldest = Math.min(oldest, state.readThrough);
    }
    return Number.isFinite(oldest) ? oldest : undefined;
  }

  private shard(shardId: string): ShardState {
    let state = this.shards.get(shardId);
    if (!state) {
      state = { finished: false };
      this.shards.set(shardId, state);
    }
    return state;
  }

  private loadCheckpoints(): void {
    if (this.checkpointsLoaded) return;
    const rows = this.db.prepare('SELECT shard_id, sequence_number FROM stream_checkpoints WHERE stream = ?').all(this.checkpointStream) as
      { shard_id: string; sequence_number: string }[];
    for (const row of rows) this.shard(row.shard_id).committed = row.sequence_number;
    this.checkpointsLoaded = true;
  }

  /** Warns once when reading starts failing (it is retried every pass), and says when it works again. */
  private pollFailed(what: string, error: unknown): void {
    this.metrics.inc('flagstream_lake_read_failures_total');
    if (this.pollFailing) return;
    this.pollFailing = true;
    this.logger.warn(`${what} failed (retried every ${Math.min(POLL_MS, this.config.lakeFlushMs)} ms): ${(error as Error).message}`);
  }
}

/** 16 bytes of SHA-256 of a lake key: collisions are out of reach, and the table stays small. */
function keyHash(key: string): Buffer {
  return createHash('sha256').update(key).digest().subarray(0, 16);
}

async function removeIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Makes a rename durable; some file systems cannot fsync a directory, and then the rename is as durable as they make it. */
async function syncDirectory(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch {
    /* best effort */
  } finally {
    await handle?.close();
  }
}

/**
 * Where a lake file is written before its rename: beside it, hidden (a leading dot), so that
 * readers of the directory (Flink's filesystem source, Athena) skip it.
 */
export function tempPathOf(absolute: string): string {
  return join(dirname(absolute), `.${basename(absolute)}.tmp`);
}
