import { Inject, Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import { CONFIG, Config } from '../config/config';
import { DATABASE, Db } from '../store/database';

/** A row as served: the window, the dimensions and the measures (never analysisId, generation, type or version). */
export interface ResultRow {
  windowStart: string;
  windowEnd: string;
  [field: string]: unknown;
}

/** A row as GET /v1/analyses/{id}/results answers it (CONTRACT §6). */
export interface ServedRow extends ResultRow {
  /** The window has closed: windowEnd + allowed lateness ≤ the job's progress − 2 s. */
  final: boolean;
  /** When the row's measures last changed after it was final; absent when they never did. */
  updatedAt?: string;
}

export interface ResultsQuery {
  /** Inclusive bound on windowStart (ISO-8601, as Date#toISOString writes it). */
  from?: string;
  /** Exclusive bound on windowStart. */
  to?: string;
  limit: number;
}

/** A `row` record of the results stream, parsed (docs/counting.md §3). Times are normalised by Date#toISOString. */
export interface RowRecord {
  analysisId: string;
  generation: number;
  /** Inputs the row has absorbed; only grows within a generation. */
  version: number;
  /** The row's identity within its window: the dimensions, canonically serialised (sorted [name, value] pairs). */
  dims: string;
  /** What is served: windowStart, windowEnd, the dimensions and the measures. */
  row: ResultRow;
}

/** A `progress` record: the newest heartbeat the job has read on one events-stream shard. */
export interface ProgressRecord {
  analysisId: string;
  generation: number;
  shard: string;
  progressAt: string;
}

/** A `late` record: the analysis' events older than the horizon, received in one minute (server time). */
export interface LateRecord {
  analysisId: string;
  generation: number;
  bucketStart: string;
  lateEvents: number;
}

/**
 * What became of a record: `stored`, or why it was left out.
 * - `unknown-analysis`: no such analysis (deleted);
 * - `stale-generation`: written by a job of another generation than the analysis' current one;
 * - `outdated`: the stored row (or late bucket) of the same generation is newer (higher version or count);
 * - `before-results-from`: a row whose window starts before the analysis' resultsFrom;
 * - `before-read-from`: a late bucket before the analysis' readFrom rounded up to the minute (it would be cut short).
 */
export type ApplyOutcome = 'stored' | 'unknown-analysis' | 'stale-generation' | 'outdated' | 'before-results-from' | 'before-read-from';

/**
 * What the results ingestor stores per analysis (docs/counting.md §4): rows keyed by
 * (analysis, windowStart, dimensions), the job's progress, the late-event buckets, and
 * the figures kept on the analysis (progress_at, late_events, last_result_at).
 * Every `apply*` runs in one transaction (nested in the caller's, when there is one) and
 * applies only records of the analysis' current `generation`.
 */
export interface ResultsRepository {
  /**
   * Stores a row unless the stored one of the same key is newer: it is replaced only when it
   * is of an older generation or `version` ≥ its version. Rows starting before the analysis'
   * `resultsFrom` are not written. A row that was already final whose measures change gets
   * `updatedAt` = `now` (kept from then on, until the row is dropped). Sets the analysis'
   * `lastResultAt` = `now` whenever a row is stored.
   */
  applyRow(record: RowRecord, now?: Date): ApplyOutcome;
  /**
   * Keeps the newest `progressAt` per (analysis, shard) of the current generation, then sets the
   * analysis' `progressAt` to the minimum over `openShards` (the events stream's shards without an
   * EndingSequenceNumber), or null while one of them has not reported. With `openShards`
   * undefined (the shard list could not be read) the per-shard progress is kept and the
   * analysis' `progressAt` is left as it is.
   */
  applyProgress(record: ProgressRecord, openShards: readonly string[] | undefined): ApplyOutcome;
  /**
   * Stores the late-event count of one minute bucket (replacing one of an older generation, or of the
   * same generation with a count ≤ this one), then sets the analysis' `lateEvents` to the sum of its
   * buckets. Buckets starting before `readFrom` rounded up to the minute are not written.
   */
  applyLate(record: LateRecord): ApplyOutcome;
  /** Rows ordered by windowStart, each with `final` (and `updatedAt` when set); undefined when the tenant has no such analysis. */
  query(tenantId: string, analysisId: string, query: ResultsQuery): ServedRow[] | undefined;
  /**
   * To be called when the analysis' generation changes (PUT, replay, recompute after a lost job),
   * ideally in the same transaction as the bump (this one nests): forgets the job's progress (the
   * result_progress rows and the analysis' `progressAt`, so no row reads as final until the new job
   * reports) and, with `dropRows` (a PUT: a new definition), the rows and the late buckets too,
   * resetting `lateEvents` to 0 and `lastResultAt` to null. Without `dropRows` (a replay, a
   * recompute) the stored rows stay, until the new generation's rows replace them.
   */
  startGeneration(analysisId: string, options: { dropRows: boolean }): void;
  /** Drops everything stored for the analysis: `startGeneration(analysisId, { dropRows: true })`. */
  deleteFor(analysisId: string): void;
}
export const RESULTS_REPOSITORY = Symbol('ResultsRepository');

/** The job's mini-batch and sink flush: a row is final once progress is this far past its window's lateness. */
const FLUSH_MS = 2000;

interface AnalysisState {
  generation: number;
  results_from: string | null;
  read_from: string | null;
  progress_at: string | null;
}

interface StoredRow {
  row: string;
  window_end: string | null;
  generation: number;
  version: number;
  updated_at: string | null;
}

@Injectable()
export class SqliteResultsRepository implements ResultsRepository {
  private readonly graceMs: number;
  private readonly statements = new Map<string, Statement>();

  constructor(
    @Inject(DATABASE) private readonly db: Db,
    @Inject(CONFIG) config: Config,
  ) {
    this.graceMs = config.allowedLatenessSeconds * 1000 + FLUSH_MS;
  }

  applyRow(record: RowRecord, now = new Date()): ApplyOutcome {
    return this.db.transaction((): ApplyOutcome => {
      const analysis = this.analysis(record.analysisId, record.generation);
      if (typeof analysis === 'string') return analysis;
      const { windowStart, windowEnd } = record.row;
      if (analysis.results_from !== null && Date.parse(windowStart) < Date.parse(analysis.results_from)) return 'before-results-from';
      const stored = this.stmt(
        'SELECT row, window_end, generation, version, updated_at FROM results WHERE analysis_id = ? AND window_start = ? AND dims = ?',
      ).get(record.analysisId, windowStart, record.dims) as StoredRow | undefined;
      let updatedAt: string | null = null;
      if (stored) {
        if (stored.generation >= record.generation && record.version < stored.version) return 'outdated';
        updatedAt = stored.updated_at;
        const storedRow = JSON.parse(stored.row) as ResultRow;
        const storedEnd = stored.window_end ?? storedRow.windowEnd;
        if (this.isFinal(storedEnd, analysis.progress_at) && !sameFields(storedRow, record.row)) updatedAt = now.toISOString();
      }
      this.stmt(
        `INSERT INTO results (analysis_id, window_start, dims, row, window_end, generation, version, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (analysis_id, window_start, dims) DO UPDATE SET row = excluded.row, window_end = excluded.window_end,
             generation = excluded.generation, version = excluded.version, updated_at = excluded.updated_at`,
      ).run(record.analysisId, windowStart, record.dims, JSON.stringify(record.row), windowEnd, record.generation, record.version, updatedAt);
      this.stmt('UPDATE analyses SET last_result_at = ? WHERE id = ?').run(now.toISOString(), record.analysisId);
      return 'stored';
    })();
  }

  applyProgress(record: ProgressRecord, openShards: readonly string[] | undefined): ApplyOutcome {
    return this.db.transaction((): ApplyOutcome => {
      const analysis = this.analysis(record.analysisId, record.generation);
      if (typeof analysis === 'string') return analysis;
      // ISO strings of Date#toISOString compare as the times they name.
      this.stmt(
        `INSERT INTO result_progress (analysis_id, shard, generation, progress_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (analysis_id, shard) DO UPDATE SET
             progress_at = CASE WHEN generation = excluded.generation THEN max(progress_at, excluded.progress_at) ELSE excluded.progress_at END,
             generation = excluded.generation`,
      ).run(record.analysisId, record.shard, record.generation, record.progressAt);
      if (openShards) {
        const reported = new Map(
          (
            this.stmt('SELECT shard, progress_at FROM result_progress WHERE analysis_id = ? AND generation = ?').all(record.analysisId, record.generation) as {
              shard: string;
              progress_at: string;
            }[]
          ).map((r) => [r.shard, r.progress_at]),
        );
        let min: string | null = null;
        for (const shard of openShards) {
          const at = reported.get(shard);
          if (at === undefined) {
            min = null;
            break;
          }
          if (min === null || at < min) min = at;
        }
        this.stmt('UPDATE analyses SET progress_at = ? WHERE id = ?').run(min, record.analysisId);
      }
      return 'stored';
    })();
  }

  applyLate(record: LateRecord): ApplyOutcome {
    return this.db.transaction((): ApplyOutcome => {
      const analysis = this.analysis(record.analysisId, record.generation);
      if (typeof analysis === 'string') return analysis;
      if (analysis.read_from !== null && Date.parse(record.bucketStart) < ceilMinute(Date.parse(analysis.read_from))) return 'before-read-from';
      const changes = this.stmt(
        `INSERT INTO late_buckets (analysis_id, bucket_start, generation, late_events) VALUES (?, ?, ?, ?)
           ON CONFLICT (analysis_id, bucket_start) DO UPDATE SET generation = excluded.generation, late_events = excluded.late_events
           WHERE late_buckets.generation < excluded.generation OR late_buckets.late_events <= excluded.late_events`,
      ).run(record.analysisId, record.bucketStart, record.generation, record.lateEvents).changes;
      if (!changes) return 'outdated';
      this.stmt('UPDATE analyses SET late_events = (SELECT coalesce(sum(late_events), 0) FROM late_buckets WHERE analysis_id = ?) WHERE id = ?').run(
        record.analysisId,
        record.analysisId,
      );
      return 'stored';
    })();
  }

  query(tenantId: string, analysisId: string, q: ResultsQuery): ServedRow[] | undefined {
    const owned = this.stmt('SELECT progress_at FROM analyses WHERE tenant_id = ? AND id = ?').get(tenantId, analysisId) as
      { progress_at: string | null } | undefined;
    if (!owned) return undefined;
    const rows = this.stmt(
      `SELECT row, window_end, updated_at FROM results WHERE analysis_id = ? AND window_start >= ? AND window_start < ?
         ORDER BY window_start, dims LIMIT ?`,
    ).all(analysisId, q.from ?? '', q.to ?? '\uffff', q.limit) as { row: string; window_end: string | null; updated_at: string | null }[];
    return rows.map((r) => {
      const row = JSON.parse(r.row) as ResultRow;
      const served: ServedRow = { ...row, final: this.isFinal(r.window_end ?? row.windowEnd, owned.progress_at) };
      if (r.updated_at) served.updatedAt = r.updated_at;
      return served;
    });
  }

  startGeneration(analysisId: string, options: { dropRows: boolean }): void {
    this.db.transaction(() => {
      this.stmt('DELETE FROM result_progress WHERE analysis_id = ?').run(analysisId);
      this.stmt('UPDATE analyses SET progress_at = NULL WHERE id = ?').run(analysisId);
      if (options.dropRows) {
        this.stmt('DELETE FROM results WHERE analysis_id = ?').run(analysisId);
        this.stmt('DELETE FROM late_buckets WHERE analysis_id = ?').run(analysisId);
        this.stmt('UPDATE analyses SET late_events = 0, last_result_at = NULL WHERE id = ?').run(analysisId);
      }
    })();
  }

  deleteFor(analysisId: string): void {
    this.startGeneration(analysisId, { dropRows: true });
  }

  private stmt(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) this.statements.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }

  /** The analysis, or why a record of `generation` for it does not apply. */
  private analysis(analysisId: string, generation: number): AnalysisState | ApplyOutcome {
    const analysis = this.stmt('SELECT generation, results_from, read_from, progress_at FROM analyses WHERE id = ?').get(analysisId) as
      AnalysisState | undefined;
    if (!analysis) return 'unknown-analysis';
    if (analysis.generation !== generation) return 'stale-generation';
    return analysis;
  }

  private isFinal(windowEnd: string, progressAt: string | null): boolean {
    if (progressAt === null) return false;
    return Date.parse(windowEnd) + this.graceMs <= Date.parse(progressAt);
  }
}

function ceilMinute(ms: number): number {
  return Math.ceil(ms / 60_000) * 60_000;
}

/** Whether two rows have the same fields with the same values. */
function sameFields(a: ResultRow, b: ResultRow): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) return false;
  return true;
}
