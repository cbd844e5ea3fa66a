import { afterLoss, CLOCK_AHEAD_MS, fromCreation, fromTime } from './recompute';

const T = (iso: string) => new Date(iso);
const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('where a recomputation reads from and which windows it rewrites', () => {
  it('a new analysis reads its creation window whole, allowing for SDK clocks ahead', () => {
    const plan = fromCreation(T('2026-11-26T12:00:07.500Z'), 10_000);
    expect(plan).toEqual({ readFrom: new Date(Date.parse('2026-11-26T12:00:00.000Z') - CLOCK_AHEAD_MS) });
  });

  it('a replay rewrites windows from the one its time lies in', () => {
    const plan = fromTime(T('2026-11-26T10:00:07Z'), 10_000, T('2026-11-25T12:00:00Z'));
    expect(plan.resultsFrom).toEqual(T('2026-11-26T10:00:00Z'));
    expect(plan.readFrom).toEqual(T('2026-11-26T09:55:00Z'));
  });

  it('never rewrites a window the stream no longer holds whole (7 d windows, 24 h retention)', () => {
    const oldestHeld = T('2026-11-25T12:00:00Z');
    const plan = fromTime(T('2026-11-25T12:30:00Z'), 7 * DAY, oldestHeld);
    // The week that began before the oldest record is left as stored; the next one is rewritten.
    expect(plan.resultsFrom!.getTime()).toBeGreaterThan(oldestHeld.getTime());
    expect(plan.resultsFrom!.getTime() % (7 * DAY)).toBe(0);
  });

  it('after losing its job without a checkpoint, recomputes only what late events could still change', () => {
    const analysis = { createdAt: '2026-11-26T00:00:00Z', readFrom: '2026-11-25T23:55:00Z', progressAt: '2026-11-26T12:00:00Z' };
    const plan = afterLoss(analysis, 60_000, HOUR, T('2026-11-25T12:05:00Z'));
    // progress − horizon − a minute of margin, aligned to the window
    expect(plan.resultsFrom).toEqual(T('2026-11-26T10:59:00Z'));
    expect(plan.readFrom).toEqual(T('2026-11-26T10:54:00Z'));
  });

  it('after losing a job that never reported progress, recomputes its generation from the start, keeping an earlier cut', () => {
    const analysis = { createdAt: '2026-11-26T00:00:00Z', readFrom: '2026-11-26T09:55:00Z', resultsFrom: '2026-11-26T10:00:00Z' };
    const plan = afterLoss(analysis, 60_000, HOUR, T('2026-11-25T12:05:00Z'));
    expect(plan.resultsFrom).toEqual(T('2026-11-26T10:00:00Z'));
    expect(plan.readFrom).toEqual(T('2026-11-26T09:55:00Z'));
  });
});
