import type { PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { loadConfig } from '../config/config';
import { Problem } from '../common/problem';
import { MetricsService } from '../metrics/metrics.service';
import type { PutOutcome, StreamService } from '../stream/kinesis';
import { PayloadRecord, StreamWriter } from './stream-writer';

/**
 * The writer's promises: payloads share calls, refused records are put again, a stalled
 * stream gives a 503 at the deadline and not before, memory stays under the in-flight limit,
 * and one tenant's flood neither fills the limit nor queues ahead of another tenant.
 * The stream here answers on cue (throttles and stalls cannot be provoked on the emulator).
 */
class ScriptedStream {
  calls: { keys: string[] }[] = [];
  /** Per call: the entry indexes to refuse as throttled. */
  refusals: number[][] = [];
  stalled = false;
  private releases: (() => void)[] = [];

  async putRecords(_stream: string, entries: PutRecordsRequestEntry[]): Promise<PutOutcome> {
    if (this.stalled) await new Promise<void>((resolve) => this.releases.push(resolve));
    this.calls.push({ keys: entries.map((e) => e.PartitionKey!) });
    const failed = (this.refusals.shift() ?? []).filter((i) => i < entries.length);
    return { failed, errorCodes: failed.map(() => 'ProvisionedThroughputExceededException') };
  }

  resume(): void {
    this.stalled = false;
    this.releases.splice(0).forEach((release) => release());
  }
}

/** Past the turn of the event loop in which the writer starts its calls. */
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 5));
const record = (key: string, bytes: number, indexes: number[]): PayloadRecord => ({ data: Buffer.alloc(bytes, 1), partitionKey: key, indexes });
const metricValue = (text: string, line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

describe('StreamWriter', () => {
  let stream: ScriptedStream;
  let metrics: MetricsService;
  const writer = (settings: Record<string, string> = {}) =>
    new StreamWriter(loadConfig({ FLAGSTREAM_DATA_DIR: '/tmp/unused', ...settings }), stream as unknown as StreamService, metrics);

  beforeEach(() => {
    stream = new ScriptedStream();
    metrics = new MetricsService();
  });

  it('writes every record, reports each one as it lands and shares calls between payloads', async () => {
    const w = writer({ FLAGSTREAM_STREAM_WRITE_CONCURRENCY: '1' });
    const landed: number[] = [];
    const deadline = Date.now() + 5000;
    const first = w.write('acme', [record('a1', 100, [0, 1]), record('a2', 100, [2])], deadline, (i) => landed.push(...i));
    await nextTurn();
    await Promise.all([
      first,
      w.write('acme', [record('b1', 100, [0])], deadline, (i) => landed.push(...i)),
      w.write('globex', [record('c1', 100, [0])], deadline, (i) => landed.push(...i)),
    ]);
    expect(landed.sort()).toEqual([0, 0, 0, 1, 2]);
    // The first call took what was queued then; the other payloads waited for it and went together.
    expect(stream.calls.map((c) => c.keys)).toEqual([['a1', 'a2'], ['b1', 'c1']]);
    expect(w.held()).toBe(0);
  });

  it('puts payloads that come in the same turn of the event loop into one call, tenants in turn', async () => {
    const w = writer();
    const deadline = Date.now() + 5000;
    await Promise.all([
      w.write('acme', [record('a1', 100, [0, 1]), record('a2', 100, [2])], deadline, () => undefined),
      w.write('acme', [record('b1', 100, [0])], deadline, () => undefined),
      w.write('globex', [record('c1', 100, [0])], deadline, () => undefined),
    ]);
    expect(stream.calls.map((c) => c.keys)).toEqual([['a1', 'c1', 'a2', 'b1']]);
  });

  it('puts refused records again and counts the throttles', async () => {
    const w = writer();
    stream.refusals = [[1], [0]];
    const landed: number[] = [];
    await w.write('acme', [record('a1', 10, [0]), record('a2', 10, [1])], Date.now() + 5000, (i) => landed.push(...i));
    expect(landed).toEqual([0, 1]);
    expect(stream.calls.map((c) => c.keys)).toEqual([['a1', 'a2'], ['a2'], ['a2']]);
    const text = await metrics.render();
    expect(metricValue(text, 'flagstream_stream_throttles_total{code="ProvisionedThroughputExceededException"}')).toBe(2);
    expect(metricValue(text, 'flagstream_stream_write_retries_total')).toBe(2);
  });

  it('answers 503 with Retry-After at the deadline of a stalled stream, not before, and keeps what lands late', async () => {
    const w = writer();
    stream.stalled = true;
    const landed: number[] = [];
    const started = Date.now();
    const error = await w.write('acme', [record('a1', 10, [0])], started + 300, (i) => landed.push(...i)).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(error).toBeInstanceOf(Problem);
    expect((error as Problem).status).toBe(503);
    expect((error as Problem).headers).toEqual({ 'Retry-After': '1' });
    expect(w.held()).toBe(0);
    // The call in flight lands after the 503: the ledger still learns of it, so a retry writes only the rest.
    stream.resume();
    await new Promise((r) => setTimeout(r, 20));
    expect(landed).toEqual([0]);
    const text = await metrics.render();
    expect(metricValue(text, 'flagstream_ingest_rejected_total{reason="deadline"}')).toBe(1);
  });

  it('holds at most FLAGSTREAM_INGEST_MAX_INFLIGHT_BYTES: a payload past it waits, then is written once there is room', async () => {
    const MiB = 1024 * 1024;
    const w = writer({ FLAGSTREAM_INGEST_MAX_INFLIGHT_BYTES: String(2 * MiB) });
    stream.stalled = true;
    const deadline = Date.now() + 5000;
    const first = w.write('acme', [record('a', 0.9 * MiB, [0])], deadline, () => undefined);
    const second = w.write('globex', [record('b', 0.9 * MiB, [0])], deadline, () => undefined);
    let thirdDone = false;
    const third = w.write('initech', [record('c', 0.9 * MiB, [0])], deadline, () => undefined).then(() => (thirdDone = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(w.held()).toBeLessThanOrEqual(2 * MiB);
    expect(thirdDone).toBe(false);
    expect(metricValue(await metrics.render(), 'flagstream_ingest_waiting_payloads')).toBe(1);
    stream.resume();
    await Promise.all([first, second, third]);
    expect(stream.calls.flatMap((c) => c.keys).sort()).toEqual(['a', 'b', 'c']);
    expect(w.held()).toBe(0);
  });

  it('gives one tenant at most half the limit, so another tenant still gets in while it floods', async () => {
    const MiB = 1024 * 1024;
    const w = writer({ FLAGSTREAM_INGEST_MAX_INFLIGHT_BYTES: String(4 * MiB) });
    stream.stalled = true;
    // The flood's first payloads fill its half; the last two, with a nearer deadline, wait for room in vain.
    const deadline = (i: number) => Date.now() + (i < 4 ? 5000 : 400);
    const flood = Array.from({ length: 6 }, (_, i) => w.write('flooder', [record(`f${i}`, 0.5 * MiB, [0])], deadline(i), () => undefined).catch((e: unknown) => e));
    await new Promise((r) => setTimeout(r, 20));
    expect(w.held('flooder')).toBeLessThanOrEqual(2 * MiB);
    expect(w.held('flooder')).toBeGreaterThan(MiB);
    const honest = w.write('honest', [record('h', 0.5 * MiB, [0])], Date.now() + 5000, () => undefined);
    await new Promise((r) => setTimeout(r, 20));
    expect(w.held('honest')).toBeGreaterThan(0);
    // The flood past its share gets 503s at its deadline; the honest payload is written once the stream moves.
    const waited = await Promise.all(flood.slice(4));
    expect(waited.map((o) => o instanceof Problem && o.status)).toEqual([503, 503]);
    expect(metricValue(await metrics.render(), 'flagstream_ingest_rejected_total{reason="inflight-limit"}')).toBe(2);
    stream.resume();
    await honest;
    expect(await Promise.all(flood.slice(0, 4))).toEqual([undefined, undefined, undefined, undefined]);
  });

  it("takes tenants' queues in turn, so a flood does not queue ahead of another tenant's payload", async () => {
    const w = writer({ FLAGSTREAM_STREAM_WRITE_CONCURRENCY: '1' });
    stream.stalled = true;
    const deadline = Date.now() + 5000;
    const blocker = w.write('flooder', [record('f0', 10, [0])], deadline, () => undefined);
    await nextTurn();
    const flood = w.write('flooder', Array.from({ length: 600 }, (_, i) => record(`f${i + 1}`, 10, [i])), deadline, () => undefined);
    const honest = w.write('honest', [record('h', 10, [0])], deadline, () => undefined);
    await new Promise((r) => setTimeout(r, 20));
    stream.resume();
    await Promise.all([blocker, flood, honest]);
    // After the call that was in flight, the next one holds the honest record next to the flood's first.
    expect(stream.calls[1].keys.slice(0, 2)).toEqual(['f1', 'h']);
    expect(stream.calls[1].keys).toHaveLength(500);
    expect(stream.calls.flatMap((c) => c.keys)).toHaveLength(602);
  });

  it('shows queue depth, held bytes and write latency on /metrics', async () => {
    const w = writer();
    await w.write('acme', [record('a', 10, [0])], Date.now() + 5000, () => undefined);
    const text = await metrics.render();
    for (const name of ['flagstream_stream_queue_records', 'flagstream_stream_queue_bytes', 'flagstream_stream_inflight_calls', 'flagstream_ingest_waiting_payloads']) {
      expect(metricValue(text, name)).toBe(0);
    }
    expect(metricValue(text, 'flagstream_stream_write_seconds_count')).toBe(1);
  });
});
