import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { call } from './client';
import { Dimension, projectRow } from './reference';

/**
 * What test/e2e/pools.e2e.ts watches while analyses share Flink jobs (docs/pools.md):
 *
 * - `stackMaxPools()`: FLAGSTREAM_MAX_POOLS as the shared stack's control plane runs with it;
 * - `PoolJobSampler`: the Flink cluster's jobs, sampled on a timer: how many `flagstream-`
 *   jobs are active at each sample, and, once per job, how many of its vertices read the
 *   `events` source;
 * - `RowsMonitor`: many analyses' results polled as a user would, each about once a second
 *   with a few requests in flight, keeping per row only what changed (memory stays small
 *   with a hundred analyses): whether a row seen `final` later shows fewer evaluations or
 *   is gone, the most each row ever showed, and when each row reached its final count.
 */

export const FLINK = process.env.FLAGSTREAM_TEST_FLINK ?? 'http://127.0.0.1:18081';
const DEFAULT_MAX_POOLS = 8;

/**
 * FLAGSTREAM_MAX_POOLS of the running control plane: read from its process' environment
 * (/proc/<pid>/environ, the pid from the stack's pids.json), since the test stack passes the
 * variable on from whoever ran `npm test`; otherwise this process' own, otherwise 8.
 */
export function stackMaxPools(): { value: number; source: string } {
  const parse = (text: string | undefined) => (text === undefined || text.trim() === '' ? undefined : Number(text));
  const pidsFile = process.env.FLAGSTREAM_TEST_PIDS_FILE ?? (process.env.FLAGSTREAM_TEST_DATA_DIR ? join(process.env.FLAGSTREAM_TEST_DATA_DIR, 'pids.json') : undefined);
  if (pidsFile) {
    try {
      const pid = JSON.parse(readFileSync(pidsFile, 'utf8'))['control-plane'];
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const line = environ.find((l) => l.startsWith('FLAGSTREAM_MAX_POOLS='));
      const value = parse(line?.slice('FLAGSTREAM_MAX_POOLS='.length));
      if (value !== undefined) return { value, source: `the control plane's environment (pid ${pid})` };
      return { value: DEFAULT_MAX_POOLS, source: `the default (unset in the control plane's environment, pid ${pid})` };
    } catch {
      /* not Linux, or the pids file moved: fall back */
    }
  }
  const own = parse(process.env.FLAGSTREAM_MAX_POOLS);
  return own !== undefined ? { value: own, source: 'FLAGSTREAM_MAX_POOLS of the test process' } : { value: DEFAULT_MAX_POOLS, source: 'the default' };
}

export interface FlinkJob {
  jid: string;
  name: string;
  state: string;
}

/**
 * Active: the states the other e2e files count as a running job (client.ts, self-healing.e2e.ts).
 * A job CANCELLING or FAILING is on its way out; it is counted apart (`notEnded`), for the log.
 */
const ACTIVE = new Set(['CREATED', 'INITIALIZING', 'RUNNING', 'RESTARTING']);
const ENDED = new Set(['FINISHED', 'CANCELED', 'FAILED', 'SUSPENDED']);
export const isActive = (job: FlinkJob) => ACTIVE.has(job.state);
export const notEnded = (job: FlinkJob) => !ENDED.has(job.state);
export const isOurs = (job: FlinkJob) => job.name.startsWith('flagstream-');
export const POOL_JOB_NAME = /^flagstream-pool-([A-Za-z0-9]+)-g(\d+)-\S+$/;
/** A vertex that reads the events stream: its name mentions the `events` table (not `lateEvents`, `result_…`). */
export const EVENTS_SOURCE = /(^|[^A-Za-z0-9_])events([^A-Za-z0-9_]|$)/;

export async function flinkJobs(): Promise<FlinkJob[]> {
  const reply = await fetch(`${FLINK}/jobs/overview`, { signal: AbortSignal.timeout(10_000) });
  if (!reply.ok) throw new Error(`GET /jobs/overview answered ${reply.status}`);
  return ((await reply.json()) as { jobs: FlinkJob[] }).jobs;
}

/** Active jobs of Flagstream (`flagstream-…`), with the pool id of those named like pools. */
export async function activePoolJobs(): Promise<(FlinkJob & { pool?: string })[]> {
  return (await flinkJobs()).filter((j) => isOurs(j) && isActive(j)).map((j) => ({ ...j, pool: POOL_JOB_NAME.exec(j.name)?.[1] }));
}

export async function jobVertices(jid: string): Promise<{ name: string; parallelism?: number }[]> {
  const reply = await fetch(`${FLINK}/jobs/${jid}`, { signal: AbortSignal.timeout(10_000) });
  if (!reply.ok) return [];
  return (((await reply.json()) as { vertices?: { name: string; parallelism?: number }[] }).vertices ?? []);
}

export interface JobCheck {
  jid: string;
  name: string;
  /** Vertices whose name mentions the events source. */
  sources: string[];
  vertices: string[];
}

/**
 * Samples the Flink cluster's jobs every `intervalMs` from start() to stop(): the active
 * `flagstream-` jobs at each sample (a violation when more than `max`), and each such job's
 * vertices once it is RUNNING (a violation unless exactly one reads the events source, or when
 * its name is not a pool's).
 */
export class PoolJobSampler {
  readonly violations: string[] = [];
  readonly checked = new Map<string, JobCheck>();
  samples = 0;
  errors = 0;
  maxActive = 0;
  /** The most flagstream- jobs not yet ended (active, or CANCELLING/FAILING) at one sample. */
  maxNotEnded = 0;
  /** Active flagstream- jobs at the last sample. */
  lastActive: FlinkJob[] = [];
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(readonly max: number, readonly intervalMs = 1000) {}

  start(): this {
    const tick = async () => {
      try {
        await this.sample();
      } catch {
        this.errors++;
      }
      if (this.timer !== undefined) this.timer = setTimeout(() => (this.running = tick()), this.intervalMs);
    };
    this.timer = setTimeout(() => (this.running = tick()), 0);
    return this;
  }

  async stop(): Promise<void> {
    const timer = this.timer;
    this.timer = undefined;
    if (timer) clearTimeout(timer);
    await this.running;
  }

  private note(text: string) {
    if (this.violations.length < 50) this.violations.push(text);
  }

  async sample(): Promise<void> {
    const at = new Date().toISOString();
    const ours = (await flinkJobs()).filter(isOurs);
    const active = ours.filter(isActive);
    this.maxNotEnded = Math.max(this.maxNotEnded, ours.filter(notEnded).length);
    this.samples++;
    this.lastActive = active;
    this.maxActive = Math.max(this.maxActive, active.length);
    // A pool runs two jobs while its new one catches up (docs/pools.md): never more than two a
    // pool, nor more than `max` readers in all.
    if (active.length > this.max) {
      this.note(`${at}: ${active.length} active flagstream- jobs, more than ${this.max}: ${active.map((j) => `${j.name} (${j.state})`).join(', ')}`);
    }
    const perPool = new Map<string, number>();
    for (const job of active) {
      const pool = /^flagstream-pool-(p\d+)-g/.exec(job.name)?.[1] ?? job.name;
      perPool.set(pool, (perPool.get(pool) ?? 0) + 1);
    }
    for (const [pool, n] of perPool) if (n > 2) this.note(`${at}: pool ${pool} has ${n} active jobs`);
    for (const job of active) {
      if (this.checked.has(job.jid) || job.state !== 'RUNNING') continue;
      const vertices = await jobVertices(job.jid);
      if (!vertices.length) continue; // not planned yet: the next sample looks again
      const names = vertices.map((v) => v.name);
      const check: JobCheck = { jid: job.jid, name: job.name, sources: names.filter((n) => EVENTS_SOURCE.test(n)), vertices: names };
      this.checked.set(job.jid, check);
      if (!POOL_JOB_NAME.test(job.name)) this.note(`${at}: job ${job.name} is not named flagstream-pool-<pool>-g<n>-<nonce>`);
      if (check.sources.length !== 1) this.note(`${at}: job ${job.name} has ${check.sources.length} vertices reading the events source: ${JSON.stringify(names)}`);
    }
  }
}

// ---------------------------------------------------------------------------------

export interface Watched {
  /** For messages, e.g. "t3/a7". */
  label: string;
  apiKey: string;
  id: string;
  groupBy: Dimension[];
  /** Check that a row seen final never shows fewer evaluations later (nor vanishes). */
  checkFinal: boolean;
}

export interface Transition {
  at: number;
  evaluations: number;
  final: boolean;
}

interface WatchState extends Watched {
  nextAt: number;
  polls: number;
  errors: number;
  latest?: Record<string, any>[];
  latestAt?: number;
  /** The last count each row showed while final. */
  finalSeen: Map<string, { at: number; evaluations: number }>;
  /** The most evaluations each row ever showed. */
  maxSeen: Map<string, number>;
  /** Every change of (evaluations, final) of each row, in order. */
  history: Map<string, Transition[]>;
  violations: string[];
  /** Open rows seen with fewer evaluations than before (not a final row: logged, not a violation). */
  openDecreases: number;
  /** Rows seen final, later not final with as many evaluations (logged, not a violation). */
  reopened: number;
  intervals: number[];
  lastPollAt?: number;
}

/** A row's identity: its window and dimensions under `groupBy` (reference.ts' projection less `evaluations`). */
export function rowKeyOf(row: Record<string, unknown>, groupBy: Dimension[]): string {
  const { evaluations: _e, ...key } = projectRow(row, groupBy);
  return JSON.stringify(key);
}

export class RowsMonitor {
  private readonly watched = new Map<string, WatchState>();
  private readonly removed = new Set<string>();
  private loop?: Promise<void>;
  private stopping = false;
  private inFlight = 0;

  constructor(readonly intervalMs = 1000, readonly concurrency = 6) {}

  watch(w: Watched): void {
    if (this.watched.has(w.id)) return;
    this.watched.set(w.id, {
      ...w, nextAt: Date.now(), polls: 0, errors: 0, finalSeen: new Map(), maxSeen: new Map(), history: new Map(), violations: [], openDecreases: 0, reopened: 0, intervals: [],
    });
  }

  /** Stops polling an analysis (before it is deleted); what was seen stays. */
  unwatch(id: string): void {
    this.removed.add(id);
    const state = this.watched.get(id);
    if (state) state.nextAt = Number.POSITIVE_INFINITY;
  }

  /** Rows are projected by `groupBy` from now on (after a PUT); the final-row check is off for it. */
  redefine(id: string, groupBy: Dimension[]): void {
    const state = this.watched.get(id);
    if (!state) return;
    state.groupBy = groupBy;
    state.checkFinal = false;
    state.finalSeen.clear();
    state.maxSeen.clear();
    state.history.clear();
  }

  state(id: string): Readonly<WatchState> | undefined {
    return this.watched.get(id);
  }

  start(): this {
    this.loop = (async () => {
      while (!this.stopping) {
        const now = Date.now();
        const due = [...this.watched.values()].filter((s) => s.nextAt <= now).sort((a, b) => a.nextAt - b.nextAt);
        for (const state of due) {
          if (this.inFlight >= this.concurrency) break;
          this.inFlight++;
          state.nextAt = Number.POSITIVE_INFINITY; // not again until this poll is done
          void this.poll(state).finally(() => {
            this.inFlight--;
            if (!this.removed.has(state.id)) state.nextAt = Date.now() + this.intervalMs;
          });
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 25));
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  /** The median time between two polls of one analysis, over all of them. */
  medianInterval(): number | undefined {
    const all = [...this.watched.values()].flatMap((s) => s.intervals).sort((a, b) => a - b);
    return all.length ? all[Math.floor(all.length / 2)] : undefined;
  }

  private async poll(state: WatchState): Promise<void> {
    let reply;
    try {
      reply = await call('GET', `/v1/analyses/${state.id}/results?limit=10000`, { key: state.apiKey });
    } catch {
      state.errors++;
      return;
    }
    const at = Date.now();
    if (reply.status !== 200 || !Array.isArray(reply.body?.rows)) {
      state.errors++;
      return;
    }
    if (state.lastPollAt !== undefined) state.intervals.push(at - state.lastPollAt);
    state.lastPollAt = at;
    state.polls++;
    this.observe(state, at, reply.body.rows);
  }

  private observe(state: WatchState, at: number, rows: Record<string, any>[]): void {
    state.latest = rows;
    state.latestAt = at;
    const when = new Date(at).toISOString();
    const note = (text: string) => state.violations.length < 30 && state.violations.push(`${state.label} ${when}: ${text}`);
    const present = new Set<string>();
    for (const row of rows) {
      const key = rowKeyOf(row, state.groupBy);
      present.add(key);
      const evaluations = Number(row.evaluations);
      const final = row.final === true;
      state.maxSeen.set(key, Math.max(state.maxSeen.get(key) ?? 0, evaluations));
      const history = state.history.get(key) ?? [];
      const last = history[history.length - 1];
      if (last && !last.final && !final && evaluations < last.evaluations) state.openDecreases++;
      if (!last || last.evaluations !== evaluations || last.final !== final) {
        history.push({ at, evaluations, final });
        state.history.set(key, history);
      }
      if (!state.checkFinal) continue;
      const seen = state.finalSeen.get(key);
      if (seen && evaluations < seen.evaluations) {
        note(`a row seen final with ${seen.evaluations} evaluations at ${new Date(seen.at).toISOString()} now shows ${evaluations}${final ? '' : ' (and is no longer final)'}: ${JSON.stringify(row)}`);
      }
      if (final) state.finalSeen.set(key, { at, evaluations });
      else if (seen && evaluations >= seen.evaluations) state.reopened++;
    }
    if (!state.checkFinal) return;
    for (const [key, seen] of state.finalSeen) {
      if (!present.has(key)) note(`a row seen final with ${seen.evaluations} evaluations at ${new Date(seen.at).toISOString()} is gone: ${key}`);
    }
  }
}

/**
 * When a row reached `evaluations` as a final row for good: the time of the first observation
 * from which on every observation showed it final with that count; undefined when the last one
 * did not.
 */
export function finalExactSince(history: Transition[] | undefined, evaluations: number): number | undefined {
  if (!history?.length) return undefined;
  let since: number | undefined;
  for (const t of history) {
    if (t.final && t.evaluations === evaluations) since ??= t.at;
    else since = undefined;
  }
  return since;
}

/** p50 and max of a list (undefined when empty). */
export function p50max(xs: number[]): { p50?: number; max?: number; n: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: s.length ? s[Math.floor((s.length - 1) / 2)] : undefined, max: s.length ? s[s.length - 1] : undefined, n: s.length };
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function inBatches<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}
