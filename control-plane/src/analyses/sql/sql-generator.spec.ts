import { generateSql, fill, StreamSettings } from './sql-generator';
import { intervalParam, parseDuration, stringParam, option } from './literals';
import { loadTemplates } from './templates';

const streams: StreamSettings = { region: 'us-east-1', endpoint: 'http://127.0.0.1:4568', eventsStream: 'flagstream-events', resultsStream: 'flagstream-results', allowedLatenessSeconds: 5 };
const templates = loadTemplates();
const at = { at: new Date('2026-11-25T16:00:00.000Z') };
const base64Literals = (sql: string) => [...sql.matchAll(/FROM_BASE64\('([^']*)'\)/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8'));

describe('SQL generator', () => {
  it('binds every user value as a base64 literal that decodes to it exactly', () => {
    const keys = ["it's", 'a\\b', 'line\nbreak', '🚩 ünï', '{{tenant}}', "'); DROP TABLE x; --"];
    const sql = generateSql(
      { id: 'a1', tenantKey: 'acme', environment: "prod'uction", kind: 'flag-evaluations', params: { window: '10s', flagKeys: keys } },
      streams, at, templates,
    );
    expect(base64Literals(sql)).toEqual(expect.arrayContaining(['acme', 'a1', "prod'uction", ...keys]));
    for (const key of keys) expect(sql).not.toContain(key);
    expect(sql).not.toContain('{{');
  });

  it('groups by the chosen dimensions in a fixed order, by flag and variation by default', () => {
    const sql = (groupBy?: ('flagKey' | 'variation' | 'environment')[]) =>
      generateSql({ id: 'a', tenantKey: 't', kind: 'flag-evaluations', params: { window: '1m', groupBy } }, streams, at, templates);
    expect(sql(undefined)).toContain('GROUP BY e.window_start, e.window_end, f.flagKey, c.variation;');
    expect(sql(['environment', 'flagKey'])).toContain('GROUP BY e.window_start, e.window_end, f.flagKey, e.environment;');
    expect(sql([])).toContain('GROUP BY e.window_start, e.window_end;');
    expect(sql(['variation'])).toMatch(/variation INT,\n\s+evaluations BIGINT/);
  });

  it('windows in event time with the allowed lateness, and starts reading at the given time', () => {
    const sql = generateSql({ id: 'a', tenantKey: 't', kind: 'flag-evaluations', params: { window: '2h' } }, streams, at, templates);
    expect(sql).toContain("TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '7200' SECOND(4))");
    expect(sql).toContain("WATERMARK FOR ts AS ts - INTERVAL '5' SECOND(2)");
    expect(sql).toContain("'scan.stream.initpos-timestamp' = '1795622400.000'");
  });

  it('reads with per-shard watermarks and writes with the stock Kinesis sink', () => {
    const sql = generateSql({ id: 'a', tenantKey: 't', kind: 'flag-evaluations', params: { window: '1m' } }, streams, at, templates);
    const [source, sink] = sql.split('CREATE TEMPORARY TABLE results');
    expect(source).toContain("'connector' = 'flagstream-kinesis'");
    expect(sink).toContain("'connector' = 'kinesis'");
  });

  it('leaves out the local endpoint and credentials on AWS', () => {
    const sql = generateSql({ id: 'a', tenantKey: 't', kind: 'flag-evaluations', params: { window: '1m' } }, { ...streams, endpoint: undefined }, at, templates);
    expect(sql).not.toContain('aws.endpoint');
    expect(sql).not.toContain('aws.credentials');
  });

  it('rejects a template placeholder without a value, and a value without a placeholder', () => {
    expect(() => fill('SELECT {{a}}', {})).toThrow('{{a}}');
    expect(() => fill('SELECT 1', { a: 'x' })).toThrow('a');
  });
});

describe('SQL literals', () => {
  it('parses durations and refuses zero, words and fractions', () => {
    expect(parseDuration('10s')).toEqual({ amount: 10, unit: 's' });
    expect(parseDuration('7d')).toEqual({ amount: 7, unit: 'd' });
    for (const bad of ['0s', 'ten', '1.5m', '10', '-1s', '10S', ' 10s']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('encodes strings with an alphabet that cannot leave the literal', () => {
    expect(stringParam("'")).toBe("FROM_BASE64('Jw==')");
    expect(stringParam('x'.repeat(100))).toMatch(/^FROM_BASE64\('[A-Za-z0-9+/=]+'\)$/);
  });

  it('widens interval precision for long windows', () => {
    expect(intervalParam(604800)).toBe("INTERVAL '604800' SECOND(6)");
  });

  it('escapes connector options and refuses control characters', () => {
    expect(option('stream', "a'b")).toBe("  'stream' = 'a''b'");
    expect(() => option('stream', 'a\nb')).toThrow('control character');
  });
});
