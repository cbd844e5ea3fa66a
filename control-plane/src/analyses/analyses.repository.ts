import { Inject, Injectable } from '@nestjs/common';
import { DATABASE, Db } from '../store/database';

export type AnalysisStatus = 'PENDING' | 'DEPLOYING' | 'RUNNING' | 'FAILED' | 'STOPPING' | 'STOPPED';
export type DesiredState = 'RUNNING' | 'STOPPED';

export interface Analysis {
  id: string;
  tenantId: string;
  name: string;
  kind: string;
  params: Record<string, unknown>;
  environment?: string;
  status: AnalysisStatus;
  /** What the user asked for; the health check reconciles `status` towards it. */
  desiredState: DesiredState;
  statusChangedAt: string;
  statusMessage?: string;
  /**
   * The pool job that computed the current generation (docs/pools.md). Set: the generation has
   * run, so a pool that starts again without state recomputes it (`afterLoss`); a new generation clears it.
   */
  jobId?: string;
  /** Windows starting before this are not (re)written: a replay's first, partial windows. */
  resultsFrom?: string;
  /** The analysis' own script (its part of its pool's job), as GET …/sql shows it. */
  sql: string;
  createdAt: string;
  updatedAt: string;
  /** Counts recomputations (PUT, replay, recompute after a lost job); rows of older generations are dropped. */
  generation: number;
  /** Records received before this are not the current generation's (its pool's job reads from its earliest member's). */
  readFrom?: string;
  /** The pool (`p0`…) whose job computes it; assigned by the reconciler. */
  pool?: string;
  /** Maintained by the results ingestor: the job's progress (min over shards), late events and last stored row. */
  progressAt?: string;
  lateEvents: number;
  lastResultAt?: string;
}

export interface AnalysesRepository {
  insert(analysis: Analysis): void;
  /** Every analysis assigned to the pool, in creation order. */
  inPool(pool: string): Analysis[];
  /** Scoped to the tenant: another tenant's analysis is simply not found. */
  find(tenantId: string, id: string): Analysis | undefined;
  findById(id: string): Analysis | undefined;
  list(tenantId: string): Analysis[];
  all(): Analysis[];
  /** Whether any analysis of any tenant should be running. */
  anyToRun(): boolean;
  update(id: string, changes: Partial<Omit<Analysis, 'id' | 'tenantId' | 'createdAt'>>): Analysis | undefined;
  delete(tenantId: string, id: string): boolean;
}
export const ANALYSES_REPOSITORY = Symbol('AnalysesRepository');

interface Row {
  id: string; tenant_id: string; name: string; kind: string; params: string; environment: string | null;
  status: AnalysisStatus; desired_state: DesiredState; status_changed_at: string; status_message: string | null;
  job_id: string | null; results_from: string | null; sql: string; created_at: string; updated_at: string;
  generation: number; read_from: string | null; progress_at: string | null; late_events: number; last_result_at: string | null;
  pool: string | null;
}

const COLUMNS: Record<string, keyof Row> = {
  name: 'name', kind: 'kind', params: 'params', environment: 'environment', status: 'status', desiredState: 'desired_state',
  statusChangedAt: 'status_changed_at', statusMessage: 'status_message', jobId: 'job_id',
  resultsFrom: 'results_from', sql: 'sql', updatedAt: 'updated_at', generation: 'generation', readFrom: 'read_from',
  progressAt: 'progress_at', lateEvents: 'late_events', lastResultAt: 'last_result_at', pool: 'pool',
};
const JSON_FIELDS = new Set(['params']);
const INSERT_FIELDS = ['id', 'tenantId', 'createdAt', ...Object.keys(COLUMNS)] as const;

function toAnalysis(r: Row): Analysis {
  return {
    id: r.id, tenantId: r.tenant_id, name: r.name, kind: r.kind, params: JSON.parse(r.params) as Record<string, unknown>,
    environment: r.environment ?? undefined, status: r.status, desiredState: r.desired_state, statusChangedAt: r.status_changed_at,
    statusMessage: r.status_message ?? undefined, jobId: r.job_id ?? undefined,
    resultsFrom: r.results_from ?? undefined, sql: r.sql, createdAt: r.created_at, updatedAt: r.updated_at,
    generation: r.generation, readFrom: r.read_from ?? undefined,
    progressAt: r.progress_at ?? undefined, lateEvents: r.late_events, lastResultAt: r.last_result_at ?? undefined, pool: r.pool ?? undefined,
  };
}

const columnOf = (field: string): string => ({ id: 'id', tenantId: 'tenant_id', createdAt: 'created_at' } as Record<string, string>)[field] ?? COLUMNS[field];
const valueOf = (field: string, value: unknown) => (JSON_FIELDS.has(field) && value !== undefined ? JSON.stringify(value) : (value ?? null));

@Injectable()
export class SqliteAnalysesRepository implements AnalysesRepository {
  constructor(@Inject(DATABASE) private readonly db: Db) {}

  insert(a: Analysis): void {
    const record = a as unknown as Record<string, unknown>;
    this.db
      .prepare(`INSERT INTO analyses (${INSERT_FIELDS.map(columnOf).join(', ')}) VALUES (${INSERT_FIELDS.map(() => '?').join(', ')})`)
      .run(...INSERT_FIELDS.map((f) => valueOf(f, record[f])));
  }

  find(tenantId: string, id: string): Analysis | undefined {
    const row = this.db.prepare('SELECT * FROM analyses WHERE tenant_id = ? AND id = ?').get(tenantId, id) as Row | undefined;
    return row && toAnalysis(row);
  }

  inPool(pool: string): Analysis[] {
    return (this.db.prepare('SELECT * FROM analyses WHERE pool = ? ORDER BY created_at, id').all(pool) as Row[]).map(toAnalysis);
  }

  findById(id: string): Analysis | undefined {
    const row = this.db.prepare('SELECT * FROM analyses WHERE id = ?').get(id) as Row | undefined;
    return row && toAnalysis(row);
  }

  list(tenantId: string): Analysis[] {
    return (this.db.prepare('SELECT * FROM analyses WHERE tenant_id = ? ORDER BY created_at, id').all(tenantId) as Row[]).map(toAnalysis);
  }

  all(): Analysis[] {
    return (this.db.prepare('SELECT * FROM analyses ORDER BY created_at, id').all() as Row[]).map(toAnalysis);
  }

  anyToRun(): boolean {
    return this.db.prepare(`SELECT 1 FROM analyses WHERE desired_state = 'RUNNING' LIMIT 1`).get() !== undefined;
  }

  update(id: string, changes: Partial<Omit<Analysis, 'id' | 'tenantId' | 'createdAt'>>): Analysis | undefined {
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [field, value] of Object.entries(changes)) {
      const column = COLUMNS[field];
      if (!column) throw new Error(`cannot update analysis field ${field}`);
      sets.push(`${column} = ?`);
      values.push(valueOf(field, value));
    }
    if (sets.length) this.db.prepare(`UPDATE analyses SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
    return this.findById(id);
  }

  delete(tenantId: string, id: string): boolean {
    return this.db.prepare('DELETE FROM analyses WHERE tenant_id = ? AND id = ?').run(tenantId, id).changes === 1;
  }
}
