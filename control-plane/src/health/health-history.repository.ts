import { Inject, Injectable } from '@nestjs/common';
import { DATABASE, Db } from '../store/database';

export interface HealthEntry {
  at: string;
  status: string;
  reason?: string;
}

/** What the health checks observed and did, per analysis, newest first. */
export interface HealthHistory {
  add(analysisId: string, entry: HealthEntry): void;
  list(analysisId: string, limit: number): HealthEntry[];
}
export const HEALTH_HISTORY = Symbol('HealthHistory');

/** Entries kept per analysis; the API shows the newest 100. */
const KEPT = 200;

@Injectable()
export class SqliteHealthHistory implements HealthHistory {
  constructor(@Inject(DATABASE) private readonly db: Db) {}

  add(analysisId: string, entry: HealthEntry): void {
    this.db.transaction(() => {
      const inserted = this.db
        .prepare('INSERT INTO health_history (analysis_id, at, status, reason) SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM analyses WHERE id = ?)')
        .run(analysisId, entry.at, entry.status, entry.reason ?? null, analysisId);
      if (inserted.changes && Number(inserted.lastInsertRowid) % 20 === 0) {
        this.db
          .prepare('DELETE FROM health_history WHERE analysis_id = ? AND id <= (SELECT id FROM health_history WHERE analysis_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)')
          .run(analysisId, analysisId, KEPT);
      }
    })();
  }

  list(analysisId: string, limit: number): HealthEntry[] {
    const rows = this.db
      .prepare('SELECT at, status, reason FROM health_history WHERE analysis_id = ? ORDER BY id DESC LIMIT ?')
      .all(analysisId, limit) as { at: string; status: string; reason: string | null }[];
    return rows.map((r) => ({ at: r.at, status: r.status, ...(r.reason ? { reason: r.reason } : {}) }));
  }
}
