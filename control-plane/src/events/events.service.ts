import { Inject, Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { CONFIG, Config } from '../config/config';
import { KeyedLock } from '../common/keyed-lock';
import { Problem } from '../common/problem';
import { MetricsService } from '../metrics/metrics.service';
import type { Environment } from '../tenants/tenants.repository';
import { encodePayload, packEvents, PayloadOrigin } from './event-encoder';
import { canonicalJsonHash, streamPayloadId } from './payload-hash';
import { PAYLOAD_LEDGER, PayloadLedger } from './payload-ledger.repository';
import { StreamWriter } from './stream-writer';

export interface BulkResponse {
  accepted: number;
  rejected: { index: number; error: string }[];
}

/**
 * A body as the events API reads it: its JSON text, and what JSON.parse made of it. Both are let
 * go of as soon as the payload's records are made: they are large (a 1,000-event payload is about
 * 2 MB of objects), and kept through the stream write they would be copied by every young
 * garbage collection meanwhile, a large part of the API's CPU under load.
 */
export class DecodedBody {
  constructor(
    public payload: unknown,
    public text: string | undefined,
  ) {}

  release(): void {
    this.payload = undefined;
    this.text = undefined;
  }
}

/** What an ingest answers, and the receive time its events were stamped with (a retry: the first try's). */
export interface Ingested {
  response: BulkResponse;
  receivedAt: number;
}

const MAX_PAYLOAD_ID_LENGTH = 200;

@Injectable()
export class EventsService {
  private readonly logger = new Logger('Events');
  /** One write at a time per payload ID: an SDK retry may arrive while the first try is still writing. */
  private readonly writes = new KeyedLock();

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(PAYLOAD_LEDGER) private readonly ledger: PayloadLedger,
    private readonly writer: StreamWriter,
    private readonly metrics: MetricsService,
  ) {
    // Shown at 0 from the start, so an alert on their rate needs no first event.
    for (const name of ['flagstream_events_late_total', 'flagstream_events_clock_ahead_total', 'flagstream_payload_ids_reused_total']) metrics.inc(name, 0);
  }

  /** Decodes the raw body (gzip or plain) within the size limit and parses it as JSON; ingest() takes the answer. */
  decode(body: Buffer, contentEncoding: string | undefined): DecodedBody {
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
    const text = bytes.toString('utf8');
    try {
      return new DecodedBody(JSON.parse(text), text);
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
   * payload of its own, written and counted, with its own stream payloadId. `payload` is what
   * decode() answers (the records then keep each event's JSON as sent, see encodePayload), or
   * the parsed events themselves.
   */
  async ingest(environment: Environment, tenantKey: string, payload: unknown, payloadIdHeader: string | undefined): Promise<Ingested> {
    const body = payload instanceof DecodedBody ? payload : new DecodedBody(payload, undefined);
    payload = undefined; // from here on only `body` holds it, so it can be let go of (DecodedBody)
    if (!Array.isArray(body.payload)) throw Problem.invalid([{ path: '/', message: 'must be a JSON array of events' }], 'The body is not a JSON array.');
    if (payloadIdHeader !== undefined && (payloadIdHeader.length === 0 || payloadIdHeader.length > MAX_PAYLOAD_ID_LENGTH)) {
      throw Problem.invalid([{ path: 'X-LaunchDarkly-Payload-ID', message: `must be 1 to ${MAX_PAYLOAD_ID_LENGTH} characters` }]);
    }
    // Without a header every request is a payload of its own: a random ID needs no hash.
    const payloadId = payloadIdHeader === undefined ? randomUUID() : streamPayloadId(payloadIdHeader, canonicalJsonHash(body.payload));
    // Behind a write of the same payload still in flight, then see what it left to do.
    // After a 503 the lock stays held until the payload's calls in flight have landed or failed,
    // so a quick retry sees in the ledger what they wrote and writes only the rest.
    return this.writes.run(`${environment.id}\u0000${payloadId}`, (hold) => this.ingestOnce(environment, tenantKey, body, payloadId, payloadIdHeader, hold));
  }

  private async ingestOnce(
    environment: Environment,
    tenantKey: string,
    body: DecodedBody,
    payloadId: string,
    headerId: string | undefined,
    hold: (until: Promise<unknown>) => void,
  ): Promise<Ingested> {
    // Without an X-LaunchDarkly-Payload-ID a payload cannot come again (its payloadId is random):
    // the ledger has nothing to say about it, and is told nothing.
    const tracked = headerId !== undefined;
    const known = tracked ? this.ledger.find(environment.tenantId, environment.id, payloadId) : undefined;
    if (known?.complete) {
      this.metrics.inc('flagstream_payloads_deduplicated_total');
      return { response: known.response as BulkResponse, receivedAt: known.receivedAt };
    }
    if (!known && tracked && this.ledger.otherBodySeen(environment.tenantId, environment.id, headerId, payloadId)) {
      this.metrics.inc('flagstream_payload_ids_reused_total');
      this.logger.warn(`payload ID "${headerId}" (environment ${environment.id}) came again with other events; written as its own payload ${payloadId}`);
    }

    // A retry stamps its records with the first try's time, so every record of a payload agrees.
    const receivedAt = known?.receivedAt ?? Date.now();
    const written = new Set(known?.written ?? []);
    const { eventCount, records, times, accepted, rejected } = this.prepare(body, { tenant: tenantKey, environment: environment.key, payloadId, receivedAt }, written);
    // The ledger learns what landed once per try: at completion, or, after a 503, once the try's
    // last call in flight returned (the payload's lock is held until then, so its retry reads it).
    // A crash in between loses only that knowledge: a retry writes those events again, and the
    // jobs deduplicate on (payloadId, eventIndex).
    let wrote!: (whole: boolean) => void;
    const outcome = new Promise<boolean>((resolve) => (wrote = resolve));
    const onSettled = (settled: Promise<void>) =>
      hold(Promise.all([settled, outcome]).then(([, whole]) => whole || !tracked || this.ledger.recordWritten(environment.tenantId, environment.id, payloadId, eventCount, written, receivedAt)));
    try {
      await this.writer.write(tenantKey, records, Date.now() + this.config.writeDeadlineMs, (indexes) => {
        indexes.forEach((i) => written.add(i));
        this.countTimes(indexes, times);
      }, onSettled);
      wrote(true);
    } catch (error) {
      wrote(false);
      throw error;
    }

    const response: BulkResponse = { accepted, rejected };
    if (tracked) this.ledger.complete(environment.tenantId, environment.id, payloadId, eventCount, written, receivedAt, response);
    this.metrics.inc('flagstream_events_accepted_total', accepted);
    this.metrics.inc('flagstream_events_rejected_total', rejected.length);
    return { response, receivedAt };
  }

  /**
   * The stream records of a payload's events not `written` yet, and what its answer needs; the
   * body is let go of here, before the write (DecodedBody).
   */
  private prepare(body: DecodedBody, origin: PayloadOrigin, written: Set<number>) {
    const payload = body.payload as unknown[];
    const { events, rejected } = encodePayload(payload, origin, this.config.latenessHorizonSeconds * 1000, body.text);
    const eventCount = payload.length;
    body.release();
    const pending = events.filter((e) => !written.has(e.index));
    const times = new Map(pending.filter((e) => e.late || e.clockAhead).map((e) => [e.index, { late: e.late, clockAhead: e.clockAhead }]));
    return { eventCount, records: packEvents(pending, this.config.streamRecordBytes), times, accepted: events.length, rejected };
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

  @Interval(3600_000)
  forgetOldPayloads(): number {
    // Keep payload IDs a little longer than the stream keeps their events.
    return this.ledger.forgetBefore(Date.now() - (this.config.streamRetentionHours + 1) * 3600_000);
  }
}
