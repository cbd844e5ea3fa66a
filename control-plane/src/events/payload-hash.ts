import { createHash } from 'node:crypto';

/** Hex characters of the body hash that go into a stream record's payloadId (64 bits). */
export const PAYLOAD_HASH_CHARS = 16;

/**
 * SHA-256 of a parsed JSON value's canonical JSON: object keys sorted (by UTF-16 code
 * units), no whitespace, numbers and strings as JSON.stringify writes them. So the
 * same events hash alike however they were sent (gzip or plain, any spacing or key
 * order), and any other body hashes differently. Fed to the hash piece by piece, so a
 * 16 MiB payload is never copied into one string.
 *
 * Its output defines payload IDs, so it never changes (known hashes are pinned in
 * event-encoder.spec.ts). This is the fast, recursive form of canonicalJsonHashIterative
 * below, byte for byte the same canonical JSON; a body nested deeper than
 * MAX_RECURSION_DEPTH is handed to the iterative form, so it cannot overflow the stack.
 */
export function canonicalJsonHash(value: unknown): string {
  const writer = new CanonicalWriter();
  try {
    writer.write(value, 0);
  } catch (error) {
    if (error === TOO_DEEP || error instanceof RangeError) return canonicalJsonHashIterative(value);
    throw error;
  }
  return writer.digest();
}

/** Nesting at which the iterative form takes over: far deeper than any SDK event, far from the stack's limit. */
const MAX_RECURSION_DEPTH = 500;
const TOO_DEEP = new Error('canonical JSON nested too deep for the recursive writer');
/** What JSON.stringify would escape in a string: a quote, a backslash, a control character, a surrogate (paired or lone). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** Object keys as canonical JSON writes them (JSON.stringify(key) + ':'); SDK events repeat a few names. */
const quotedKeys = new Map<string, string>();
const MAX_QUOTED_KEYS = 10_000;

function quotedKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = `${JSON.stringify(key)}:`;
    if (key.length <= 64 && quotedKeys.size < MAX_QUOTED_KEYS) quotedKeys.set(key, quoted);
  }
  return quoted;
}

/** Writes canonical JSON into a SHA-256, in pieces of about 64 KiB. */
class CanonicalWriter {
  private readonly hash = createHash('sha256');
  private buffered = '';

  write(v: unknown, depth: number): void {
    switch (typeof v) {
      case 'string':
        // Nothing to escape: JSON.stringify(v) is v between quotes.
        this.buffered += v.length <= 256 && !NEEDS_ESCAPE.test(v) ? `"${v}"` : JSON.stringify(v);
        return;
      case 'number':
        // JSON.stringify writes a finite number as String() does (-0 as 0), any other as null.
        this.buffered += Number.isFinite(v) ? String(v) : 'null';
        return;
      case 'boolean':
        this.buffered += v ? 'true' : 'false';
        return;
      case 'object':
        break;
      default:
        // undefined, a function, a symbol (never in parsed JSON): as the iterative form writes them.
        this.buffered += JSON.stringify(v) ?? 'null';
        return;
    }
    if (v === null) {
      this.buffered += 'null';
      return;
    }
    if (depth >= MAX_RECURSION_DEPTH) throw TOO_DEEP;
    if (this.buffered.length > 65536) {
      this.hash.update(this.buffered, 'utf8');
      this.buffered = '';
    }
    if (Array.isArray(v)) {
      this.buffered += '[';
      for (let i = 0; i < v.length; i++) {
        if (i > 0) this.buffered += ',';
        this.write(v[i], depth + 1);
      }
      this.buffered += ']';
      return;
    }
    const keys = Object.keys(v);
    // Sorted by UTF-16 code units, as Array.prototype.sort() without a comparator orders
    // strings (keys are unique, so stability does not matter): an insertion sort, since an
    // object has a handful of keys, often in order already.
    for (let i = 1; i < keys.length; i++) {
      const key = keys[i];
      let j = i - 1;
      if (keys[j] < key) continue;
      do {
        keys[j + 1] = keys[j];
        j--;
      } while (j >= 0 && keys[j] > key);
      keys[j + 1] = key;
    }
    this.buffered += '{';
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      this.buffered += i > 0 ? `,${quotedKey(key)}` : quotedKey(key);
      this.write((v as Record<string, unknown>)[key], depth + 1);
    }
    this.buffered += '}';
  }

  digest(): string {
    this.hash.update(this.buffered, 'utf8');
    return this.hash.digest('hex');
  }
}

/**
 * The reference form of canonicalJsonHash, as it first was: iterative, so a deeply nested
 * body cannot overflow the stack. canonicalJsonHash uses it for a body nested deeper than
 * MAX_RECURSION_DEPTH; tests hold the two to the same output.
 */
export function canonicalJsonHashIterative(value: unknown): string {
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
