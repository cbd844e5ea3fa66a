import { Context } from '@launchdarkly/js-sdk-common';
import type { SdkEvent } from '@flagstream/schemas';
import { contextKeyOf, contextKeysOf, toEventRecord } from './event-record';

/** The SDK's own Context class is the reference for kinds, keys and canonical keys. */
describe('event records: context keys', () => {
  const contexts = [
    { kind: 'user', key: 'u-1' },
    { kind: 'org', key: 'acme:eu%1' },
    { kind: 'multi', user: { key: 'u:2' }, org: { key: 'o-2' }, device: { key: 'd%3' } },
    { kind: 'multi', organization: { key: 'x' }, user: { key: 'y' } },
  ];

  it.each(contexts)('agrees with the SDK on %j', (context) => {
    const sdk = Context.fromLDContext(context as never)!;
    const keys = contextKeysOf({ kind: 'feature', creationDate: 1, key: 'f', context } as SdkEvent)!;
    expect(keys).toEqual(sdk.kindsAndKeys);
    expect(contextKeyOf(keys)).toBe(sdk.canonicalKey);
  });

  it('reads contextKeys when a custom event has no context, and nothing from a summary', () => {
    expect(contextKeysOf({ kind: 'custom', creationDate: 1, key: 'buy', contextKeys: { user: 'u', org: 'o' } } as SdkEvent)).toEqual({ user: 'u', org: 'o' });
    expect(contextKeysOf({ kind: 'summary', startDate: 1, endDate: 2, features: {} } as SdkEvent)).toBeUndefined();
  });

  it('writes the normalised keys over whatever the event claimed', () => {
    const record = toEventRecord(
      { kind: 'custom', creationDate: 5, key: 'buy', context: { kind: 'user', key: 'real' }, contextKeys: { user: 'forged' }, contextKey: 'forged' } as unknown as SdkEvent,
      { tenant: 't', environment: 'e', payloadId: 'p', eventIndex: 0, receivedAt: 5 },
      3600_000,
    );
    expect([record.contextKeys, record.contextKey]).toEqual([{ user: 'real' }, 'real']);
  });
});
