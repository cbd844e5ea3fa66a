/**
 * Where a job starts reading the stream and which windows it may rewrite: pure functions
 * of the analysis' times (docs/counting.md §5), so every case is testable without a stream.
 */

/** An SDK clock up to 5 min ahead writes a window's events up to this long before the window starts. */
export const CLOCK_AHEAD_MS = 5 * 60_000;
/** Rows emitted by a lost job but perhaps not yet stored (mini-batch, sink buffer): recompute this much more. */
const LOSS_MARGIN_MS = 60_000;

export interface RecomputePlan {
  /** Where the job starts reading the stream. */
  readFrom: Date;
  /** Windows starting earlier are not rewritten (undefined: every window is). */
  resultsFrom?: Date;
}

const alignDown = (t: number, windowMs: number) => Math.floor(t / windowMs) * windowMs;
const alignUp = (t: number, windowMs: number) => Math.ceil(t / windowMs) * windowMs;

/**
 * A new analysis, or one whose definition changed (its old rows are gone): every window
 * from the one it was created in, with whatever the stream still holds of it.
 */
export function fromCreation(createdAt: Date, windowMs: number): RecomputePlan {
  return { readFrom: new Date(alignDown(createdAt.getTime(), windowMs) - CLOCK_AHEAD_MS) };
}

/**
 * A replay from `from`: windows from the one `from` lies in are recomputed, but a window
 * the stream no longer holds whole (it began before `oldestHeld`, plus the clock allowance)
 * keeps its stored rows instead of being replaced by a cut-short count.
 */
export function fromTime(from: Date, windowMs: number, oldestHeld: Date): RecomputePlan {
  const start = alignDown(from.getTime(), windowMs);
  const firstWhole = alignUp(oldestHeld.getTime() + CLOCK_AHEAD_MS, windowMs);
  return { readFrom: new Date(start - CLOCK_AHEAD_MS), resultsFrom: new Date(Math.max(start, firstWhole)) };
}

/**
 * A job lost without a checkpoint to restore: windows that late events could still change
 * (those ending after progress − horizon) are recomputed; older ones are complete in the store.
 */
export function afterLoss(
  analysis: { readFrom?: string; resultsFrom?: string; progressAt?: string; createdAt: string },
  windowMs: number,
  horizonMs: number,
  oldestHeld: Date,
): RecomputePlan {
  const generationStart = analysis.readFrom ? Date.parse(analysis.readFrom) + CLOCK_AHEAD_MS : alignDown(Date.parse(analysis.createdAt), windowMs);
  const settled = analysis.progressAt ? Date.parse(analysis.progressAt) - horizonMs - LOSS_MARGIN_MS : generationStart;
  const plan = fromTime(new Date(Math.max(generationStart, settled)), windowMs, oldestHeld);
  const previous = analysis.resultsFrom ? Date.parse(analysis.resultsFrom) : 0;
  return { readFrom: plan.readFrom, resultsFrom: new Date(Math.max(plan.resultsFrom!.getTime(), previous)) };
}
