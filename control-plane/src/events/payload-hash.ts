import { createHash } from 'node:crypto';

/** Hex characters of the body hash that go into a stream record's payloadId (64 bits). */
export const PAYLOAD_HASH_CHARS = 16;

/**
 * SHA-256 of a parsed JSON value's canonical JSON: object keys sorted (by UTF-16 code
 * units), no whitespace, numbers and strings as JSON.stringify writes them. So the
 * same events hash alike however they were sent (gzip or plain, any spacing or key
 * order), and any other body hashes differently. Iterative, so a deeply nested body
 * cannot overflow the stack; fed to the hash piece by piece, so a 16 MiB payload is
 * never copied into one string.
 */
export function canonicalJsonHash(value: unknown): string {
  const hash = createHash('sha256');
  // Work items: a string to emit as is, or a value still to serialise.
  const stack: { token?: string; value?: unknown }[] = [{ value }];
  let buffered = '';
  const emit = (text: string) => {
    buffered += text;
    if (buffered.length > 65536) {
      hash.update(buffered, 'utf8');
      buffered = '';
    }
  };
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (item.token !== undefined) {
      emit(item.token);
      continue;
    }
    const v = item.value;
    if (Array.isArray(v)) {
      emit('[');
      stack.push({ token: ']' });
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ value: v[i] });
        if (i > 0) stack.push({ token: ',' });
      }
    } else if (v !== null && typeof v === 'object') {
      emit('{');
      stack.push({ token: '}' });
      const keys = Object.keys(v).sort();
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: (v as Record<string, unknown>)[keys[i]] });
        stack.push({ token: (i > 0 ? ',' : '') + JSON.stringify(keys[i]) + ':' });
      }
    } else {
      // null, booleans, finite numbers and strings: what JSON.parse can produce.
      emit(JSON.stringify(v) ?? 'null');
    }
  }
  hash.update(buffered, 'utf8');
  return hash.digest('hex');
}

/**
 * The payloadId written into a payload's stream records when the SDK sent an
 * X-LaunchDarkly-Payload-ID: `<id>#<first 16 hex of the body hash>`. A true retry
 * (same events) gets the same payloadId, so the ledger writes only what is missing
 * and Flink's (payloadId, eventIndex) deduplication drops any duplicate; another body
 * sent with the same ID gets another payloadId and counts as its own payload.
 */
export function streamPayloadId(headerId: string, bodyHash: string): string {
  return `${headerId}#${bodyHash.slice(0, PAYLOAD_HASH_CHARS)}`;
}
