import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import {
  CreateStreamCommand, DescribeStreamSummaryCommand, IncreaseStreamRetentionPeriodCommand, KinesisClient,
  ListShardsCommand, PutRecordsCommand, PutRecordsRequestEntry, ResourceNotFoundException, Shard,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG, Config } from '../config/config';
import { KinesisJsonProtocol } from './kinesis-json-protocol';

export const KINESIS = Symbol('KinesisClient');

export function createKinesisClient(config: Config): KinesisClient {
  return new KinesisClient({
    region: config.awsRegion,
    // Locally the emulator takes any credentials; on AWS the default chain applies.
    ...(config.kinesisEndpoint
      ? { endpoint: config.kinesisEndpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
    maxAttempts: 3,
    // The SDK's awsJson1_1 with a native base64 encoder for the records' Data (kinesis-json-protocol.ts).
    protocol: KinesisJsonProtocol,
    // HTTP/1.1: the client would pick HTTP/2 (for SubscribeToShard), which the local emulator does not speak and nothing here needs.
    // A request unanswered after 15 s fails (and is retried) instead of hanging on: a stalled
    // stream must not hold heartbeats and writes forever.
    requestHandler: new NodeHttpHandler({ connectionTimeout: 3000, requestTimeout: 15000, throwOnRequestTimeout: true }),
  });
}

export interface PutOutcome {
  /** Indexes (into the given entries) that the stream did not take. */
  failed: number[];
  /** Why, per failed index in the same order: the record's ErrorCode, or `RequestFailed` when the whole call failed. */
  errorCodes: string[];
}

export interface StreamSummary {
  status?: string;
  retentionHours: number;
  createdAt?: Date;
}

/** A retention raise this app made: records older than `heldSince` had expired before it. */
interface RetentionRaise {
  raisedAt: number;
  fromHours: number;
}

const HOUR_MS = 3600_000;
/** Kinesis' retention limits, in hours. */
const MIN_RETENTION_HOURS = 24;
const MAX_RETENTION_HOURS = 8760;

/** The stream operations Flagstream needs, over the real Kinesis API (AWS or the local emulator). */
@Injectable()
export class StreamService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Stream');
  private readonly shardCache = new Map<string, { shards: Shard[]; at: number }>();
  private readonly summaryCache = new Map<string, { summary: StreamSummary; at: number }>();
  private raises?: Record<string, RetentionRaise>;

  constructor(@Inject(KINESIS) private readonly kinesis: KinesisClient, @Inject(CONFIG) private readonly config: Config) {}

  onApplicationBootstrap() {
    // Not awaited: a slow or unreachable stream must not hold the start; the outcome is logged.
    void this.prepareRetention(this.config.eventsStream).catch((error: Error) =>
      this.logger.warn(`could not read the retention of ${this.config.eventsStream}: ${error.message}`),
    );
  }

  onModuleDestroy() {
    this.kinesis.destroy();
  }

  /** DescribeStreamSummary, cached for `maxAgeMs` (a minute by default). */
  async summary(stream: string, maxAgeMs = 60_000): Promise<StreamSummary> {
    const cached = this.summaryCache.get(stream);
    if (cached && Date.now() - cached.at < maxAgeMs) return cached.summary;
    const out = await this.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    const d = out.StreamDescriptionSummary;
    const summary: StreamSummary = {
      status: d?.StreamStatus,
      retentionHours: d?.RetentionPeriodHours ?? MIN_RETENTION_HOURS,
      createdAt: d?.StreamCreationTimestamp ? new Date(d.StreamCreationTimestamp) : undefined,
    };
    this.summaryCache.set(stream, { summary, at: Date.now() });
    return summary;
  }

  /**
   * Brings the stream's retention up to FLAGSTREAM_STREAM_RETENTION_HOURS where the app
   * manages the streams (FLAGSTREAM_CREATE_STREAMS); elsewhere (the CDK app owns them)
   * it only says so. Never lowers a retention. Resolves with what it did.
   */
  async prepareRetention(stream: string): Promise<'raised' | 'enough' | 'not-managed' | 'failed'> {
    const wanted = this.config.streamRetentionHours;
    const { retentionHours } = await this.summary(stream, 0);
    if (retentionHours >= wanted) {
      this.logger.log(`stream ${stream} keeps records ${retentionHours} h (FLAGSTREAM_STREAM_RETENTION_HOURS=${wanted})`);
      return 'enough';
    }
    if (!this.config.createStreams) {
      this.logger.warn(
        `stream ${stream} keeps records ${retentionHours} h, less than FLAGSTREAM_STREAM_RETENTION_HOURS=${wanted}; ` +
          `not raised: with FLAGSTREAM_CREATE_STREAMS=false the streams are managed elsewhere (the CDK app). Replays reach back ${retentionHours} h.`,
      );
      return 'not-managed';
    }
    const target = Math.min(wanted, MAX_RETENTION_HOURS);
    try {
      await this.kinesis.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: stream, RetentionPeriodHours: target }));
    } catch (error) {
      this.logger.warn(`could not raise the retention of ${stream} from ${retentionHours} h to ${target} h: ${(error as Error).message}`);
      return 'failed';
    }
    // Records that had expired before the raise stay gone: remember from when on the stream is complete.
    this.saveRaise(stream, { raisedAt: Date.now(), fromHours: retentionHours });
    this.summaryCache.delete(stream);
    this.logger.log(`raised the retention of stream ${stream} from ${retentionHours} h to ${target} h`);
    return 'raised';
  }

  /**
   * The oldest time from which the stream still holds every record (docs/counting.md §5):
   * max(now − retention and — after this app raised the retention — the raise minus the
   * retention before it). Windows before it cannot be recomputed from the stream. The
   * stream's creation is no such limit: nothing was written before it, so nothing is
   * missing. The summary is cached for a minute.
   */
  async oldestHeld(stream: string): Promise<Date> {
    const { retentionHours } = await this.summary(stream);
    const now = Date.now();
    let oldest = now - retentionHours * HOUR_MS;
    const raise = this.loadRaises()[stream];
    if (raise) oldest = Math.max(oldest, raise.raisedAt - raise.fromHours * HOUR_MS);
    return new Date(Math.min(oldest, now));
  }

  /**
   * Where the stream begins: it holds nothing received before this. Its oldest held time, or
   * its creation when later: a stream created after events were accepted elsewhere (a fresh
   * one) began empty, and the data lake holds what came before (CONTRACT §9).
   */
  async beginsAt(stream: string): Promise<Date> {
    const [oldest, { createdAt }] = await Promise.all([this.oldestHeld(stream), this.summary(stream)]);
    return createdAt && createdAt > oldest ? createdAt : oldest;
  }

  private raisesFile(): string {
    return join(this.config.dataDir, 'stream-retention.json');
  }

  private loadRaises(): Record<string, RetentionRaise> {
    if (!this.raises) {
      try {
        this.raises = JSON.parse(readFileSync(this.raisesFile(), 'utf8')) as Record<string, RetentionRaise>;
      } catch {
        this.raises = {};
      }
    }
    return this.raises;
  }

  private saveRaise(stream: string, raise: RetentionRaise): void {
    const raises = { ...this.loadRaises(), [stream]: raise };
    this.raises = raises;
    try {
      mkdirSync(this.config.dataDir, { recursive: true });
      writeFileSync(this.raisesFile(), JSON.stringify(raises, null, 2) + '\n');
    } catch (error) {
      this.logger.warn(`could not record the retention raise in ${this.raisesFile()}: ${(error as Error).message}`);
    }
  }

  async putRecords(stream: string, entries: PutRecordsRequestEntry[]): Promise<PutOutcome> {
    try {
      const out = await this.kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: entries }));
      const failed: number[] = [];
      const errorCodes: string[] = [];
      (out.Records ?? []).forEach((record, i) => {
        if (!record.ErrorCode) return;
        failed.push(i);
        errorCodes.push(record.ErrorCode);
      });
      return { failed, errorCodes };
    } catch (error) {
      this.logger.warn(`PutRecords to ${stream} failed: ${(error as Error).message}`);
      return { failed: entries.map((_, i) => i), errorCodes: entries.map(() => 'RequestFailed') };
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
    // The events stream's retention is brought up to FLAGSTREAM_STREAM_RETENTION_HOURS at start (prepareRetention).
  }

  get client(): KinesisClient {
    return this.kinesis;
  }
}
