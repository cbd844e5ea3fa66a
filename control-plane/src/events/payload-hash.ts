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
/** An object's keys in canonical order, each with what canonical JSON writes before its value. */
interface Shape {
  /** The keys as Object.keys gave them: the shape's identity. */
  keys: string[];
  /** Sorted by UTF-16 code units, as Array.prototype.sort() without a comparator orders strings. */
  sorted: string[];
  /** `"key":` for the first, `,"key":` for the others (JSON.stringify(key) between). */
  prefixes: string[];
}

/**
 * Shapes seen, by their first key. SDK events repeat a few shapes (an event kind's fields, a
 * context, a summary's counters), so most objects find theirs without sorting or quoting.
 */
const shapes = new Map<string, Shape[]>();
const MAX_SHAPES = 1000;
/** Shapes kept per first key: a lookup compares with at most these. */
const MAX_SHAPES_PER_FIRST_KEY = 8;
const MAX_SHAPE_KEYS = 32;
const MAX_SHAPE_KEY_LENGTH = 64;
let shapeCount = 0;

function shapeOf(keys: string[]): Shape {
  const first = keys.length > 0 ? keys[0] : '';
  const known = shapes.get(first);
  if (known !== undefined) {
    for (const shape of known) if (sameKeys(shape.keys, keys)) return shape;
  }
  // Keys are unique, so the sort's stability does not matter.
  const sorted = [...keys].sort();
  const shape = { keys, sorted, prefixes: sorted.map((key, i) => `${i > 0 ? ',' : ''}${JSON.stringify(key)}:`) };
  // Only small shapes of short keys are kept, and only so many: a body of odd objects can neither
  // grow the cache much (a few MiB at most) nor make a lookup long.
  if (shapeCount < MAX_SHAPES && (known?.length ?? 0) < MAX_SHAPES_PER_FIRST_KEY && keys.length <= MAX_SHAPE_KEYS && keys.every((key) => key.length <= MAX_SHAPE_KEY_LENGTH)) {
    if (known !== undefined) known.push(shape);
    else shapes.set(first, [shape]);
    shapeCount++;
  }
  return shape;
}

function sameKeys(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
    const { sorted, prefixes } = shapeOf(Object.keys(v));
    this.buffered += '{';
    for (let i = 0; i < sorted.length; i++) {
      this.buffered += prefixes[i];
      this.write((v as Record<string, unknown>)[sorted[i]], depth + 1);
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
