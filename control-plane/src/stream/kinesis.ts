import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import {
  CreateStreamCommand, DescribeStreamSummaryCommand, IncreaseStreamRetentionPeriodCommand, KinesisClient,
  ListShardsCommand, PutRecordsCommand, PutRecordsRequestEntry, ResourceNotFoundException, Shard,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { CONFIG, Config } from '../config/config';

export const KINESIS = Symbol('KinesisClient');

export function createKinesisClient(config: Config): KinesisClient {
  return new KinesisClient({
    region: config.awsRegion,
    // Locally the emulator takes any credentials; on AWS the default chain applies.
    ...(config.kinesisEndpoint
      ? { endpoint: config.kinesisEndpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
    maxAttempts: 3,
    // HTTP/1.1: the client would pick HTTP/2 (for SubscribeToShard), whose answers the emulator garbles for some calls.
    requestHandler: new NodeHttpHandler({ connectionTimeout: 3000, requestTimeout: 15000 }),
  });
}

export interface PutOutcome {
  /** Indexes (into the given entries) that the stream did not take. */
  failed: number[];
}

/** The stream operations Flagstream needs, over the real Kinesis API (AWS or the local emulator). */
@Injectable()
export class StreamService implements OnModuleDestroy {
  private readonly logger = new Logger('Stream');
  private readonly shardCache = new Map<string, { shards: Shard[]; at: number }>();

  constructor(@Inject(KINESIS) private readonly kinesis: KinesisClient, @Inject(CONFIG) private readonly config: Config) {}

  onModuleDestroy() {
    this.kinesis.destroy();
  }

  async putRecords(stream: string, entries: PutRecordsRequestEntry[]): Promise<PutOutcome> {
    try {
      const out = await this.kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: entries }));
      const failed: number[] = [];
      (out.Records ?? []).forEach((record, i) => record.ErrorCode && failed.push(i));
      return { failed };
    } catch (error) {
      this.logger.warn(`PutRecords to ${stream} failed: ${(error as Error).message}`);
      return { failed: entries.map((_, i) => i) };
    }
  }

  async listShards(stream: string, maxAgeMs = 60_000): Promise<Shard[]> {
    const cached = this.shardCache.get(stream);
    if (cached && Date.now() - cached.at < maxAgeMs) return cached.shards;
    const shards: Shard[] = [];
    let nextToken: string | undefined;
    do {
      const out = await this.kinesis.send(new ListShardsCommand(nextToken ? { NextToken: nextToken } : { StreamName: stream }));
      shards.push(...(out.Shards ?? []));
      nextToken = out.NextToken;
    } while (nextToken);
    this.shardCache.set(stream, { shards, at: Date.now() });
    return shards;
  }

  async isActive(stream: string): Promise<boolean> {
    const out = await this.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    return out.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
  }

  /** Creates the stream where it is missing (local stack; on AWS the CDK app owns the streams). */
  async ensureStream(stream: string, shards: number): Promise<void> {
    try {
      if (await this.isActive(stream)) return;
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
      this.logger.log(`creating stream ${stream} with ${shards} shard(s)`);
      await this.kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: shards }));
    }
    for (let i = 0; i < 120; i++) {
      if (await this.isActive(stream)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (this.config.streamRetentionHours > 24) {
      await this.kinesis
        .send(new IncreaseStreamRetentionPeriodCommand({ StreamName: stream, RetentionPeriodHours: this.config.streamRetentionHours }))
        .catch((e: Error) => this.logger.warn(`could not raise retention of ${stream}: ${e.message}`));
    }
  }

  get client(): KinesisClient {
    return this.kinesis;
  }
}
