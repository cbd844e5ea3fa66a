import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Keys are random, so a plain SHA-256 is enough: only its hash is stored, the key is shown once. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function newKey(prefix: 'fs-admin' | 'fs-api' | 'sdk'): string {
  return `${prefix}-${randomBytes(24).toString('base64url')}`;
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}
