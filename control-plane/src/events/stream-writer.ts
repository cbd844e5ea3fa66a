import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { Histogram } from 'prom-client';
import { CONFIG, Config } from '../config/config';
import { Problem } from '../common/problem';
import { MetricsService } from '../metrics/metrics.service';
import { StreamService } from '../stream/kinesis';
import type { PayloadRecord } from './event-encoder';

export type { PayloadRecord };


/** Kinesis limits: 500 records and 5 MiB per PutRecords call. */
const MAX_CALL_RECORDS = 500;
const MAX_CALL_BYTES = 5 * 1024 * 1024;
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2000;

interface Write {
  tenant: string;
  bytes: number;
  /** Records not yet taken by the stream. */
  remaining: number;
  deadline: number;
  retryDelayMs: number;
  done: boolean;
  /** Records of it in a call now. */
  inFlight: number;
  settle: () => void;
  onWritten: (indexes: number[]) => void;
  resolve: () => void;
  reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
}

interface Queued {
  write: Write;
  record: PayloadRecord;
}

interface Waiter {
  tenant: string;
  bytes: number;
  admit: () => void;
}

/**
 * The events API's one way onto the events stream (docs/ingest.md). Payloads' records wait in a
 * queue per tenant; up to FLAGSTREAM_STREAM_WRITE_CONCURRENCY PutRecords calls take from them in
 * turn, so concurrent payloads share calls and one tenant's flood does not queue ahead of
 * another's payload. Records the stream refuses go back to their queue after a backoff. A
 * payload not written whole by its deadline gets a 503 (what was written stays in the ledger,
 * so its retry writes only the rest). Memory is bounded: the records waiting for or in a call
 * hold at most FLAGSTREAM_INGEST_MAX_INFLIGHT_BYTES, a tenant at most half of it; a payload
 * past that waits for room until its deadline.
 */
@Injectable()
export class StreamWriter implements OnModuleDestroy {
  private readonly logger = new Logger('StreamWriter');
  private readonly queues = new Map<string, Queued[]>();
  /** Tenants in the order their queues are served. */
  private turn: string[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly tenantBytes = new Map<string, number>();
  private heldBytes = 0;
  private queuedRecords = 0;
  private calls = 0;
  private readonly latency: Histogram;
  private stopped = false;
  private pumpScheduled = false;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly stream: StreamService,
    private readonly metrics: MetricsService,
  ) {
    this.latency = metrics.histogram('flagstream_stream_write_seconds', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15]);
    metrics.gauge('flagstream_stream_queue_records', () => [{ labels: {}, value: this.queuedRecords }]);
    metrics.gauge('flagstream_stream_queue_bytes', () => [{ labels: {}, value: this.heldBytes }]);
    metrics.gauge('flagstream_stream_inflight_calls', () => [{ labels: {}, value: this.calls }]);
    metrics.gauge('flagstream_ingest_waiting_payloads', () => [{ labels: {}, value: this.waiters.length }]);
    metrics.inc('flagstream_stream_write_retries_total', 0);
    metrics.inc('flagstream_stream_throttles_total', 0, { code: 'ProvisionedThroughputExceededException' });
    for (const reason of ['deadline', 'inflight-limit']) metrics.inc('flagstream_ingest_rejected_total', 0, { reason });
  }

  onModuleDestroy() {
    this.stopped = true;
  }

  /** Bytes of records waiting for or in a call, in all and for one tenant. */
  held(tenant?: string): number {
    return tenant === undefined ? this.heldBytes : this.tenantBytes.get(tenant) ?? 0;
  }

  /**
   * Writes a payload's records; resolves once the stream took every one, calling `onWritten`
   * with the indexes of each record as it lands. Rejects with a 503 Problem at `deadline`.
   * `hold` gets, at once, a promise that settles when no record of the payload is waiting or
   * in a call any more: after a 503, a call in flight may still land (and call `onWritten`).
   */
  async write(tenant: string, records: PayloadRecord[], deadline: number, onWritten: (indexes: number[]) => void, hold?: (settled: Promise<void>) => void): Promise<void> {
    let settle = () => {};
    hold?.(new Promise<void>((resolve) => (settle = resolve)));
    if (records.length === 0) return settle();
    const bytes = records.reduce((sum, r) => sum + r.data.length + r.partitionKey.length, 0);
    try {
      await this.admit(tenant, bytes, deadline);
    } catch (error) {
      settle();
      throw error;
    }
    return new Promise<void>((resolve, reject) => {
      const write: Write = { tenant, bytes, remaining: records.length, deadline, retryDelayMs: FIRST_RETRY_MS, done: false, inFlight: 0, settle, onWritten, resolve, reject };
      write.timer = setTimeout(() => this.expire(write), Math.max(0, deadline - Date.now()));
      for (const record of records) this.enqueue({ write, record });
      this.schedulePump();
    });
  }

  /**
   * Waits until the payload's bytes fit under the limits (an empty writer takes any payload).
   * Behind a payload of the same tenant that waits, so a tenant's payloads keep their order.
   */
  private admit(tenant: string, bytes: number, deadline: number): Promise<void> {
    if (this.fits(tenant, bytes) && !this.waiters.some((w) => w.tenant === tenant)) {
      this.hold(tenant, bytes);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        tenant,
        bytes,
        admit: () => {
          clearTimeout(timer);
          this.hold(tenant, bytes);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        this.metrics.inc('flagstream_ingest_rejected_total', 1, { reason: 'inflight-limit' });
        reject(unavailable(`the events API holds its limit of ${this.config.ingestMaxInflightBytes} bytes waiting for the stream`));
      }, Math.max(0, deadline - Date.now()));
      this.waiters.push(waiter);
    });
  }

  private fits(tenant: string, bytes: number): boolean {
    const limit = this.config.ingestMaxInflightBytes;
    const tenantHeld = this.tenantBytes.get(tenant) ?? 0;
    // Alone, any payload fits: one larger than the limit (up to FLAGSTREAM_MAX_BODY_BYTES) must still go through.
    if (this.heldBytes === 0) return true;
    return this.heldBytes + bytes <= limit && (tenantHeld === 0 || tenantHeld + bytes <= limit / 2);
  }

  private hold(tenant: string, bytes: number): void {
    this.heldBytes += bytes;
    this.tenantBytes.set(tenant, (this.tenantBytes.get(tenant) ?? 0) + bytes);
  }

  private release(tenant: string, bytes: number): void {
    this.heldBytes -= bytes;
    const left = (this.tenantBytes.get(tenant) ?? 0) - bytes;
    if (left > 0) this.tenantBytes.set(tenant, left);
    else this.tenantBytes.delete(tenant);
    // Whoever fits now, in arrival order: a tenant at its share does not hold up the others.
    for (let i = 0; i < this.waiters.length; ) {
      const waiter = this.waiters[i];
      if (this.fits(waiter.tenant, waiter.bytes)) {
        this.waiters.splice(i, 1);
        waiter.admit();
      } else i++;
    }
  }

  private enqueue(item: Queued): void {
    let queue = this.queues.get(item.write.tenant);
    if (!queue) {
      queue = [];
      this.queues.set(item.write.tenant, queue);
      this.turn.push(item.write.tenant);
    }
    queue.push(item);
    this.queuedRecords++;
  }

  /**
   * Starts calls once the payloads being handled in this turn of the event loop have queued their
   * records: under load the API reads many bodies per turn, and one call for all of them costs the
   * stream (and the API) far less than a call each.
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Starts calls while there are records and room for another call. */
  private pump(): void {
    while (!this.stopped && this.calls < this.config.streamWriteConcurrency && this.queuedRecords > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.calls++;
      void this.send(batch).finally(() => {
        this.calls--;
        this.pump();
      });
    }
  }

  /** Up to the call limits, a record from each tenant's queue in turn. */
  private takeBatch(): Queued[] {
    const batch: Queued[] = [];
    let bytes = 0;
    while (batch.length < MAX_CALL_RECORDS && this.turn.length > 0) {
      const tenant = this.turn.shift()!;
      const queue = this.queues.get(tenant)!;
      const next = queue[0];
      const size = next.record.data.length + next.record.partitionKey.length;
      if (batch.length > 0 && bytes + size > MAX_CALL_BYTES) {
        this.turn.unshift(tenant);
        break;
      }
      queue.shift();
      this.queuedRecords--;
      if (queue.length) this.turn.push(tenant);
      else this.queues.delete(tenant);
      if (next.write.done) continue; // expired while queued: its bytes were released then
      next.write.inFlight++;
      batch.push(next);
      bytes += size;
    }
    return batch;
  }

  private async send(batch: Queued[]): Promise<void> {
    const stopTimer = this.latency.startTimer();
    const outcome = await this.stream.putRecords(
      this.config.eventsStream,
      batch.map(({ record }) => ({ Data: record.data, PartitionKey: record.partitionKey })),
    );
    stopTimer();
    const failed = new Map(outcome.failed.map((index, i) => [index, outcome.errorCodes[i]]));
    for (const code of failed.values()) this.metrics.inc('flagstream_stream_throttles_total', 1, { code });
    const retries = new Map<Write, PayloadRecord[]>();
    batch.forEach(({ write, record }, i) => {
      write.inFlight--;
      const recordBytes = record.data.length + record.partitionKey.length;
      if (!failed.has(i)) {
        // Recorded even after a 503: the payload's retry then writes only the rest.
        write.onWritten(record.indexes);
        write.remaining--;
        if (!write.done) {
          write.bytes -= recordBytes;
          this.release(write.tenant, recordBytes);
          if (write.remaining === 0) this.finish(write);
        }
        return;
      }
      if (write.done) return;
      this.metrics.inc('flagstream_stream_write_retries_total');
      retries.set(write, [...(retries.get(write) ?? []), record]);
    });
    // Payloads answered already (a 503) whose last call just returned: their lock may go.
    for (const write of new Set(batch.map((q) => q.write))) if (write.done && write.inFlight === 0) write.settle();
    // A payload's refused records go back together, after its backoff.
    for (const [write, records] of retries) {
      const delay = write.retryDelayMs;
      write.retryDelayMs = Math.min(write.retryDelayMs * 2, MAX_RETRY_MS);
      setTimeout(() => {
        if (write.done) return;
        for (const record of records) this.enqueue({ write, record });
        this.pump();
      }, delay);
    }
  }

  private finish(write: Write): void {
    write.done = true;
    clearTimeout(write.timer);
    if (write.inFlight === 0) write.settle();
    write.resolve();
  }

  /** The deadline passed: a 503, and the payload's records still waiting give up their room. */
  private expire(write: Write): void {
    if (write.done) return;
    write.done = true;
    if (write.inFlight === 0) write.settle();
    this.release(write.tenant, write.bytes);
    write.bytes = 0;
    this.metrics.inc('flagstream_ingest_rejected_total', 1, { reason: 'deadline' });
    this.logger.warn(`the events stream did not take ${write.remaining} record(s) of a payload of tenant ${write.tenant} before the write deadline; answering 503`);
    write.reject(unavailable('the events stream did not take the payload before the write deadline'));
  }
}

function unavailable(why: string): Problem {
  return new Problem(503, 'Service Unavailable', `The event stream cannot take the payload now (${why}); send it again with the same X-LaunchDarkly-Payload-ID.`, undefined, { 'Retry-After': '1' });
}
