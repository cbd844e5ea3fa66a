import { checkDefinition } from './analysis-definitions';
import { Problem } from '../common/problem';

const paths = (body: unknown, environments: string[] = ['production']) => {
  try {
    checkDefinition(JSON.parse(JSON.stringify(body)), (key) => environments.includes(key));
  } catch (error) {
    if (error instanceof Problem) return { status: error.status, paths: (error.errors ?? []).map((e) => e.path) };
    throw error;
  }
  return { status: 200, paths: [] };
};

describe('analysis definitions', () => {
  const ok = { name: 'n', kind: 'flag-evaluations', params: { window: '10s' } };

  it('accepts a minimal definition and fills in the default groupBy', () => {
    const definition = checkDefinition(JSON.parse(JSON.stringify(ok)), () => true);
    expect(definition).toMatchObject({ kind: 'flag-evaluations', params: { groupBy: ['flagKey', 'variation'] } });
  });

  it.each([
    [{ name: 'u', kind: 'unique-contexts', params: { window: '1m' } }, { contextKind: 'user', groupBy: [] }],
    [{ name: 'f', kind: 'flag-usage', params: {} }, { period: '7d' }],
    [{ name: 'e', kind: 'experiment', params: { flagKey: 'f', metric: { eventKey: 'buy', type: 'conversion' } } }, { controlVariation: 0, randomizationKind: 'user', alpha: 0.05 }],
    [{ name: 'g', kind: 'guardrail', params: { flagKey: 'f', metric: { eventKey: 'err', type: 'conversion', direction: 'lower-is-better' }, treatmentVariation: 1, webhook: 'http://127.0.0.1:9/x' } }, { controlVariation: 0, alpha: 0.05, minUnits: 100 }],
    [{ name: 'c', kind: 'custom-sql', params: { sql: 'SELECT * FROM events' } }, { sql: 'SELECT * FROM events' }],
  ])('accepts %j with its defaults', (body, defaults) => {
    expect(checkDefinition(body, () => true).params).toMatchObject(defaults);
  });

  it.each([
    [{ ...ok, kind: 'nope' }, ['/kind']],
    [{ ...ok, kind: 'experiment' }, ['/params/flagKey', '/params/metric', '/params/window']],
    [{ ...ok, kind: 'unique-contexts', params: { window: '10s', contextKind: 'no spaces' } }, ['/params/contextKind']],
    [{ ...ok, kind: 'flag-usage', params: { period: '5s' } }, ['/params/period']],
    [{ ...ok, kind: 'flag-usage', params: { period: '91d' } }, ['/params/period']],
    [{ ...ok, kind: 'experiment', params: { flagKey: 'f' } }, ['/params/metric']],
    [{ ...ok, kind: 'experiment', params: { flagKey: 'f', metric: { eventKey: 'e', type: 'count' } } }, ['/params/metric/type']],
    [{ ...ok, kind: 'experiment', params: { flagKey: 'f', metric: { eventKey: 'e', type: 'value' }, controlVariation: 3, weights: [1, 1] } }, ['/params/controlVariation']],
    [{ ...ok, kind: 'experiment', params: { flagKey: 'f', metric: { eventKey: 'e', type: 'value' }, alpha: 0.7 } }, ['/params/alpha']],
    [{ ...ok, kind: 'guardrail', params: { flagKey: 'f', metric: { eventKey: 'e', type: 'conversion', direction: 'lower-is-better' }, treatmentVariation: 0 } }, ['/params/treatmentVariation']],
    [{ ...ok, kind: 'guardrail', params: { flagKey: 'f', metric: { eventKey: 'e', type: 'conversion', direction: 'lower-is-better' }, treatmentVariation: 1, webhook: 'http://example.com/hook' } }, ['/params/webhook']],
    [{ ...ok, kind: 'guardrail', params: { flagKey: 'f', metric: { eventKey: 'e', type: 'conversion', direction: 'lower-is-better' }, treatmentVariation: 1, webhook: 'https://u:p@example.com/hook' } }, ['/params/webhook']],
    [{ ...ok, kind: 'custom-sql', params: {} }, ['/params/sql']],
    [{ ...ok, kind: 'custom-sql', params: { sql: '' } }, ['/params/sql']],
    [{ ...ok, params: { window: '0s' } }, ['/params/window']],
    [{ ...ok, params: { window: 'ten' } }, ['/params/window']],
    [{ ...ok, params: { window: '8d' } }, ['/params/window']],
    [{ ...ok, params: { window: '10s', groupBy: ['flag'] } }, ['/params/groupBy/0']],
    [{ ...ok, params: { window: '10s', flagKeys: [] } }, ['/params/flagKeys']],
    [{ ...ok, params: { window: '10s', flagKeys: ['a', 'a'] } }, ['/params/flagKeys']],
    [{ ...ok, environment: 'staging' }, ['/environment']],
    [{ ...ok, environment: 'Bad Key!' }, ['/environment']],
    [{ ...ok, extra: 1 }, ['/extra']],
    [[], ['/']],
  ])('rejects %j naming %j', (body, expected) => {
    const result = paths(body);
    expect(result.status).toBe(400);
    expect(result.paths).toEqual(expect.arrayContaining(expected));
  });
});
