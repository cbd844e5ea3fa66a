import { hashKey, newKey, sameHash } from './keys';
import { keyOf } from '../tenants/auth';

describe('keys', () => {
  it('makes distinct random keys and stores only a hash that does not contain them', () => {
    const a = newKey('sdk');
    const b = newKey('sdk');
    expect(a).not.toBe(b);
    expect(hashKey(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashKey(a)).not.toContain(a);
    expect(sameHash(hashKey(a), hashKey(a))).toBe(true);
    expect(sameHash(hashKey(a), hashKey(b))).toBe(false);
  });

  it('reads "Bearer <key>" everywhere and the bare key only where SDKs send it', () => {
    expect(keyOf('Bearer abc', false)).toBe('abc');
    expect(keyOf('abc', false)).toBeUndefined();
    expect(keyOf('abc', true)).toBe('abc');
    expect(keyOf('Basic a b', true)).toBeUndefined();
    expect(keyOf(undefined, true)).toBeUndefined();
  });
});
