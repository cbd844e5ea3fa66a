import { Inject, Injectable } from '@nestjs/common';
import { DATABASE, Db } from '../store/database';

export interface ResultRow {
  windowStart: string;
  windowEnd: string;
  [field: string]: unknown;
}

export interface ResultsQuery {
  from?: string;
  to?: string;
  limit: number;
}

/** Result rows keyed by (analysis, window, dimensions): a row written again replaces itself, so nothing counts twice. */
export interface ResultsRepository {
  /** false when the analysis is gone or the row lies before the analysis' resultsFrom. */
  upsert(analysisId: string, row: ResultRow, dims: string): boolean;
  /** undefined when the tenant has no such analysis. */
  query(tenantId: string, analysisId: string, query: ResultsQuery): ResultRow[] | undefined;
  deleteFor(analysisId: string): void;
  latestWindowEnd(analysisId: string): string | undefined;
}
export const RESULTS_REPOSITORY = Symbol('ResultsRepository');

@Injectable()
export class SqliteResultsRepository implements ResultsRepository {
  constructor(@Inject(DATABASE) private readonly db: Db) {}

  upsert(analysisId: string, row: ResultRow, dims: string): boolean {
    const result = this.db
      .prepare(
        `INSERT INTO results (analysis_id, window_start, dims, row)
         SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM analyses WHERE id = ? AND (results_from IS NULL OR results_from <= ?))
         ON CONFLICT (analysis_id, window_start, dims) DO UPDATE SET row = excluded.row`,
      )
      .run(analysisId, row.windowStart, dims, JSON.stringify(row), analysisId, row.windowStart);
    return result.changes === 1;
  }

  query(tenantId: string, analysisId: string, q: ResultsQuery): ResultRow[] | undefined {
    const owned = this.db.prepare('SELECT 1 FROM analyses WHERE tenant_id = ? AND id = ?').get(tenantId, analysisId);
    if (!owned) return undefined;
    const rows = this.db
      .prepare(
        `SELECT row FROM results WHERE analysis_id = ? AND window_start >= ? AND window_start < ?
         ORDER BY window_start, dims LIMIT ?`,
      )
      .all(analysisId, q.from ?? '', q.to ?? '\uffff', q.limit) as { row: string }[];
    return rows.map((r) => JSON.parse(r.row) as ResultRow);
  }

  deleteFor(analysisId: string): void {
    this.db.prepare('DELETE FROM results WHERE analysis_id = ?').run(analysisId);
  }

  latestWindowEnd(analysisId: string): string | undefined {
    const row = this.db
      .prepare(`SELECT json_extract(row, '$.windowEnd') AS windowEnd FROM results WHERE analysis_id = ? ORDER BY window_start DESC LIMIT 1`)
      .get(analysisId) as { windowEnd: string } | undefined;
    return row?.windowEnd;
  }
}
