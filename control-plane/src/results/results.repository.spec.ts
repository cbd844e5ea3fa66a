import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/config';
import { Db, openDatabase } from '../store/database';
import { ResultsController } from './results.controller';
import { ResultsService } from './results.service';
import { RowRecord, SqliteResultsRepository } from './results.repository';

/** The results store's rules (docs/counting.md §4) on the real SQLite store. */
describe('SqliteResultsRepository', () => {
  const A = '00000000-0000-4000-8000-00000000000a';
  const B = '00000000-0000-4000-8000-00000000000b';
  let dir: string;
  let db: Db;
  let repo: SqliteResultsRepository;

  const analysis = (id: string, tenantId: string, columns: Record<string, unknown> = {}) => {
    db.prepare(
      `INSERT INTO analyses (id, tenant_id, name, kind, params, status, desired_state, status_changed_at, sql, created_at, updated_at)
       VALUES (?, ?, 'n', 'flag-evaluations', '{}', 'RUNNING', 'RUNNING', '', '', '', '')`,
    ).run(id, tenantId);
    set(id, columns);
  };
  const set = (id: string, columns: Record<string, unknown>) => {
    for (const [column, value] of Object.entries(columns)) db.prepare(`UPDATE analyses SET ${column} = ? WHERE id = ?`).run(value, id);
  };
  const get = (id: string) =>
    db.prepare('SELECT generation, progress_at, late_events, last_result_at FROM analyses WHERE id = ?').get(id) as {
      generation: number;
      progress_at: string | null;
      late_events: number;
      last_result_at: string | null;
    };
  /** A flag-evaluations row of the 10 s window starting at `second` past 04:00. */
  const row = (second: number, evaluations: number, version: number, extra: Partial<RowRecord> = {}): RowRecord => {
    const start = new Date(Date.UTC(2026, 10, 26, 4, 0, second));
    return {
      analysisId: A,
      generation: 1,
      version,
      dims: JSON.stringify([
        ['flagKey', 'checkout'],
        ['variation', 1],
      ]),
      row: { windowStart: start.toISOString(), windowEnd: new Date(start.getTime() + 10_000).toISOString(), flagKey: 'checkout', variation: 1, evaluations },
      ...extra,
    };
  };
  const served = (id = A, tenant = 't1') => repo.query(tenant, id, { limit: 100 })!;
  const at = (time: string) => new Date(`2026-11-26T${time}Z`).toISOString();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-results-'));
    db = openDatabase(dir);
    for (const t of ['t1', 't2']) {
      db.prepare(`INSERT INTO tenants (id, key, name, api_key_hash, created_at) VALUES (?, ?, ?, ?, '')`).run(t, t, t, `hash-${t}`);
    }
    analysis(A, 't1');
    analysis(B, 't2');
    repo = new SqliteResultsRepository(db, { ...loadConfig({ FLAGSTREAM_DATA_DIR: dir }), allowedLatenessSeconds: 5 });
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('rows', () => {
    it('stores a row without analysisId, generation, type or version, and records lastResultAt', () => {
      const now = new Date('2026-11-26T04:00:30Z');
      expect(repo.applyRow(row(0, 5, 1), now)).toBe('stored');
      expect(served()).toEqual([
        { windowStart: '2026-11-26T04:00:00.000Z', windowEnd: '2026-11-26T04:00:10.000Z', flagKey: 'checkout', variation: 1, evaluations: 5, final: false },
      ]);
      expect(get(A).last_result_at).toBe(now.toISOString());
      const stored = db.prepare('SELECT window_end, generation, version, updated_at FROM results').get();
      expect(stored).toEqual({ window_end: '2026-11-26T04:00:10.000Z', generation: 1, version: 1, updated_at: null });
    });

    it('drops a row of an old generation (a replaced job still unread on the stream)', () => {
      set(A, { generation: 2 });
      expect(repo.applyRow(row(0, 5, 9, { generation: 1 }))).toBe('stale-generation');
      expect(served()).toEqual([]);
      expect(get(A).last_result_at).toBeNull();
      expect(repo.applyRow(row(0, 3, 1, { generation: 2 }))).toBe('stored');
      expect(served().map((r) => r.evaluations)).toEqual([3]);
    });

    it('replaces a row with a higher version, never with a lower one; the same version again is the same row', () => {
      repo.applyRow(row(0, 5, 5));
      expect(repo.applyRow(row(0, 3, 3))).toBe('outdated'); // a job re-reading the window has not read it all yet
      expect(served().map((r) => r.evaluations)).toEqual([5]);
      expect(repo.applyRow(row(0, 8, 8))).toBe('stored');
      expect(repo.applyRow(row(0, 8, 8))).toBe('outdated');
      expect(served().map((r) => r.evaluations)).toEqual([8]);
      expect(db.prepare('SELECT version FROM results').get()).toEqual({ version: 8 });
    });

    it('takes the newest record of a version-0 (kept-current) row of its generation, which may shrink', () => {
      expect(repo.applyRow(row(0, 5, 0))).toBe('stored');
      expect(repo.applyRow(row(0, 7, 0))).toBe('stored');
      expect(repo.applyRow(row(0, 6, 0))).toBe('stored'); // a unit moved to another variation
      expect(served().map((r) => r.evaluations)).toEqual([6]);
    });

    it('lets the current generation replace a row of an older one whatever its version', () => {
      repo.applyRow(row(0, 50, 50));
      set(A, { generation: 2 }); // without generation_started_at (an analysis from before it): caught up
      expect(repo.applyRow(row(0, 2, 2, { generation: 2 }))).toBe('stored');
      expect(served().map((r) => r.evaluations)).toEqual([2]);
      expect(db.prepare('SELECT generation, version FROM results').get()).toEqual({ generation: 2, version: 2 });
    });

    it('does not write a row whose window starts before resultsFrom, and leaves the stored one as it is', () => {
      repo.applyRow(row(0, 5, 5));
      set(A, { generation: 2, results_from: at('04:00:10') });
      expect(repo.applyRow(row(0, 1, 1, { generation: 2 }))).toBe('before-results-from');
      expect(repo.applyRow(row(10, 1, 1, { generation: 2 }))).toBe('stored');
      expect(served().map((r) => [r.windowStart, r.evaluations])).toEqual([
        [at('04:00:00'), 5],
        [at('04:00:10'), 1],
      ]);
    });

    it('skips rows of an analysis that is gone', () => {
      expect(repo.applyRow(row(0, 5, 5, { analysisId: '00000000-0000-4000-8000-0000000000ff' }))).toBe('unknown-analysis');
    });

    it('keys rows by window and dimensions', () => {
      repo.applyRow(row(0, 5, 5));
      repo.applyRow(
        row(0, 7, 7, {
          dims: JSON.stringify([
            ['flagKey', 'checkout'],
            ['variation', 2],
          ]),
        }),
      );
      repo.applyRow(row(10, 1, 1));
      expect(served()).toHaveLength(3);
    });
  });

  describe('final and updatedAt', () => {
    const progress = (shard: string, time: string, open = ['s0', 's1'], generation = 1) =>
      repo.applyProgress({ analysisId: A, generation, shard, progressAt: at(time) }, open);

    it('turns a row final once progress passes windowEnd + allowed lateness + 1 s', () => {
      repo.applyRow(row(0, 5, 5)); // windowEnd 04:00:10, final from progress 04:00:16
      progress('s0', '04:00:15.999');
      progress('s1', '04:00:30');
      expect(served()[0].final).toBe(false);
      progress('s0', '04:00:16');
      expect(get(A).progress_at).toBe(at('04:00:16'));
      expect(served()[0].final).toBe(true);
    });

    it('sets updatedAt only when a final row changes its measures', () => {
      const early = new Date('2026-11-26T04:00:12Z');
      repo.applyRow(row(0, 5, 5), early);
      repo.applyRow(row(0, 6, 6), early); // still open: grows without updatedAt
      expect(served()[0]).not.toHaveProperty('updatedAt');
      progress('s0', '04:01:00');
      progress('s1', '04:01:00');
      repo.applyRow(row(0, 6, 6)); // re-sent, unchanged
      expect(served()[0]).not.toHaveProperty('updatedAt');
      const late = new Date('2026-11-26T04:20:00Z');
      repo.applyRow(row(0, 9, 9), late);
      expect(served()[0]).toMatchObject({ evaluations: 9, final: true, updatedAt: late.toISOString() });
      repo.applyRow(row(0, 9, 9), new Date('2026-11-26T04:30:00Z')); // re-sent again: updatedAt stays
      expect(served()[0].updatedAt).toBe(late.toISOString());
    });

    it('takes progress as the minimum over the open shards, null while one has not reported', () => {
      expect(progress('s0', '04:00:20')).toBe('stored');
      expect(get(A).progress_at).toBeNull();
      progress('s1', '04:00:25');
      expect(get(A).progress_at).toBe(at('04:00:20'));
      progress('s0', '04:00:40');
      expect(get(A).progress_at).toBe(at('04:00:25'));
      // Per shard only the newest counts (reordered reports).
      progress('s1', '04:00:21');
      expect(get(A).progress_at).toBe(at('04:00:25'));
      // A closed shard (s1, split into s2 and s3) no longer counts; a new one counts once it has reported.
      progress('s0', '04:00:41', ['s0', 's2', 's3']);
      expect(get(A).progress_at).toBeNull();
      progress('s2', '04:00:45', ['s0', 's2', 's3']);
      progress('s3', '04:00:50', ['s0', 's2', 's3']);
      expect(get(A).progress_at).toBe(at('04:00:41'));
      // Shards unknown for now: the per-shard progress is kept, the analysis' left as it is.
      repo.applyProgress({ analysisId: A, generation: 1, shard: 's0', progressAt: at('04:01:00') }, undefined);
      expect(get(A).progress_at).toBe(at('04:00:41'));
      progress('s2', '04:00:46', ['s0', 's2', 's3']);
      expect(get(A).progress_at).toBe(at('04:00:46'));
    });

    it('ignores progress of another generation, and startGeneration forgets progress', () => {
      progress('s0', '04:01:00');
      progress('s1', '04:01:00');
      repo.applyRow(row(0, 5, 5));
      expect(served()[0].final).toBe(true);
      set(A, { generation: 2 });
      repo.startGeneration(A, { dropRows: false });
      expect(get(A).progress_at).toBeNull();
      expect(served()).toMatchObject([{ evaluations: 5, final: false }]);
      expect(progress('s0', '04:02:00', ['s0', 's1'], 1)).toBe('stale-generation');
      progress('s0', '04:00:30', ['s0', 's1'], 2);
      progress('s1', '04:00:30', ['s0', 's1'], 2);
      expect(get(A).progress_at).toBe(at('04:00:30'));
    });
  });

  describe('late buckets', () => {
    const late = (minute: string, lateEvents: number, generation = 1) => repo.applyLate({ analysisId: A, generation, bucketStart: at(minute), lateEvents });

    it('keeps lateEvents as the sum of the buckets, each replaced by a higher count of its generation only', () => {
      expect(late('05:00', 3)).toBe('stored');
      late('05:01', 4);
      expect(get(A).late_events).toBe(7);
      late('05:00', 5);
      expect(get(A).late_events).toBe(9);
      expect(late('05:00', 2)).toBe('outdated');
      expect(get(A).late_events).toBe(9);
      expect(repo.applyLate({ analysisId: B, generation: 1, bucketStart: at('05:00'), lateEvents: 100 })).toBe('stored');
      expect(get(A).late_events).toBe(9);
    });

    it('lets a new generation rewrite buckets from its readFrom rounded up to the minute, and drops old generations', () => {
      late('05:00', 3);
      late('05:01', 4);
      late('05:02', 5);
      set(A, { generation: 2, read_from: at('05:00:30') });
      expect(late('05:03', 1, 1)).toBe('stale-generation');
      expect(late('05:00', 1, 2)).toBe('before-read-from'); // cut short: the job read only half of it
      expect(late('05:01', 2, 2)).toBe('stored'); // a lower count of a newer generation replaces
      expect(get(A).late_events).toBe(3 + 2 + 5);
      set(A, { read_from: at('05:02') });
      expect(late('05:02', 1, 2)).toBe('stored'); // on the minute: whole
      expect(get(A).late_events).toBe(3 + 2 + 1);
    });
  });

  describe('generations', () => {
    it('startGeneration with dropRows drops rows, late buckets and progress', () => {
      repo.applyRow(row(0, 5, 5));
      repo.applyLate({ analysisId: A, generation: 1, bucketStart: at('05:00'), lateEvents: 3 });
      repo.applyProgress({ analysisId: A, generation: 1, shard: 's0', progressAt: at('04:01:00') }, ['s0']);
      repo.applyRow({ ...row(0, 5, 5), analysisId: B });
      repo.startGeneration(A, { dropRows: true });
      expect(served()).toEqual([]);
      expect(get(A)).toMatchObject({ progress_at: null, late_events: 0, last_result_at: null });
      expect(db.prepare('SELECT count(*) AS n FROM result_progress').get()).toEqual({ n: 0 });
      expect(db.prepare('SELECT count(*) AS n FROM late_buckets').get()).toEqual({ n: 0 });
      expect(served(B, 't2')).toHaveLength(1);
    });

    /** Every open shard (s0, s1) reports `time` for `generation`. */
    const progress = (time: string, generation: number, now?: Date) => {
      for (const shard of ['s0', 's1']) repo.applyProgress({ analysisId: A, generation, shard, progressAt: at(time) }, ['s0', 's1'], now);
    };
    const pending = () => db.prepare('SELECT window_start, generation, version FROM pending_rows').all();
    /** Generation 1 has read up to 04:10:30 and is replaced there by generation 2 (a replay, a recompute after a loss). */
    const recompute = (generation = 2) => {
      set(A, { generation });
      repo.startGeneration(A, { dropRows: false }, new Date(at('04:10:30')));
    };

    it("keeps a recompute's partial rows aside until it has caught up with the older generation, then applies them once", () => {
      repo.applyRow(row(620, 50, 50)); // window 04:10:20-04:10:30, open when generation 1 is replaced
      progress('04:10:30', 1);
      recompute();
      expect(db.prepare('SELECT generation_started_at FROM analyses WHERE id = ?').get(A)).toEqual({ generation_started_at: at('04:10:30') });
      expect(repo.applyRow(row(620, 2, 2, { generation: 2 }))).toBe('pending');
      expect(served().map((r) => r.evaluations)).toEqual([50]);
      progress('04:09:00', 2);
      expect(repo.applyRow(row(620, 49, 49, { generation: 2 }))).toBe('pending');
      expect(repo.applyRow(row(620, 40, 40, { generation: 2 }))).toBe('outdated'); // reordered: the pending one is newer
      progress('04:10:29.999', 2);
      expect(served().map((r) => r.evaluations)).toEqual([50]);
      expect(pending()).toEqual([{ window_start: at('04:10:20'), generation: 2, version: 49 }]);
      const caughtUp = new Date('2026-11-26T04:10:31Z');
      progress('04:10:30', 2, caughtUp);
      expect(served()).toMatchObject([{ evaluations: 49, final: false }]);
      expect(served()[0]).not.toHaveProperty('updatedAt'); // the window is not final: it simply grows
      expect(db.prepare('SELECT generation, version FROM results').get()).toEqual({ generation: 2, version: 49 });
      expect(get(A).last_result_at).toBe(caughtUp.toISOString());
      expect(pending()).toEqual([]);
      progress('04:10:31', 2, new Date('2026-11-26T04:10:32Z')); // nothing left to move
      expect(get(A).last_result_at).toBe(caughtUp.toISOString());
      // Caught up: rows apply directly again.
      expect(repo.applyRow(row(620, 51, 51, { generation: 2 }))).toBe('stored');
      expect(served().map((r) => r.evaluations)).toEqual([51]);
    });

    it('applies a row final by the new generation progress before it has caught up, at once or when its window turns final', () => {
      repo.applyRow(row(0, 50, 50)); // 04:00:00-04:00:10, final from 04:00:16
      repo.applyRow(row(10, 20, 20)); // 04:00:10-04:00:20, final from 04:00:26
      progress('04:10:30', 1);
      recompute();
      progress('04:00:20', 2);
      expect(repo.applyRow(row(0, 50, 50, { generation: 2 }))).toBe('stored'); // final: as complete as it gets
      expect(repo.applyRow(row(10, 21, 21, { generation: 2 }))).toBe('pending');
      expect(served()).toMatchObject([
        { evaluations: 50, final: true },
        { evaluations: 20, final: false },
      ]);
      expect(served()[0]).not.toHaveProperty('updatedAt'); // unchanged
      const turnsFinal = new Date('2026-11-26T04:10:40Z');
      progress('04:00:27', 2, turnsFinal);
      // Moved as applyRow would: the stored row was final by this progress and changes, so updatedAt.
      expect(served()).toMatchObject([
        { evaluations: 50, final: true },
        { evaluations: 21, final: true, updatedAt: turnsFinal.toISOString() },
      ]);
      expect(pending()).toEqual([]);
      expect(db.prepare('SELECT generation FROM results').all()).toEqual([{ generation: 2 }, { generation: 2 }]);
    });

    it("a further generation drops the older one's pending rows, and so does deleting", () => {
      repo.applyRow(row(620, 50, 50));
      progress('04:10:30', 1);
      recompute(2);
      expect(repo.applyRow(row(620, 2, 2, { generation: 2 }))).toBe('pending');
      recompute(3);
      expect(pending()).toEqual([]);
      expect(repo.applyRow(row(620, 9, 9, { generation: 2 }))).toBe('stale-generation');
      progress('04:10:30', 3);
      expect(served().map((r) => r.evaluations)).toEqual([50]);
      expect(repo.applyRow(row(620, 3, 3, { generation: 3 }))).toBe('stored'); // generation 3 has caught up
      recompute(4);
      expect(repo.applyRow(row(620, 1, 1, { generation: 4 }))).toBe('pending');
      repo.deleteFor(A);
      expect(pending()).toEqual([]);
      expect(served()).toEqual([]);
    });

    it('a PUT (dropRows) leaves nothing to wait for: its rows apply directly', () => {
      repo.applyRow(row(620, 50, 50));
      progress('04:10:30', 1);
      set(A, { generation: 2 });
      repo.startGeneration(A, { dropRows: true }, new Date(at('04:10:30')));
      expect(repo.applyRow(row(620, 2, 2, { generation: 2 }))).toBe('stored');
      expect(served().map((r) => r.evaluations)).toEqual([2]);
      expect(pending()).toEqual([]);
    });

    it('after catching up, a late change to a final row still sets updatedAt', () => {
      repo.applyRow(row(620, 50, 50));
      progress('04:10:30', 1);
      recompute();
      repo.applyRow(row(620, 49, 49, { generation: 2 }));
      progress('04:10:30', 2);
      expect(served()[0]).not.toHaveProperty('updatedAt');
      progress('04:11:00', 2); // the window is final
      repo.applyRow(row(620, 49, 49, { generation: 2 })); // re-sent, unchanged
      expect(served()[0]).not.toHaveProperty('updatedAt');
      const late = new Date('2026-11-26T04:20:00Z');
      expect(repo.applyRow(row(620, 52, 52, { generation: 2 }), late)).toBe('stored');
      expect(served()).toMatchObject([{ evaluations: 52, final: true, updatedAt: late.toISOString() }]);
    });
  });

  describe('the results query', () => {
    beforeEach(() => {
      for (const second of [20, 0, 10, 30]) repo.applyRow(row(second, second, 1));
      repo.applyRow({ ...row(0, 99, 1), analysisId: B });
    });

    it('orders by windowStart and bounds it with from (inclusive), to (exclusive) and limit', () => {
      expect(served().map((r) => r.evaluations)).toEqual([0, 10, 20, 30]);
      expect(repo.query('t1', A, { from: at('04:00:10'), to: at('04:00:30'), limit: 100 })!.map((r) => r.evaluations)).toEqual([10, 20]);
      expect(repo.query('t1', A, { limit: 2 })!.map((r) => r.evaluations)).toEqual([0, 10]);
    });

    it("answers undefined for another tenant's analysis, and the controller 404", () => {
      expect(repo.query('t2', A, { limit: 100 })).toBeUndefined();
      expect(served(B, 't2').map((r) => r.evaluations)).toEqual([99]);
      const controller = new ResultsController(new ResultsService(repo, undefined as never));
      const req = (tenant: string) => ({ caller: { role: 'tenant', tenant: { id: tenant, key: tenant, name: tenant, createdAt: '' } } }) as never;
      expect(() => controller.list(req('t2'), A, {})).toThrow(expect.objectContaining({ status: 404 }));
      expect(controller.list(req('t1'), A, { limit: '1' })).toEqual({ rows: [expect.objectContaining({ evaluations: 0, final: false })] });
      expect(() => controller.list(req('t1'), A, { limit: '0', from: 'yesterday' })).toThrow(
        expect.objectContaining({
          status: 400,
          errors: [
            { path: '/query/from', message: expect.any(String) },
            { path: '/query/limit', message: expect.any(String) },
          ],
        }),
      );
    });
  });

  describe('custom-sql rows', () => {
    const custom = (generation: number, delta: 1 | -1, n: number, windowStart?: string) => ({
      analysisId: A, generation, delta, rowKey: `${windowStart ?? ''}/${n}`, row: { n, ...(windowStart ? { windowStart } : {}) }, ...(windowStart ? { windowStart } : {}),
    });
    const rows = () => repo.customRows(A, { limit: 100 }).map((r) => r.n);

    it('keeps the result as a multiset: an update retracts the old row and adds the new one, a duplicate counts twice', () => {
      expect(repo.applyCustom(custom(1, 1, 5), 10)).toBe('stored');
      expect(repo.applyCustom(custom(1, 1, 5), 10)).toBe('stored');
      expect(rows()).toEqual([5, 5]);
      repo.applyCustom(custom(1, -1, 5), 10);
      repo.applyCustom(custom(1, 1, 6), 10);
      expect(rows()).toEqual([5, 6]);
      expect(get(A).last_result_at).not.toBeNull();
    });

    it('refuses rows beyond the limit, and skips records of an analysis that is gone', () => {
      repo.applyCustom(custom(1, 1, 1), 2);
      repo.applyCustom(custom(1, 1, 2), 2);
      expect(repo.applyCustom(custom(1, 1, 3), 2)).toBe('limit');
      expect(repo.applyCustom(custom(1, 1, 1), 2)).toBe('stored'); // a row it has: only its count grows
      expect(repo.applyCustom({ ...custom(1, 1, 1), analysisId: 'gone' }, 2)).toBe('unknown-analysis');
    });

    it('serves the previous generation until the current one has caught up, then drops the older ones', () => {
      repo.applyCustom(custom(1, 1, 1), 10);
      set(A, { generation: 2, generation_started_at: at('04:00:30'), progress_at: null });
      repo.applyCustom(custom(2, 1, 2), 10);
      repo.applyCustom(custom(1, 1, 9), 10); // the old job still serves meanwhile
      expect(rows()).toEqual([1, 9]);
      set(A, { progress_at: at('04:00:31') });
      repo.applyCustom(custom(2, 1, 3), 10);
      expect(rows()).toEqual([2, 3]);
      expect(db.prepare('SELECT COUNT(*) AS n FROM custom_rows WHERE generation = 1').get()).toEqual({ n: 0 });
    });

    it('forgets every generation\'s rows on a new definition (PUT: dropRows)', () => {
      repo.applyCustom(custom(1, 1, 1), 10);
      repo.startGeneration(A, { dropRows: true });
      expect(rows()).toEqual([]);
    });

    it('bounds windowed rows by from and to', () => {
      repo.applyCustom(custom(1, 1, 1, at('04:00:00')), 10);
      repo.applyCustom(custom(1, 1, 2, at('04:01:00')), 10);
      repo.applyCustom(custom(1, 1, 3), 10);
      expect(rows()).toEqual([3, 1, 2]);
      expect(repo.customRows(A, { from: at('04:00:30'), limit: 10 }).map((r) => r.n)).toEqual([2]);
    });
  });

  describe('pool progress', () => {
    const poolProgress = (shard: string, time: string, generation: number) =>
      repo.applyPoolProgress({ analysisId: 'pool:p3', generation, shard, progressAt: at(time) }, ['s0', 's1']);
    const poolRow = () => db.prepare('SELECT generation, progress_at FROM pools WHERE id = ?').get('p3');

    it('keeps the progress of the pool generation that runs, the minimum over the open shards, and nothing of another generation', () => {
      expect(poolProgress('s0', '04:00:10', 2)).toBe('unknown-analysis'); // no such pool
      db.prepare(`INSERT INTO pools (id, generation) VALUES ('p3', 2)`).run();
      expect(poolProgress('s0', '04:00:10', 2)).toBe('stored');
      expect(poolRow()).toEqual({ generation: 2, progress_at: null }); // s1 has not reported
      poolProgress('s1', '04:00:20', 2);
      expect(poolRow()).toEqual({ generation: 2, progress_at: at('04:00:10') });
      poolProgress('s0', '04:00:08', 2); // older: progress only grows
      poolProgress('s0', '04:00:30', 2);
      expect(poolRow()).toEqual({ generation: 2, progress_at: at('04:00:20') });
      expect(poolProgress('s0', '04:09:00', 1)).toBe('stale-generation'); // the job it replaced
      expect(poolRow()).toEqual({ generation: 2, progress_at: at('04:00:20') });
    });
  });
});
