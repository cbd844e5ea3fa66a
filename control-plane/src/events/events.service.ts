import { Inject, Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { createHash, randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { SCHEMA_IDS, SdkEvent } from '@flagstream/schemas';
import { CONFIG, Config } from '../config/config';
import { KeyedLock } from '../common/keyed-lock';
import { Problem } from '../common/problem';
import { fieldErrors, validatorFor } from '../common/schema-validator';
import { MetricsService } from '../metrics/metrics.service';
import { StreamService } from '../stream/kinesis';
import type { Environment } from '../tenants/tenants.repository';
import { toEventRecord } from './event-record';
import { canonicalJsonHash, streamPayloadId } from './payload-hash';
import { PAYLOAD_LEDGER, PayloadLedger } from './payload-ledger.repository';

export interface BulkResponse {
  accepted: number;
  rejected: { index: number; error: string }[];
}

/** What an ingest answers, and the receive time its events were stamped with (a retry: the first try's). */
export interface Ingested {
  response: BulkResponse;
  receivedAt: number;
}

/** Kinesis limits: 500 records and 5 MiB per PutRecords call, 1 MiB per record. */
const MAX_BATCH_RECORDS = 500;
const MAX_BATCH_BYTES = 5 * 1024 * 1024 - 64 * 1024;
const MAX_RECORD_BYTES = 1024 * 1024 - 1024;
const MAX_PAYLOAD_ID_LENGTH = 200;

@Injectable()
export class EventsService {
  private readonly logger = new Logger('Events');
  /** One write at a time per payload ID: an SDK retry may arrive while the first try is still writing. */
  private readonly writes = new KeyedLock();

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(PAYLOAD_LEDGER) private readonly ledger: PayloadLedger,
    private readonly stream: StreamService,
    private readonly metrics: MetricsService,
  ) {
    // Shown at 0 from the start, so an alert on their rate needs no first event.
    for (const name of ['flagstream_events_late_total', 'flagstream_events_clock_ahead_total', 'flagstream_payload_ids_reused_total']) metrics.inc(name, 0);
  }

  /** Decodes the raw body (gzip or plain) within the size limit and parses it as JSON. */
  decode(body: Buffer, contentEncoding: string | undefined): unknown {
    let bytes = body;
    const encoding = (contentEncoding ?? 'identity').trim().toLowerCase();
    if (encoding === 'gzip' || encoding === 'x-gzip') {
      try {
        bytes = gunzipSync(body, { maxOutputLength: this.config.maxBodyBytes });
      } catch (error) {
        if (error instanceof RangeError || (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw this.tooLarge();
        throw new Problem(400, 'Bad Request', 'The body is not valid gzip.');
      }
    } else if (encoding !== 'identity') {
      throw new Problem(415, 'Unsupported Media Type', `Content-Encoding "${encoding}" is not supported; send gzip or no encoding.`);
    }
    if (bytes.length > this.config.maxBodyBytes) throw this.tooLarge();
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new Problem(400, 'Bad Request', 'The body is not valid JSON.', [{ path: '/', message: 'must be a JSON array of events' }]);
    }
  }

  tooLarge(): Problem {
    return new Problem(413, 'Content Too Large', `The body, decompressed, is over the limit of ${this.config.maxBodyBytes} bytes.`);
  }

  /**
   * Writes a payload's valid events to the stream and answers once every one is in.
   * With an X-LaunchDarkly-Payload-ID, a payload is identified by that ID and the hash
   * of its events (see payload-hash.ts): a true retry, also gzip instead of plain,
   * writes only what is missing and counts once; another body under a reused ID is a
   * payload of its own, written and counted, with its own stream payloadId.
   */
  async ingest(environment: Environment, tenantKey: string, payload: unknown, payloadIdHeader: string | undefined): Promise<Ingested> {
    if (!Array.isArray(payload)) throw Problem.invalid([{ path: '/', message: 'must be a JSON array of events' }], 'The body is not a JSON array.');
    if (payloadIdHeader !== undefined && (payloadIdHeader.length === 0 || payloadIdHeader.length > MAX_PAYLOAD_ID_LENGTH)) {
      throw Problem.invalid([{ path: 'X-LaunchDarkly-Payload-ID', message: `must be 1 to ${MAX_PAYLOAD_ID_LENGTH} characters` }]);
    }
    // Without a header every request is a payload of its own: a random ID needs no hash.
    const payloadId = payloadIdHeader === undefined ? randomUUID() : streamPayloadId(payloadIdHeader, canonicalJsonHash(payload));
    // Behind a write of the same payload still in flight, then see what it left to do.
    return this.writes.run(`${environment.id}\u0000${payloadId}`, () => this.ingestOnce(environment, tenantKey, payload, payloadId, payloadIdHeader));
  }

  private async ingestOnce(
    environment: Environment,
    tenantKey: string,
    payload: unknown[],
    payloadId: string,
    headerId: string | undefined,
  ): Promise<Ingested> {
    const known = this.ledger.find(environment.tenantId, environment.id, payloadId);
    if (known?.complete) {
      this.metrics.inc('flagstream_payloads_deduplicated_total');
      return { response: known.response as BulkResponse, receivedAt: known.receivedAt };
    }
    if (!known && headerId !== undefined && this.ledger.otherBodySeen(environment.tenantId, environment.id, headerId, payloadId)) {
      this.metrics.inc('flagstream_payload_ids_reused_total');
      this.logger.warn(`payload ID "${headerId}" (environment ${environment.id}) came again with other events; written as its own payload ${payloadId}`);
    }

    const validate = validatorFor(SCHEMA_IDS.sdkEvent);
    const rejected: BulkResponse['rejected'] = [];
    const entries: { index: number; entry: PutRecordsRequestEntry }[] = [];
    /** Per index: whether the event is late, or its SDK clock ahead (counted once, when written). */
    const flags = new Map<number, { late: boolean; clockAhead: boolean }>();
    // A retry stamps its records with the first try's time, so every record of a payload agrees.
    const receivedAt = known?.receivedAt ?? Date.now();
    const horizonMs = this.config.latenessHorizonSeconds * 1000;
    payload.forEach((event, index) => {
      if (!validate(event)) {
        const problems = fieldErrors(validate.errors);
        rejected.push({ index, error: problems.map((p) => `${p.path} ${p.message}`).join('; ') });
        return;
      }
      const record = toEventRecord(event as SdkEvent, { tenant: tenantKey, environment: environment.key, payloadId, eventIndex: index, receivedAt }, horizonMs);
      const data = Buffer.from(JSON.stringify(record), 'utf8');
      if (data.length > MAX_RECORD_BYTES) {
        rejected.push({ index, error: `the event is over ${MAX_RECORD_BYTES} bytes` });
        return;
      }
      const clockAhead = record.eventTime !== record.sdkTime;
      if (record.late || clockAhead) flags.set(index, { late: record.late, clockAhead });
      const partitionKey = createHash('sha1').update(`${payloadId}:${index}`).digest('hex');
      entries.push({ index, entry: { Data: data, PartitionKey: partitionKey } });
    });

    const written = new Set(known?.written ?? []);
    const pending = entries.filter((e) => !written.has(e.index));
    await this.writeAll(pending, (indexes) => {
      indexes.forEach((i) => written.add(i));
      this.ledger.recordWritten(environment.tenantId, environment.id, payloadId, payload.length, written, receivedAt);
      this.countTimes(indexes, flags);
    });

    const response: BulkResponse = { accepted: entries.length, rejected };
    this.ledger.recordWritten(environment.tenantId, environment.id, payloadId, payload.length, written, receivedAt);
    this.ledger.complete(environment.tenantId, environment.id, payloadId, response);
    this.metrics.inc('flagstream_events_accepted_total', entries.length);
    this.metrics.inc('flagstream_events_rejected_total', rejected.length);
    return { response, receivedAt };
  }

  /** flagstream_events_late_total and flagstream_events_clock_ahead_total, for the records just written. */
  private countTimes(indexes: number[], flags: Map<number, { late: boolean; clockAhead: boolean }>): void {
    let late = 0;
    let ahead = 0;
    for (const i of indexes) {
      const f = flags.get(i);
      if (f?.late) late++;
      if (f?.clockAhead) ahead++;
    }
    if (late) this.metrics.inc('flagstream_events_late_total', late);
    if (ahead) this.metrics.inc('flagstream_events_clock_ahead_total', ahead);
  }

  /**
   * Writes every entry, retrying the ones the stream refused with backoff, until the
   * write deadline: a brief stall is absorbed here instead of becoming a 503 that
   * the SDK would retry only once.
   */
  private async writeAll(entries: { index: number; entry: PutRecordsRequestEntry }[], onWritten: (indexes: number[]) => void): Promise<void> {
    const deadline = Date.now() + this.config.writeDeadlineMs;
    let remaining = entries;
    let delay = 100;
    while (remaining.length > 0) {
      const failed: typeof entries = [];
      for (const batch of batches(remaining)) {
        const outcome = await this.stream.putRecords(this.config.eventsStream, batch.map((b) => b.entry));
        const failedSet = new Set(outcome.failed);
        const ok = batch.filter((_, i) => !failedSet.has(i)).map((b) => b.index);
        if (ok.length) onWritten(ok);
        failed.push(...batch.filter((_, i) => failedSet.has(i)));
      }
      remaining = failed;
      if (remaining.length === 0) return;
      this.metrics.inc('flagstream_stream_write_retries_total');
      if (Date.now() + delay > deadline) {
        this.logger.warn(`stream did not take ${remaining.length} event(s) before the deadline; answering 503`);
        throw new Problem(503, 'Service Unavailable', 'The event stream cannot take the payload now; send it again with the same X-LaunchDarkly-Payload-ID.', undefined, { 'Retry-After': '1' });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }

  @Interval(3600_000)
  forgetOldPayloads(): number {
    // Keep payload IDs a little longer than the stream keeps their events.
    return this.ledger.forgetBefore(Date.now() - (this.config.streamRetentionHours + 1) * 3600_000);
  }
}

function* batches<T extends { entry: PutRecordsRequestEntry }>(items: T[]): Generator<T[]> {
  let batch: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = (item.entry.Data?.length ?? 0) + (item.entry.PartitionKey?.length ?? 0);
    if (batch.length === MAX_BATCH_RECORDS || (batch.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size;
  }
  if (batch.length) yield batch;
}
