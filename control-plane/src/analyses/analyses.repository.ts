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
  jobId?: string;
  savepoint?: string;
  /** Windows starting before this are not (re)written: a replay's first, partial windows. */
  resultsFrom?: string;
  /** The script of the running (or last) job. */
  sql: string;
  createdAt: string;
  updatedAt: string;
}

export interface AnalysesRepository {
  insert(analysis: Analysis): void;
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
  job_id: string | null; savepoint: string | null; results_from: string | null; sql: string; created_at: string; updated_at: string;
}

const COLUMNS: Record<string, keyof Row> = {
  name: 'name', kind: 'kind', params: 'params', environment: 'environment', status: 'status', desiredState: 'desired_state',
  statusChangedAt: 'status_changed_at', statusMessage: 'status_message', jobId: 'job_id', savepoint: 'savepoint',
  resultsFrom: 'results_from', sql: 'sql', updatedAt: 'updated_at',
};

function toAnalysis(r: Row): Analysis {
  return {
    id: r.id, tenantId: r.tenant_id, name: r.name, kind: r.kind, params: JSON.parse(r.params) as Record<string, unknown>,
    environment: r.environment ?? undefined, status: r.status, desiredState: r.desired_state, statusChangedAt: r.status_changed_at,
    statusMessage: r.status_message ?? undefined, jobId: r.job_id ?? undefined, savepoint: r.savepoint ?? undefined,
    resultsFrom: r.results_from ?? undefined, sql: r.sql, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

@Injectable()
export class SqliteAnalysesRepository implements AnalysesRepository {
  constructor(@Inject(DATABASE) private readonly db: Db) {}

  insert(a: Analysis): void {
    this.db
      .prepare(
        `INSERT INTO analyses (id, tenant_id, name, kind, params, environment, status, desired_state, status_changed_at,
           status_message, job_id, savepoint, results_from, sql, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(a.id, a.tenantId, a.name, a.kind, JSON.stringify(a.params), a.environment ?? null, a.status, a.desiredState,
        a.statusChangedAt, a.statusMessage ?? null, a.jobId ?? null, a.savepoint ?? null, a.resultsFrom ?? null, a.sql, a.createdAt, a.updatedAt);
  }

  find(tenantId: string, id: string): Analysis | undefined {
    const row = this.db.prepare('SELECT * FROM analyses WHERE tenant_id = ? AND id = ?').get(tenantId, id) as Row | undefined;
    return row && toAnalysis(row);
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
      values.push(field === 'params' ? JSON.stringify(value) : (value ?? null));
    }
    if (sets.length) this.db.prepare(`UPDATE analyses SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
    return this.findById(id);
  }

  delete(tenantId: string, id: string): boolean {
    return this.db.prepare('DELETE FROM analyses WHERE tenant_id = ? AND id = ?').run(tenantId, id).changes === 1;
  }
}
