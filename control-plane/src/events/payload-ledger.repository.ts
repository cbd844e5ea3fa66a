import { Inject, Injectable } from '@nestjs/common';
import { DATABASE, Db } from '../store/database';
import { PAYLOAD_HASH_CHARS } from './payload-hash';

export interface PayloadRecord {
  eventCount: number;
  /** Indexes of the payload's events already durably in the stream. */
  written: Set<number>;
  complete: boolean;
  response?: unknown;
  /** When the payload was first received (ms): a retry stamps its records with the same time. */
  receivedAt: number;
}

/**
 * Remembers, per payload, which events reached the stream, so a retried payload (same
 * X-LaunchDarkly-Payload-ID and same events) writes only what is missing and counts once.
 * A payload is keyed by its stream payloadId (`<id>#<body hash prefix>`, see
 * payload-hash.ts), so another body sent with a reused ID is a payload of its own.
 */
export interface PayloadLedger {
  find(tenantId: string, environmentId: string, payloadId: string): PayloadRecord | undefined;
  recordWritten(tenantId: string, environmentId: string, payloadId: string, eventCount: number, written: Set<number>, receivedAt: number): void;
  /** Records the payload as complete, with every event written and the answer its retries get. */
  complete(tenantId: string, environmentId: string, payloadId: string, eventCount: number, written: Set<number>, receivedAt: number, response: unknown): void;
  /** Whether another body was already seen with this X-LaunchDarkly-Payload-ID (a ledger key `<headerId>#<other hash>`). */
  otherBodySeen(tenantId: string, environmentId: string, headerId: string, payloadId: string): boolean;
  forgetBefore(epochMs: number): number;
}
export const PAYLOAD_LEDGER = Symbol('PayloadLedger');

@Injectable()
export class SqlitePayloadLedger implements PayloadLedger {
  // Prepared once: every payload runs them (the events API's hot path).
  private readonly findStatement;
  private readonly writtenStatement;
  private readonly completeStatement;
  private readonly otherBodyStatement;

  constructor(@Inject(DATABASE) private readonly db: Db) {
    this.findStatement = db.prepare('SELECT event_count, written, complete, response, received_at FROM payloads WHERE tenant_id = ? AND environment_id = ? AND payload_id = ?');
    this.writtenStatement = db.prepare(
      `INSERT INTO payloads (tenant_id, environment_id, payload_id, event_count, written, received_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, environment_id, payload_id) DO UPDATE SET written = excluded.written`,
    );
    this.completeStatement = db.prepare(
      `INSERT INTO payloads (tenant_id, environment_id, payload_id, event_count, written, received_at, complete, response) VALUES (?, ?, ?, ?, ?, ?, 1, ?)
       ON CONFLICT (tenant_id, environment_id, payload_id) DO UPDATE SET written = excluded.written, complete = 1, response = excluded.response`,
    );
    this.otherBodyStatement = db.prepare(
      `SELECT 1 FROM payloads WHERE tenant_id = ? AND environment_id = ? AND payload_id >= ? AND payload_id < ?
         AND length(payload_id) = ? AND payload_id <> ? LIMIT 1`,
    );
  }

  find(tenantId: string, environmentId: string, payloadId: string): PayloadRecord | undefined {
    const row = this.findStatement.get(tenantId, environmentId, payloadId) as
      | { event_count: number; written: string; complete: number; response: string | null; received_at: number }
      | undefined;
    if (!row) return undefined;
    return {
      eventCount: row.event_count,
      written: new Set(JSON.parse(row.written) as number[]),
      complete: row.complete === 1,
      response: row.response ? JSON.parse(row.response) : undefined,
      receivedAt: row.received_at,
    };
  }

  recordWritten(tenantId: string, environmentId: string, payloadId: string, eventCount: number, written: Set<number>, receivedAt: number): void {
    this.writtenStatement.run(tenantId, environmentId, payloadId, eventCount, JSON.stringify([...written]), receivedAt);
  }

  complete(tenantId: string, environmentId: string, payloadId: string, eventCount: number, written: Set<number>, receivedAt: number, response: unknown): void {
    this.completeStatement.run(tenantId, environmentId, payloadId, eventCount, JSON.stringify([...written]), receivedAt, JSON.stringify(response));
  }

  otherBodySeen(tenantId: string, environmentId: string, headerId: string, payloadId: string): boolean {
    // Keys of this header ID are `<headerId>#` + a fixed-length hash: a range scan of the primary key.
    const prefix = `${headerId}#`;
    const row = this.otherBodyStatement.get(tenantId, environmentId, prefix, `${headerId}$`, prefix.length + PAYLOAD_HASH_CHARS, payloadId);
    return row !== undefined;
  }

  forgetBefore(epochMs: number): number {
    return this.db.prepare('DELETE FROM payloads WHERE received_at < ?').run(epochMs).changes;
  }
}
