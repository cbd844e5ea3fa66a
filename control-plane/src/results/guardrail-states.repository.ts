import { Inject, Injectable } from '@nestjs/common';
import { DATABASE, Db } from '../store/database';

/** A guardrail's last verdict, and the webhook delivery it owes (CONTRACT §6). */
export interface GuardrailState {
  analysisId: string;
  generation: number;
  status: string;
  since: string;
  /** The row as served (status, since, delta, bound, units). */
  row: Record<string, unknown>;
  /** The analysis' lastResultAt this verdict was computed from. */
  evaluatedResultAt?: string;
  /** A POST still owed to the webhook (the row and the analysis id), until it answers 2xx. */
  webhookPayload?: Record<string, unknown>;
  webhookAttempts: number;
  webhookNextAt?: string;
}

/** A guardrail analysis as the watcher reads it. */
export interface WatchedGuardrail {
  id: string;
  params: Record<string, unknown>;
  generation: number;
  createdAt: string;
  lastResultAt?: string;
}

export interface GuardrailStatesRepository {
  guardrails(): WatchedGuardrail[];
  get(analysisId: string): GuardrailState | undefined;
  save(state: GuardrailState): void;
  /** States with a webhook delivery due at `now`. */
  dueDeliveries(now: string): GuardrailState[];
}
export const GUARDRAIL_STATES = Symbol('GuardrailStatesRepository');

interface StateRow {
  analysis_id: string; generation: number; status: string; since: string; row: string; evaluated_result_at: string | null;
  webhook_payload: string | null; webhook_attempts: number; webhook_next_at: string | null;
}

@Injectable()
export class SqliteGuardrailStatesRepository implements GuardrailStatesRepository {
  constructor(@Inject(DATABASE) private readonly db: Db) {}

  guardrails(): WatchedGuardrail[] {
    const rows = this.db.prepare("SELECT id, params, generation, created_at, last_result_at FROM analyses WHERE kind = 'guardrail'").all() as
      { id: string; params: string; generation: number; created_at: string; last_result_at: string | null }[];
    return rows.map((r) => ({
      id: r.id, params: JSON.parse(r.params) as Record<string, unknown>, generation: r.generation, createdAt: r.created_at,
      ...(r.last_result_at ? { lastResultAt: r.last_result_at } : {}),
    }));
  }

  get(analysisId: string): GuardrailState | undefined {
    const row = this.db.prepare('SELECT * FROM guardrail_states WHERE analysis_id = ?').get(analysisId) as StateRow | undefined;
    return row ? toState(row) : undefined;
  }

  save(s: GuardrailState): void {
    this.db
      .prepare(
        `INSERT INTO guardrail_states (analysis_id, generation, status, since, row, evaluated_result_at, webhook_payload, webhook_attempts, webhook_next_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(analysis_id) DO UPDATE SET generation = excluded.generation, status = excluded.status, since = excluded.since, row = excluded.row,
           evaluated_result_at = excluded.evaluated_result_at, webhook_payload = excluded.webhook_payload,
           webhook_attempts = excluded.webhook_attempts, webhook_next_at = excluded.webhook_next_at`,
      )
      .run(
        s.analysisId, s.generation, s.status, s.since, JSON.stringify(s.row), s.evaluatedResultAt ?? null,
        s.webhookPayload ? JSON.stringify(s.webhookPayload) : null, s.webhookAttempts, s.webhookNextAt ?? null,
      );
  }

  dueDeliveries(now: string): GuardrailState[] {
    const rows = this.db.prepare('SELECT * FROM guardrail_states WHERE webhook_payload IS NOT NULL AND webhook_next_at <= ?').all(now) as StateRow[];
    return rows.map(toState);
  }
}

function toState(r: StateRow): GuardrailState {
  return {
    analysisId: r.analysis_id, generation: r.generation, status: r.status, since: r.since, row: JSON.parse(r.row) as Record<string, unknown>,
    ...(r.evaluated_result_at ? { evaluatedResultAt: r.evaluated_result_at } : {}),
    ...(r.webhook_payload ? { webhookPayload: JSON.parse(r.webhook_payload) as Record<string, unknown> } : {}),
    webhookAttempts: r.webhook_attempts,
    ...(r.webhook_next_at ? { webhookNextAt: r.webhook_next_at } : {}),
  };
}
