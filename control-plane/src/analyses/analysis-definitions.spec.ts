import { checkDefinition } from './analysis-definitions';
import { Problem } from '../common/problem';

const paths = (body: unknown, environments: string[] = ['production']) => {
  try {
    checkDefinition(body, (key) => environments.includes(key));
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
    expect(definition.params.groupBy).toEqual(['flagKey', 'variation']);
  });

  it.each([
    [{ ...ok, kind: 'nope' }, ['/kind']],
    [{ ...ok, kind: 'experiment' }, ['/kind']],
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
