import { call } from './client';
import { Dimension, projectRow } from './reference';

/**
 * Watches an analysis' results as a user polling the API would, keeping every answer
 * with the time it was seen: what was visible when, for freshness, for "never more than
 * the reference at any time" and for "a row changed after it was final carries updatedAt".
 */
export interface Observation {
  at: number;
  rows: Record<string, any>[];
}

export class ResultsWatcher {
  readonly observations: Observation[] = [];
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  errors = 0;

  constructor(readonly apiKey: string, readonly analysisId: string, readonly intervalMs = 500) {}

  start(): this {
    const tick = async () => {
      try {
        const reply = await call('GET', `/v1/analyses/${this.analysisId}/results?limit=10000`, { key: this.apiKey });
        if (reply.status === 200) this.observations.push({ at: Date.now(), rows: reply.body.rows });
        else this.errors++;
      } catch {
        this.errors++;
      }
      if (this.timer !== undefined) this.timer = setTimeout(() => (this.running = tick()), this.intervalMs);
    };
    this.timer = setTimeout(() => (this.running = tick()), 0);
    return this;
  }

  async stop(): Promise<void> {
    const timer = this.timer;
    this.timer = undefined;
    if (timer) clearTimeout(timer);
    await this.running;
  }

  get latest(): Observation | undefined {
    return this.observations[this.observations.length - 1];
  }
}

const rowKey = (row: Record<string, unknown>, groupBy: Dimension[]) => {
  const { evaluations: _e, ...key } = projectRow(row, groupBy);
  return JSON.stringify(key);
};

/**
 * Checks every observation against the final expectation and CONTRACT §6:
 * - no row ever shows more evaluations than the reference (nothing counted twice,
 *   not even for a moment), and no row the reference does not have ever appears;
 * - no row is `final` before its window has ended;
 * - a row seen `final` and later seen with another count carries `updatedAt`, no
 *   earlier than the time it was seen final (2 s slack).
 * Returns the violations (empty when all hold) and how many after-final updates were seen.
 */
export function checkObservations(observations: Observation[], expected: Record<string, any>[], groupBy: Dimension[]) {
  const want = new Map(expected.map((r) => [rowKey(r, groupBy), r.evaluations as number]));
  const violations: string[] = [];
  const finalSeen = new Map<string, { at: number; evaluations: number }>();
  let updatesAfterFinal = 0;
  const note = (text: string) => violations.length < 50 && violations.push(text);
  for (const { at, rows } of observations) {
    for (const row of rows) {
      const key = rowKey(row, groupBy);
      const limit = want.get(key);
      if (limit === undefined) note(`${new Date(at).toISOString()}: a row the reference does not have: ${JSON.stringify(row)}`);
      else if (row.evaluations > limit) note(`${new Date(at).toISOString()}: more than the reference (${limit}): ${JSON.stringify(row)}`);
      if (row.final === true && Date.parse(row.windowEnd) > at) note(`${new Date(at).toISOString()}: final before its window ended: ${JSON.stringify(row)}`);
      const seen = finalSeen.get(key);
      if (seen && row.evaluations !== seen.evaluations) {
        updatesAfterFinal++;
        if (typeof row.updatedAt !== 'string' || Number.isNaN(Date.parse(row.updatedAt))) {
          note(`${new Date(at).toISOString()}: changed after it was seen final (${seen.evaluations} at ${new Date(seen.at).toISOString()}) but has no updatedAt: ${JSON.stringify(row)}`);
        } else if (Date.parse(row.updatedAt) < seen.at - 2000) {
          note(`${new Date(at).toISOString()}: changed after ${new Date(seen.at).toISOString()} but updatedAt is earlier: ${JSON.stringify(row)}`);
        }
        finalSeen.set(key, { at, evaluations: row.evaluations });
      } else if (row.final === true && !seen) {
        finalSeen.set(key, { at, evaluations: row.evaluations });
      }
    }
  }
  return { violations, updatesAfterFinal };
}

/**
 * Per window of the expectation: when all its rows were first seen complete (exactly the
 * expected rows and counts of that window), or undefined when never.
 */
export function completeTimes(observations: Observation[], expected: Record<string, any>[], groupBy: Dimension[]): Map<string, number | undefined> {
  const byWindow = new Map<string, string[]>();
  for (const r of expected) byWindow.set(r.windowStart, [...(byWindow.get(r.windowStart) ?? []), JSON.stringify(projectRow(r, groupBy))].sort());
  const out = new Map<string, number | undefined>();
  for (const [windowStart, want] of byWindow) {
    const first = observations.find(({ rows }) => {
      const got = rows.filter((r) => r.windowStart === windowStart).map((r) => JSON.stringify(projectRow(r, groupBy))).sort();
      return JSON.stringify(got) === JSON.stringify(want);
    });
    out.set(windowStart, first?.at);
  }
  return out;
}
