import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
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

/** Completions are written together: at most this many a transaction, at most this long after the first. */
const MAX_COMPLETIONS_A_WRITE = 64;
const COMPLETIONS_WAIT_MS = 20;

interface Completion {
  tenantId: string;
  environmentId: string;
  payloadId: string;
  eventCount: number;
  written: string;
  receivedAt: number;
  response: unknown;
}

/**
 * The ledger in SQLite. A payload's completion is written with the others of the next few
 * milliseconds, in one transaction (a commit of its own cost more than the rest of a small
 * payload's request did; one of 32 rows costs about a fifth per row). Until then find() answers it
 * from memory. A crash in between loses only that knowledge, as one between the stream write and
 * the ledger always could: a retry writes the payload's events again under the same payloadId, and
 * the jobs deduplicate on (payloadId, eventIndex), so they still count once.
 */
@Injectable()
export class SqlitePayloadLedger implements PayloadLedger, OnModuleDestroy {
  private readonly logger = new Logger('PayloadLedger');
  // Prepared once: every payload runs them (the events API's hot path).
  private readonly findStatement;
  private readonly writtenStatement;
  private readonly completeStatement;
  private readonly otherBodyStatement;
  private readonly completeMany: (completions: Completion[]) => void;
  /** Completions not in SQLite yet, by ledgerKey. */
  private readonly pending = new Map<string, Completion>();
  private flushTimer?: NodeJS.Timeout;

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
    this.completeMany = db.transaction((completions: Completion[]) => {
      for (const c of completions) this.completeStatement.run(c.tenantId, c.environmentId, c.payloadId, c.eventCount, c.written, c.receivedAt, JSON.stringify(c.response));
    });
  }

  find(tenantId: string, environmentId: string, payloadId: string): PayloadRecord | undefined {
    const completion = this.pending.get(ledgerKey(tenantId, environmentId, payloadId));
    if (completion) {
      return { eventCount: completion.eventCount, written: new Set(JSON.parse(completion.written) as number[]), complete: true, response: completion.response, receivedAt: completion.receivedAt };
    }
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
    // A completion of the same payload waiting to be written stays the newer knowledge.
    if (this.pending.has(ledgerKey(tenantId, environmentId, payloadId))) return;
    this.writtenStatement.run(tenantId, environmentId, payloadId, eventCount, JSON.stringify([...written]), receivedAt);
  }

  complete(tenantId: string, environmentId: string, payloadId: string, eventCount: number, written: Set<number>, receivedAt: number, response: unknown): void {
    this.pending.set(ledgerKey(tenantId, environmentId, payloadId), { tenantId, environmentId, payloadId, eventCount, written: JSON.stringify([...written]), receivedAt, response });
    if (this.pending.size >= MAX_COMPLETIONS_A_WRITE) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), COMPLETIONS_WAIT_MS);
  }

  /** Writes the completions waiting, in one transaction. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.size === 0) return;
    const completions = [...this.pending.values()];
    try {
      this.completeMany(completions);
    } catch (error) {
      // As a crash would: their retries, if any, write their events again and the jobs deduplicate them.
      this.logger.warn(`${completions.length} payload completion(s) not recorded: ${(error as Error).message}`);
    }
    this.pending.clear();
  }

  onModuleDestroy(): void {
    this.flush();
  }

  otherBodySeen(tenantId: string, environmentId: string, headerId: string, payloadId: string): boolean {
    // Keys of this header ID are `<headerId>#` + a fixed-length hash: a range scan of the primary key.
    const prefix = `${headerId}#`;
    for (const c of this.pending.values()) {
      if (c.tenantId === tenantId && c.environmentId === environmentId && c.payloadId !== payloadId && c.payloadId.length === prefix.length + PAYLOAD_HASH_CHARS && c.payloadId.startsWith(prefix)) return true;
    }
    const row = this.otherBodyStatement.get(tenantId, environmentId, prefix, `${headerId}$`, prefix.length + PAYLOAD_HASH_CHARS, payloadId);
    return row !== undefined;
  }

  forgetBefore(epochMs: number): number {
    return this.db.prepare('DELETE FROM payloads WHERE received_at < ?').run(epochMs).changes;
  }
}

function ledgerKey(tenantId: string, environmentId: string, payloadId: string): string {
  return `${tenantId}\u0000${environmentId}\u0000${payloadId}`;
}
