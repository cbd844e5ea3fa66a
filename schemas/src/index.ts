import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export * from './generated/types';

/** Root of the schema files (the package folder), also after compilation to dist/. */
export const SCHEMAS_DIR = join(__dirname, '..');

export type JsonSchema = Record<string, unknown> & { $id: string };

function load(relativePath: string): JsonSchema {
  return JSON.parse(readFileSync(join(SCHEMAS_DIR, relativePath), 'utf8')) as JsonSchema;
}

/** Every schema, by a short name; $ids let them reference each other. */
export const schemas = {
  context: load('events/context.schema.json'),
  sdkEvent: load('events/sdk-event.schema.json'),
  tenants: load('tenants/keys.schema.json'),
  analysisDefinition: load('analyses/analysis-definition.schema.json'),
  flagEvaluationsParams: load('analyses/flag-evaluations.params.schema.json'),
  flagEvaluationsRow: load('analyses/flag-evaluations.row.schema.json'),
  uniqueContextsParams: load('analyses/unique-contexts.params.schema.json'),
  uniqueContextsRow: load('analyses/unique-contexts.row.schema.json'),
  flagUsageParams: load('analyses/flag-usage.params.schema.json'),
  flagUsageRow: load('analyses/flag-usage.row.schema.json'),
  experimentParams: load('analyses/experiment.params.schema.json'),
  experimentRow: load('analyses/experiment.row.schema.json'),
  guardrailParams: load('analyses/guardrail.params.schema.json'),
  guardrailRow: load('analyses/guardrail.row.schema.json'),
  customSqlParams: load('analyses/custom-sql.params.schema.json'),
} as const;

export const SCHEMA_IDS = {
  createTenant: 'https://flagstream.dev/schemas/tenants/keys.schema.json#/definitions/createTenant',
  createEnvironment: 'https://flagstream.dev/schemas/tenants/keys.schema.json#/definitions/createEnvironment',
  sdkEvent: 'https://flagstream.dev/schemas/events/sdk-event.schema.json',
  analysisDefinition: 'https://flagstream.dev/schemas/analyses/analysis-definition.schema.json',
  flagEvaluationsParams: 'https://flagstream.dev/schemas/analyses/flag-evaluations.params.schema.json',
  uniqueContextsParams: 'https://flagstream.dev/schemas/analyses/unique-contexts.params.schema.json',
  flagUsageParams: 'https://flagstream.dev/schemas/analyses/flag-usage.params.schema.json',
  experimentParams: 'https://flagstream.dev/schemas/analyses/experiment.params.schema.json',
  guardrailParams: 'https://flagstream.dev/schemas/analyses/guardrail.params.schema.json',
  customSqlParams: 'https://flagstream.dev/schemas/analyses/custom-sql.params.schema.json',
} as const;
