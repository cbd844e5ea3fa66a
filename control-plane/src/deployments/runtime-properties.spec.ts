import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadServiceModel, ModelValidator } from '../standin/service-model';
import { fromPropertyGroups, MAX_SQL_PARTS, PropertyGroup, samePropertyGroups, splitSql, toPropertyGroups } from './runtime-properties';

/**
 * The SQL as Managed Flink runtime properties. The runner reads the same convention
 * (SqlRunner.flagstreamProperties + concatSqlParts): its test ApplicationPropertiesTest reads
 * the fixture written here, so the two sides stay in step. After a change:
 * FLAGSTREAM_UPDATE_SQL_FIXTURES=1 npx jest control-plane/src/deployments/runtime-properties.
 */
const GENERATED = join(__dirname, '..', '..', '..', 'flink-sql', 'runner', 'src', 'test', 'resources', 'generated');
const FIXTURE = join(GENERATED, 'application-properties.json');
export const FIXTURE_JOB_NAME = 'flagstream-flag-evaluations-an-fixture-g3-0123abcd';
/** Long enough for a second group: the generated script 13 times (about 108,000 characters, 53 parts). */
const FIXTURE_REPEAT = 13;

describe('runtime properties', () => {
  const sql = readFileSync(join(GENERATED, 'flag-evaluations.sql'), 'utf8');

  it('writes exactly the fixture the runner reads (flink-sql/runner/src/test/resources/generated)', () => {
    const groups = toPropertyGroups(sql.repeat(FIXTURE_REPEAT), FIXTURE_JOB_NAME);
    const text = JSON.stringify(groups, null, 1) + '\n';
    if (process.env.FLAGSTREAM_UPDATE_SQL_FIXTURES === '1') writeFileSync(FIXTURE, text);
    expect(existsSync(FIXTURE)).toBe(true);
    expect(readFileSync(FIXTURE, 'utf8')).toBe(text);
    expect(groups.map((g) => g.PropertyGroupId)).toEqual(['FlinkApplicationProperties', 'FlinkApplicationProperties.1']);
  });

  it('cuts the generated SQL into parts that read back to the script, each valid in the API model', () => {
    const validator = new ModelValidator(loadServiceModel());
    const groups = toPropertyGroups(sql, 'job');
    expect(fromPropertyGroups(groups)).toEqual({ sql: sql.trim(), jobName: 'job' });
    expect(validator.validateShape('PropertyGroups', groups, 'PropertyGroups')).toEqual([]);
    const longest = toPropertyGroups('x'.repeat(2048 * MAX_SQL_PARTS), 'job');
    expect(longest).toHaveLength(50);
    expect(validator.validateShape('PropertyGroups', longest, 'PropertyGroups')).toEqual([]);
    expect(() => toPropertyGroups('x'.repeat(2048 * MAX_SQL_PARTS + 1), 'job')).toThrow(/too long/);
  });

  it('never cuts next to whitespace or inside a surrogate pair', () => {
    const text = 'ab 🚩🚩 cd\n\n  ef';
    for (let max = 6; max <= 12; max++) {
      const parts = splitSql(text, max);
      expect(parts.join('')).toBe(text);
      for (const part of parts) {
        expect(part).toBe(part.trim());
        expect(part.length).toBeLessThanOrEqual(max);
        expect(/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(part)).toBe(false);
      }
    }
  });

  it('compares groups whatever their order', () => {
    const a: PropertyGroup[] = [{ PropertyGroupId: 'x', PropertyMap: { a: '1', b: '2' } }, { PropertyGroupId: 'y', PropertyMap: { c: '3' } }];
    const b: PropertyGroup[] = [{ PropertyGroupId: 'y', PropertyMap: { c: '3' } }, { PropertyGroupId: 'x', PropertyMap: { b: '2', a: '1' } }];
    expect(samePropertyGroups(a, b)).toBe(true);
    expect(samePropertyGroups(a, [a[0]])).toBe(false);
  });
});
