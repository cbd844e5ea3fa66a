import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ANALYSES_REPOSITORY, AnalysesRepository } from '../analyses/analyses.repository';
import { CONFIG, Config } from '../config/config';
import { StreamService } from '../stream/kinesis';
import { heartbeatRecord } from './event-record';

/**
 * Writes a heartbeat record to every shard of the events stream every few seconds,
 * `{"kind":"heartbeat","tenant":"","shard":"<ShardId>","eventTime":<now ms>}`.
 * Jobs report the newest heartbeat they read on each shard as their progress
 * (docs/counting.md §3), so a window is known final also on a silent stream or an
 * idle shard. Only while an analysis should run: every record stays in the stream
 * for its retention.
 */
@Injectable()
export class HeartbeatService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Heartbeat');
  private timer?: NodeJS.Timeout;
  private failing = false;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ANALYSES_REPOSITORY) private readonly analyses: AnalysesRepository,
    private readonly stream: StreamService,
  ) {}

  /** A slow stream does not get a pile of heartbeats on top of its backlog. */
  private beating = false;

  onApplicationBootstrap() {
    if (this.config.heartbeatIntervalMs > 0) this.timer = setInterval(() => void this.beat(), this.config.heartbeatIntervalMs);
  }

  onApplicationShutdown() {
    if (this.timer) clearInterval(this.timer);
  }

  /** Resolves with the number of shards that got a heartbeat; none while the previous one is still being written. */
  async beat(): Promise<number> {
    if (!this.analyses.anyToRun() || this.beating) return 0;
    this.beating = true;
    try {
      const shards = (await this.stream.listShards(this.config.eventsStream)).filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
      const now = Date.now();
      // Each record names the shard it is aimed at: the job reports the newest heartbeat per shard as its progress.
      const outcome = await this.stream.putRecords(
        this.config.eventsStream,
        shards.map((s) => ({
          Data: Buffer.from(JSON.stringify(heartbeatRecord(s.ShardId!, now))),
          PartitionKey: 'heartbeat',
          ExplicitHashKey: s.HashKeyRange?.StartingHashKey,
        })),
      );
      if (outcome.failed.length) throw new Error(`${outcome.failed.length} shard(s) refused the heartbeat`);
      if (this.failing) this.logger.log('heartbeats flow again');
      this.failing = false;
      return shards.length;
    } catch (error) {
      if (!this.failing) this.logger.warn(`heartbeat failed: ${(error as Error).message}`);
      this.failing = true;
      return 0;
    } finally {
      this.beating = false;
    }
  }
}
