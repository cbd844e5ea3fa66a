import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA_IDS } from '@flagstream/schemas';
import { fieldErrors, validatorFor } from '../common/schema-validator';
import { boundedTimes, heartbeatRecord, MAX_CLOCK_AHEAD_MS, toEventRecord } from './event-record';

const FIXTURES = join(__dirname, '../../../test/fixtures/launchdarkly-node-server-sdk-9.13.7');
const requests = ['bulk-summary-index-custom.jsonl', 'diagnostic-and-bulk-all-kinds.jsonl'].flatMap((file) =>
  readFileSync(join(FIXTURES, file), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)),
);
const validate = validatorFor(SCHEMA_IDS.sdkEvent);
const HOUR = 3_600_000;
const origin = (receivedAt: number) => ({ tenant: 't', environment: 'e', payloadId: 'p', eventIndex: 0, receivedAt });

describe('SDK event schema', () => {
  it('accepts every event the real Node SDK sent to /bulk', () => {
    const events = requests.filter((r) => r.path === '/bulk').flatMap((r) => r.body);
    expect(new Set(events.map((e: any) => e.kind))).toEqual(new Set(['index', 'custom', 'summary', 'identify', 'feature']));
    for (const event of events) expect({ event, errors: validate(event) ? [] : fieldErrors(validate.errors) }).toEqual({ event, errors: [] });
  });

  it('accepts multi-kind contexts and refuses a multi context without kinds', () => {
    const index = (context: unknown) => ({ kind: 'index', creationDate: 1, context });
    expect(validate(index({ kind: 'multi', user: { key: 'u' }, organization: { key: 'o' } }))).toBe(true);
    expect(validate(index({ kind: 'multi' }))).toBe(false);
    expect(validate(index({ kind: 'multi', user: { name: 'no key' } }))).toBe(false);
  });

  it('names the field of an invalid event, and lists the kinds for an unknown one', () => {
    expect(validate({ kind: 'summary', startDate: 1, endDate: 'late', features: {} })).toBe(false);
    expect(fieldErrors(validate.errors).map((e) => e.path)).toContain('/endDate');
    expect(validate({ kind: 'teleport' })).toBe(false);
    const [error] = fieldErrors(validate.errors);
    expect(error.path).toBe('/kind');
    expect(error.message).toContain('summary');
  });

  it('stamps origin and time fields last, so an event cannot claim another tenant or time', () => {
    const record = toEventRecord({ kind: 'custom', creationDate: 5, key: 'k', tenant: 'evil', eventTime: 1, late: true, sdkTime: 2 } as any, {
      tenant: 'acme', environment: 'prod', payloadId: 'p', eventIndex: 0, receivedAt: 9,
    }, HOUR);
    expect(record).toMatchObject({ tenant: 'acme', sdkTime: 5, eventTime: 5, late: false, receivedAt: 9, kind: 'custom' });
  });

  it('counts a summary at its endDate', () => {
    const record = toEventRecord({ kind: 'summary', startDate: 1, endDate: 7, features: {} }, origin(9), HOUR);
    expect(record).toMatchObject({ sdkTime: 7, eventTime: 7, late: false, receivedAt: 9 });
  });
});

/** docs/counting.md §1, row by row, at the edges. */
describe('event time bounded by the server clock', () => {
  const receivedAt = 1_800_000_000_000;
  const at = (sdkTime: number, horizonMs = HOUR) =>
    toEventRecord({ kind: 'custom', creationDate: sdkTime, key: 'k' }, origin(receivedAt), horizonMs);

  it('keeps the SDK time up to 5 min ahead of receivedAt, and takes receivedAt beyond', () => {
    expect(MAX_CLOCK_AHEAD_MS).toBe(300_000);
    expect(at(receivedAt + 300_000)).toMatchObject({ sdkTime: receivedAt + 300_000, eventTime: receivedAt + 300_000, late: false });
    expect(at(receivedAt + 300_001)).toMatchObject({ sdkTime: receivedAt + 300_001, eventTime: receivedAt, late: false });
    expect(at(receivedAt + 86_400_000)).toMatchObject({ eventTime: receivedAt, late: false });
    expect(boundedTimes(receivedAt + 300_001, receivedAt, HOUR).clockAhead).toBe(true);
    expect(boundedTimes(receivedAt + 300_000, receivedAt, HOUR).clockAhead).toBe(false);
  });

  it('keeps the SDK time within the horizon, and marks an older one late (still at its own time)', () => {
    expect(at(receivedAt)).toMatchObject({ sdkTime: receivedAt, eventTime: receivedAt, late: false, receivedAt });
    expect(at(receivedAt - HOUR)).toMatchObject({ eventTime: receivedAt - HOUR, late: false });
    expect(at(receivedAt - HOUR - 1)).toMatchObject({ sdkTime: receivedAt - HOUR - 1, eventTime: receivedAt - HOUR - 1, late: true });
    expect(at(0)).toMatchObject({ eventTime: 0, late: true });
  });

  it('follows the configured horizon', () => {
    expect(at(receivedAt - 31 * 60_000, 30 * 60_000).late).toBe(true);
    expect(at(receivedAt - 29 * 60_000, 30 * 60_000).late).toBe(false);
    expect(at(receivedAt - 91_000, 90_000).late).toBe(true);
  });

  it('writes heartbeats as {kind, tenant, shard, eventTime}', () => {
    expect(JSON.stringify(heartbeatRecord('shardId-000000000001', 42))).toBe('{"kind":"heartbeat","tenant":"","shard":"shardId-000000000001","eventTime":42}');
  });
});
