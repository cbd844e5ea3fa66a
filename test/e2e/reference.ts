/**
 * The independent reference for flag-evaluations. Nothing here shares code with the
 * control plane, the SQL generator or Flink: plain loops over what the tests sent.
 *
 * - `expectedEvaluationRows(events, …)`: the simple form, for payloads sent on time:
 *   each summary counter is summed into the tumbling window of its summary's endDate.
 * - `deliveredPayloads(records)` + `expectedResults(deliveries, …)`: from what the
 *   recording proxy saw (test/e2e/proxy.ts), with CONTRACT §5's time rules applied with
 *   the proxy's receive time: every payload ID that got a 2xx from the API counts once;
 *   an event time more than 5 min ahead of the receive time counts at the receive time;
 *   one older than the horizon (1 h) counts in `lateEvents`, in no row.
 */

export type Dimension = 'flagKey' | 'variation' | 'environment';

export interface SummaryLike {
  kind: string;
  endDate: number;
  features: Record<string, { counters: { variation?: number; count: number }[] }>;
}

export function expectedEvaluationRows(events: unknown[], options: { windowMs: number; groupBy: Dimension[]; environment?: string }) {
  const sums = new Map<string, Record<string, unknown> & { evaluations: number }>();
  for (const event of events as SummaryLike[]) {
    if (event.kind !== 'summary') continue;
    addSummary(sums, event, event.endDate, { ...options, environment: options.environment });
  }
  return sortRows([...sums.values()]);
}

function addSummary(
  sums: Map<string, Record<string, unknown> & { evaluations: number }>,
  event: SummaryLike,
  eventTime: number,
  options: { windowMs: number; groupBy: Dimension[]; environment?: string; flagKeys?: string[] },
) {
  const windowStart = Math.floor(eventTime / options.windowMs) * options.windowMs;
  for (const [flagKey, flag] of Object.entries(event.features)) {
    if (options.flagKeys && !options.flagKeys.includes(flagKey)) continue;
    for (const counter of flag.counters) {
      const row: Record<string, unknown> = {
        windowStart: new Date(windowStart).toISOString(),
        windowEnd: new Date(windowStart + options.windowMs).toISOString(),
      };
      if (options.groupBy.includes('flagKey')) row.flagKey = flagKey;
      if (options.groupBy.includes('variation')) row.variation = counter.variation ?? null;
      if (options.groupBy.includes('environment')) row.environment = options.environment;
      const key = JSON.stringify(row);
      sums.set(key, { ...row, evaluations: (sums.get(key)?.evaluations ?? 0) + counter.count });
    }
  }
}

/** A stable order for comparing row sets. */
export function sortRows<T>(rows: T[]): T[] {
  return [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** The fields of a result row the reference decides (drops `final`, `updatedAt`, …), in a fixed order. */
export function projectRow(row: Record<string, unknown>, groupBy: Dimension[]) {
  const out: Record<string, unknown> = { windowStart: row.windowStart, windowEnd: row.windowEnd };
  for (const d of ['flagKey', 'variation', 'environment'] as Dimension[]) if (groupBy.includes(d)) out[d] = row[d];
  out.evaluations = row.evaluations;
  return out;
}

export function projectRows(rows: Record<string, unknown>[], groupBy: Dimension[]) {
  return sortRows(rows.map((r) => projectRow(r, groupBy)));
}

// ---------------------------------------------------------------------------------
// From the proxy's records to expectations.

/** The part of a proxy record the reference reads (see test/e2e/proxy.ts). */
export interface RecordLike {
  host: string;
  method: string;
  path: string;
  payloadId?: string;
  body: unknown;
  forwardedAt?: number;
  answeredAt?: number;
  apiStatus?: number;
  apiBody?: string;
  apiReceivedAt?: number;
}

/** One payload the API accepted: its events, once, and when the API received it. */
export interface Delivery {
  payloadId: string | undefined;
  host: string;
  events: unknown[];
  /** The API received the payload (and wrote its events) between these two times. */
  receivedFrom: number;
  receivedTo: number;
  /** How many requests carried it (retries included). */
  attempts: number;
}

const is2xx = (status: number | undefined) => status !== undefined && status >= 200 && status < 300;

/**
 * Every payload that got a 2xx from the API, once per payload ID, whatever retries
 * carried it. Its receive interval starts when the first attempt that reached the API
 * was forwarded (an attempt the API answered with an error may have written part of
 * it) and ends when the API answered the first 2xx. When the API said its receive stamp
 * (X-Flagstream-Received-At) the interval is that instant, which must lie inside.
 */
export function deliveredPayloads(records: RecordLike[]): Delivery[] {
  const bulk = records.filter((r) => r.method === 'POST' && r.path.split('?')[0] === '/bulk');
  const groups = new Map<string, RecordLike[]>();
  bulk.forEach((r, i) => {
    // Without a payload ID the API makes one up: each such request is its own payload.
    const key = r.payloadId !== undefined ? `id:${r.payloadId}` : `anon:${i}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  });
  const out: Delivery[] = [];
  for (const attempts of groups.values()) {
    const forwarded = attempts.filter((r) => r.forwardedAt !== undefined).sort((a, b) => a.forwardedAt! - b.forwardedAt!);
    const accepted = forwarded.find((r) => is2xx(r.apiStatus));
    if (!accepted) continue;
    const bodies = new Set(attempts.map((r) => JSON.stringify(r.body)));
    if (bodies.size !== 1) throw new Error(`reference: payload ${accepted.payloadId} was sent with different bodies`);
    if (!Array.isArray(accepted.body)) throw new Error(`reference: payload ${accepted.payloadId} accepted but its body is not a JSON array`);
    const answer = safeJson(accepted.apiBody);
    if (answer?.rejected?.length) {
      throw new Error(`reference: payload ${accepted.payloadId} had rejected events (${JSON.stringify(answer.rejected).slice(0, 300)}); tests send valid events only`);
    }
    let receivedFrom = forwarded[0].forwardedAt!;
    let receivedTo = accepted.answeredAt ?? accepted.forwardedAt!;
    const stamp = accepted.apiReceivedAt;
    if (stamp !== undefined) {
      if (!(stamp >= receivedFrom && stamp <= receivedTo)) {
        throw new Error(`reference: payload ${accepted.payloadId} was stamped received at ${stamp}, outside ${receivedFrom}..${receivedTo} when the API had it`);
      }
      receivedFrom = receivedTo = stamp;
    }
    out.push({ payloadId: accepted.payloadId, host: accepted.host, events: accepted.body, receivedFrom, receivedTo, attempts: attempts.length });
  }
  return out;
}

/** What the events stream holds of one event (the fields of its record the reference needs). */
export interface WrittenEvent {
  /** The stream's payload ID: the header's, `#`, a hash of the body (control-plane/src/events/payload-hash.ts). */
  payloadId: string;
  environment: string;
  eventIndex: number;
  receivedAt: number;
}

/**
 * Payloads the API was sent but never answered with a 2xx (a 503 after its write deadline,
 * twice: the SDK then drops it). CONTRACT §5 lets a 503 follow a partial write, so some of
 * their events may be on the stream and counted; only the stream can say which.
 */
export function unconfirmedPayloads(records: RecordLike[]): { payloadId: string; host: string; body: unknown[] }[] {
  const confirmed = new Set(deliveredPayloads(records).map((d) => `${d.host}\u0000${d.payloadId}`));
  const out = new Map<string, { payloadId: string; host: string; body: unknown[] }>();
  for (const r of records) {
    if (r.method !== 'POST' || r.path.split('?')[0] !== '/bulk' || r.forwardedAt === undefined || !Array.isArray(r.body)) continue;
    if (r.payloadId === undefined) throw new Error('reference: a payload without an ID reached the API unconfirmed; its events on the stream cannot be told apart');
    const key = `${r.host}\u0000${r.payloadId}`;
    if (!confirmed.has(key)) out.set(key, { payloadId: r.payloadId, host: r.host, body: r.body });
  }
  return [...out.values()];
}

/** The part of each unconfirmed payload the stream holds, as deliveries received when the API stamped them. */
export function writtenParts(
  unconfirmed: { payloadId: string; host: string; body: unknown[] }[],
  written: WrittenEvent[],
  environmentOf: (host: string) => string,
): Delivery[] {
  const out: Delivery[] = [];
  for (const p of unconfirmed) {
    const mine = written.filter((w) => w.environment === environmentOf(p.host) && w.payloadId.startsWith(`${p.payloadId}#`));
    const byIndex = new Map(mine.map((w) => [w.eventIndex, w]));
    for (const [eventIndex, w] of byIndex) {
      if (eventIndex < 0 || eventIndex >= p.body.length) throw new Error(`reference: the stream holds event ${eventIndex} of payload ${p.payloadId}, which has ${p.body.length}`);
      out.push({ payloadId: p.payloadId, host: p.host, events: [p.body[eventIndex]], receivedFrom: w.receivedAt, receivedTo: w.receivedAt, attempts: 0 });
    }
  }
  return out;
}

export interface TimeRules {
  /** FLAGSTREAM_LATENESS_HORIZON (default 1 h). */
  horizonMs: number;
  /** An event time further ahead of the receive time counts at the receive time (5 min). */
  aheadMs: number;
}
export const CONTRACT_TIME_RULES: TimeRules = { horizonMs: 3_600_000, aheadMs: 300_000 };

/** An event's own time: a summary's endDate, any other event's creationDate. */
export function sdkTimeOf(event: any): number {
  return event.kind === 'summary' ? event.endDate : event.creationDate;
}

/** CONTRACT §5: where an event with SDK time `t`, received at `receivedAt`, counts. */
export function placeEvent(t: number, receivedAt: number, rules: TimeRules = CONTRACT_TIME_RULES): { late: boolean; eventTime: number } {
  if (t > receivedAt + rules.aheadMs) return { late: false, eventTime: receivedAt };
  if (t < receivedAt - rules.horizonMs) return { late: true, eventTime: t };
  return { late: false, eventTime: t };
}

export interface ExpectedResults {
  rows: (Record<string, unknown> & { evaluations: number })[];
  /** Events of the analysis older than the horizon. */
  lateEvents: number;
  /** Evaluations in those late summaries (for messages; not a contract figure). */
  lateEvaluations: number;
  /** Events whose placement differs between the two ends of their receive interval. */
  ambiguous: string[];
}

export function expectedResults(
  deliveries: Delivery[],
  options: {
    windowMs: number;
    groupBy: Dimension[];
    /** Environment of each delivery (by host), for groupBy environment. */
    environmentOf?: (d: Delivery) => string;
    flagKeys?: string[];
    rules?: TimeRules;
    /**
     * Which kinds of late events count in a flag-evaluations analysis' `lateEvents`:
     * the events it would have counted, its summaries (CONTRACT §5: "an event older
     * than the horizon counts in its analysis' lateEvents").
     */
    lateKinds?: string[];
  },
): ExpectedResults {
  const rules = options.rules ?? CONTRACT_TIME_RULES;
  const lateKinds = options.lateKinds ?? ['summary'];
  const sums = new Map<string, Record<string, unknown> & { evaluations: number }>();
  let lateEvents = 0;
  let lateEvaluations = 0;
  const ambiguous: string[] = [];
  const windowOf = (t: number) => Math.floor(t / options.windowMs);
  for (const delivery of deliveries) {
    delivery.events.forEach((event: any, index) => {
      const t = sdkTimeOf(event);
      const early = placeEvent(t, delivery.receivedFrom, rules);
      const late = placeEvent(t, delivery.receivedTo, rules);
      const matters = event.kind === 'summary' || lateKinds.includes(event.kind);
      if (matters && (early.late !== late.late || (!early.late && windowOf(early.eventTime) !== windowOf(late.eventTime)))) {
        ambiguous.push(`${delivery.payloadId}#${index} (t=${t}, received ${delivery.receivedFrom}..${delivery.receivedTo})`);
      }
      const placed = early;
      if (placed.late) {
        if (lateKinds.includes(event.kind)) lateEvents++;
        if (event.kind === 'summary') lateEvaluations += countersOf(event, options.flagKeys);
        return;
      }
      if (event.kind !== 'summary') return;
      addSummary(sums, event, placed.eventTime, {
        windowMs: options.windowMs,
        groupBy: options.groupBy,
        environment: options.environmentOf?.(delivery),
        flagKeys: options.flagKeys,
      });
    });
  }
  return { rows: sortRows([...sums.values()]), lateEvents, lateEvaluations, ambiguous };
}

/** Evaluations in a summary (all flags, or the given ones). */
export function countersOf(summary: SummaryLike, flagKeys?: string[]): number {
  let n = 0;
  for (const [flagKey, flag] of Object.entries(summary.features)) {
    if (flagKeys && !flagKeys.includes(flagKey)) continue;
    for (const c of flag.counters) n += c.count;
  }
  return n;
}

/** Evaluations per flag key in the given deliveries (for checking the SDK sent all it was asked). */
export function evaluationsByFlag(deliveries: { events: unknown[] }[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of deliveries) {
    for (const event of d.events as SummaryLike[]) {
      if (event.kind !== 'summary') continue;
      for (const [flagKey, flag] of Object.entries(event.features)) {
        out.set(flagKey, (out.get(flagKey) ?? 0) + flag.counters.reduce((a, c) => a + c.count, 0));
      }
    }
  }
  return out;
}

function safeJson(text: string | undefined): any {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}
