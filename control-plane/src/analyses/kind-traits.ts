import type { KindParams } from './analysis-definitions';
import { durationSeconds, parseDuration } from './sql/literals';

/**
 * What the lifecycle needs to know of a kind, beyond its SQL: how its rows are recomputed.
 * - `windowed`: rows per window (or bucket) of event time; a recomputation re-reads the
 *   windows that can still change and keeps the older ones (docs/counting.md §5).
 * - `cumulative`: rows since the analysis began (experiment, guardrail, custom SQL, whose
 *   state cannot be rebuilt from part of the stream): a recomputation re-reads the whole
 *   generation as a new generation, whose rows replace the old ones once it has caught up.
 */
export type Recompute = { type: 'windowed'; windowMs: number } | { type: 'cumulative' };

export function recomputeOf(definition: KindParams): Recompute {
  switch (definition.kind) {
    case 'flag-evaluations':
    case 'unique-contexts':
      return { type: 'windowed', windowMs: durationMs(definition.params.window) };
    case 'flag-usage':
      return { type: 'windowed', windowMs: bucketMsOf(definition.params) };
    case 'experiment':
    case 'guardrail':
    case 'custom-sql':
      return { type: 'cumulative' };
  }
}

/** flag-usage keeps evaluations in buckets of period / 168 (an hour of a week), at least 1 s. */
export const FLAG_USAGE_BUCKETS_PER_PERIOD = 168;

export function bucketMsOf(params: { period?: string }): number {
  const periodMs = durationMs(params.period ?? '7d');
  return Math.max(1000, Math.floor(periodMs / FLAG_USAGE_BUCKETS_PER_PERIOD / 1000) * 1000);
}

export function durationMs(text: string): number {
  const duration = parseDuration(text);
  if (!duration) throw new Error(`invalid duration ${JSON.stringify(text)}`);
  return durationSeconds(duration) * 1000;
}
