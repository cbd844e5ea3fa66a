import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadConfig } from '../config/config';
import { Db, openDatabase } from '../store/database';
import { hourStartOf, LakeFiles, lakeRecordsBefore, listLakeFiles, readLakeLines } from './lake-files';

const HOUR = 3600_000;
const H4 = Date.UTC(2026, 10, 26, 4);

describe('lake files (the read side)', () => {
  let dir: string;
  let db: Db;

  const manifest = (path: string, tenant: string, hourStart: number) =>
    db
      .prepare(
        `INSERT INTO lake_files (path, tenant, hour_start, records, bytes, min_received_at, max_received_at, written_at)
         VALUES (?, ?, ?, 1, 1, ?, ?, 0)`,
      )
      .run(path, tenant, hourStart, hourStart, hourStart);
  const collect = async (lines: AsyncGenerator<string>) => {
    const out: string[] = [];
    for await (const line of lines) out.push(line);
    return out;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-lake-files-'));
    db = openDatabase(dir);
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('computes the start of a partition hour in UTC', () => {
    expect(hourStartOf({ tenant: 'a', dt: '2026-11-26', hour: '04' })).toBe(H4);
    expect(hourStartOf({ tenant: 'a', dt: '2026-01-01', hour: '23' })).toBe(Date.UTC(2026, 0, 1, 23));
  });

  it('lists only the manifest\'s files of the tenant, from the hour of the given time on, oldest hour first', () => {
    manifest('tenant=a/dt=2026-11-26/hour=05/f2.json.gz', 'a', H4 + HOUR);
    manifest('tenant=a/dt=2026-11-26/hour=04/f1.json.gz', 'a', H4);
    manifest('tenant=a/dt=2026-11-26/hour=03/f0.json.gz', 'a', H4 - HOUR);
    manifest('tenant=b/dt=2026-11-26/hour=04/g.json.gz', 'b', H4);
    // The hour that holds `from` counts: its file may hold records received after it.
    expect(listLakeFiles(db, 'a', H4 + 59 * 60_000).map((f) => f.path)).toEqual(['tenant=a/dt=2026-11-26/hour=04/f1.json.gz', 'tenant=a/dt=2026-11-26/hour=05/f2.json.gz']);
    expect(listLakeFiles(db, 'a', 0)).toHaveLength(3);
    expect(listLakeFiles(db, 'b', H4 + HOUR)).toEqual([]);
    expect(listLakeFiles(db, 'c', 0)).toEqual([]);
  });

  it('counts what a backfill reads before the seam: whole files from the manifest, a file across the seam line by line', async () => {
    const lakeDir = join(dir, 'lake');
    const file = (path: string, tenant: string, receivedAts: number[]) => {
      mkdirSync(join(lakeDir, path, '..'), { recursive: true });
      writeFileSync(join(lakeDir, path), gzipSync(receivedAts.map((receivedAt, i) => JSON.stringify({ tenant, eventIndex: i, receivedAt })).join('\n') + '\n'));
      db.prepare(
        `INSERT INTO lake_files (path, tenant, hour_start, records, bytes, min_received_at, max_received_at, written_at) VALUES (?, ?, ?, ?, 1, ?, ?, 0)`,
      ).run(path, tenant, Math.floor(receivedAts[0] / HOUR) * HOUR, receivedAts.length, Math.min(...receivedAts), Math.max(...receivedAts));
    };
    const seam = H4 + 30 * 60_000;
    file('tenant=a/dt=2026-11-26/hour=03/f0.json.gz', 'a', [H4 - 10, H4 - 5]); // an hour before `from`'s: not read
    file('tenant=a/dt=2026-11-26/hour=04/f1.json.gz', 'a', [H4 + 1, H4 + 2, H4 + 3]); // wholly before the seam
    file('tenant=a/dt=2026-11-26/hour=04/f2.json.gz', 'a', [seam - 2, seam - 1, seam, seam + 1]); // across it: 2 before
    file('tenant=a/dt=2026-11-26/hour=04/f3.json.gz', 'a', [seam + 5, seam + 6]); // after it: the stream has these
    file('tenant=b/dt=2026-11-26/hour=04/g.json.gz', 'b', [H4 + 1]);
    expect(await lakeRecordsBefore(db, lakeDir, ['a'], H4 + 10 * 60_000, seam)).toBe(5);
    expect(await lakeRecordsBefore(db, lakeDir, ['a', 'b', 'a'], H4, seam)).toBe(6);
    expect(await lakeRecordsBefore(db, lakeDir, ['a'], H4 - HOUR, H4)).toBe(2);
    expect(await lakeRecordsBefore(db, lakeDir, ['c'], 0, seam)).toBe(0);
  });

  it('streams a file\'s lines, also across chunk boundaries and multi-byte characters, with or without a final newline', async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ i, text: `ünï 🚩 ${'x'.repeat(i % 97)}` }));
    const file = join(dir, 'big.json.gz');
    writeFileSync(file, gzipSync(lines.join('\n') + '\n'));
    expect(await collect(readLakeLines(file))).toEqual(lines);
    writeFileSync(file, gzipSync('{"a":1}\n{"b":2}'));
    expect(await collect(readLakeLines(file))).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('fails, never hangs, on a missing or corrupt file', async () => {
    await expect(collect(readLakeLines(join(dir, 'missing.json.gz')))).rejects.toThrow(/ENOENT/);
    writeFileSync(join(dir, 'bad.json.gz'), 'not gzip');
    await expect(collect(readLakeLines(join(dir, 'bad.json.gz')))).rejects.toThrow();
  });

  it('LakeFiles resolves listed files under FLAGSTREAM_LAKE_DIR', async () => {
    const config = loadConfig({ FLAGSTREAM_DATA_DIR: dir, FLAGSTREAM_LAKE_DIR: join(dir, 'elsewhere') });
    manifest('f.json.gz', 'a', H4);
    const files = new LakeFiles(config, db);
    const [listed] = files.list('a', H4);
    expect(files.absolutePath(listed)).toBe(join(dir, 'elsewhere', 'f.json.gz'));
    mkdirSync(join(dir, 'elsewhere'));
    writeFileSync(join(dir, 'elsewhere', 'f.json.gz'), gzipSync('{"x":1}\n'));
    expect(await collect(files.lines(listed))).toEqual(['{"x":1}']);
  });
});
