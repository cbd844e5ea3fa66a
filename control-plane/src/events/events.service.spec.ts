import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { loadConfig } from '../config/config';
import { Problem } from '../common/problem';
import { MetricsService } from '../metrics/metrics.service';
import { Db, openDatabase } from '../store/database';
import type { PutOutcome, StreamService } from '../stream/kinesis';
import type { Environment } from '../tenants/tenants.repository';
import { EventsService } from './events.service';
import { SqlitePayloadLedger } from './payload-ledger.repository';

/**
 * The write path's promises (202 only after the write, a retried payload counts once,
 * whatever part of it was written before a 503). Partial PutRecords failures cannot be
 * provoked on the emulator, so the stream here refuses records on cue; the ledger is
 * the real SQLite one.
 */
class FlakyStream {
  /** Each call takes the next plan: which entry indexes to refuse, or 'all'. */
  plans: (number[] | 'all')[] = [];
  calls: number[] = [];
  written: string[] = [];

  async putRecords(_stream: string, entries: PutRecordsRequestEntry[]): Promise<PutOutcome> {
    this.calls.push(entries.length);
    const plan = this.plans.shift() ?? [];
    const failed = plan === 'all' ? entries.map((_, i) => i) : plan.filter((i) => i < entries.length);
    entries.forEach((entry, i) => failed.includes(i) || this.written.push(Buffer.from(entry.Data!).toString('utf8')));
    return { failed };
  }
}

const environment: Environment = { id: 'env-1', tenantId: 'tenant-1', tenantKey: 'acme', key: 'production', createdAt: '' };
const custom = (i: number) => ({ kind: 'custom', creationDate: 1_000 + i, key: `metric-${i}`, context: { kind: 'user', key: `u${i}` } });
const writtenIndexes = (stream: FlakyStream) => stream.written.map((w) => JSON.parse(w).eventIndex as number).sort((a, b) => a - b);

describe('EventsService writes', () => {
  let dir: string;
  let db: Db;
  let stream: FlakyStream;
  let service: EventsService;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-events-'));
    db = openDatabase(dir);
    stream = new FlakyStream();
    const config = { ...loadConfig({ FLAGSTREAM_DATA_DIR: dir }), writeDeadlineMs: 1000 };
    service = new EventsService(config, new SqlitePayloadLedger(db), stream as unknown as StreamService, new MetricsService());
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('retries the records the stream refused until every one is in, each once', async () => {
    stream.plans = [[1, 3], [0]];
    const reply = await service.ingest(environment, 'acme', [0, 1, 2, 3, 4].map(custom), 'p1');
    expect(reply).toEqual({ accepted: 5, rejected: [] });
    expect(writtenIndexes(stream)).toEqual([0, 1, 2, 3, 4]);
    expect(stream.calls).toEqual([5, 2, 1]);
  });

  it('answers 503 with Retry-After when the stream stays stalled, and the retry writes only what is missing', async () => {
    stream.plans = [[2, 3], ...Array<'all'>(10).fill('all')];
    const events = [0, 1, 2, 3].map(custom);
    const error = await service.ingest(environment, 'acme', events, 'p2').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Problem);
    expect((error as Problem).status).toBe(503);
    expect((error as Problem).headers['Retry-After']).toBe('1');
    expect(writtenIndexes(stream)).toEqual([0, 1]);

    stream.plans = [];
    const reply = await service.ingest(environment, 'acme', events, 'p2');
    expect(reply).toEqual({ accepted: 4, rejected: [] });
    expect(writtenIndexes(stream)).toEqual([0, 1, 2, 3]);
  });

  it('answers a payload ID it has fully written with the first answer, writing nothing', async () => {
    const events = [custom(0), { kind: 'nope' }];
    const first = await service.ingest(environment, 'acme', events, 'p3');
    const again = await service.ingest(environment, 'acme', events, 'p3');
    expect(again).toEqual(first);
    expect(stream.written).toHaveLength(1);
    // The same ID in another environment is another payload.
    await service.ingest({ ...environment, id: 'env-2' }, 'acme', events, 'p3');
    expect(stream.written).toHaveLength(2);
  });

  it('writes a payload once when its retry arrives while the first try is still writing', async () => {
    stream.plans = ['all', 'all'];
    const events = [0, 1, 2].map(custom);
    const [a, b] = await Promise.all([service.ingest(environment, 'acme', events, 'p4'), service.ingest(environment, 'acme', events, 'p4')]);
    expect(a).toEqual(b);
    expect(writtenIndexes(stream)).toEqual([0, 1, 2]);
  });

  it('splits large payloads into PutRecords calls of at most 500 records', async () => {
    const reply = await service.ingest(environment, 'acme', Array.from({ length: 1200 }, (_, i) => custom(i)), 'p5');
    expect(reply.accepted).toBe(1200);
    expect(stream.calls).toEqual([500, 500, 200]);
  });

  it('stamps each record with its origin and event time', async () => {
    await service.ingest(environment, 'acme', [{ kind: 'summary', startDate: 5, endDate: 9, features: {} }], 'p6');
    expect(JSON.parse(stream.written[0])).toMatchObject({ tenant: 'acme', environment: 'production', payloadId: 'p6', eventIndex: 0, eventTime: 9, kind: 'summary' });
  });
});
