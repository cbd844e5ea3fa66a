import { checkObservations, completeTimes } from './observe';
import { deliveredPayloads, expectedResults, placeEvent, RecordLike, unconfirmedPayloads, writtenParts } from './reference';

/**
 * The reference and the observation checks themselves, on hand-made records: the
 * end-to-end tests are only as good as these. No stack call here.
 */

const W = 10_000;
const T = Date.UTC(2026, 10, 26, 12, 0, 0); // a window boundary
const summary = (endDate: number, counters: [flag: string, variation: number | undefined, count: number][]) => {
  const features: Record<string, { counters: { variation?: number; count: number }[] }> = {};
  for (const [flag, variation, count] of counters) (features[flag] ??= { counters: [] }).counters.push(variation === undefined ? { count } : { variation, count });
  return { kind: 'summary', startDate: endDate - 1000, endDate, features };
};
const rec = (over: Partial<RecordLike> & { body: unknown }): RecordLike => ({
  host: 'h', method: 'POST', path: '/bulk', forwardedAt: T + 2000, answeredAt: T + 2100, apiStatus: 202, apiBody: '{"accepted":1,"rejected":[]}', ...over,
});

describe('reference: from the proxy records to expected rows and lateEvents', () => {
  it('counts each accepted payload ID once, whatever retried it, and nothing that never got a 2xx', () => {
    const p1 = [summary(T + 1000, [['a', 0, 3]])];
    const p2 = [summary(T + 1500, [['a', 0, 4]])];
    const p3 = [summary(T + 1600, [['a', 0, 100]])];
    const records = [
      rec({ payloadId: 'p1', body: p1, forwardedAt: undefined, answeredAt: undefined, apiStatus: undefined }), // 503 from the proxy
      rec({ payloadId: 'p1', body: p1, forwardedAt: T + 3000, answeredAt: T + 3050 }), // the retry
      rec({ payloadId: 'p2', body: p2 }), // written, answer lost
      rec({ payloadId: 'p2', body: p2, forwardedAt: T + 3100, answeredAt: T + 3150 }), // retried: deduplicated by the API
      rec({ payloadId: 'p3', body: p3, forwardedAt: undefined, answeredAt: undefined, apiStatus: undefined }),
      rec({ payloadId: 'p3', body: p3, forwardedAt: undefined, answeredAt: undefined, apiStatus: undefined }), // dropped by the SDK
      rec({ payloadId: 'p4', body: p3, apiStatus: 503 }), // the API refused it (and the SDK gave up)
    ];
    const deliveries = deliveredPayloads(records);
    expect(deliveries.map((d) => [d.payloadId, d.attempts, d.receivedFrom - T, d.receivedTo - T])).toEqual([
      ['p1', 2, 3000, 3050],
      ['p2', 2, 2000, 2100],
    ]);
    expect(expectedResults(deliveries, { windowMs: W, groupBy: ['flagKey', 'variation'] }).rows).toEqual([
      { windowStart: new Date(T).toISOString(), windowEnd: new Date(T + W).toISOString(), flagKey: 'a', variation: 0, evaluations: 7 },
    ]);
  });

  it('takes of a payload never confirmed (503 twice) exactly the events the stream holds, at their stamped receive time', () => {
    const body = [summary(T + 1000, [['a', 0, 3]]), summary(T + 1100, [['a', 0, 5]]), summary(T + 1200, [['b', 1, 7]])];
    const records = [
      rec({ payloadId: 'u', body, apiStatus: 503 }),
      rec({ payloadId: 'u', body, forwardedAt: T + 3000, answeredAt: T + 23_000, apiStatus: 503 }),
      rec({ payloadId: 'ok', body: [summary(T + 900, [['a', 0, 1]])] }),
      rec({ payloadId: 'never', body, forwardedAt: undefined, answeredAt: undefined, apiStatus: undefined }), // refused by the proxy: never reached the API
    ];
    const unconfirmed = unconfirmedPayloads(records);
    expect(unconfirmed.map((p) => p.payloadId)).toEqual(['u']);
    const written = [
      { payloadId: 'u#abc', environment: 'production', eventIndex: 0, receivedAt: T + 2500 },
      { payloadId: 'u#abc', environment: 'production', eventIndex: 2, receivedAt: T + 2500 },
      { payloadId: 'u#abc', environment: 'staging', eventIndex: 1, receivedAt: T + 2500 }, // same ID, the other environment's
      { payloadId: 'uu#abc', environment: 'production', eventIndex: 1, receivedAt: T + 2500 }, // another payload whose ID starts alike
    ];
    const parts = writtenParts(unconfirmed, written, () => 'production');
    const rows = expectedResults([...deliveredPayloads(records), ...parts], { windowMs: W, groupBy: ['flagKey', 'variation'] }).rows;
    expect(rows.map((r) => [r.flagKey, r.variation, r.evaluations])).toEqual([['a', 0, 4], ['b', 1, 7]]);
    expect(() => writtenParts(unconfirmed, [{ ...written[0], eventIndex: 3 }], () => 'production')).toThrow(/holds event 3/);
  });

  it('takes the receive interval from the first attempt the API saw to its first 2xx, and refuses inconsistent records', () => {
    const body = [summary(T, [['a', 1, 1]])];
    const [d] = deliveredPayloads([rec({ payloadId: 'x', body, apiStatus: 503 }), rec({ payloadId: 'x', body, forwardedAt: T + 5000, answeredAt: T + 5001 })]);
    expect([d.receivedFrom - T, d.receivedTo - T]).toEqual([2000, 5001]);
    expect(() => deliveredPayloads([rec({ payloadId: 'y', body }), rec({ payloadId: 'y', body: [summary(T, [['a', 1, 2]])] })])).toThrow(/different bodies/);
    expect(() => deliveredPayloads([rec({ payloadId: 'z', body, apiBody: '{"accepted":0,"rejected":[{"index":0,"error":"bad"}]}' })])).toThrow(/rejected/);
    // The API's own stamp, when it says it, is the receive time; a stamp outside the interval is a bug.
    const [stamped] = deliveredPayloads([rec({ payloadId: 's', body, apiStatus: 503 }), rec({ payloadId: 's', body, forwardedAt: T + 5000, answeredAt: T + 5001, apiReceivedAt: T + 2050 })]);
    expect([stamped.receivedFrom - T, stamped.receivedTo - T]).toEqual([2050, 2050]);
    expect(() => deliveredPayloads([rec({ payloadId: 'o', body, apiReceivedAt: T + 1999 })])).toThrow(/outside/);
    // Without a payload ID, every request is a payload of its own.
    expect(deliveredPayloads([rec({ body }), rec({ body })])).toHaveLength(2);
  });

  it('applies CONTRACT §5: >5 min ahead counts at receive time, older than 1 h is late, anything between at its own time', () => {
    const r = T + 123_456;
    expect(placeEvent(r + 5 * 60_000, r)).toEqual({ late: false, eventTime: r + 5 * 60_000 });
    expect(placeEvent(r + 5 * 60_000 + 1, r)).toEqual({ late: false, eventTime: r });
    expect(placeEvent(253402300799999, r)).toEqual({ late: false, eventTime: r });
    expect(placeEvent(r - 3_600_000, r)).toEqual({ late: false, eventTime: r - 3_600_000 });
    expect(placeEvent(r - 3_600_000 - 1, r)).toEqual({ late: true, eventTime: r - 3_600_000 - 1 });
    expect(placeEvent(1, r).late).toBe(true);
  });

  it('puts late summaries in lateEvents (once per summary, no other kind), future ones in the receive window, and unknown flags under variation null', () => {
    const received = T + 7 * W + 4000;
    const events = [
      summary(received - 2 * 3_600_000, [['a', 0, 5], ['b', 1, 6]]), // late: 1 event, 11 evaluations
      { kind: 'index', creationDate: received - 2 * 3_600_000, context: { kind: 'user', key: 'u' } }, // late, but not the analysis' kind
      summary(received + 7 * 60_000, [['a', 0, 2]]), // ahead: counts at receive time
      summary(received - 20 * 60_000, [['ghost', undefined, 4]]), // 20 min behind: its own (old) window
    ];
    const result = expectedResults([{ payloadId: 'p', host: 'h', events, receivedFrom: received, receivedTo: received + 50, attempts: 1 }], { windowMs: W, groupBy: ['flagKey', 'variation'] });
    expect(result.lateEvents).toBe(1);
    expect(result.lateEvaluations).toBe(11);
    expect(result.ambiguous).toEqual([]);
    const iso = (t: number) => new Date(Math.floor(t / W) * W).toISOString();
    expect(result.rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ windowStart: iso(received), flagKey: 'a', variation: 0, evaluations: 2 }),
        expect.objectContaining({ windowStart: iso(received - 20 * 60_000), flagKey: 'ghost', variation: null, evaluations: 4 }),
      ]),
    );
    expect(result.rows).toHaveLength(2);
    // groupBy decides the row's fields.
    expect(expectedResults([{ payloadId: 'p', host: 'h', events, receivedFrom: received, receivedTo: received, attempts: 1 }], { windowMs: W, groupBy: ['flagKey'] }).rows.map((r) => Object.keys(r))).toEqual([
      ['windowStart', 'windowEnd', 'flagKey', 'evaluations'],
      ['windowStart', 'windowEnd', 'flagKey', 'evaluations'],
    ]);
  });

  it('says when a receive interval straddles a window boundary for an event counted at receive time', () => {
    const events = [summary(T + 3_600_000, [['a', 0, 1]])];
    const straddling = expectedResults([{ payloadId: 'p', host: 'h', events, receivedFrom: T - 5, receivedTo: T + 5, attempts: 1 }], { windowMs: W, groupBy: ['flagKey'] });
    expect(straddling.ambiguous).toHaveLength(1);
    const inside = expectedResults([{ payloadId: 'p', host: 'h', events, receivedFrom: T + 5, receivedTo: T + 500, attempts: 1 }], { windowMs: W, groupBy: ['flagKey'] });
    expect(inside.ambiguous).toEqual([]);
  });
});

describe('observation checks', () => {
  const row = (evaluations: number, extra: Record<string, unknown> = {}) => ({
    windowStart: new Date(T).toISOString(), windowEnd: new Date(T + W).toISOString(), flagKey: 'a', variation: 0, evaluations, ...extra,
  });
  const expected = [row(10)];

  it('accepts rows that grow to the reference, turn final after the window, and carry updatedAt when changed after final', () => {
    const seen = [
      { at: T + 5000, rows: [row(4)] },
      { at: T + W + 8000, rows: [row(6, { final: true })] },
      { at: T + W + 30_000, rows: [row(10, { final: true, updatedAt: new Date(T + W + 29_000).toISOString() })] },
    ];
    expect(checkObservations(seen, expected, ['flagKey', 'variation'])).toEqual({ violations: [], updatesAfterFinal: 1 });
    expect(completeTimes(seen, expected, ['flagKey', 'variation']).get(new Date(T).toISOString())).toBe(T + W + 30_000);
  });

  it('reports counts above the reference, unknown rows, final before the end and changes after final without updatedAt', () => {
    const seen = [
      { at: T + 5000, rows: [row(11), { ...row(1), flagKey: 'zzz' }] },
      { at: T + 6000, rows: [row(8, { final: true })] },
      { at: T + W + 9000, rows: [row(10, { final: true })] },
    ];
    const { violations } = checkObservations(seen, expected, ['flagKey', 'variation']);
    expect(violations).toHaveLength(4);
    expect(violations.join('\n')).toMatch(/more than the reference/);
    expect(violations.join('\n')).toMatch(/does not have/);
    expect(violations.join('\n')).toMatch(/final before its window ended/);
    expect(violations.join('\n')).toMatch(/no updatedAt/);
    expect(completeTimes(seen, expected, ['flagKey', 'variation']).get(new Date(T).toISOString())).toBe(T + W + 9000);
  });
});
