import { SCHEMA_IDS } from '@flagstream/schemas';
import type { AnalysisDefinition, FlagEvaluationsParams } from '@flagstream/schemas';
import { FieldError, Problem } from '../common/problem';
import { assertValid } from '../common/schema-validator';
import { durationSeconds, parseDuration } from './sql/literals';

/** The kinds that can be deployed today; the rest of the catalog is named in the schema. */
export const DEPLOYABLE_KINDS = ['flag-evaluations'] as const;

export interface ValidDefinition {
  name: string;
  kind: 'flag-evaluations';
  params: FlagEvaluationsParams;
  environment?: string;
}

const MAX_WINDOW_SECONDS = 7 * 86400;

/** Checks a definition against its schemas and the rules schemas cannot say; 400 names every bad field. */
export function checkDefinition(body: unknown, environmentExists: (key: string) => boolean): ValidDefinition {
  const definition = assertValid<AnalysisDefinition>(SCHEMA_IDS.analysisDefinition, body);
  if (!(DEPLOYABLE_KINDS as readonly string[]).includes(definition.kind)) {
    throw Problem.invalid([{ path: '/kind', message: `kind "${definition.kind}" is not available yet; available: ${DEPLOYABLE_KINDS.join(', ')}` }]);
  }
  const params = assertValid<FlagEvaluationsParams>(SCHEMA_IDS.flagEvaluationsParams, definition.params, '/params');
  const errors: FieldError[] = [];
  const window = parseDuration(params.window);
  if (!window || durationSeconds(window) < 1 || durationSeconds(window) > MAX_WINDOW_SECONDS) {
    errors.push({ path: '/params/window', message: 'must be a duration from 1s to 7d, such as "10s", "1m" or "1h"' });
  }
  if (definition.environment !== undefined && !environmentExists(definition.environment)) {
    errors.push({ path: '/environment', message: `the tenant has no environment "${definition.environment}"` });
  }
  if (errors.length) throw Problem.invalid(errors);
  return { name: definition.name, kind: 'flag-evaluations', params, environment: definition.environment };
}
