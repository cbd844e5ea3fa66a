import type { SdkEvent } from '@flagstream/schemas';

/**
 * What one stream record holds: the SDK's event as sent, plus where it came from.
 * Flink's `events` table (flink-sql/templates/events-source.sql) reads these fields;
 * change both together.
 */
export interface EventRecord {
  tenant: string;
  environment: string;
  payloadId: string;
  eventIndex: number;
  receivedAt: number;
  /** The event's time in ms: a summary counts at its endDate, every other event at its creationDate. */
  eventTime: number;
  kind: string;
  [field: string]: unknown;
}

export function eventTimeOf(event: SdkEvent): number {
  return event.kind === 'summary' ? event.endDate : event.creationDate;
}

export function toEventRecord(
  event: SdkEvent,
  origin: { tenant: string; environment: string; payloadId: string; eventIndex: number; receivedAt: number },
): EventRecord {
  // Origin fields go last so an event cannot claim another tenant.
  return { ...(event as unknown as Record<string, unknown>), ...origin, eventTime: eventTimeOf(event), kind: event.kind };
}

/** Heartbeats advance event time on every shard, so no window waits for a next event. */
export function heartbeatRecord(now: number): { kind: 'heartbeat'; tenant: ''; eventTime: number } {
  return { kind: 'heartbeat', tenant: '', eventTime: now };
}
