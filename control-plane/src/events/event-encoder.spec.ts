import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA_IDS, SdkEvent } from '@flagstream/schemas';
import { fieldErrors, quickValidatorFor, validatorFor } from '../common/schema-validator';
import { encodePayload, EncodedPayload, MAX_RECORD_BYTES, PayloadOrigin } from './event-encoder';
import { MAX_CLOCK_AHEAD_MS, toEventRecord } from './event-record';
import { arrayElementSpans } from './json-array-spans';
import { canonicalJsonHash, canonicalJsonHashIterative } from './payload-hash';

const FIXTURES = join(__dirname, '../../../test/fixtures/launchdarkly-node-server-sdk-9.13.7');
const requests: { path: string; body: unknown }[] = ['bulk-summary-index-custom.jsonl', 'diagnostic-and-bulk-all-kinds.jsonl'].flatMap((file) =>
  readFileSync(join(FIXTURES, file), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line)),
);
const bulkBodies = requests.filter((r) => r.path === '/bulk').map((r) => r.body as unknown[]);
const HOUR = 3_600_000;

/**
 * What EventsService.ingestOnce did per event before encodePayload, line for line:
 * validation with every error, toEventRecord, JSON.stringify, UTF-8, the size limit, and
 * the late / clock-ahead flags (the partition key, going away, left out).
 */
function reference(payload: unknown[], origin: PayloadOrigin, latenessHorizonMs: number) {
  const validate = validatorFor(SCHEMA_IDS.sdkEvent);
  const rejected: { index: number; error: string }[] = [];
  const events: { index: number; data: string; late: boolean; clockAhead: boolean }[] = [];
  payload.forEach((event, index) => {
    if (!validate(event)) {
      const problems = fieldErrors(validate.errors);
      rejected.push({ index, error: problems.map((p) => `${p.path} ${p.message}`).join('; ') });
      return;
    }
    const record = toEventRecord(event as SdkEvent, { tenant: origin.tenant, environment: origin.environment, payloadId: origin.payloadId, eventIndex: index, receivedAt: origin.receivedAt }, latenessHorizonMs);
    const data = Buffer.from(JSON.stringify(record), 'utf8');
    if (data.length > MAX_RECORD_BYTES) {
      rejected.push({ index, error: `the event is over ${MAX_RECORD_BYTES} bytes` });
      return;
    }
    const clockAhead = record.eventTime !== record.sdkTime;
    events.push({ index, data: data.toString('latin1'), late: record.late, clockAhead });
  });
  return { events, rejected };
}

/** encodePayload's answer with each record's bytes as a string (latin1: byte for byte), to compare with reference's. */
function encoded(result: EncodedPayload) {
  for (const e of result.events) expect(Buffer.isBuffer(e.data)).toBe(true);
  return { events: result.events.map((e) => ({ ...e, data: e.data.toString('latin1') })), rejected: result.rejected };
}

/**
 * Both answers for one payload, parsed again from its JSON text as the events API would. The
 * encoder runs twice, with the text (as the API calls it: each event's JSON as sent) and without
 * (each event's JSON.stringify); for compact text, as SDKs write it, the two agree byte for byte.
 */
function both(json: string, origin: PayloadOrigin = { tenant: 'acme', environment: 'production', payloadId: 'p-1#0123456789abcdef', receivedAt: 1_795_621_002_000 }, horizonMs = HOUR) {
  const expected = reference(JSON.parse(json), origin, horizonMs);
  const actual = encoded(encodePayload(JSON.parse(json), origin, horizonMs, json));
  expect(encoded(encodePayload(JSON.parse(json), origin, horizonMs))).toEqual(actual);
  return { actual, expected };
}

function expectSame(json: string, origin?: PayloadOrigin, horizonMs?: number) {
  const { actual, expected } = both(json, origin, horizonMs);
  expect(actual).toEqual(expected);
  return actual;
}

/** A small deterministic PRNG (mulberry32), so the generated cases are the same every run. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RECORD_FIELDS = ['tenant', 'environment', 'payloadId', 'eventIndex', 'receivedAt', 'sdkTime', 'eventTime', 'late', 'kind', 'contextKeys', 'contextKey'];

describe('encodePayload: the same records as toEventRecord + JSON.stringify', () => {
  it('for every recorded /bulk body of the Node SDK, at several receive times', () => {
    expect(bulkBodies.length).toBeGreaterThan(0);
    for (const body of bulkBodies) {
      const json = JSON.stringify(body);
      const first = (body as { creationDate?: number; endDate?: number }[]).map((e) => e.creationDate ?? e.endDate!).sort()[0];
      // On time, late (behind the horizon), and with the SDK's clock ahead of the server's.
      for (const receivedAt of [first + 1000, first + 2 * HOUR, first - MAX_CLOCK_AHEAD_MS - 1, first - 2 * MAX_CLOCK_AHEAD_MS]) {
        const result = expectSame(json, { tenant: 'acme', environment: 'production', payloadId: 'c096735b#0123456789abcdef', receivedAt });
        expect(result.events).toHaveLength(body.length);
      }
    }
  });

  it('for the recorded events resized into large payloads, as the bench sends them', () => {
    const events = bulkBodies.flat();
    const payload = Array.from({ length: 1000 }, (_, i) => ({ ...(events[i % events.length] as object), creationDate: 1_795_621_000_000 + i * 997 }));
    const result = expectSame(JSON.stringify(payload), { tenant: 't', environment: 'e', payloadId: 'b3c1f0e2-4d5a-4c6b-9e7f-1a2b3c4d5e6f#fedcba9876543210', receivedAt: 1_795_621_000_000 + 500 * 997 }, 60_000);
    expect(result.events.some((e) => e.late)).toBe(true);
    expect(result.events.some((e) => e.clockAhead)).toBe(true);
  });

  it('flags late and clock-ahead events at the edges as before', () => {
    const receivedAt = 10 * HOUR;
    const at = (creationDate: number) => ({ kind: 'index', creationDate, context: { kind: 'user', key: 'u' } });
    const times = [receivedAt - HOUR - 1, receivedAt - HOUR, receivedAt, receivedAt + MAX_CLOCK_AHEAD_MS, receivedAt + MAX_CLOCK_AHEAD_MS + 1, 0, 253402300799999];
    const result = expectSame(JSON.stringify(times.map(at)), { tenant: 't', environment: 'e', payloadId: 'p', receivedAt });
    expect(result.events.map((e) => [e.late, e.clockAhead])).toEqual([
      [true, false],
      [false, false],
      [false, false],
      [false, false],
      [false, true],
      [true, false],
      [false, true],
    ]);
    // A summary counts at its endDate.
    expectSame(JSON.stringify([{ kind: 'summary', startDate: 0, endDate: receivedAt + HOUR, features: {} }]), { tenant: 't', environment: 'e', payloadId: 'p', receivedAt });
  });

  it('rejects invalid events with the same messages, and keeps the valid ones around them', () => {
    const invalid = [
      null,
      5,
      'index',
      [],
      true,
      {},
      { kind: 'teleport' },
      { kind: 5 },
      { kind: 'feature', creationDate: 1 },
      { kind: 'feature', creationDate: -1, key: '' },
      { kind: 'custom', creationDate: 1.5, key: 'k', metricValue: 'ten' },
      { kind: 'custom', creationDate: '1', key: 'k' },
      { kind: 'index', creationDate: 1, context: { kind: 'multi' } },
      { kind: 'index', creationDate: 1, context: { kind: 'multi', user: { name: 'no key' }, org: { key: 'o' } } },
      { kind: 'index', creationDate: 1, context: { kind: 'kind', key: 'k' } },
      { kind: 'index', creationDate: 1, context: { kind: 'user', key: '' } },
      { kind: 'index', creationDate: 1, context: { kind: 'us er', key: 'k' } },
      { kind: 'identify', creationDate: 1 },
      { kind: 'summary', startDate: 1, endDate: 'late', features: {} },
      { kind: 'summary', startDate: 1, endDate: 2, features: { f: { counters: [{ count: -1 }] } } },
      { kind: 'summary', startDate: 1, endDate: 2, features: { '': { counters: [] } } },
      { kind: 'custom', creationDate: 1, key: 'k', contextKeys: { user: 5 } },
      { kind: 'custom', creationDate: 253402300800000, key: 'k' },
      { kind: 'feature', creationDate: 1, key: 'f', variation: -1, version: 1.5, samplingRatio: 'all' },
    ];
    const valid = { kind: 'custom', creationDate: 1_795_621_002_000, key: 'ok', context: { kind: 'user', key: 'u' } };
    const payload = invalid.flatMap((event) => [event, valid]);
    const result = expectSame(JSON.stringify(payload));
    expect(result.rejected.map((r) => r.index)).toEqual(invalid.map((_, i) => 2 * i));
    expect(result.events.map((e) => e.index)).toEqual(invalid.map((_, i) => 2 * i + 1));
    for (const r of result.rejected) expect(r.error.length).toBeGreaterThan(0);
  });

  it('writes every kind of context key as before: single, multi-kind, numeric kinds, escaped, contextKeys only', () => {
    const contexts = [
      { kind: 'user', key: 'u-1', name: 'User 1' },
      { kind: 'org', key: 'acme:eu%1' },
      { kind: 'multi', user: { key: 'u:2' }, org: { key: 'o-2' }, device: { key: 'd%3' } },
      { kind: 'multi', organization: { key: 'x', anonymous: true, _meta: { privateAttributes: ['email'] } }, user: { key: 'y' } },
      { kind: 'multi', '20': { key: 'twenty' }, '3': { key: 'three' }, user: { key: 'u' } },
      { kind: '7', key: 'numeric kind' },
      { kind: 'user', key: 'ünï©ødé 😀 "quoted" \\ \u2028' },
      { kind: 'multi', user: { key: 'only one kind' }, zz: { key: 'z' } },
    ];
    const events = contexts.flatMap((context, i) => [
      { kind: 'index', creationDate: 1_795_621_002_000 + i, context },
      { kind: 'feature', creationDate: 1_795_621_002_000, key: 'flag', context, value: true, variation: 1, version: 3, default: false },
      { kind: 'custom', creationDate: 1_795_621_002_000, key: 'metric', context, metricValue: 1.25, data: { nested: [1, { a: null }] } },
      { kind: 'identify', creationDate: 1_795_621_002_000, context },
    ]);
    const customs = [
      { kind: 'custom', creationDate: 1_795_621_002_000, key: 'buy', contextKeys: { user: 'u', org: 'o:1' } },
      { kind: 'custom', creationDate: 1_795_621_002_000, key: 'buy', contextKeys: {} },
      { kind: 'custom', creationDate: 1_795_621_002_000, key: 'buy', contextKeys: { user: 'u' }, context: { kind: 'org', key: 'real' } },
      { kind: 'custom', creationDate: 1_795_621_002_000, key: 'buy' },
      { kind: 'feature', creationDate: 1_795_621_002_000, key: 'f', contextKeys: { '2': 'b', '1': 'a', user: 'c' } },
    ];
    const result = expectSame(JSON.stringify([...events, ...customs]));
    expect(result.rejected).toEqual([]);
  });

  it('keeps unknown fields where the event had them, and writes the record fields over an event that claims them', () => {
    const base = { kind: 'custom', creationDate: 1_795_621_002_000, key: 'k', context: { kind: 'user', key: 'u' } };
    /** A value the event claims for a record field (valid for the schema where it names the field). */
    const claimed = (field: string) => (field === 'kind' ? 'custom' : field === 'contextKeys' ? { user: 'claimed' } : 'claimed');
    const events: unknown[] = [
      { ...base, extra: { a: [1, 2, { b: 'c' }] }, another: null, '10': 'ten', '9': 'nine', '': 'empty' },
      { z: 1, ...base, a: 2 },
      { ...base, toJSON: 5 },
      { ...base, contextKeys: { user: 'forged' }, contextKey: 'forged' },
      { ...base, context: undefined, contextKeys: { user: 'k' }, contextKey: 'stays out' },
      { tenant: 'evil', ...base, eventTime: 1, late: true, sdkTime: 2, receivedAt: 3, eventIndex: 99, payloadId: 'x', environment: 'staging' },
      Object.fromEntries([...RECORD_FIELDS.map((f): [string, unknown] => [f, claimed(f)]), ['creationDate', 1_795_621_002_000], ['key', 'k']]),
      ...RECORD_FIELDS.map((field) => ({ [field]: claimed(field), ...base })),
      { kind: 'summary', startDate: 1, endDate: 1_795_621_002_000, features: { 'new-checkout': { default: false, counters: [{ value: false, count: 13, variation: 0, version: 1, unknown: true }], contextKinds: ['user'] } }, contextKeys: { user: 'u' } },
      { kind: 'index', creationDate: 1_795_621_002_000, context: { kind: 'user', key: 'u' }, values: [1e21, -0, 0.1, 1.5e-7, 9007199254740993] },
    ];
    // JSON text as an SDK would send it, also with an own "__proto__" field (JSON.parse makes it an own property).
    const json = JSON.stringify(events).replace('"another":null', '"another":null,"__proto__":{"polluted":true}');
    expect(json).toContain('"__proto__"');
    const result = expectSame(json);
    expect(result.rejected).toEqual([]);
    expect(result.events[0].data).toContain('"__proto__":{"polluted":true}');
  });

  it('calls an event object\'s own toJSON as JSON.stringify of its record did (never so in parsed JSON)', () => {
    const origin: PayloadOrigin = { tenant: 't', environment: 'e', payloadId: 'p', receivedAt: 1 };
    const payload = [{ kind: 'index', creationDate: 1, context: { kind: 'user', key: 'u' }, toJSON: () => ({ replaced: true }) }];
    expect(encoded(encodePayload(payload, origin, HOUR))).toEqual(reference(payload, origin, HOUR));
    expect(encodePayload(payload, origin, HOUR).events[0].data.toString()).toBe('{"replaced":true}');
  });

  it('takes the context kind "__proto__" as before', () => {
    // Written by hand, since an object literal's __proto__ sets the prototype instead of a field.
    const text = `[${[
      '{"kind":"index","creationDate":1,"context":{"kind":"__proto__","key":"k"}}',
      '{"kind":"index","creationDate":1,"context":{"kind":"multi","__proto__":{"key":"p"},"user":{"key":"u"}}}',
      '{"kind":"custom","creationDate":1,"key":"k","contextKeys":{"__proto__":"p","user":"u"}}',
      '{"kind":"custom","creationDate":1,"key":"k","contextKeys":{"__proto__":"p"}}',
    ].join(',')}]`;
    const result = expectSame(text);
    expect(result.rejected).toEqual([]);
  });

  it('rejects an event whose record is over the 1 MiB limit with the same message, and takes one exactly at it', () => {
    const event = (data: string) => ({ kind: 'custom', creationDate: 1_795_621_002_000, key: 'k', context: { kind: 'user', key: 'u' }, data });
    const origin: PayloadOrigin = { tenant: 'acme', environment: 'production', payloadId: 'p', receivedAt: 1_795_621_002_000 };
    const overhead = Buffer.byteLength(JSON.stringify(toEventRecord(event('') as SdkEvent, { ...origin, eventIndex: 1 }, HOUR)));
    const atLimit = 'x'.repeat(MAX_RECORD_BYTES - overhead);
    const overLimit = `${'é'.repeat((MAX_RECORD_BYTES - overhead) / 2 - 1)}xyz`; // two bytes per é: one byte over
    const payload = [event('small'), event(atLimit), event(overLimit), event('x'.repeat(2 * MAX_RECORD_BYTES)), event('small again')];
    const result = expectSame(JSON.stringify(payload), origin);
    expect(result.events.map((e) => e.index)).toEqual([0, 1, 4]);
    expect(result.events[1].data.length).toBe(MAX_RECORD_BYTES);
    expect(result.rejected).toEqual([
      { index: 2, error: `the event is over ${MAX_RECORD_BYTES} bytes` },
      { index: 3, error: `the event is over ${MAX_RECORD_BYTES} bytes` },
    ]);
  });

  it('gives each event its own bytes, also with multi-byte characters, and answers an empty payload with nothing', () => {
    const events = ['a', 'é', '😀', '\u2028', '\ud800', 'plain'].map((key, i) => ({ kind: 'custom', creationDate: 1_795_621_002_000 + i, key, context: { kind: 'user', key } }));
    const result = encodePayload(JSON.parse(JSON.stringify(events)), { tenant: 'tenant-é', environment: 'e"1', payloadId: 'p\\1', receivedAt: 1_795_621_002_000 }, HOUR);
    expect(result.events.map((e) => JSON.parse(e.data.toString('utf8')).key)).toEqual(['a', 'é', '😀', '\u2028', '\ud800', 'plain']);
    expectSame(JSON.stringify(events), { tenant: 'tenant-é', environment: 'e"1', payloadId: 'p\\1', receivedAt: 1_795_621_002_000 });
    expect(encodePayload([], { tenant: 't', environment: 'e', payloadId: 'p', receivedAt: 1 }, HOUR)).toEqual({ events: [], rejected: [] });
  });

  it('skips holes in a sparse array as forEach did', () => {
    const payload: unknown[] = [];
    payload[1] = { kind: 'index', creationDate: 1, context: { kind: 'user', key: 'u' } };
    payload[3] = undefined;
    const origin: PayloadOrigin = { tenant: 't', environment: 'e', payloadId: 'p', receivedAt: 1 };
    expect(encoded(encodePayload(payload, origin, HOUR))).toEqual(reference(payload, origin, HOUR));
  });

  it('agrees with the old path on thousands of generated events, valid and invalid', () => {
    const next = random(9);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
    const seeds = bulkBodies.flat();
    const values: unknown[] = [
      null, true, false, 0, -1, 1.5, 1e21, 1_795_621_002_000, 253402300800000, '', 'x', 'user', 'multi', 'ünï©ødé', '"\\\n', [], [1, 'a'], {},
      { kind: 'user', key: 'k' }, { kind: 'multi', user: { key: 'a:b' }, org: { key: '%' } }, { key: 'legacy' }, { user: 'u', org: 'o' }, { user: 5 },
    ];
    const fields = [...RECORD_FIELDS, 'creationDate', 'startDate', 'endDate', 'key', 'context', 'features', 'value', 'variation', 'version', 'metricValue', 'data', 'extra', '1'];
    const payloads: unknown[][] = [];
    for (let p = 0; p < 60; p++) {
      payloads.push(
        Array.from({ length: 50 }, () => {
          const event = structuredClone(pick(seeds)) as Record<string, unknown>;
          const changes = Math.floor(next() * 3);
          for (let c = 0; c < changes; c++) {
            const field = pick(fields);
            if (next() < 0.3) delete event[field];
            else event[field] = structuredClone(pick(values));
          }
          if (next() < 0.5) event[event.kind === 'summary' ? 'endDate' : 'creationDate'] = 1_795_621_002_000 + Math.floor((next() - 0.7) * 4 * HOUR);
          return event;
        }),
      );
    }
    let accepted = 0;
    let rejected = 0;
    let fieldByField = 0;
    for (const payload of payloads) {
      const result = expectSame(JSON.stringify(payload));
      accepted += result.events.length;
      rejected += result.rejected.length;
      fieldByField += result.events.filter((e) => RECORD_FIELDS.some((f) => f !== 'kind' && f in (payload[e.index] as object))).length;
    }
    // Both paths and both outcomes well covered.
    expect(accepted).toBeGreaterThan(500);
    expect(rejected).toBeGreaterThan(300);
    expect(fieldByField).toBeGreaterThan(100);
  });
});

describe("encodePayload with the body's text: each event's JSON as sent", () => {
  const origin: PayloadOrigin = { tenant: 'acme', environment: 'production', payloadId: 'p-1#0123456789abcdef', receivedAt: 1_795_621_002_000 };
  const parsedRecords = (result: EncodedPayload) => result.events.map((e) => JSON.parse(e.data.toString('utf8')));

  it('writes records of the same value as JSON.stringify would from spaced, escaped or reordered text', () => {
    const events = bulkBodies.flat();
    const texts = [
      JSON.stringify(events, null, 2),
      ` [ ${events.map((e) => JSON.stringify(e, null, '\t')).join(' ,\r\n ')} ] `,
      // Escapes an SDK in another language may write: \u00e9, \/ and exponents.
      JSON.stringify(events).replace(/"user"/g, '"\\u0075ser"').replace(/:(\d{13})([,}])/g, ':$1.0$2').replace(/"key":"/, '"key":"\\/'),
      '[' + events.map((e) => JSON.stringify(Object.fromEntries(Object.entries(e as object).reverse()))).join(',') + ']',
    ];
    for (const text of texts) {
      const payload = JSON.parse(text) as unknown[];
      const withText = encodePayload(payload, origin, HOUR, text);
      const without = encodePayload(payload, origin, HOUR);
      expect(withText.rejected).toEqual(without.rejected);
      expect(withText.events.map(({ index, late, clockAhead }) => ({ index, late, clockAhead }))).toEqual(without.events.map(({ index, late, clockAhead }) => ({ index, late, clockAhead })));
      expect(parsedRecords(withText)).toEqual(parsedRecords(without));
    }
    // The spaced text's records keep its spacing: they are its characters, not JSON.stringify's.
    expect(encodePayload(JSON.parse(texts[0]), origin, HOUR, texts[0]).events[0].data.toString('utf8')).toContain('\n');
  });

  it('keeps each event apart from its neighbours whatever the other elements are', () => {
    const event = (key: string) => ({ kind: 'custom', creationDate: 1_795_621_002_000, key, context: { kind: 'user', key } });
    const text = `[1, "a,{b}", ${JSON.stringify(event('x,]}'))}, null, [{"kind":"custom"}], {}, ${JSON.stringify(event('"\\'))} , { }, true]`;
    const payload = JSON.parse(text) as unknown[];
    const result = encodePayload(payload, origin, HOUR, text);
    expect(result.events.map((e) => e.index)).toEqual([2, 6]);
    expect(parsedRecords(result).map((r) => r.key)).toEqual(['x,]}', '"\\']);
    expect(result.rejected.map((r) => r.index)).toEqual([0, 1, 3, 4, 5, 7, 8]);
    expect(parsedRecords(result)).toEqual(parsedRecords(encodePayload(payload, origin, HOUR)));
  });

  it('falls back to JSON.stringify when the text does not line up with the payload', () => {
    const payload = [{ kind: 'custom', creationDate: 1_795_621_002_000, key: 'k', context: { kind: 'user', key: 'u' } }];
    for (const text of ['[]', '{"a":1}', '"[{}]"', JSON.stringify([...payload, ...payload])]) {
      expect(encoded(encodePayload(payload, origin, HOUR, text))).toEqual(encoded(encodePayload(payload, origin, HOUR)));
    }
  });
});

describe('arrayElementSpans', () => {
  it('finds the objects and arrays among the top-level elements, and counts every element', () => {
    const text = ' [ {"a":"}\\\\"}, 2 ,[[]],"x\\"]", {} ,null ] ';
    const spans = arrayElementSpans(text)!;
    expect(spans.length).toBe(6);
    const at = (i: number) => (spans.starts[i] === undefined ? undefined : text.slice(spans.starts[i], spans.ends[i]));
    expect([0, 1, 2, 3, 4, 5].map(at)).toEqual(['{"a":"}\\\\"}', undefined, '[[]]', undefined, '{}', undefined]);
    expect(arrayElementSpans('[]')).toEqual({ length: 0, starts: [], ends: [] });
    for (const notArray of ['{}', '"[]"', '1', 'null']) expect(arrayElementSpans(notArray)).toBeUndefined();
    // Not JSON (the caller's text always is): an unterminated string ends the scan, not the process.
    expect(arrayElementSpans('[{"a":"}\\"}]')).toBeUndefined();
  });

  it('cuts every element of generated arrays exactly, whatever quotes, backslashes and brackets their strings hold', () => {
    const next = random(23);
    const pieces = ['"', '\\', '\\\\', '\\"', '{', '}', '[', ']', ',', 'a', ' ', '\u00e9', '\ud83d\ude00', '\n'];
    const str = () => Array.from({ length: Math.floor(next() * 6) }, () => pieces[Math.floor(next() * pieces.length)]).join('');
    const value = (depth: number): unknown => {
      const r = next();
      if (depth > 2 || r < 0.3) return str();
      if (r < 0.4) return Math.floor(next() * 1000);
      if (r < 0.7) return Array.from({ length: Math.floor(next() * 3) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(next() * 3) }, () => [str(), value(depth + 1)]));
    };
    for (let n = 0; n < 500; n++) {
      const elements = Array.from({ length: Math.floor(next() * 5) }, () => (next() < 0.7 ? { [str()]: value(0), k: str() } : value(0)));
      const text = JSON.stringify(elements, null, next() < 0.3 ? 1 : undefined);
      const spans = arrayElementSpans(text)!;
      expect(spans.length).toBe(elements.length);
      elements.forEach((element, i) => {
        if (element !== null && typeof element === 'object') expect(JSON.parse(text.slice(spans.starts[i], spans.ends[i]))).toEqual(element);
        else expect(spans.starts[i]).toBeUndefined();
      });
    }
  });
});

describe('quickValidatorFor: the same yes or no as validatorFor', () => {
  it('on the recorded events and on generated variants of them', () => {
    const full = validatorFor(SCHEMA_IDS.sdkEvent);
    const quick = quickValidatorFor(SCHEMA_IDS.sdkEvent);
    const next = random(17);
    const seeds = bulkBodies.flat() as Record<string, unknown>[];
    const replacements: unknown[] = [null, -1, 0, 2.5, 'x', '', [], {}, { kind: 'multi' }, { kind: 'org', key: 'o' }, { key: 'k' }, [{ count: 1 }], { f: { counters: [] } }];
    let valid = 0;
    let invalid = 0;
    const check = (event: unknown) => {
      const copy = structuredClone(event);
      const answer = full(event);
      expect({ event, quick: quick(copy) }).toEqual({ event, quick: answer });
      if (answer) valid++;
      else invalid++;
    };
    for (const seed of seeds) check(seed);
    for (let i = 0; i < 3000; i++) {
      const event = structuredClone(seeds[Math.floor(next() * seeds.length)]);
      // Change a field somewhere in the event, at the top or one level down.
      let target: Record<string, unknown> = event;
      const inner = Object.values(event).filter((v) => v && typeof v === 'object' && !Array.isArray(v)) as Record<string, unknown>[];
      if (inner.length && next() < 0.5) target = inner[Math.floor(next() * inner.length)];
      const keys = [...Object.keys(target), 'kind', 'key', 'extra'];
      const key = keys[Math.floor(next() * keys.length)];
      if (next() < 0.3) delete target[key];
      else target[key] = structuredClone(replacements[Math.floor(next() * replacements.length)]);
      check(event);
    }
    expect(valid).toBeGreaterThan(300);
    expect(invalid).toBeGreaterThan(300);
  });
});

describe('canonicalJsonHash: payload IDs stay what they were', () => {
  it('gives the hashes it gave before the fast writer (pinned)', () => {
    const bodies = requests.map((r) => r.body);
    expect(bodies.map((b) => canonicalJsonHash(b))).toEqual([
      '72c18bc78e647a17312a4ee7a90e2d9cfef48891cf91f3bd99625d960388caa1',
      'a05adc15cecb620944404bf40e3fe6257dee1515cbcd6dcbbc4ce9a89c9748b6',
      '509c8b9bff2731ab429a0865b28c32392df284bf81437155fd2a195cdbb0cb73',
    ]);
    const pinned: [string, string][] = [
      ['[]', '4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945'],
      ['{}', '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'],
      ['null', '74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b'],
      ['"x"', 'ba2df4903a2c14e86dc3bcca58911b44ac1d2514b7227bf6eb08cfb978f55a1b'],
      [
        '[{"b":1,"a":[true,false,null,1.5e300,-0,"\\u0000\\"\\\\\\ud800é😀\\u2028"],"10":1,"9":2,"":{},"é":0,"a\\nb":[]}]',
        '7a750df0048ec160bfb83947e226db2b7f99e6c65c542bfe044661a1bac45208',
      ],
    ];
    for (const [json, hash] of pinned) expect([json, canonicalJsonHash(JSON.parse(json))]).toEqual([json, hash]);
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(canonicalJsonHash(deep)).toBe('1a4984807c73ed17757193c40e817c00e210caf111dbaef13ec9793478c41305');
  });

  it('equals the iterative reference on generated values: odd keys and strings, deep and wide', () => {
    const next = random(5);
    const strings = ['', 'a', 'B', 'é', 'ü', '😀', '\ud800', '\udc00x', '\u2028', '\u007f', '"', '\\', '\n\t\b\f\r\u0001', '10', '9', '01', '-1', '__proto__', 'toJSON', 'x'.repeat(300), `"${'y'.repeat(300)}`];
    const value = (depth: number): unknown => {
      const r = next();
      if (depth > 6 || r < 0.35) {
        return [null, true, false, 0, -0, 1, -1.5, 1e21, 1e-7, 2 ** 53 + 2, next() * 1e6, strings[Math.floor(next() * strings.length)]][Math.floor(next() * 12)];
      }
      if (r < 0.6) return Array.from({ length: Math.floor(next() * 5) }, () => value(depth + 1));
      const text = `{${Array.from({ length: Math.floor(next() * 6) }, () => `${JSON.stringify(strings[Math.floor(next() * strings.length)] + (next() < 0.5 ? '' : Math.floor(next() * 20)))}:${JSON.stringify(value(depth + 1)) ?? 'null'}`).join(',')}}`;
      return JSON.parse(text);
    };
    for (let i = 0; i < 500; i++) {
      const v = JSON.parse(JSON.stringify(value(0)) ?? 'null');
      expect(canonicalJsonHash(v)).toBe(canonicalJsonHashIterative(v));
    }
    // Past the recursive writer's depth, and a body over the 64 KiB piece size.
    const nested = JSON.parse(`${'{"b":[{"z":0},'.repeat(400)}1${']}'.repeat(400)}`);
    expect(canonicalJsonHash(nested)).toBe(canonicalJsonHashIterative(nested));
    const wide = Array.from({ length: 5000 }, (_, i) => ({ [`key-${i}`]: 'é'.repeat(i % 50), i }));
    expect(canonicalJsonHash(wide)).toBe(canonicalJsonHashIterative(wide));
    // Values JSON.parse never makes are written as the iterative form writes them.
    const odd = { u: undefined, f: () => 1, d: new Date(0), n: NaN, i: -Infinity, a: [undefined, , 1] };
    expect(canonicalJsonHash(odd)).toBe(canonicalJsonHashIterative(odd));
  });
});
