/**
 * The independent reference for flag-evaluations: a plain loop over the summary
 * events a test sent, summing each counter into the tumbling window of its
 * summary's endDate. Nothing here shares code with the SQL generator or Flink.
 */

export type Dimension = 'flagKey' | 'variation' | 'environment';

export interface SummaryLike {
  kind: string;
  endDate: number;
  features: Record<string, { counters: { variation?: number; count: number }[] }>;
}

export function expectedEvaluationRows(events: unknown[], options: { windowMs: number; groupBy: Dimension[]; environment?: string }) {
  const sums = new Map<string, Record<string, unknown> & { evaluations: number }>();
  for (const event of events as SummaryLike[]) {
    if (event.kind !== 'summary') continue;
    const windowStart = Math.floor(event.endDate / options.windowMs) * options.windowMs;
    for (const [flagKey, flag] of Object.entries(event.features)) {
      for (const counter of flag.counters) {
        const row: Record<string, unknown> = {
          windowStart: new Date(windowStart).toISOString(),
          windowEnd: new Date(windowStart + options.windowMs).toISOString(),
        };
        if (options.groupBy.includes('flagKey')) row.flagKey = flagKey;
        if (options.groupBy.includes('variation')) row.variation = counter.variation ?? null;
        if (options.groupBy.includes('environment')) row.environment = options.environment;
        const key = JSON.stringify(row);
        sums.set(key, { ...row, evaluations: (sums.get(key)?.evaluations ?? 0) + counter.count });
      }
    }
  }
  return sortRows([...sums.values()]);
}

/** A stable order for comparing row sets. */
export function sortRows<T>(rows: T[]): T[] {
  return [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}
