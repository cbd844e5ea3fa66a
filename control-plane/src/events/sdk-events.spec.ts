import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA_IDS } from '@flagstream/schemas';
import { fieldErrors, validatorFor } from '../common/schema-validator';
import { toEventRecord } from './event-record';

const FIXTURES = join(__dirname, '../../../test/fixtures/launchdarkly-node-server-sdk-9.13.7');
const requests = ['bulk-summary-index-custom.jsonl', 'diagnostic-and-bulk-all-kinds.jsonl'].flatMap((file) =>
  readFileSync(join(FIXTURES, file), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)),
);
const validate = validatorFor(SCHEMA_IDS.sdkEvent);

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

  it('stamps origin fields last, so an event cannot claim another tenant', () => {
    const record = toEventRecord({ kind: 'custom', creationDate: 5, key: 'k', tenant: 'evil' } as any, {
      tenant: 'acme', environment: 'prod', payloadId: 'p', eventIndex: 0, receivedAt: 9,
    });
    expect(record).toMatchObject({ tenant: 'acme', eventTime: 5, kind: 'custom' });
  });

  it('counts a summary at its endDate', () => {
    const record = toEventRecord({ kind: 'summary', startDate: 1, endDate: 7, features: {} }, { tenant: 't', environment: 'e', payloadId: 'p', eventIndex: 0, receivedAt: 9 });
    expect(record.eventTime).toBe(7);
  });
});
