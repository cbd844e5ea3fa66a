import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { GuardrailWatcher } from './guardrail-watcher.service';
import { ExpiredIteratorException, GetRecordsCommand, GetShardIteratorCommand, ResourceNotFoundException } from '@aws-sdk/client-kinesis';
import { CONFIG, Config } from '../config/config';
import { DATABASE, Db } from '../store/database';
import { MetricsService } from '../metrics/metrics.service';
import { StreamService } from '../stream/kinesis';
import { ApplyOutcome, CustomRecord, LateRecord, POOL_PROGRESS_PREFIX, ProgressRecord, RESULTS_REPOSITORY, ResultRow, ResultsRepository, RowRecord } from './results.repository';

/** Fields of a result row that are measures, not dimensions; the rest (but the window) identify the row. */
const MEASURES = new Set(['evaluations', 'contexts', 'firstAt', 'lastAt', 'units', 'sum', 'sumSquares', 'multipleExposures']);
/** Flink's JSON_OBJECT writes keys alphabetically; rows are served in the order CONTRACT §6 lists their fields. */
const FIELD_ORDER = ['flagKey', 'variation', 'environment', 'contextKind'];
const rank = (field: string) => (MEASURES.has(field) ? 2 : FIELD_ORDER.includes(field) ? 0 : 1);
const byFieldOrder = ([a]: [string, unknown], [b]: [string, unknown]) =>
  rank(a) - rank(b) || (FIELD_ORDER.indexOf(a) - FIELD_ORDER.indexOf(b)) || (a < b ? -1 : a > b ? 1 : 0);
/** Fields of `after` that describe the record, not the row: never stored nor served. */
const ENVELOPE_FIELDS = new Set(['analysisId', 'generation', 'type', 'version', 'windowStart', 'windowEnd']);
const WARN_EVERY_MS = 60_000;
/**
 * Progress is believed this long (wall time) after it was read. A job writes rows and progress
 * through separate sinks, each with its own buffer, so a row can reach the results stream a
 * mini-batch and a flush after the progress that covers it; while a job catches up on a
 * backlog, that progress may be minutes of stream time ahead. Rows are stored at once; only
 * `final` and the switch to a recomputing generation's rows wait for believed progress.
 */
export const PROGRESS_LAG_MS = 4000;

/** A record of the results stream, parsed (docs/counting.md §3), or why it is skipped. */
export type ResultRecord =
  | { type: 'row'; record: RowRecord }
  | { type: 'progress'; record: ProgressRecord }
  | { type: 'late'; record: LateRecord }
  | { type: 'custom'; record: CustomRecord }
  | { type: 'retraction' }
  | { type: 'malformed'; reason: string };

/**
 * Reads one record of the results stream: a Debezium envelope `{"before", "after", "op"}`
 * whose `after` (of `op: "c"`) is a row, a progress report or a late-events bucket.
 * A row's dimensions and measures arrive in `fields`, the text of a JSON object (one sink
 * table fits every kind and member of a pool job); a row without it is malformed.
 * `op: "d"` is the retraction half of an update: the next `c` replaces the row anyway.
 * Never throws.
 */
export function parseResultRecord(text: string): ResultRecord {
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch {
    return { type: 'malformed', reason: 'not JSON' };
  }
  if (!isObject(envelope)) return { type: 'malformed', reason: 'not a JSON object' };
  // A custom-sql result is a multiset: its retractions count (other rows are upserts).
  if (envelope.op === 'd') return isObject(envelope.before) && envelope.before.type === 'custom' ? customRecord(envelope.before, -1) : { type: 'retraction' };
  if (envelope.op !== 'c') return { type: 'malformed', reason: `op ${JSON.stringify(envelope.op)}` };
  const after = envelope.after;
  if (!isObject(after)) return { type: 'malformed', reason: 'no "after"' };
  const { analysisId, generation } = after;
  if (typeof analysisId !== 'string' || !analysisId) return { type: 'malformed', reason: 'no analysisId' };
  if (!isCount(generation)) return { type: 'malformed', reason: 'no generation' };
  switch (after.type) {
    case 'row': {
      const windowStart = isoTime(after.windowStart);
      const windowEnd = isoTime(after.windowEnd);
      if (!windowStart || !windowEnd) return { type: 'malformed', reason: 'row without windowStart or windowEnd' };
      if (!isCount(after.version)) return { type: 'malformed', reason: 'row without version' };
      let fields: unknown;
      try {
        fields = typeof after.fields === 'string' ? JSON.parse(after.fields) : undefined;
      } catch {
        fields = undefined;
      }
      if (!isObject(fields)) return { type: 'malformed', reason: 'row without fields (the text of a JSON object)' };
      const row: ResultRow = { windowStart, windowEnd };
      const dims: [string, unknown][] = [];
      for (const [field, value] of Object.entries(fields).sort(byFieldOrder)) {
        if (ENVELOPE_FIELDS.has(field)) continue;
        row[field] = value;
        if (!MEASURES.has(field)) dims.push([field, value]);
      }
      dims.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return { type: 'row', record: { analysisId, generation, version: after.version, dims: JSON.stringify(dims), row } };
    }
    case 'progress': {
      const progressAt = isoTime(after.progressAt);
      if (typeof after.shard !== 'string' || !after.shard || !progressAt) return { type: 'malformed', reason: 'progress without shard or progressAt' };
      return { type: 'progress', record: { analysisId, generation, shard: after.shard, progressAt } };
    }
    case 'custom':
      return customRecord(after, 1);
    case 'late': {
      const bucketStart = isoTime(after.bucketStart);
      if (!bucketStart || !isCount(after.lateEvents)) return { type: 'malformed', reason: 'late without bucketStart or lateEvents' };
      return { type: 'late', record: { analysisId, generation, bucketStart, lateEvents: after.lateEvents } };
    }
    default:
      return { type: 'malformed', reason: `type ${JSON.stringify(after.type)}` };
  }
}

/** A custom-sql row added (1) or retracted (−1): its columns (`fields`) and, when the query has windows, its window. */
function customRecord(image: Record<string, unknown>, delta: 1 | -1): ResultRecord {
  const { analysisId, generation } = image;
  if (typeof analysisId !== 'string' || !analysisId) return { type: 'malformed', reason: 'no analysisId' };
  if (!isCount(generation)) return { type: 'malformed', reason: 'no generation' };
  if (typeof image.fields !== 'string') return { type: 'malformed', reason: 'custom row without fields' };
  let fields: unknown;
  try {
    fields = JSON.parse(image.fields);
  } catch {
    fields = undefined;
  }
  if (!isObject(fields)) return { type: 'malformed', reason: 'custom row whose fields are not a JSON object' };
  const windowStart = image.windowStart == null ? undefined : isoTime(image.windowStart);
  const windowEnd = image.windowEnd == null ? undefined : isoTime(image.windowEnd);
  const row: Record<string, unknown> = { ...(windowStart ? { windowStart } : {}), ...(windowEnd ? { windowEnd } : {}), ...fields };
  // The same row always has the same text (Flink writes JSON_OBJECT's keys in one order): its key.
  const rowKey = createHash('sha256').update(`${windowStart ?? ''}\u0000${windowEnd ?? ''}\u0000${image.fields}`).digest('hex');
  return { type: 'custom', record: { analysisId, generation, delta, rowKey, row, ...(windowStart ? { windowStart } : {}) } };
}

/**
 * Reads the results stream that every analysis job writes to and stores what the current
 * generation of each analysis wrote (docs/counting.md §4). Its position per shard is kept in
 * the store, in the same transaction as what it read, so a restart goes on where it stopped.
 */
@Injectable()
export class ResultsIngestor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Results');
  private readonly iterators = new Map<string, string | undefined>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private polling = false;
  private lastWarnAt = -Infinity;
  private unwarned = 0;
  /** Progress read and not believed yet (PROGRESS_LAG_MS). Lost on a restart: heartbeats come every few seconds. */
  private readonly unripe: { record: ProgressRecord; readAt: number }[] = [];
  /** PROGRESS_LAG_MS; tests shorten it. */
  progressLagMs = PROGRESS_LAG_MS;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(DATABASE) private readonly db: Db,
    @Inject(RESULTS_REPOSITORY) private readonly results: ResultsRepository,
    private readonly stream: StreamService,
    private readonly metrics: MetricsService,
    @Optional() private readonly guardrails?: GuardrailWatcher,
  ) {}

  onApplicationBootstrap() {
    const tick = async () => {
      if (this.stopped) return;
      await this.pollOnce().catch((error: Error) => this.logger.warn(`reading results failed: ${error.message}`));
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.config.resultsPollMs);
    };
    void tick();
  }

  onApplicationShutdown() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One pass over every shard; returns the number of rows stored. */
  async pollOnce(): Promise<number> {
    if (this.polling) return 0;
    this.polling = true;
    try {
      let stored = 0;
      const shards = await this.stream.listShards(this.config.resultsStream, 30_000);
      for (const shard of shards) stored += await this.pollShard(shard.ShardId!);
      await this.applyRipeProgress();
      return stored;
    } finally {
      this.polling = false;
    }
  }

  private async pollShard(shardId: string): Promise<number> {
    const client = this.stream.client;
    let iterator = this.iterators.get(shardId);
    if (!iterator) {
      const checkpoint = this.checkpoint(shardId);
      const out = await client.send(
        new GetShardIteratorCommand({
          StreamName: this.config.resultsStream,
          ShardId: shardId,
          ...(checkpoint ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: checkpoint } : { ShardIteratorType: 'TRIM_HORIZON' }),
        }),
      );
      iterator = out.ShardIterator;
    }
    let stored = 0;
    for (let page = 0; iterator && page < 20; page++) {
      let out;
      try {
        out = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      } catch (error) {
        if (error instanceof ExpiredIteratorException || error instanceof ResourceNotFoundException) {
          this.iterators.delete(shardId);
          return stored;
        }
        throw error;
      }
      const records = out.Records ?? [];
      if (records.length) {
        const parsed = records.map((record) => parseResultRecord(Buffer.from(record.Data ?? new Uint8Array()).toString('utf8')));
        const readAt = Date.now();
        this.db.transaction(() => {
          for (const record of parsed) stored += this.apply(record, readAt);
          this.saveCheckpoint(shardId, records[records.length - 1].SequenceNumber!);
        })();
      }
      iterator = out.NextShardIterator;
      if (!records.length || !out.MillisBehindLatest) break;
    }
    this.iterators.set(shardId, iterator);
    if (stored) {
      this.metrics.inc('flagstream_result_rows_stored_total', stored);
      this.guardrails?.nudge();
    }
    return stored;
  }

  /** Applies one parsed record (progress later, once believed); returns 1 when it stored a row. */
  private apply(parsed: ResultRecord, readAt: number): number {
    let outcome: ApplyOutcome;
    switch (parsed.type) {
      case 'row':
        outcome = this.results.applyRow(parsed.record);
        break;
      case 'progress':
        this.unripe.push({ record: parsed.record, readAt });
        return 0;
      case 'late':
        outcome = this.results.applyLate(parsed.record);
        break;
      case 'custom': {
        const applied = this.results.applyCustom(parsed.record, this.config.customSqlMaxRows);
        if (applied === 'limit') {
          this.skipped('custom-rows-limit');
          this.warnMalformed(`custom-sql analysis ${parsed.record.analysisId} has ${this.config.customSqlMaxRows} distinct rows, the most kept (FLAGSTREAM_CUSTOM_SQL_MAX_ROWS)`);
          return 0;
        }
        outcome = applied;
        break;
      }
      case 'retraction':
        this.skipped('retraction');
        return 0;
      case 'malformed':
        this.skipped('malformed');
        this.warnMalformed(parsed.reason);
        return 0;
    }
    if (outcome === 'pending') {
      // Kept, not skipped: it replaces the older generation's row once its generation caught up.
      this.metrics.inc('flagstream_result_rows_pending_total', 1);
      return 0;
    }
    if (outcome !== 'stored') {
      this.skipped(outcome);
      return 0;
    }
    return parsed.type === 'row' || parsed.type === 'custom' ? 1 : 0;
  }

  /** Applies the progress read at least `progressLagMs` ago. */
  private async applyRipeProgress(now = Date.now()): Promise<void> {
    let ripe = 0;
    while (ripe < this.unripe.length && this.unripe[ripe].readAt <= now - this.progressLagMs) ripe++;
    if (!ripe) return;
    const openShards = await this.openEventShards();
    const due = this.unripe.splice(0, ripe);
    this.db.transaction(() => {
      for (const { record } of due) {
        const outcome = record.analysisId.startsWith(POOL_PROGRESS_PREFIX) ? this.results.applyPoolProgress(record, openShards) : this.results.applyProgress(record, openShards);
        if (outcome !== 'stored') this.skipped(outcome);
      }
    })();
  }

  private skipped(reason: string): void {
    this.metrics.inc('flagstream_result_records_skipped_total', 1, { reason });
  }

  /** At most one warning a minute, naming how many malformed records it stands for. */
  private warnMalformed(reason: string): void {
    this.unwarned++;
    const now = Date.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.logger.warn(`skipped ${this.unwarned} malformed result record(s) since the last warning; latest: ${reason}`);
    this.lastWarnAt = now;
    this.unwarned = 0;
  }

  /** The events stream's open shards (no EndingSequenceNumber), or undefined when they cannot be listed now. */
  private async openEventShards(): Promise<string[] | undefined> {
    try {
      const shards = await this.stream.listShards(this.config.eventsStream, 30_000);
      return shards.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber).map((s) => s.ShardId!);
    } catch (error) {
      this.logger.warn(`could not list the shards of ${this.config.eventsStream}: ${(error as Error).message}`);
      return undefined;
    }
  }

  private checkpoint(shardId: string): string | undefined {
    const row = this.db.prepare('SELECT sequence_number FROM stream_checkpoints WHERE stream = ? AND shard_id = ?').get(this.config.resultsStream, shardId) as
      { sequence_number: string } | undefined;
    return row?.sequence_number;
  }

  private saveCheckpoint(shardId: string, sequenceNumber: string): void {
    this.db
      .prepare(
        `INSERT INTO stream_checkpoints (stream, shard_id, sequence_number) VALUES (?, ?, ?)
         ON CONFLICT (stream, shard_id) DO UPDATE SET sequence_number = excluded.sequence_number`,
      )
      .run(this.config.resultsStream, shardId, sequenceNumber);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

const TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * An ISO-8601 time as Date#toISOString writes it (UTC, milliseconds), so stored times compare
 * as strings. Also takes Flink's SQL format ("2026-11-26 04:00:10.000"); a time without a zone is UTC.
 */
function isoTime(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = TIME.exec(value.trim());
  if (!match) return undefined;
  const [, date, time, zone] = match;
  const fraction = /\.(\d+)$/.exec(time);
  const clipped = fraction && fraction[1].length > 3 ? time.slice(0, time.length - fraction[1].length + 3) : time;
  const zoned = !zone || zone.toUpperCase() === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(`${date}T${clipped}${zoned}`);
  if (Number.isNaN(ms) || ms < 0 || ms >= Date.UTC(10000, 0, 1)) return undefined;
  return new Date(ms).toISOString();
}
