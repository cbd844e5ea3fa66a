import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Db, openDatabase } from '../store/database';
import { SqlitePayloadLedger } from './payload-ledger.repository';

describe('SqlitePayloadLedger', () => {
  let dir: string;
  let db: Db;
  const rows = () => (db.prepare('SELECT COUNT(*) AS n FROM payloads WHERE complete = 1').get() as { n: number }).n;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-ledger-'));
    db = openDatabase(dir);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a completion at once, and has it in SQLite (for the next process) once written with the others', async () => {
    const ledger = new SqlitePayloadLedger(db);
    ledger.complete('t', 'e', 'p1#0123456789abcdef', 3, new Set([0, 2]), 1000, { accepted: 2, rejected: [{ index: 1, error: 'x' }] });
    expect(ledger.find('t', 'e', 'p1#0123456789abcdef')).toEqual({ eventCount: 3, written: new Set([0, 2]), complete: true, response: { accepted: 2, rejected: [{ index: 1, error: 'x' }] }, receivedAt: 1000 });
    // Another body under the same header ID is noticed before the write too; the same one is not.
    expect(ledger.otherBodySeen('t', 'e', 'p1', 'p1#fedcba9876543210')).toBe(true);
    expect(ledger.otherBodySeen('t', 'e', 'p1', 'p1#0123456789abcdef')).toBe(false);
    expect(ledger.otherBodySeen('other tenant', 'e', 'p1', 'p1#fedcba9876543210')).toBe(false);
    expect(rows()).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(rows()).toBe(1);
    const restarted = new SqlitePayloadLedger(db);
    expect(restarted.find('t', 'e', 'p1#0123456789abcdef')).toEqual(ledger.find('t', 'e', 'p1#0123456789abcdef'));
    expect(restarted.otherBodySeen('t', 'e', 'p1', 'p1#fedcba9876543210')).toBe(true);
  });

  it('writes a full batch at once, and whatever waits when the module stops', () => {
    const ledger = new SqlitePayloadLedger(db);
    for (let i = 0; i < 63; i++) ledger.complete('t', 'e', `p${i}`, 1, new Set([0]), 1000, { accepted: 1, rejected: [] });
    expect(rows()).toBe(0);
    ledger.complete('t', 'e', 'p63', 1, new Set([0]), 1000, { accepted: 1, rejected: [] });
    expect(rows()).toBe(64);
    ledger.complete('t', 'e', 'p64', 1, new Set([0]), 1000, { accepted: 1, rejected: [] });
    ledger.onModuleDestroy();
    expect(rows()).toBe(65);
  });

  it('keeps a waiting completion over a later partial write of the same payload', async () => {
    const ledger = new SqlitePayloadLedger(db);
    ledger.complete('t', 'e', 'p', 2, new Set([0, 1]), 1000, { accepted: 2, rejected: [] });
    ledger.recordWritten('t', 'e', 'p', 2, new Set([0]), 1000);
    ledger.flush();
    expect(new SqlitePayloadLedger(db).find('t', 'e', 'p')).toMatchObject({ complete: true, written: new Set([0, 1]) });
  });
});
