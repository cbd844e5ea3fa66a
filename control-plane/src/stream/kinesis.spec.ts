import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeStreamSummaryCommand, IncreaseStreamRetentionPeriodCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { Logger } from '@nestjs/common';
import { loadConfig } from '../config/config';
import { StreamService } from './kinesis';

const HOUR = 3600_000;

/** Answers DescribeStreamSummary from `retention`/`created`, records every call. */
class FakeKinesis {
  retention = 24;
  created = new Date(Date.now() - 30 * 24 * HOUR);
  calls: string[] = [];
  increases: number[] = [];
  failIncrease = false;

  async send(command: unknown): Promise<unknown> {
    if (command instanceof DescribeStreamSummaryCommand) {
      this.calls.push('DescribeStreamSummary');
      return {
        StreamDescriptionSummary: {
          StreamName: command.input.StreamName, StreamStatus: 'ACTIVE', RetentionPeriodHours: this.retention, StreamCreationTimestamp: this.created,
        },
      };
    }
    if (command instanceof IncreaseStreamRetentionPeriodCommand) {
      this.calls.push('IncreaseStreamRetentionPeriod');
      if (this.failIncrease) throw new Error('LimitExceededException');
      this.increases.push(command.input.RetentionPeriodHours!);
      this.retention = command.input.RetentionPeriodHours!;
      return {};
    }
    throw new Error(`unexpected ${(command as object).constructor.name}`);
  }

  destroy() {}
}

describe('StreamService retention and oldestHeld', () => {
  let dir: string;
  let kinesis: FakeKinesis;
  let logs: string[];
  const service = (env: Record<string, string>) =>
    new StreamService(kinesis as unknown as KinesisClient, loadConfig({ FLAGSTREAM_DATA_DIR: dir, ...env }));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-stream-'));
    kinesis = new FakeKinesis();
    logs = [];
    jest.spyOn(Logger.prototype, 'log').mockImplementation((m: unknown) => void logs.push(String(m)));
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((m: unknown) => void logs.push(String(m)));
  });

  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('raises the retention of a stream it manages when it is below FLAGSTREAM_STREAM_RETENTION_HOURS', async () => {
    const stream = service({ FLAGSTREAM_STREAM_RETENTION_HOURS: '168' });
    expect(await stream.prepareRetention('events')).toBe('raised');
    expect(kinesis.increases).toEqual([168]);
    expect(logs.join('\n')).toContain('raised the retention of stream events from 24 h to 168 h');
    expect(JSON.parse(readFileSync(join(dir, 'stream-retention.json'), 'utf8')).events.fromHours).toBe(24);
  });

  it('leaves a retention that is high enough alone, and never lowers one', async () => {
    kinesis.retention = 200;
    expect(await service({ FLAGSTREAM_STREAM_RETENTION_HOURS: '168' }).prepareRetention('events')).toBe('enough');
    kinesis.retention = 24;
    expect(await service({}).prepareRetention('events')).toBe('enough');
    expect(kinesis.calls).not.toContain('IncreaseStreamRetentionPeriod');
  });

  it('does not touch a stream it does not manage (FLAGSTREAM_CREATE_STREAMS=false), and says so', async () => {
    const stream = service({ FLAGSTREAM_STREAM_RETENTION_HOURS: '168', FLAGSTREAM_CREATE_STREAMS: 'false' });
    expect(await stream.prepareRetention('events')).toBe('not-managed');
    expect(kinesis.calls).toEqual(['DescribeStreamSummary']);
    expect(logs.join('\n')).toMatch(/keeps records 24 h, less than FLAGSTREAM_STREAM_RETENTION_HOURS=168; not raised/);
  });

  it('logs a refused raise instead of failing the start', async () => {
    kinesis.failIncrease = true;
    expect(await service({ FLAGSTREAM_STREAM_RETENTION_HOURS: '48' }).prepareRetention('events')).toBe('failed');
    expect(logs.join('\n')).toContain('could not raise the retention of events from 24 h to 48 h: LimitExceededException');
  });

  it('oldestHeld is now minus the retention, also for a stream younger than that (nothing before its creation is missing)', async () => {
    const stream = service({});
    const before = Date.now();
    const oldest = (await stream.oldestHeld('events')).getTime();
    expect(oldest).toBeGreaterThanOrEqual(before - 24 * HOUR);
    expect(oldest).toBeLessThanOrEqual(Date.now() - 24 * HOUR);

    kinesis.created = new Date(Date.now() - 2 * HOUR);
    const young = service({});
    expect((await young.oldestHeld('events')).getTime()).toBeLessThanOrEqual(Date.now() - 24 * HOUR);
  });

  it('oldestHeld caches the summary for a minute', async () => {
    const stream = service({});
    await stream.oldestHeld('events');
    await stream.oldestHeld('events');
    expect(kinesis.calls).toEqual(['DescribeStreamSummary']);
    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now + 61_000);
    await stream.oldestHeld('events');
    expect(kinesis.calls).toEqual(['DescribeStreamSummary', 'DescribeStreamSummary']);
  });

  it('after a raise, oldestHeld stays at what the old retention held until the new one covers more', async () => {
    const stream = service({ FLAGSTREAM_STREAM_RETENTION_HOURS: '168' });
    const raisedAt = Date.now();
    await stream.prepareRetention('events');
    const oldest = (await stream.oldestHeld('events')).getTime();
    // Not now − 168 h: what had expired under 24 h is gone.
    expect(oldest).toBeGreaterThanOrEqual(raisedAt - 24 * HOUR);
    expect(oldest).toBeLessThan(raisedAt - 23 * HOUR);
    // Also after a restart (the raise is kept in the data dir).
    expect((await service({}).oldestHeld('events')).getTime()).toBe(oldest);
    // Once the new retention reaches past it, now − 168 h again.
    jest.spyOn(Date, 'now').mockReturnValue(raisedAt + 200 * HOUR);
    expect((await service({}).oldestHeld('events')).getTime()).toBe(raisedAt + 200 * HOUR - 168 * HOUR);
  });
});
