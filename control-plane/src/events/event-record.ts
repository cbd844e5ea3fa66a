import type { SdkEvent } from '@flagstream/schemas';

/**
 * How far ahead of the server's clock an SDK's time may be and still be believed
 * (CONTRACT §5, docs/counting.md §1): an event further ahead counts at `receivedAt`.
 */
export const MAX_CLOCK_AHEAD_MS = 5 * 60_000;

/**
 * What one stream record holds: the SDK's event as sent, plus where it came from and
 * its times (docs/counting.md §1). Flink's `events` table (flink-sql/templates/events-source.sql)
 * reads these fields; change both together.
 */
export interface EventRecord {
  tenant: string;
  environment: string;
  /** `<X-LaunchDarkly-Payload-ID>#<16 hex of the body hash>` (streamPayloadId in payload-hash.ts), or a random UUID without that header. */
  payloadId: string;
  eventIndex: number;
  /** When the events API received the payload (server clock, ms); the same for every try of one payload. */
  receivedAt: number;
  /** The SDK's own time for the event (ms): a summary's endDate, any other event's creationDate. */
  sdkTime: number;
  /** The time the event counts at (ms): `sdkTime`, or `receivedAt` when `sdkTime` is more than 5 min ahead of it. */
  eventTime: number;
  /** True when `sdkTime` is older than `receivedAt` minus the lateness horizon: counted in `lateEvents` only. */
  late: boolean;
  kind: string;
  /** The context's key per kind (each kind of a multi-kind context), from `context` or the SDK's `contextKeys`; absent without either. */
  contextKeys?: Record<string, string>;
  /** The context's canonical key (contextKeyOf), when it has `contextKeys`. */
  contextKey?: string;
  [field: string]: unknown;
}

/** The SDK's time of an event: a summary counts at its endDate, every other event at its creationDate. */
export function sdkTimeOf(event: SdkEvent): number {
  return event.kind === 'summary' ? event.endDate : event.creationDate;
}

export interface BoundedTimes {
  sdkTime: number;
  eventTime: number;
  late: boolean;
  /** The SDK's clock was more than MAX_CLOCK_AHEAD_MS ahead: eventTime is receivedAt. */
  clockAhead: boolean;
}

/** docs/counting.md §1: the server's clock bounds the SDK's. */
export function boundedTimes(sdkTime: number, receivedAt: number, latenessHorizonMs: number): BoundedTimes {
  const clockAhead = sdkTime > receivedAt + MAX_CLOCK_AHEAD_MS;
  return { sdkTime, eventTime: clockAhead ? receivedAt : sdkTime, late: sdkTime < receivedAt - latenessHorizonMs, clockAhead };
}

export interface RecordOrigin {
  tenant: string;
  environment: string;
  payloadId: string;
  eventIndex: number;
  receivedAt: number;
}

export function toEventRecord(event: SdkEvent, origin: RecordOrigin, latenessHorizonMs: number): EventRecord {
  const { sdkTime, eventTime, late } = boundedTimes(sdkTimeOf(event), origin.receivedAt, latenessHorizonMs);
  const contextKeys = contextKeysOf(event);
  // Origin, time and context fields go last so an event cannot claim another tenant, time or key.
  return {
    ...(event as unknown as Record<string, unknown>),
    ...origin,
    sdkTime,
    eventTime,
    late,
    kind: event.kind,
    contextKeys,
    contextKey: contextKeys ? contextKeyOf(contextKeys) : undefined,
  };
}

/**
 * The key per context kind of an event (js-core's `Context.kindsAndKeys`): a single-kind
 * context `{kind: key}` (a context without kind is a legacy `user`), a multi-kind one every
 * kind's; an event without `context` (custom events may send only `contextKeys`) its
 * `contextKeys` as sent. Undefined when the event names no context (summaries).
 */
export function contextKeysOf(event: SdkEvent): Record<string, string> | undefined {
  const e = event as { context?: Record<string, unknown>; contextKeys?: Record<string, unknown> };
  const keys: Record<string, string> = {};
  if (e.context && typeof e.context === 'object') {
    const context = e.context;
    if (context.kind === 'multi') {
      for (const [kind, part] of Object.entries(context)) {
        if (kind !== 'kind' && part && typeof part === 'object' && typeof (part as { key?: unknown }).key === 'string') keys[kind] = (part as { key: string }).key;
      }
    } else if (typeof context.key === 'string') {
      keys[typeof context.kind === 'string' ? context.kind : 'user'] = context.key;
    }
  } else if (e.contextKeys && typeof e.contextKeys === 'object') {
    for (const [kind, key] of Object.entries(e.contextKeys)) if (typeof key === 'string') keys[kind] = key;
  }
  return Object.keys(keys).length ? keys : undefined;
}

/**
 * A context's canonical key (js-core's `Context.canonicalKey`): a `user` context's key; another
 * single kind `kind:key`; a multi-kind context its kinds sorted, `kind:key` joined with `:`,
 * with `%` and `:` in keys escaped (`%25`, `%3A`) so different contexts never share one.
 */
export function contextKeyOf(keys: Record<string, string>): string {
  const kinds = Object.keys(keys).sort();
  if (kinds.length === 1 && kinds[0] === 'user') return keys.user;
  const escape = (key: string) => key.replace(/%/g, '%25').replace(/:/g, '%3A');
  if (kinds.length === 1) return `${kinds[0]}:${escape(keys[kinds[0]])}`;
  return kinds.map((kind) => `${kind}:${escape(keys[kind])}`).join(':');
}

export interface HeartbeatRecord {
  kind: 'heartbeat';
  tenant: '';
  /** The shard the record is written to (its ShardId): jobs report the newest heartbeat per shard as their progress. */
  shard: string;
  eventTime: number;
}

/** Heartbeats show a job's progress on every shard, so no window waits for a next event. */
export function heartbeatRecord(shard: string, now: number): HeartbeatRecord {
  return { kind: 'heartbeat', tenant: '', shard, eventTime: now };
}
