import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ExpiredIteratorException, GetRecordsCommand, GetShardIteratorCommand, ResourceNotFoundException } from '@aws-sdk/client-kinesis';
import { CONFIG, Config } from '../config/config';
import { DATABASE, Db } from '../store/database';
import { MetricsService } from '../metrics/metrics.service';
import { StreamService } from '../stream/kinesis';
import { RESULTS_REPOSITORY, ResultRow, ResultsRepository } from './results.repository';

/** Fields of a result row that are measures, not dimensions; the rest (but the window) identify the row. */
const METRICS = new Set(['evaluations']);

/**
 * Reads the results stream that every analysis job writes to and stores each row
 * (upserted, so a row re-sent after a restart or a replay replaces itself).
 * Its position per shard is kept in the store, so a restart goes on where it stopped.
 */
@Injectable()
export class ResultsIngestor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Results');
  private readonly iterators = new Map<string, string | undefined>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private polling = false;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(DATABASE) private readonly db: Db,
    @Inject(RESULTS_REPOSITORY) private readonly results: ResultsRepository,
    private readonly stream: StreamService,
    private readonly metrics: MetricsService,
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
        this.db.transaction(() => {
          for (const record of records) stored += this.store(Buffer.from(record.Data ?? new Uint8Array()).toString('utf8'));
          this.saveCheckpoint(shardId, records[records.length - 1].SequenceNumber!);
        })();
      }
      iterator = out.NextShardIterator;
      if (!records.length || !out.MillisBehindLatest) break;
    }
    this.iterators.set(shardId, iterator);
    if (stored) this.metrics.inc('flagstream_result_rows_stored_total', stored);
    return stored;
  }

  private store(text: string): number {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.logger.warn('skipped a result record that is not JSON');
      return 0;
    }
    const { analysisId, windowStart, windowEnd, ...rest } = parsed;
    if (typeof analysisId !== 'string' || typeof windowStart !== 'string' || typeof windowEnd !== 'string') return 0;
    const row: ResultRow = { windowStart: new Date(windowStart).toISOString(), windowEnd: new Date(windowEnd).toISOString(), ...rest };
    const dims = JSON.stringify(Object.keys(rest).filter((k) => !METRICS.has(k)).sort().map((k) => [k, rest[k]]));
    return this.results.upsert(analysisId, row, dims) ? 1 : 0;
  }

  private checkpoint(shardId: string): string | undefined {
    const row = this.db
      .prepare('SELECT sequence_number FROM stream_checkpoints WHERE stream = ? AND shard_id = ?')
      .get(this.config.resultsStream, shardId) as { sequence_number: string } | undefined;
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
