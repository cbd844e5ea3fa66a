import { unpackRecord } from '../stream/aggregated-record';

/**
 * The data lake's one transform (CONTRACT §9), shared by the AWS Lambda (cdk/lambda) and the
 * local lake writer: every event of a record of the events stream becomes one line of a lake
 * file, in the partition of the time it was received. Pure: no I/O.
 *
 * - A record of the stream holds one event, or many in the KPL aggregated format
 *   (stream/aggregated-record.ts): `toLakeRecords` unpacks it, `toLakeRecord` turns one event.
 * - A line is the event's JSON exactly as the events API wrote it (every field Flink's
 *   `events` table reads), so a replay from the lake reads what the stream would have given.
 * - Partitions: `tenant=<tenant>/dt=<YYYY-MM-DD>/hour=<HH>/` of `receivedAt` (UTC): where the
 *   record entered the stream, so "the lake up to where the stream begins" is a clean seam.
 *   Firehose computes the same keys with its JQ metadata extraction (cdk/lib).
 * - `key` identifies the event (tenant, environment, payloadId, eventIndex): an event the
 *   stream delivers twice (in the same record again, or packed anew) has the same key, and lands once.
 * - Heartbeats (tenant '') and items that are not event records are left out.
 */
export interface LakeRecord {
  key: string;
  partition: { tenant: string; dt: string; hour: string };
  /** The event's JSON, one line, without the newline. */
  line: string;
}

/** Firehose's partition prefix for a record (its S3 key prefix, with the trailing slash). */
export function partitionPath(partition: LakeRecord['partition']): string {
  return `tenant=${partition.tenant}/dt=${partition.dt}/hour=${partition.hour}/`;
}

/** Tenant keys as the API allows them (schemas/tenants resourceKey): safe as an S3 and file path segment. */
const TENANT_KEY = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * The lake lines of one stream record: one per event it carries (an aggregated record's items,
 * in order, or the plain record itself); heartbeats and whatever is no event record are left out.
 * A string is a plain record's JSON.
 */
export function toLakeRecords(data: string | Uint8Array): LakeRecord[] {
  if (typeof data === 'string') {
    const lake = toLakeRecord(data);
    return lake ? [lake] : [];
  }
  const out: LakeRecord[] = [];
  for (const item of unpackRecord(data)) {
    const lake = toLakeRecord(item);
    if (lake) out.push(lake);
  }
  return out;
}

/** The lake line of ONE event's JSON (an item of a stream record), or undefined when it is no event record. */
export function toLakeRecord(data: string | Uint8Array): LakeRecord | undefined {
  let record: unknown;
  try {
    record = JSON.parse(typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
  if (!record || typeof record !== 'object' || Array.isArray(record)) return undefined;
  const r = record as Record<string, unknown>;
  const { tenant, environment, payloadId, eventIndex, receivedAt } = r;
  if (typeof tenant !== 'string' || !TENANT_KEY.test(tenant)) return undefined; // heartbeats have tenant ''
  if (typeof environment !== 'string' || typeof payloadId !== 'string' || !Number.isSafeInteger(eventIndex)) return undefined;
  if (typeof receivedAt !== 'number' || !Number.isSafeInteger(receivedAt) || receivedAt < 0) return undefined;
  const at = new Date(receivedAt).toISOString();
  return {
    key: JSON.stringify([tenant, environment, payloadId, eventIndex]),
    partition: { tenant, dt: at.slice(0, 10), hour: at.slice(11, 13) },
    line: JSON.stringify(record),
  };
}
