import { schemas } from '@flagstream/schemas';

/**
 * The OpenAPI 3.1 description, built from the JSON Schemas in schemas/ (the same ones
 * Ajv enforces), so the document cannot drift from what the API accepts.
 */
export function buildOpenApi(serverUrl: string): Record<string, unknown> {
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
  const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
  const errors = { '400': problem('Invalid input; `errors` names each field.'), '401': problem('No key or an unknown key.'), '403': problem('The key may not do this.'), '404': problem('Not found (also another tenant\'s resource).') };
  const tenant = [{ tenantKey: [] }];
  const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }];
  const analysisOp = (summary: string, extra: Record<string, unknown> = {}) => ({
    summary, security: tenant, parameters: idParam, responses: { '200': { description: 'The analysis.', ...json(ref('Analysis')) }, ...errors }, ...extra,
  });
  const defs = (schema: Record<string, unknown>) => (schema.definitions ?? {}) as Record<string, unknown>;

  return {
    openapi: '3.1.0',
    info: {
      title: 'Flagstream API',
      version: '1',
      description: 'Real-time analytics on feature-flag events. The catalog: flag-evaluations, unique-contexts, flag-usage, experiment, guardrail and custom-sql (CONTRACT §6), each with its params and rows below.',
    },
    servers: [{ url: serverUrl }],
    paths: {
      '/v1/tenants': { post: { summary: 'Create a tenant (admin key). The apiKey is shown once.', security: [{ adminKey: [] }], requestBody: json(ref('CreateTenantRequest')), responses: { '201': { description: 'Created.', ...json({ type: 'object', properties: { key: { type: 'string' }, name: { type: 'string' }, apiKey: { type: 'string' } } }) }, '409': problem('The key is taken.'), ...errors } } },
      '/v1/environments': {
        post: { summary: 'Create an environment (tenant key). The sdkKey is shown once.', security: tenant, requestBody: json(ref('CreateEnvironmentRequest')), responses: { '201': { description: 'Created.', ...json({ type: 'object', properties: { key: { type: 'string' }, sdkKey: { type: 'string' } } }) }, '409': problem('The key is taken.'), ...errors } },
        get: { summary: "List the tenant's environments.", security: tenant, responses: { '200': { description: 'Environments.' }, ...errors } },
      },
      '/bulk': { post: bulkOp() },
      '/v1/events/bulk': { post: bulkOp() },
      '/diagnostic': { post: { summary: 'SDK diagnostic events (acknowledged, not analysed).', security: [{ sdkKey: [] }], responses: { '202': { description: 'Accepted.' }, ...errors } } },
      '/v1/analyses': {
        post: { summary: 'Create an analysis; it is validated by Flink\'s planner and deployed as its own job.', security: tenant, requestBody: json(ref('AnalysisDefinition')), responses: { '201': { description: 'Created.', ...json(ref('Analysis')) }, ...errors } },
        get: { summary: "List the tenant's analyses.", security: tenant, responses: { '200': { description: 'Analyses.', ...json({ type: 'object', properties: { analyses: { type: 'array', items: ref('Analysis') } } }) }, ...errors } },
      },
      '/v1/analyses/validate': { post: { summary: 'Validate a definition without deploying it.', security: tenant, requestBody: json(ref('AnalysisDefinition')), responses: { '200': { description: 'Valid.', ...json({ type: 'object', properties: { valid: { const: true }, sql: { type: 'string' } } }) }, ...errors } } },
      '/v1/analyses/{id}': {
        get: analysisOp('Get an analysis.'),
        put: analysisOp("Replace the definition: the old rows are dropped and the analysis' history is recomputed the new way, from its creation or from the oldest time the stream holds.", { requestBody: json(ref('AnalysisDefinition')) }),
        delete: { summary: 'Delete an analysis, its job and results.', security: tenant, parameters: idParam, responses: { '204': { description: 'Deleted.' }, ...errors } },
      },
      '/v1/analyses/{id}/sql': { get: { summary: 'The generated Flink SQL.', security: tenant, parameters: idParam, responses: { '200': { description: 'SQL.', ...json({ type: 'object', properties: { sql: { type: 'string' } } }) }, ...errors } } },
      '/v1/analyses/{id}/stop': { post: analysisOp('Stop the job with a savepoint.') },
      '/v1/analyses/{id}/start': { post: analysisOp('Start a stopped analysis (from its savepoint, else its last checkpoint, else by recomputing what could still change).') },
      '/v1/analyses/{id}/replay': { post: analysisOp("Re-read the stream from a time within its retention and rewrite the results from that time's window on (a window the stream no longer holds whole keeps its rows).", { requestBody: json({ type: 'object', required: ['from'], properties: { from: { type: 'string', format: 'date-time' } } }) }) },
      '/v1/analyses/{id}/health': {
        get: {
          summary: 'What the scheduled health checks observed and did for the analysis (deployed, restored, failed with the cause, recomputed, gave up), newest first, the last 100.',
          security: tenant, parameters: idParam,
          responses: {
            '200': {
              description: 'Status and history.',
              ...json({
                type: 'object', required: ['status', 'history'],
                properties: {
                  status: { type: 'string' },
                  history: { type: 'array', items: { type: 'object', required: ['at', 'status'], properties: { at: { type: 'string', format: 'date-time' }, status: { type: 'string' }, reason: { type: 'string' } } } },
                },
              }),
            },
            ...errors,
          },
        },
      },
      '/v1/analyses/{id}/results': {
        get: {
          summary: 'Result rows: windowed kinds (flag-evaluations, unique-contexts, custom-sql) ordered by windowStart, bounded by from/to; kept-current kinds (flag-usage, experiment, guardrail) as of the request, from/to not applying.', security: tenant,
          parameters: [...idParam, { name: 'from', in: 'query', schema: { type: 'string', format: 'date-time' } }, { name: 'to', in: 'query', schema: { type: 'string', format: 'date-time' } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 } }],
          responses: { '200': { description: 'Rows.', ...json({ type: 'object', properties: { rows: { type: 'array', items: { oneOf: ['FlagEvaluationsRow', 'UniqueContextsRow', 'FlagUsageRow', 'ExperimentRow', 'GuardrailRow', 'CustomSqlRow'].map(ref) } } } }) }, ...errors },
        },
      },
      '/health': { get: { summary: 'Health of the stream, Flink, the validator and the store.', responses: { '200': { description: 'All answer.' }, '503': { description: 'A component does not answer.' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics.', responses: { '200': { description: 'Text format.' } } } },
    },
    components: {
      securitySchemes: {
        adminKey: { type: 'http', scheme: 'bearer' },
        tenantKey: { type: 'http', scheme: 'bearer' },
        sdkKey: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'The SDK key, bare or as "Bearer <key>".' },
      },
      schemas: {
        ...rebase(defs(schemas.context)),
        Context: rebase(withoutDefs(schemas.context)),
        ...rebase(defs(schemas.sdkEvent)),
        SdkEvent: rebase(withoutDefs(schemas.sdkEvent)),
        CreateTenantRequest: rebase(defs(schemas.tenants).createTenant),
        CreateEnvironmentRequest: rebase(defs(schemas.tenants).createEnvironment),
        resourceKey: defs(schemas.tenants).resourceKey,
        AnalysisDefinition: rebase(withoutDefs(schemas.analysisDefinition)),
        FlagEvaluationsParams: rebase(withoutDefs(schemas.flagEvaluationsParams)),
        duration: defs(schemas.flagEvaluationsParams).duration,
        FlagEvaluationsRow: withoutDefs(schemas.flagEvaluationsRow),
        UniqueContextsParams: rebase(withoutDefs(schemas.uniqueContextsParams)),
        UniqueContextsRow: withoutDefs(schemas.uniqueContextsRow),
        FlagUsageParams: rebase(withoutDefs(schemas.flagUsageParams)),
        FlagUsageRow: withoutDefs(schemas.flagUsageRow),
        ExperimentParams: rebase(withoutDefs(schemas.experimentParams)),
        metric: defs(schemas.experimentParams).metric,
        ExperimentRow: withoutDefs(schemas.experimentRow),
        GuardrailParams: rebase(withoutDefs(schemas.guardrailParams)),
        GuardrailRow: withoutDefs(schemas.guardrailRow),
        CustomSqlParams: { ...rebase(withoutDefs(schemas.customSqlParams)), description: `${String(schemas.customSqlParams.description)} ${CUSTOM_SQL_EVENTS_VIEW}` },
        CustomSqlRow: { type: 'object', description: "The query's columns by name, as JSON values; windowStart/windowEnd from the query's window_start/window_end columns when it has them.", additionalProperties: true },
        Analysis: {
          type: 'object',
          required: ['id', 'name', 'kind', 'params', 'environment', 'status', 'createdAt', 'updatedAt'],
          properties: {
            id: { type: 'string', format: 'uuid' }, name: { type: 'string' }, kind: { type: 'string' }, params: { type: 'object' },
            environment: { type: ['string', 'null'] }, status: { enum: ['PENDING', 'DEPLOYING', 'RUNNING', 'FAILED', 'STOPPING', 'STOPPED'] },
            statusChangedAt: { type: 'string', format: 'date-time' }, statusMessage: { type: 'string' },
            lateEvents: { type: 'integer', minimum: 0, description: 'Events older than the lateness horizon (FLAGSTREAM_LATENESS_HORIZON, default 1 h) when they arrived: counted here, in no row.' },
            lastResultAt: { type: ['string', 'null'], format: 'date-time', description: 'When a result row of the analysis was last stored.' },
            pool: { type: ['string', 'null'], description: 'The pool (one Flink job, one reader of the events stream) that computes the analysis; adding, changing or stopping one of its members restarts the pool, and its other members recompute their last hour meanwhile. Null until assigned.' },
            createdAt: { type: 'string', format: 'date-time' }, updatedAt: { type: 'string', format: 'date-time' },
          },
        },
        Problem: {
          type: 'object', required: ['status', 'title', 'detail'],
          properties: { type: { type: 'string' }, status: { type: 'integer' }, title: { type: 'string' }, detail: { type: 'string' }, errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } } },
        },
      },
    },
  };

  function bulkOp() {
    return {
      summary: 'Events exactly as LaunchDarkly server-side SDKs send them (event schema 4), plain or gzip.',
      security: [{ sdkKey: [] }],
      parameters: [{ name: 'X-LaunchDarkly-Payload-ID', in: 'header', schema: { type: 'string', maxLength: 200 }, description: 'A retried payload with the same ID counts once.' }],
      requestBody: json({ type: 'array', items: ref('SdkEvent') }),
      responses: {
        '202': {
          description: 'Every accepted event is durably in the stream.',
          headers: { 'X-Flagstream-Received-At': { description: 'The receive time (epoch ms) the events were judged at (CONTRACT §5); a retry answers its first try\'s.', schema: { type: 'integer' } } },
          ...json({ type: 'object', properties: { accepted: { type: 'integer' }, rejected: { type: 'array', items: { type: 'object', properties: { index: { type: 'integer' }, error: { type: 'string' } } } } } }),
        },
        '413': problem('The body, decompressed, is over the limit.'),
        '503': problem('The stream cannot take the payload now; retry with the same payload ID.'),
        ...errors,
      },
    };
  }
}

/** A kind's row schema as GET /v1/analyses/{id}/results serves it: plus `final` and, once changed after it, `updatedAt` (CONTRACT §6). */
function withoutDefs(schema: Record<string, unknown>): Record<string, unknown> {
  const { definitions: _definitions, $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

/** What the `events` view of a custom-sql query holds (flink-sql/templates/custom-sql.sql). */
const CUSTOM_SQL_EVENTS_VIEW = [
  'The view `events` has one row per event of the tenant (late events excluded), with the columns:',
  '`environment` STRING; `kind` STRING (feature, custom, index, identify, summary); `eventTime` BIGINT (epoch ms, the time the event counts at);',
  '`eventTs` TIMESTAMP_LTZ(3) (the same); `receivedAt` BIGINT (epoch ms); `flagKey` STRING, `variation` BIGINT, `flagVersion` BIGINT and `value` STRING (JSON) of feature events;',
  '`eventKey` STRING and `metricValue` DOUBLE of custom events; `contextKey` STRING (canonical) and `contextKeys` MAP<STRING, STRING> (key per context kind);',
  '`features` (summary counters: MAP<STRING, ROW<counters ARRAY<ROW<variation, version, count, unknown>>>>); `proc_time`, a processing-time attribute for TUMBLE/HOP windows.',
  'Only one SELECT over `events` is accepted, parsed by Flink\'s own parser: no other table or view, no DDL, DML, SET or functions created or loaded.',
].join(' ');

/** Points the schema files' references at components/schemas. */
function rebase<T>(value: T): T {
  const text = JSON.stringify(value)
    .replace(/"\$ref":"flag-evaluations\.params\.schema\.json#\/definitions\/duration"/g, '"$ref":"#/components/schemas/duration"')
    .replace(/"\$ref":"context\.schema\.json"/g, '"$ref":"#/components/schemas/Context"')
    .replace(/"\$ref":"\.\.\/tenants\/keys\.schema\.json#\/definitions\/(\w+)"/g, '"$ref":"#/components/schemas/$1"')
    .replace(/"\$ref":"#\/definitions\/(\w+)"/g, '"$ref":"#/components/schemas/$1"');
  return JSON.parse(text) as T;
}
