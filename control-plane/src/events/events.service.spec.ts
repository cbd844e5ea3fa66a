import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { Config, loadConfig } from '../config/config';
import { Problem } from '../common/problem';
import { MetricsService } from '../metrics/metrics.service';
import { Db, openDatabase } from '../store/database';
import { unpackRecord } from '../stream/aggregated-record';
import type { PutOutcome, StreamService } from '../stream/kinesis';
import type { Environment } from '../tenants/tenants.repository';
import { EventsService } from './events.service';
import { canonicalJsonHash } from './payload-hash';
import { SqlitePayloadLedger } from './payload-ledger.repository';
import { StreamWriter } from './stream-writer';

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
  /** The events written, unpacked from their aggregated records. */
  written: string[] = [];
  records: { partitionKey: string; events: number }[] = [];

  async putRecords(_stream: string, entries: PutRecordsRequestEntry[]): Promise<PutOutcome> {
    this.calls.push(entries.length);
    const plan = this.plans.shift() ?? [];
    const failed = plan === 'all' ? entries.map((_, i) => i) : plan.filter((i) => i < entries.length);
    entries.forEach((entry, i) => {
      if (failed.includes(i)) return;
      const events = unpackRecord(entry.Data!);
      this.records.push({ partitionKey: entry.PartitionKey!, events: events.length });
      for (const event of events) this.written.push(event.toString('utf8'));
    });
    return { failed, errorCodes: failed.map(() => 'InternalFailure') };
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
  let metrics: MetricsService;
  /** A counter's value as /metrics shows it (0 when absent). */
  const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await metrics.render())?.[1] ?? 0);
  /** One event per record (each is over the record size, so it gets one of its own): the tests below refuse records one by one. */
  const serviceOf = (config: Config) => new EventsService(config, new SqlitePayloadLedger(db), new StreamWriter(config, stream as unknown as StreamService, metrics), metrics);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-events-'));
    db = openDatabase(dir);
    stream = new FlakyStream();
    metrics = new MetricsService();
    service = serviceOf({ ...loadConfig({ FLAGSTREAM_DATA_DIR: dir }), writeDeadlineMs: 1000, streamRecordBytes: 1 });
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('retries the records the stream refused until every one is in, each once', async () => {
    stream.plans = [[1, 3], [0]];
    const reply = await service.ingest(environment, 'acme', [0, 1, 2, 3, 4].map(custom), 'p1');
    expect(reply.response).toEqual({ accepted: 5, rejected: [] });
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
    expect(reply.response).toEqual({ accepted: 4, rejected: [] });
    expect(writtenIndexes(stream)).toEqual([0, 1, 2, 3]);
  });

  it('lets a retry that comes right after a 503 wait for the calls still in flight, so it writes only what they did not', async () => {
    // The stream hangs on the first call past the 1 s deadline, then takes it.
    let release = () => {};
    const slow = stream.putRecords.bind(stream);
    let first = true;
    stream.putRecords = async (name, entries) => {
      if (first) {
        first = false;
        await new Promise<void>((resolve) => (release = resolve));
      }
      return slow(name, entries);
    };
    const events = [0, 1, 2].map(custom);
    const error = await service.ingest(environment, 'acme', events, 'in-flight').catch((e: unknown) => e);
    expect((error as Problem).status).toBe(503);
    const retry = service.ingest(environment, 'acme', events, 'in-flight');
    await new Promise((r) => setTimeout(r, 50));
    release();
    expect((await retry).response).toEqual({ accepted: 3, rejected: [] });
    expect(writtenIndexes(stream)).toEqual([0, 1, 2]);
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
    expect(reply.response.accepted).toBe(1200);
    expect(stream.calls).toEqual([500, 500, 200]);
  });

  it('packs events into aggregated records of at most FLAGSTREAM_STREAM_RECORD_BYTES, each under one partition key, in order', async () => {
    const packing = serviceOf({ ...loadConfig({ FLAGSTREAM_DATA_DIR: dir, FLAGSTREAM_STREAM_RECORD_BYTES: String(16 * 1024) }), writeDeadlineMs: 1000 });
    const huge = { ...custom(1), data: 'x'.repeat(40 * 1024) };
    const events = [...Array.from({ length: 300 }, (_, i) => custom(i)), huge, custom(301)];
    const reply = await packing.ingest(environment, 'acme', events, 'packed');
    expect(reply.response.accepted).toBe(302);
    expect(stream.written.map((w) => JSON.parse(w).eventIndex)).toEqual(events.map((_, i) => i));
    // Many events a record; the event larger than a record's size gets one of its own; keys differ between records.
    expect(stream.records.length).toBeLessThan(20);
    expect(stream.records.filter((r) => r.events === 1).length).toBeGreaterThanOrEqual(1);
    expect(new Set(stream.records.map((r) => r.partitionKey)).size).toBe(stream.records.length);
    expect(stream.calls).toEqual([stream.records.length]);
  });

  it('stamps each record with its origin and times', async () => {
    const before = Date.now();
    await service.ingest(environment, 'acme', [{ kind: 'summary', startDate: 5, endDate: 9, features: {} }], 'p6');
    const record = JSON.parse(stream.written[0]);
    expect(record).toMatchObject({ tenant: 'acme', environment: 'production', eventIndex: 0, sdkTime: 9, eventTime: 9, late: true, kind: 'summary' });
    expect(record.payloadId).toMatch(/^p6#[0-9a-f]{16}$/);
    expect(record.receivedAt).toBeGreaterThanOrEqual(before);
    expect(record.receivedAt).toBeLessThanOrEqual(Date.now());
  });

  it('bounds event time by the server clock and counts late and clock-ahead events once, also across a retry', async () => {
    const now = Date.now();
    const events = [
      { kind: 'custom', creationDate: now - 1000, key: 'on-time' },
      { kind: 'custom', creationDate: now + 3600_000, key: 'ahead' },
      { kind: 'custom', creationDate: now - 2 * 3600_000, key: 'late' },
      { kind: 'summary', startDate: now - 3 * 3600_000, endDate: now - 2 * 3600_000, features: {} },
    ];
    stream.plans = [[1, 3], ...Array<'all'>(10).fill('all')];
    await expect(service.ingest(environment, 'acme', events, 'p7')).rejects.toBeInstanceOf(Problem);
    expect(await metric('flagstream_events_late_total')).toBe(1);
    expect(await metric('flagstream_events_clock_ahead_total')).toBe(0);
    stream.plans = [];
    const retried = await service.ingest(environment, 'acme', events, 'p7');
    const again = await service.ingest(environment, 'acme', events, 'p7');

    const records = stream.written.map((w) => JSON.parse(w)).sort((a, b) => a.eventIndex - b.eventIndex);
    expect(records.map((r) => r.eventIndex)).toEqual([0, 1, 2, 3]);
    // The retry stamps its records with the first try's receivedAt.
    const receivedAt = records[0].receivedAt;
    expect(new Set(records.map((r) => r.receivedAt))).toEqual(new Set([receivedAt]));
    // …and says so in its answer (X-Flagstream-Received-At), as does a repeat of the complete payload.
    expect([retried.receivedAt, again.receivedAt]).toEqual([receivedAt, receivedAt]);
    expect(records[0]).toMatchObject({ sdkTime: now - 1000, eventTime: now - 1000, late: false });
    expect(records[1]).toMatchObject({ sdkTime: now + 3600_000, eventTime: receivedAt, late: false });
    expect(records[2]).toMatchObject({ sdkTime: now - 2 * 3600_000, eventTime: now - 2 * 3600_000, late: true });
    expect(records[3]).toMatchObject({ sdkTime: now - 2 * 3600_000, late: true });
    expect(await metric('flagstream_events_late_total')).toBe(2);
    expect(await metric('flagstream_events_clock_ahead_total')).toBe(1);
  });

  it('takes the lateness horizon from FLAGSTREAM_LATENESS_HORIZON', async () => {
    const short = serviceOf({ ...loadConfig({ FLAGSTREAM_DATA_DIR: dir, FLAGSTREAM_LATENESS_HORIZON: '90s' }), writeDeadlineMs: 1000, streamRecordBytes: 1 });
    const now = Date.now();
    await short.ingest(environment, 'acme', [{ kind: 'custom', creationDate: now - 120_000, key: 'a' }, { kind: 'custom', creationDate: now - 30_000, key: 'b' }], 'p8');
    expect(stream.written.map((w) => JSON.parse(w).late)).toEqual([true, false]);
  });

  describe('payload IDs and bodies', () => {
    const payload = [custom(0), custom(1)];

    it('writes and counts another body sent with a reused payload ID as its own payload, under its own payloadId', async () => {
      const first = await service.ingest(environment, 'acme', payload, 'reused');
      const other = [custom(7)];
      const second = await service.ingest(environment, 'acme', other, 'reused');
      expect(first.response).toEqual({ accepted: 2, rejected: [] });
      expect(second.response).toEqual({ accepted: 1, rejected: [] });
      const records = stream.written.map((w) => JSON.parse(w));
      expect(records.map((r) => r.key)).toEqual(['metric-0', 'metric-1', 'metric-7']);
      const ids = new Set(records.map((r) => r.payloadId));
      expect(ids.size).toBe(2);
      for (const id of ids) expect(id).toMatch(/^reused#[0-9a-f]{16}$/);
      // The (payloadId, eventIndex) pairs Flink deduplicates on never collide across the two bodies.
      expect(new Set(records.map((r) => `${r.payloadId}/${r.eventIndex}`)).size).toBe(3);
      expect(await metric('flagstream_payload_ids_reused_total')).toBe(1);
      expect(await metric('flagstream_payloads_deduplicated_total')).toBe(0);

      // Each body's own retry is still deduplicated.
      expect(await service.ingest(environment, 'acme', other, 'reused')).toEqual(second);
      expect(await service.ingest(environment, 'acme', payload, 'reused')).toEqual(first);
      expect(stream.written).toHaveLength(3);
      expect(await metric('flagstream_payloads_deduplicated_total')).toBe(2);
    });

    it('counts a body that differs in one counter as its own payload', async () => {
      const summary = (count: number) => [{ kind: 'summary', startDate: 1, endDate: 2, features: { f: { counters: [{ variation: 0, count }] } } }];
      await service.ingest(environment, 'acme', summary(1), 'sum');
      await service.ingest(environment, 'acme', summary(2), 'sum');
      expect(stream.written.map((w) => JSON.parse(w).features.f.counters[0].count)).toEqual([1, 2]);
    });

    it('treats a retry as the same payload whether gzip or plain, spaced or reordered, and writes only what is missing', async () => {
      const plain = JSON.stringify(payload);
      const spaced = '[\n' + payload.map((e) => JSON.stringify(e, Object.keys(e).reverse(), 2)).join(',\n') + ']';
      // As the controller does: the decoded text goes along, so records keep the events' JSON as sent.
      const send = (body: Buffer, encoding: string | undefined) => service.ingest(environment, 'acme', service.decode(body, encoding), 'retry');
      stream.plans = [[1], ...Array<'all'>(10).fill('all')];
      await expect(send(gzipSync(plain), 'gzip')).rejects.toBeInstanceOf(Problem);
      stream.plans = [];
      const reply = await send(Buffer.from(spaced), undefined);
      expect(reply.response).toEqual({ accepted: 2, rejected: [] });
      const again = await send(Buffer.from(plain), 'identity');
      expect(again).toEqual(reply);
      expect(writtenIndexes(stream)).toEqual([0, 1]);
      expect(new Set(stream.written.map((w) => JSON.parse(w).payloadId)).size).toBe(1);
      expect(await metric('flagstream_payloads_deduplicated_total')).toBe(1);
      expect(await metric('flagstream_payload_ids_reused_total')).toBe(0);
    });

    it('gives payloads without an ID a payloadId of their own each', async () => {
      await service.ingest(environment, 'acme', payload, undefined);
      await service.ingest(environment, 'acme', payload, undefined);
      expect(stream.written).toHaveLength(4);
      expect(new Set(stream.written.map((w) => JSON.parse(w).payloadId)).size).toBe(2);
    });
  });
});

describe('canonicalJsonHash', () => {
  it('ignores key order and spacing, and sees every other difference', () => {
    expect(canonicalJsonHash(JSON.parse('{"a":1,"b":[1,{"y":null,"x":"s"}]}'))).toBe(canonicalJsonHash(JSON.parse('{ "b": [1, {"x": "s", "y": null}], "a": 1 }')));
    const base = canonicalJsonHash([{ a: 1 }]);
    for (const other of [[{ a: 2 }], [{ a: '1' }], [{ a: 1 }, {}], [{ b: 1 }], [[{ a: 1 }]], [{ a: 1, b: null }], [{ 'a":1,"b': 1 }]]) {
      expect(canonicalJsonHash(other)).not.toBe(base);
    }
    expect(canonicalJsonHash([])).not.toBe(canonicalJsonHash({}));
  });

  it('hashes a deeply nested body without overflowing the stack', () => {
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000));
    expect(canonicalJsonHash(deep)).toMatch(/^[0-9a-f]{64}$/);
  });
});
