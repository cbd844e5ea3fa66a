import { buildOpenApi } from './openapi';

describe('OpenAPI description', () => {
  const doc = buildOpenApi('http://127.0.0.1:8080') as any;

  it('resolves every $ref inside the document', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      expect(ref.startsWith('#/components/schemas/')).toBe(true);
      expect(doc.components.schemas[ref.slice('#/components/schemas/'.length)]).toBeDefined();
    }
  });

  it('describes every endpoint of the contract', () => {
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/bulk', '/diagnostic', '/health', '/metrics', '/v1/analyses', '/v1/analyses/validate', '/v1/analyses/{id}', '/v1/analyses/{id}/health', '/v1/analyses/{id}/replay',
        '/v1/analyses/{id}/results', '/v1/analyses/{id}/sql', '/v1/analyses/{id}/start', '/v1/analyses/{id}/stop', '/v1/environments',
        '/v1/events/bulk', '/v1/tenants',
      ].sort(),
    );
  });
});
