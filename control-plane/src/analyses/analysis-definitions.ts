import { SCHEMA_IDS } from '@flagstream/schemas';
import type {
  AnalysisDefinition,
  CustomSqlParams,
  ExperimentParams,
  FlagEvaluationsParams,
  FlagUsageParams,
  GuardrailParams,
  UniqueContextsParams,
} from '@flagstream/schemas';
import { FieldError, Problem } from '../common/problem';
import { assertValid } from '../common/schema-validator';
import { durationSeconds, parseDuration } from './sql/literals';

/** Every kind of the catalog (CONTRACT §6), each with its params schema. */
export const KINDS = ['flag-evaluations', 'unique-contexts', 'flag-usage', 'experiment', 'guardrail', 'custom-sql'] as const;
export type AnalysisKind = (typeof KINDS)[number];

/** A definition checked against its kind's schema (defaults filled in) and the rules schemas cannot say. */
export type KindParams =
  | { kind: 'flag-evaluations'; params: FlagEvaluationsParams }
  | { kind: 'unique-contexts'; params: UniqueContextsParams }
  | { kind: 'flag-usage'; params: FlagUsageParams }
  | { kind: 'experiment'; params: ExperimentParams }
  | { kind: 'guardrail'; params: GuardrailParams }
  | { kind: 'custom-sql'; params: CustomSqlParams };

export type ValidDefinition = KindParams & { name: string; environment?: string };

const PARAMS_SCHEMA: Record<AnalysisKind, string> = {
  'flag-evaluations': SCHEMA_IDS.flagEvaluationsParams,
  'unique-contexts': SCHEMA_IDS.uniqueContextsParams,
  'flag-usage': SCHEMA_IDS.flagUsageParams,
  experiment: SCHEMA_IDS.experimentParams,
  guardrail: SCHEMA_IDS.guardrailParams,
  'custom-sql': SCHEMA_IDS.customSqlParams,
};

const MAX_WINDOW_SECONDS = 7 * 86400;
const MIN_PERIOD_SECONDS = 10;
const MAX_PERIOD_SECONDS = 90 * 86400;

/** Checks a definition against its schemas and the rules schemas cannot say; 400 names every bad field. */
export function checkDefinition(body: unknown, environmentExists: (key: string) => boolean): ValidDefinition {
  const definition = assertValid<AnalysisDefinition>(SCHEMA_IDS.analysisDefinition, body);
  const kind = definition.kind as AnalysisKind;
  const params = assertValid<Record<string, unknown>>(PARAMS_SCHEMA[kind], definition.params, '/params');
  const errors: FieldError[] = [];
  if (definition.environment !== undefined && !environmentExists(definition.environment)) {
    errors.push({ path: '/environment', message: `the tenant has no environment "${definition.environment}"` });
  }
  const checked = { kind, params } as KindParams;
  switch (checked.kind) {
    case 'flag-evaluations':
    case 'unique-contexts':
      checkDuration(checked.params.window, '/params/window', 1, MAX_WINDOW_SECONDS, errors);
      break;
    case 'flag-usage':
      checkDuration(checked.params.period ?? '7d', '/params/period', MIN_PERIOD_SECONDS, MAX_PERIOD_SECONDS, errors);
      break;
    case 'experiment': {
      const { weights, controlVariation = 0 } = checked.params;
      if (weights && !(controlVariation < weights.length)) errors.push({ path: '/params/controlVariation', message: `must be a variation that weights has (0 to ${weights.length - 1})` });
      if (weights && !weights.some((w) => w > 0)) errors.push({ path: '/params/weights', message: 'must have a weight above 0' });
      break;
    }
    case 'guardrail': {
      const { controlVariation = 0, treatmentVariation, webhook } = checked.params;
      if (controlVariation === treatmentVariation) errors.push({ path: '/params/treatmentVariation', message: 'must differ from controlVariation' });
      if (webhook !== undefined) {
        const problem = webhookProblem(webhook);
        if (problem) errors.push({ path: '/params/webhook', message: problem });
      }
      break;
    }
    case 'custom-sql':
      // The query itself is checked by Flink's own parser when the script is planned (the runner's sandbox).
      break;
  }
  if (errors.length) throw Problem.invalid(errors);
  return { name: definition.name, ...checked, environment: definition.environment };
}

function checkDuration(text: string, path: string, minSeconds: number, maxSeconds: number, errors: FieldError[]): void {
  const duration = parseDuration(text);
  if (!duration || durationSeconds(duration) < minSeconds || durationSeconds(duration) > maxSeconds) {
    errors.push({ path, message: `must be a duration from ${describe(minSeconds)} to ${describe(maxSeconds)}, such as "10s", "1m" or "1h"` });
  }
}

function describe(seconds: number): string {
  return seconds % 86400 === 0 ? `${seconds / 86400}d` : `${seconds}s`;
}

/**
 * Why a webhook URL is refused, if it is: only https, or http to a loopback address (a
 * receiver on the same host), without credentials in the URL.
 */
export function webhookProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute https URL';
  }
  if (url.username || url.password) return 'must not carry credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return undefined;
  return 'must be an https URL (http only on a loopback address such as 127.0.0.1)';
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
