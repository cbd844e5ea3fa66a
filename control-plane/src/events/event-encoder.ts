import { randomUUID } from 'node:crypto';
import { SCHEMA_IDS, SdkEvent } from '@flagstream/schemas';
import { fieldErrors, quickValidatorFor, validatorFor } from '../common/schema-validator';
import { AggregatedRecordBuilder, MAX_KINESIS_RECORD_BYTES } from '../stream/aggregated-record';
import { boundedTimes, contextKeyOf, contextKeysOf, sdkTimeOf, toEventRecord } from './event-record';
import { arrayElementSpans, ArraySpans } from './json-array-spans';

/** Kinesis takes records of up to 1 MiB; an event whose record is larger is rejected (some room left for the key). */
export const MAX_RECORD_BYTES = 1024 * 1024 - 1024;

/** Where a payload came from: what every one of its records carries besides the event. */
export interface PayloadOrigin {
  tenant: string;
  environment: string;
  /** The stream payloadId (streamPayloadId in payload-hash.ts, or a random UUID). */
  payloadId: string;
  /** When the events API received the payload (server clock, ms); a retry's is the first try's. */
  receivedAt: number;
}

export interface EncodedEvent {
  /** The event's index in the payload: its record's eventIndex. */
  index: number;
  /**
   * The stream record, UTF-8 JSON: byte for byte JSON.stringify(toEventRecord(event, …)).
   * The records of one payload are views into a few shared buffers, in index order.
   */
  data: Buffer;
  /** Older than receivedAt minus the lateness horizon (record.late). */
  late: boolean;
  /** The SDK's clock was too far ahead: the record's eventTime is receivedAt, not sdkTime. */
  clockAhead: boolean;
}

export interface EncodedPayload {
  /** The valid events' records, in index order. */
  events: EncodedEvent[];
  /** The events refused (schema errors, or a record over MAX_RECORD_BYTES), in index order. */
  rejected: { index: number; error: string }[];
}

/**
 * The fields a stream record writes over an event's own (toEventRecord): `kind` is
 * written with the event's own value, so it changes nothing; any other one, when the
 * event has it, leaves its place in the record to the event's and needs the slow path.
 */
const RECORD_FIELDS = ['tenant', 'environment', 'payloadId', 'eventIndex', 'receivedAt', 'sdkTime', 'eventTime', 'late', 'kind', 'contextKeys', 'contextKey'] as const;
type RecordField = (typeof RECORD_FIELDS)[number];
const RECORD_FIELD_SET: ReadonlySet<string> = new Set(RECORD_FIELDS);

/**
 * Validates a parsed /bulk payload's events against the SDK event schema and encodes
 * each valid one as its stream record: exactly what EventsService did per event
 * (toEventRecord, then JSON.stringify, then UTF-8), rejecting an invalid event with
 * the same message (the schema's field errors, "<path> <message>" joined by "; ") and
 * an event whose record is over MAX_RECORD_BYTES with "the event is over … bytes".
 *
 * Pure, and fast: the schema is asked first by a validator that stops at the first
 * error (same schema, same answer; the full one is asked only about a refused event,
 * for its messages), and a record is written as the event's own JSON with the record's
 * fields appended, which is JSON.stringify(toEventRecord(…)) byte for byte whenever the
 * event has none of those fields of its own (see RECORD_FIELDS); when it has some, the
 * record is written field by field in the order the object spread puts them. `payload`
 * is what JSON.parse gives (JSON values only; holes are skipped as
 * Array.prototype.forEach skips them).
 *
 * The event's own JSON is its text in `sourceText`, the JSON the payload was parsed from,
 * when given (the events API passes the body): no second serialisation. An SDK writes its
 * body with JSON.stringify, so that text is JSON.stringify's, character for character; text
 * written otherwise (spaces, other escapes) gives records of the same JSON value.
 */
export function encodePayload(payload: unknown[], origin: PayloadOrigin, latenessHorizonMs: number, sourceText?: string): EncodedPayload {
  const quickValidate = quickValidatorFor(SCHEMA_IDS.sdkEvent);
  // Each event's own JSON as sent, when the text it was parsed from is at hand and lines up with it.
  let spans = sourceText === undefined ? undefined : arrayElementSpans(sourceText);
  if (spans && spans.length !== payload.length) spans = undefined;
  const { receivedAt } = origin;
  const fixed: FixedFields = {
    tenant: JSON.stringify(origin.tenant),
    environment: JSON.stringify(origin.environment),
    payloadId: JSON.stringify(origin.payloadId),
    receivedAt: jsonNumber(receivedAt),
  };
  // What every record of the payload carries after the event's own fields, up to its index.
  const originHead = `"tenant":${fixed.tenant},"environment":${fixed.environment},"payloadId":${fixed.payloadId},"eventIndex":`;
  const receivedAtField = `,"receivedAt":${fixed.receivedAt},"sdkTime":`;

  const events: EncodedEvent[] = [];
  const rejected: EncodedPayload['rejected'] = [];
  const out = new RecordWriter();
  for (let index = 0; index < payload.length; index++) {
    const event = payload[index];
    if (event === undefined && !(index in payload)) continue;
    if (!quickValidate(event)) {
      const validate = validatorFor(SCHEMA_IDS.sdkEvent);
      if (!validate(event)) {
        rejected.push({ index, error: fieldErrors(validate.errors).map((p) => `${p.path} ${p.message}`).join('; ') });
        continue;
      }
    }
    const sdkEvent = event as SdkEvent;
    const { sdkTime, eventTime, late } = boundedTimes(sdkTimeOf(sdkEvent), receivedAt, latenessHorizonMs);
    const clockAhead = eventTime !== sdkTime;
    let record: string;
    if (hasRecordField(sdkEvent)) {
      record = fieldByField(sdkEvent, fixed, index, sdkTime, eventTime, late, origin, latenessHorizonMs);
    } else {
      const sdkTimeJson = jsonNumber(sdkTime);
      record =
        ownFields(sdkEvent, sourceText, spans, index) +
        originHead +
        index +
        receivedAtField +
        sdkTimeJson +
        ',"eventTime":' +
        (eventTime === sdkTime ? sdkTimeJson : eventTime === receivedAt ? fixed.receivedAt : jsonNumber(eventTime)) +
        (late ? ',"late":true' : ',"late":false') +
        contextFields(sdkEvent);
    }
    // A UTF-16 unit is at most 3 bytes of UTF-8: only a record that long needs counting.
    if (record.length * 3 > MAX_RECORD_BYTES && Buffer.byteLength(record, 'utf8') > MAX_RECORD_BYTES) {
      rejected.push({ index, error: `the event is over ${MAX_RECORD_BYTES} bytes` });
      continue;
    }
    events.push({ index, data: out.write(record), late, clockAhead });
  }
  return { events, rejected };
}

/**
 * Writes records as UTF-8 one after the other into shared chunks, each record's data a view of
 * its bytes: one write per record, far cheaper than a Buffer per record or joining them first.
 * Chunks grow from 64 KiB to 1 MiB, so a small payload takes little and a large one few chunks.
 */
class RecordWriter {
  private chunk = EMPTY;
  private pos = 0;
  private nextChunkBytes = 64 * 1024;

  write(record: string): Buffer {
    // At most 3 bytes of UTF-8 for each UTF-16 unit.
    const room = record.length * 3;
    if (this.pos + room > this.chunk.length) {
      this.chunk = Buffer.allocUnsafe(Math.max(this.nextChunkBytes, room));
      this.nextChunkBytes = Math.min(this.nextChunkBytes * 2, 1024 * 1024);
      this.pos = 0;
    }
    const start = this.pos;
    this.pos += this.chunk.write(record, start, 'utf8');
    return this.chunk.subarray(start, this.pos);
  }
}

/**
 * The record's last fields, `,"contextKeys":…,"contextKey":…}`, or `}` for an event without a
 * context: as toEventRecord writes them (contextKeysOf, contextKeyOf), without building the keys
 * object for the usual single-kind context.
 */
function contextFields(event: SdkEvent): string {
  const context = (event as { context?: { kind?: unknown; key?: unknown } }).context;
  if (context && typeof context === 'object' && context.kind !== 'multi' && typeof context.key === 'string') {
    const kind = typeof context.kind === 'string' ? context.kind : 'user';
    // "__proto__" is no key of contextKeysOf's object (assigning it sets the prototype): its path.
    if (kind !== '__proto__') {
      const key = JSON.stringify(context.key);
      const canonical = kind === 'user' ? key : JSON.stringify(contextKeyOf({ [kind]: context.key }));
      return `,"contextKeys":{${JSON.stringify(kind)}:${key}},"contextKey":${canonical}}`;
    }
  }
  const keys = contextKeysOf(event);
  return keys ? `,"contextKeys":${JSON.stringify(keys)},"contextKey":${JSON.stringify(contextKeyOf(keys))}}` : '}';
}

/**
 * The event's JSON without its closing brace, ready for the record's fields: `{…own fields…,`, or
 * `{` for an event without fields. Its text as sent when there is one (JSON.parse took it, so it
 * is valid JSON of the same value; from an SDK, which writes it with JSON.stringify, the very same
 * characters), else JSON.stringify's.
 */
function ownFields(event: object, text: string | undefined, spans: ArraySpans | undefined, index: number): string {
  const start = spans?.starts[index];
  if (text !== undefined && start !== undefined) {
    let last = spans!.ends[index] - 2; // before the closing brace
    while (text.charCodeAt(last) <= 0x20) last--; // JSON whitespace
    return last === start ? '{' : `${text.slice(start, last + 1)},`;
  }
  const own = JSON.stringify(event);
  return own.length > 2 ? `${own.slice(0, -1)},` : '{';
}

const EMPTY = Buffer.alloc(0);

/** A payload's origin fields as JSON. */
interface FixedFields {
  tenant: string;
  environment: string;
  payloadId: string;
  receivedAt: string;
}

/** JSON.stringify of a number: finite ones as String() writes them, any other as null. */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/** Whether the event has (or inherits) a field the record writes over, other than kind, or its own toJSON. */
function hasRecordField(event: object): boolean {
  return (
    'tenant' in event ||
    'environment' in event ||
    'payloadId' in event ||
    'eventIndex' in event ||
    'receivedAt' in event ||
    'sdkTime' in event ||
    'eventTime' in event ||
    'late' in event ||
    'contextKeys' in event ||
    'contextKey' in event ||
    'toJSON' in event
  );
}

/**
 * The record of an event that has some of the record's fields itself, as JSON.stringify
 * writes `{...event, ...origin, sdkTime, eventTime, late, kind, contextKeys, contextKey}`:
 * the event's own fields in their order, a record field among them with the record's
 * value (or left out when that is undefined), then the record fields it did not have.
 */
function fieldByField(
  event: SdkEvent,
  fixed: FixedFields,
  index: number,
  sdkTime: number,
  eventTime: number,
  late: boolean,
  origin: PayloadOrigin,
  latenessHorizonMs: number,
): string {
  if (typeof (event as { toJSON?: unknown }).toJSON === 'function') {
    // Never in parsed JSON; the record's JSON would be whatever toJSON says.
    return JSON.stringify(toEventRecord(event, { tenant: origin.tenant, environment: origin.environment, payloadId: origin.payloadId, eventIndex: index, receivedAt: origin.receivedAt }, latenessHorizonMs));
  }
  const keys = contextKeysOf(event);
  const valueOf = (field: RecordField): string | undefined => {
    switch (field) {
      case 'tenant':
      case 'environment':
      case 'payloadId':
      case 'receivedAt':
        return fixed[field];
      case 'eventIndex':
        return jsonNumber(index);
      case 'sdkTime':
        return jsonNumber(sdkTime);
      case 'eventTime':
        return jsonNumber(eventTime);
      case 'late':
        return late ? 'true' : 'false';
      case 'kind':
        return JSON.stringify(event.kind);
      case 'contextKeys':
        return keys ? JSON.stringify(keys) : undefined;
      case 'contextKey':
        return keys ? JSON.stringify(contextKeyOf(keys)) : undefined;
    }
  };
  const parts: string[] = [];
  const own = new Set<string>();
  for (const key of Object.keys(event)) {
    let value: string | undefined;
    if (RECORD_FIELD_SET.has(key)) {
      own.add(key);
      value = valueOf(key as RecordField);
    } else {
      value = JSON.stringify((event as unknown as Record<string, unknown>)[key]);
    }
    if (value !== undefined) parts.push(`${JSON.stringify(key)}:${value}`);
  }
  for (const field of RECORD_FIELDS) {
    if (own.has(field)) continue;
    const value = valueOf(field);
    if (value !== undefined) parts.push(`"${field}":${value}`);
  }
  return `{${parts.join(',')}}`;
}

/** One Kinesis record of a payload: its packed events, by index in the payload. */
export interface PayloadRecord {
  data: Buffer;
  partitionKey: string;
  indexes: number[];
}

/**
 * Packs a payload's events into aggregated Kinesis records (KPL format, docs/ingest.md) of at
 * most `recordBytes` (FLAGSTREAM_STREAM_RECORD_BYTES); an event larger than that gets a record
 * of its own. Each record has a random partition key, so a payload spreads over the shards.
 */
export function packEvents(events: { index: number; data: Buffer }[], recordBytes: number): PayloadRecord[] {
  const records: PayloadRecord[] = [];
  let builder: AggregatedRecordBuilder | undefined;
  let partitionKey = '';
  let indexes: number[] = [];
  const flush = () => {
    if (builder && builder.count > 0) records.push({ data: builder.build(), partitionKey, indexes });
  };
  for (const event of events) {
    if (!builder || !builder.tryAdd(event.data)) {
      flush();
      partitionKey = randomUUID();
      indexes = [];
      builder = new AggregatedRecordBuilder(partitionKey, recordBytes);
      if (!builder.tryAdd(event.data)) {
        // encodePayload keeps every event within MAX_RECORD_BYTES, so it fits a record of its own.
        const alone = new AggregatedRecordBuilder(partitionKey, MAX_KINESIS_RECORD_BYTES - partitionKey.length);
        if (!alone.tryAdd(event.data)) throw new Error(`an event of ${event.data.length} bytes does not fit a Kinesis record`);
        records.push({ data: alone.build(), partitionKey, indexes: [event.index] });
        builder = undefined;
        continue;
      }
    }
    indexes.push(event.index);
  }
  flush();
  return records;
}
