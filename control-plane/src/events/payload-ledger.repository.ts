import { Inject, Injectable } from '@nestjs/common';
import { DATABASE, Db } from '../store/database';

export interface PayloadRecord {
  eventCount: number;
  /** Indexes of the payload's events already durably in the stream. */
  written: Set<number>;
  complete: boolean;
  response?: unknown;
}

/**
 * Remembers, per payload ID, which events reached the stream, so a retried payload
 * (same X-LaunchDarkly-Payload-ID) writes only what is missing and counts once.
 */
export interface PayloadLedger {
  find(tenantId: string, environmentId: string, payloadId: string): PayloadRecord | undefined;
  recordWritten(tenantId: string, environmentId: string, payloadId: string, eventCount: number, written: Set<number>): void;
  complete(tenantId: string, environmentId: string, payloadId: string, response: unknown): void;
  forgetBefore(epochMs: number): number;
}
export const PAYLOAD_LEDGER = Symbol('PayloadLedger');

@Injectable()
export class SqlitePayloadLedger implements PayloadLedger {
  constructor(@Inject(DATABASE) private readonly db: Db) {}

  find(tenantId: string, environmentId: string, payloadId: string): PayloadRecord | undefined {
    const row = this.db
      .prepare('SELECT event_count, written, complete, response FROM payloads WHERE tenant_id = ? AND environment_id = ? AND payload_id = ?')
      .get(tenantId, environmentId, payloadId) as { event_count: number; written: string; complete: number; response: string | null } | undefined;
    if (!row) return undefined;
    return {
      eventCount: row.event_count,
      written: new Set(JSON.parse(row.written) as number[]),
      complete: row.complete === 1,
      response: row.response ? JSON.parse(row.response) : undefined,
    };
  }

  recordWritten(tenantId: string, environmentId: string, payloadId: string, eventCount: number, written: Set<number>): void {
    this.db
      .prepare(
        `INSERT INTO payloads (tenant_id, environment_id, payload_id, event_count, written, received_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, environment_id, payload_id) DO UPDATE SET written = excluded.written`,
      )
      .run(tenantId, environmentId, payloadId, eventCount, JSON.stringify([...written]), Date.now());
  }

  complete(tenantId: string, environmentId: string, payloadId: string, response: unknown): void {
    this.db
      .prepare('UPDATE payloads SET complete = 1, response = ? WHERE tenant_id = ? AND environment_id = ? AND payload_id = ?')
      .run(JSON.stringify(response), tenantId, environmentId, payloadId);
  }

  forgetBefore(epochMs: number): number {
    return this.db.prepare('DELETE FROM payloads WHERE received_at < ?').run(epochMs).changes;
  }
}
