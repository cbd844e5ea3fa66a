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

/**
 * A `custom` record (custom-sql): one row of the query's result added (`delta` 1, a Debezium
 * "c") or retracted (`delta` −1, a "d"). `rowKey` identifies the row's content.
 */
export interface CustomRecord {
  analysisId: string;
  generation: number;
  delta: 1 | -1;
  rowKey: string;
  /** The query's columns, plus windowStart/windowEnd when the query has windows. */
  row: Record<string, unknown>;
  windowStart?: string;
}

/** What the results API needs to know of an analysis to present its rows. */
export interface AnalysisSummary {
  id: string;
  kind: string;
  params: Record<string, unknown>;
  generation: number;
  createdAt: string;
  lastResultAt?: string;
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
 * - `outdated`: the stored row (or late bucket, or pending row) of the same generation is newer (higher version or count);
 * - `before-results-from`: a row whose window starts before the analysis' resultsFrom;
 * - `before-read-from`: a late bucket before the analysis' readFrom rounded up to the minute (it would be cut short);
 * - `pending`: a row kept aside until its generation has caught up (or its window is final), not yet served.
 */
export type ApplyOutcome = 'stored' | 'unknown-analysis' | 'stale-generation' | 'outdated' | 'before-results-from' | 'before-read-from' | 'pending';

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
   *
   * Nothing may look lost while a new generation re-reads history: a row that would replace one
   * of an older generation, while the current generation has not caught up (its `progressAt` is
   * before its `generationStartedAt`) and the row's window is not final, goes to the pending rows
   * instead (keeping the higher version of a key) and the outcome is `pending`; `applyProgress`
   * moves it into the results later.
   */
  applyRow(record: RowRecord, now?: Date): ApplyOutcome;
  /**
   * Keeps the newest `progressAt` per (analysis, shard) of the current generation, then sets the
   * analysis' `progressAt` to the minimum over `openShards` (the events stream's shards without an
   * EndingSequenceNumber), or null while one of them has not reported. With `openShards`
   * undefined (the shard list could not be read) the per-shard progress is kept and the
   * analysis' `progressAt` is left as it is.
   * Once `progressAt` is set, moves the pending rows into the results: all of them once the
   * generation has caught up, else those whose window is final by the new `progressAt` (with
   * `updatedAt` and `lastResultAt` = `now` as `applyRow` sets them).
   */
  applyProgress(record: ProgressRecord, openShards: readonly string[] | undefined, now?: Date): ApplyOutcome;
  /**
   * A pool job's own progress (`analysisId` `pool:<pool>`, `generation` the pool's generation):
   * kept per shard, and the minimum over `openShards` set as the pool's `progress_at` while the
   * pool is at that generation. The reconciler retires the job a new one replaces once it passed
   * the new job's start (docs/pools.md).
   */
  applyPoolProgress(record: ProgressRecord, openShards: readonly string[] | undefined): ApplyOutcome;
  /**
   * Stores the late-event count of one minute bucket (replacing one of an older generation, or of the
   * same generation with a count ≤ this one), then sets the analysis' `lateEvents` to the sum of its
   * buckets. Buckets starting before `readFrom` rounded up to the minute are not written.
   */
  applyLate(record: LateRecord): ApplyOutcome;
  /**
   * Adds or retracts one row of a custom-sql analysis' result in its generation's multiset; a
   * generation older than the analysis' current one still updates its own (it is served until
   * the current one has caught up), and once the current one has, the older ones are dropped.
   * Refused (`limit`) beyond `maxRows` distinct rows.
   */
  applyCustom(record: CustomRecord, maxRows: number, now?: Date): ApplyOutcome | 'limit';
  /** A custom-sql analysis' rows (each as often as the result holds it), ordered by windowStart; `from`/`to` bound windowed rows. */
  customRows(analysisId: string, query: ResultsQuery): Record<string, unknown>[];
  /** Rows ordered by windowStart, each with `final` (and `updatedAt` when set); undefined when the tenant has no such analysis. */
  query(tenantId: string, analysisId: string, query: ResultsQuery): ServedRow[] | undefined;
  /** The tenant's analysis as the presenters need it; undefined when the tenant has no such analysis. */
  describe(tenantId: string, analysisId: string): AnalysisSummary | undefined;
  /** Every stored row of the analysis (at most `limit`), for kinds presented from all of them (flag-usage, experiment). */
  storedRows(analysisId: string, limit: number): ResultRow[];
  /**
   * To be called when the analysis' generation changes (PUT, replay, recompute after a lost job),
   * ideally in the same transaction as the bump (this one nests): sets `generationStartedAt` = `now`
   * (the generation has caught up once its `progressAt` reaches it), forgets the job's progress (the
   * result_progress rows and the analysis' `progressAt`, so no row reads as final until the new job
   * reports) and the pending rows of the older generation, and, with `dropRows` (a PUT: a new
   * definition), the rows and the late buckets too, resetting `lateEvents` to 0 and `lastResultAt`
   * to null. Without `dropRows` (a replay, a recompute) the stored rows stay, until the new
   * generation's rows replace them (see `applyRow`: once they are at least as complete).
   */
  startGeneration(analysisId: string, options: { dropRows: boolean }, now?: Date): void;
  /** Drops everything stored for the analysis (pending rows too): `startGeneration(analysisId, { dropRows: true })`. */
  deleteFor(analysisId: string): void;
}
export const RESULTS_REPOSITORY = Symbol('ResultsRepository');
/** The analysisId under which a pool job reports its own progress: `pool:<pool>`. */
export const POOL_PROGRESS_PREFIX = 'pool:';

/**
 * Stream-time margin on top of the allowed lateness before a row is final. The ingestor already
 * believes progress only PROGRESS_LAG_MS (wall time) after reading it, which covers rows still
 * in a sink's buffer; this covers events read in the same instant as the heartbeat.
 */
const FLUSH_MS = 1000;

interface AnalysisState {
  generation: number;
  results_from: string | null;
  read_from: string | null;
  progress_at: string | null;
  generation_started_at: string | null;
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
      const stored = this.stored(record.analysisId, windowStart, record.dims);
      // A row of the same generation absorbed as many inputs as the stored one is the same row
      // (a restored or re-reading job sends it again): nothing to write. Version 0 marks a
      // kept-current row (experiment, guardrail: an aggregate over retracting inputs has no
      // growing count): only one job writes a generation of it, in order on one shard, so its
      // newest record wins (a job that loses its state recomputes as a new generation).
      if (stored && (stored.generation > record.generation || (stored.generation === record.generation && record.version !== 0 && record.version <= stored.version))) return 'outdated';
      const olderRow = stored !== undefined && stored.generation < record.generation;
      if (olderRow && !this.caughtUp(analysis, analysis.progress_at) && !this.isFinal(windowEnd, analysis.progress_at)) {
        // The older generation's row may be more complete than this one: keep it served for now.
        const changes = this.stmt(
          `INSERT INTO pending_rows (analysis_id, window_start, dims, row, window_end, generation, version) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (analysis_id, window_start, dims) DO UPDATE SET row = excluded.row, window_end = excluded.window_end,
               generation = excluded.generation, version = excluded.version
             WHERE pending_rows.generation < excluded.generation OR pending_rows.version <= excluded.version`,
        ).run(record.analysisId, windowStart, record.dims, JSON.stringify(record.row), windowEnd, record.generation, record.version).changes;
        return changes ? 'pending' : 'outdated';
      }
      this.write(record.analysisId, record.dims, record.row, record.generation, record.version, stored, analysis.progress_at, now);
      this.stmt('UPDATE analyses SET last_result_at = ? WHERE id = ?').run(now.toISOString(), record.analysisId);
      return 'stored';
    })();
  }

  applyProgress(record: ProgressRecord, openShards: readonly string[] | undefined, now = new Date()): ApplyOutcome {
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
        const min = minOver(openShards, reported);
        this.stmt('UPDATE analyses SET progress_at = ? WHERE id = ?').run(min, record.analysisId);
        this.movePending(record.analysisId, analysis, min, now);
      }
      return 'stored';
    })();
  }

  applyPoolProgress(record: ProgressRecord, openShards: readonly string[] | undefined): ApplyOutcome {
    const pool = record.analysisId.slice(POOL_PROGRESS_PREFIX.length);
    return this.db.transaction((): ApplyOutcome => {
      const current = this.stmt('SELECT generation FROM pools WHERE id = ?').get(pool) as { generation: number } | undefined;
      if (!current) return 'unknown-analysis';
      if (current.generation !== record.generation) return 'stale-generation';
      this.stmt(
        `INSERT INTO pool_progress (pool, shard, generation, progress_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (pool, shard) DO UPDATE SET
             progress_at = CASE WHEN generation = excluded.generation THEN max(progress_at, excluded.progress_at) ELSE excluded.progress_at END,
             generation = excluded.generation`,
      ).run(pool, record.shard, record.generation, record.progressAt);
      if (openShards) {
        const reported = new Map(
          (this.stmt('SELECT shard, progress_at FROM pool_progress WHERE pool = ? AND generation = ?').all(pool, record.generation) as { shard: string; progress_at: string }[]).map(
            (r) => [r.shard, r.progress_at],
          ),
        );
        this.stmt('UPDATE pools SET progress_at = ? WHERE id = ? AND generation = ?').run(minOver(openShards, reported), pool, record.generation);
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

  applyCustom(record: CustomRecord, maxRows: number, now = new Date()): ApplyOutcome | 'limit' {
    return this.db.transaction((): ApplyOutcome | 'limit' => {
      const analysis = this.stmt('SELECT generation, results_from, read_from, progress_at, generation_started_at FROM analyses WHERE id = ?').get(record.analysisId) as
        AnalysisState | undefined;
      if (!analysis) return 'unknown-analysis';
      if (record.generation > analysis.generation) return 'stale-generation';
      const existing = this.stmt('SELECT count FROM custom_rows WHERE analysis_id = ? AND generation = ? AND row_key = ?').get(record.analysisId, record.generation, record.rowKey) as
        { count: number } | undefined;
      if (!existing && record.delta > 0) {
        const { n } = this.stmt('SELECT COUNT(*) AS n FROM custom_rows WHERE analysis_id = ? AND generation = ?').get(record.analysisId, record.generation) as { n: number };
        if (n >= maxRows) return 'limit';
      }
      const count = (existing?.count ?? 0) + record.delta;
      // A retraction may overtake its insert across a job's restart: a count below 0 waits for it.
      if (count === 0) this.stmt('DELETE FROM custom_rows WHERE analysis_id = ? AND generation = ? AND row_key = ?').run(record.analysisId, record.generation, record.rowKey);
      else {
        this.stmt(
          `INSERT INTO custom_rows (analysis_id, generation, row_key, row, window_start, count) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (analysis_id, generation, row_key) DO UPDATE SET count = excluded.count`,
        ).run(record.analysisId, record.generation, record.rowKey, JSON.stringify(record.row), record.windowStart ?? '', count);
      }
      if (record.generation === analysis.generation && this.caughtUp(analysis, analysis.progress_at)) {
        this.stmt('DELETE FROM custom_rows WHERE analysis_id = ? AND generation < ?').run(record.analysisId, analysis.generation);
      }
      this.stmt('UPDATE analyses SET last_result_at = ? WHERE id = ?').run(now.toISOString(), record.analysisId);
      return 'stored';
    })();
  }

  customRows(analysisId: string, q: ResultsQuery): Record<string, unknown>[] {
    const analysis = this.stmt('SELECT generation, results_from, read_from, progress_at, generation_started_at FROM analyses WHERE id = ?').get(analysisId) as
      AnalysisState | undefined;
    if (!analysis) return [];
    // The current generation once it has caught up; until then the newest older one that has rows.
    let generation = analysis.generation;
    if (!this.caughtUp(analysis, analysis.progress_at)) {
      const older = this.stmt('SELECT MAX(generation) AS g FROM custom_rows WHERE analysis_id = ? AND generation < ?').get(analysisId, analysis.generation) as { g: number | null };
      if (older.g !== null) generation = older.g;
    }
    const windowed = q.from !== undefined || q.to !== undefined;
    const rows = this.stmt(
      `SELECT row, count FROM custom_rows WHERE analysis_id = ? AND generation = ? AND count > 0
         AND (? = 0 OR (window_start != '' AND window_start >= ? AND window_start < ?))
         ORDER BY window_start, row_key LIMIT ?`,
    ).all(analysisId, generation, windowed ? 1 : 0, q.from ?? '', q.to ?? '\uffff', q.limit) as { row: string; count: number }[];
    const out: Record<string, unknown>[] = [];
    for (const r of rows) {
      const row = JSON.parse(r.row) as Record<string, unknown>;
      for (let i = 0; i < r.count && out.length < q.limit; i++) out.push(row);
    }
    return out;
  }

  describe(tenantId: string, analysisId: string): AnalysisSummary | undefined {
    const row = this.stmt('SELECT id, kind, params, generation, created_at, last_result_at FROM analyses WHERE tenant_id = ? AND id = ?').get(tenantId, analysisId) as
      { id: string; kind: string; params: string; generation: number; created_at: string; last_result_at: string | null } | undefined;
    if (!row) return undefined;
    return {
      id: row.id, kind: row.kind, params: JSON.parse(row.params) as Record<string, unknown>, generation: row.generation, createdAt: row.created_at,
      ...(row.last_result_at ? { lastResultAt: row.last_result_at } : {}),
    };
  }

  storedRows(analysisId: string, limit: number): ResultRow[] {
    const rows = this.stmt('SELECT row FROM results WHERE analysis_id = ? ORDER BY window_start, dims LIMIT ?').all(analysisId, limit) as { row: string }[];
    return rows.map((r) => JSON.parse(r.row) as ResultRow);
  }

  startGeneration(analysisId: string, options: { dropRows: boolean }, now = new Date()): void {
    this.db.transaction(() => {
      this.stmt('DELETE FROM result_progress WHERE analysis_id = ?').run(analysisId);
      this.stmt('DELETE FROM pending_rows WHERE analysis_id = ?').run(analysisId);
      this.stmt('UPDATE analyses SET progress_at = NULL, generation_started_at = ? WHERE id = ?').run(now.toISOString(), analysisId);
      if (options.dropRows) {
        this.stmt('DELETE FROM results WHERE analysis_id = ?').run(analysisId);
        this.stmt('DELETE FROM late_buckets WHERE analysis_id = ?').run(analysisId);
        this.stmt('DELETE FROM custom_rows WHERE analysis_id = ?').run(analysisId);
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
    const analysis = this.stmt('SELECT generation, results_from, read_from, progress_at, generation_started_at FROM analyses WHERE id = ?').get(
      analysisId,
    ) as AnalysisState | undefined;
    if (!analysis) return 'unknown-analysis';
    if (analysis.generation !== generation) return 'stale-generation';
    return analysis;
  }

  private stored(analysisId: string, windowStart: string, dims: string): StoredRow | undefined {
    return this.stmt('SELECT row, window_end, generation, version, updated_at FROM results WHERE analysis_id = ? AND window_start = ? AND dims = ?').get(
      analysisId,
      windowStart,
      dims,
    ) as StoredRow | undefined;
  }

  /**
   * Writes a row over `stored` (checked by the caller), setting `updatedAt` when the stored row was
   * final by `progressAt` and its fields change, keeping the stored `updatedAt` otherwise.
   */
  private write(
    analysisId: string, dims: string, row: ResultRow, generation: number, version: number,
    stored: StoredRow | undefined, progressAt: string | null, now: Date,
  ): void {
    let updatedAt: string | null = null;
    if (stored) {
      updatedAt = stored.updated_at;
      const storedRow = JSON.parse(stored.row) as ResultRow;
      if (this.isFinal(stored.window_end ?? storedRow.windowEnd, progressAt) && !sameFields(storedRow, row)) updatedAt = now.toISOString();
    }
    this.stmt(
      `INSERT INTO results (analysis_id, window_start, dims, row, window_end, generation, version, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (analysis_id, window_start, dims) DO UPDATE SET row = excluded.row, window_end = excluded.window_end,
           generation = excluded.generation, version = excluded.version, updated_at = excluded.updated_at`,
    ).run(analysisId, row.windowStart, dims, JSON.stringify(row), row.windowEnd, generation, version, updatedAt);
  }

  /** Moves the pending rows of the current generation into the results: all once it has caught up, else those final by `progressAt`. */
  private movePending(analysisId: string, analysis: AnalysisState, progressAt: string | null, now: Date): void {
    let endsBy: string; // the latest windowEnd to move (ISO strings of Date#toISOString compare as the times they name)
    if (this.caughtUp(analysis, progressAt)) endsBy = '\uffff';
    else if (progressAt !== null) endsBy = new Date(Date.parse(progressAt) - this.graceMs).toISOString();
    else return;
    const pending = this.stmt(
      'SELECT window_start, dims, row, version FROM pending_rows WHERE analysis_id = ? AND generation = ? AND window_end <= ?',
    ).all(analysisId, analysis.generation, endsBy) as { window_start: string; dims: string; row: string; version: number }[];
    let moved = false;
    for (const p of pending) {
      const stored = this.stored(analysisId, p.window_start, p.dims);
      // Pending rows wait over rows of an older generation; should one of this generation be stored, the higher version wins.
      if (!stored || stored.generation < analysis.generation || p.version >= stored.version) {
        this.write(analysisId, p.dims, JSON.parse(p.row) as ResultRow, analysis.generation, p.version, stored, progressAt, now);
        moved = true;
      }
      this.stmt('DELETE FROM pending_rows WHERE analysis_id = ? AND window_start = ? AND dims = ?').run(analysisId, p.window_start, p.dims);
    }
    if (moved) this.stmt('UPDATE analyses SET last_result_at = ? WHERE id = ?').run(now.toISOString(), analysisId);
  }

  /** Whether the current generation has read everything the one it replaced had read (always, for analyses without generationStartedAt). */
  private caughtUp(analysis: AnalysisState, progressAt: string | null): boolean {
    if (analysis.generation_started_at === null) return true;
    return progressAt !== null && Date.parse(progressAt) >= Date.parse(analysis.generation_started_at);
  }

  private isFinal(windowEnd: string, progressAt: string | null): boolean {
    if (progressAt === null) return false;
    return Date.parse(windowEnd) + this.graceMs <= Date.parse(progressAt);
  }
}

/** The minimum of the shards' reported times, or null while one of them has not reported. */
function minOver(shards: readonly string[], reported: Map<string, string>): string | null {
  let min: string | null = null;
  for (const shard of shards) {
    const at = reported.get(shard);
    if (at === undefined) return null;
    if (min === null || at < min) min = at;
  }
  return min;
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
