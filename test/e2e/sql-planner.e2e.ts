import { call, newTenant } from './client';

/**
 * Flink's real planner (the warm validator) plans the generated SQL over a matrix of
 * params, hostile flag keys among them; every key must survive the trip exactly.
 */

const HOSTILE_KEYS = [
  "it's",
  "''; DROP TABLE events; --",
  'back\\slash\\',
  'new\nline\r\ttab',
  '"double quotes"',
  '*/ SELECT 1 /*',
  '${{tenant}}',
  'ünïcödé ✓ 🚩 中文 \u202e',
  '\u0000nul',
  ' leading and trailing ',
  'x'.repeat(1024),
];

const GROUP_BYS: (string[] | undefined)[] = [undefined, [], ['flagKey'], ['variation'], ['environment'], ['flagKey', 'variation', 'environment'], ['environment', 'flagKey']];
const WINDOWS = ['1s', '10s', '1m', '90m', '24h', '7d'];

/** The flag keys an IN list carries, decoded from the generated SQL's literals. */
function flagKeysIn(sql: string): string[] {
  const list = /f\.flagKey IN \((.*)\);?$/m.exec(sql)?.[1] ?? '';
  return [...list.matchAll(/FROM_BASE64\('([A-Za-z0-9+/=]*)'\)/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8'));
}

describe('generated SQL on Flink’s planner', () => {
  jest.setTimeout(300_000);
  let tenant: Awaited<ReturnType<typeof newTenant>>;

  beforeAll(async () => {
    tenant = await newTenant(['production', "staging"]);
  });

  const cases: [string, object][] = [];
  for (const window of WINDOWS) cases.push([`window ${window}`, { window }]);
  for (const groupBy of GROUP_BYS) cases.push([`groupBy ${JSON.stringify(groupBy)}`, { window: '10s', ...(groupBy ? { groupBy } : {}) }]);
  cases.push(['every hostile flag key at once', { window: '10s', flagKeys: HOSTILE_KEYS }]);
  for (const key of HOSTILE_KEYS.slice(0, 9)) cases.push([`flag key ${JSON.stringify(key)}`, { window: '1m', flagKeys: [key], groupBy: ['flagKey', 'environment'] }]);

  it.each(cases)('plans %s', async (_name, params: any) => {
    const reply = await call('POST', '/v1/analyses/validate', {
      key: tenant.apiKey,
      body: { name: 'matrix', kind: 'flag-evaluations', params, ...(params.flagKeys ? { environment: 'staging' } : {}) },
    });
    expect(reply.body).toMatchObject({ valid: true });
    expect(reply.status).toBe(200);
    const sql: string = reply.body.sql;
    if (params.flagKeys) {
      expect(flagKeysIn(sql)).toEqual(params.flagKeys);
      // No key is pasted: the script holds none of their text.
      for (const key of params.flagKeys.filter((k: string) => k.length > 3)) expect(sql).not.toContain(key);
    }
    expect(sql).not.toContain(tenant.key);
  });
});
