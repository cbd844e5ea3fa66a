import { Inject, Injectable } from '@nestjs/common';
import type { ExperimentParams } from '@flagstream/schemas';
import { durationMs } from '../analyses/kind-traits';
import { Problem } from '../common/problem';
import { GuardrailWatcher } from './guardrail-watcher.service';
import { experimentRows, flagUsageRows, usageBucketOf, UsageBucket, variationStatsOf, VariationStats } from './presenters';
import { RESULTS_REPOSITORY, ResultsQuery, ResultsRepository } from './results.repository';

/** The most stored rows a kept-current kind is presented from (flag-usage buckets, experiment variations). */
const MAX_STORED_ROWS = 200_000;

/**
 * GET /v1/analyses/{id}/results, per kind (CONTRACT §6): windowed kinds serve their stored rows
 * (`final`, `updatedAt`); kept-current kinds are presented from them at the time of the request.
 */
@Injectable()
export class ResultsService {
  constructor(
    @Inject(RESULTS_REPOSITORY) private readonly results: ResultsRepository,
    private readonly guardrails: GuardrailWatcher,
  ) {}

  rows(tenantId: string, analysisId: string, query: ResultsQuery, now = Date.now()): unknown[] {
    const analysis = this.results.describe(tenantId, analysisId);
    if (!analysis) throw Problem.notFound(`Analysis ${analysisId}`);
    switch (analysis.kind) {
      case 'flag-usage': {
        const buckets = this.results.storedRows(analysisId, MAX_STORED_ROWS).map(usageBucketOf).filter((b): b is UsageBucket => Boolean(b));
        return flagUsageRows(buckets, now, periodMs(analysis.params)).slice(0, query.limit);
      }
      case 'experiment': {
        const stats = this.results.storedRows(analysisId, MAX_STORED_ROWS).map(variationStatsOf).filter((s): s is VariationStats => Boolean(s));
        return experimentRows(stats, analysis.params as unknown as ExperimentParams).slice(0, query.limit);
      }
      case 'guardrail':
        return [this.guardrails.current(analysis)];
      case 'custom-sql':
        return this.results.customRows(analysisId, query);
      default:
        return this.results.query(tenantId, analysisId, query) ?? [];
    }
  }
}

function periodMs(params: Record<string, unknown>): number {
  return durationMs(String(params.period ?? '7d'));
}
