/**
 * The data lake's one transform (CONTRACT §9), shared by the AWS Lambda (cdk/lambda) and the
 * local lake writer: a record of the events stream becomes one line of a lake file, in the
 * partition of the time it was received. Pure: no I/O.
 *
 * - A line is the stream record's JSON exactly as the events API wrote it (every field Flink's
 *   `events` table reads), so a replay from the lake reads what the stream would have given.
 * - Partitions: `tenant=<tenant>/dt=<YYYY-MM-DD>/hour=<HH>/` of `receivedAt` (UTC): where the
 *   record entered the stream, so "the lake up to where the stream begins" is a clean seam.
 *   Firehose computes the same keys with its JQ metadata extraction (cdk/lib).
 * - `key` identifies the event (tenant, environment, payloadId, eventIndex): a record the
 *   stream delivers twice has the same key, and lands once.
 * - Heartbeats (tenant '') and records that are not event records are left out.
 */
export interface LakeRecord {
  key: string;
  partition: { tenant: string; dt: string; hour: string };
  /** The record's JSON, one line, without the newline. */
  line: string;
}

/** Firehose's partition prefix for a record (its S3 key prefix, with the trailing slash). */
export function partitionPath(partition: LakeRecord['partition']): string {
  return `tenant=${partition.tenant}/dt=${partition.dt}/hour=${partition.hour}/`;
}

/** Tenant keys as the API allows them (schemas/tenants resourceKey): safe as an S3 and file path segment. */
const TENANT_KEY = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function toLakeRecord(data: string | Uint8Array): LakeRecord | undefined {
  let record: unknown;
  try {
    record = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
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
