// The `pools` section of `npm run bench` (bench/run.mjs): analyses sharing Flink jobs
// (docs/pools.md), measured through the HTTP APIs only (Flagstream's and Flink's REST API).
//
// 1. 10 tenants × 10 analyses (windows 5 s to 1 min, flag filters, groupBy shapes,
//    environment scoping), created in one burst: time until all are RUNNING; the RSS of the
//    stack's processes (and their children) before and after; Flink jobs and readers of the
//    events stream once they run, against the number of analyses.
// 2. With /bulk traffic for every tenant, one more analysis is added: for the other analyses'
//    windows that end around the add, the delay from the window's end to its final, exact row
//    being served (goal: at most 30 s, docs/pools.md), those in the added one's pool side by
//    side with the rest; and the time until the added one is RUNNING.
import { readdirSync, readFileSync } from 'node:fs';

const TENANTS = 10;
const PER_TENANT = 10;
const WINDOWS = [['5s', 5_000], ['10s', 10_000], ['30s', 30_000], ['1m', 60_000]];
const GROUP_BYS = [undefined, ['flagKey'], ['variation'], ['flagKey', 'variation', 'environment'], ['environment', 'flagKey'], ['flagKey', 'variation']];
const FLAGS = [['checkout', [0, 1]], ['banner', [0, 1, 2]], ['search', [0, 1, 2, 3]]];
const ADDED_FLAG = 'bench-pool-added';
const GOAL_MS = 30_000;
/** Traffic before the add: every 5 s and 10 s window of the others has final rows by then. */
const WARM_UP_MS = 25_000;
/** Windows whose end lies within [add − BEFORE, added RUNNING + AFTER] are "around the add". */
const AROUND_BEFORE_MS = 5_000;
const AROUND_AFTER_MS = 20_000;
/** How long after the last such window's end a row may take before it counts as never served. */
const GIVE_UP_MS = 120_000;
/** A job counted as running, as the e2e tests count them (a CANCELLING one is on its way out). */
const ACTIVE = new Set(['CREATED', 'INITIALIZING', 'RUNNING', 'RESTARTING']);
/** A vertex reading the events stream: its name mentions the `events` table. */
const EVENTS_SOURCE = /(^|[^A-Za-z0-9_])events([^A-Za-z0-9_]|$)/;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sec = (x) => (x === undefined || !Number.isFinite(x) ? 'n/a' : `${(x / 1000).toFixed(1)} s`);
const mib = (kib) => `${(kib / 1024).toFixed(0)} MiB`;
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const p50 = (xs) => (xs.length ? sorted(xs)[Math.floor((xs.length - 1) / 2)] : undefined);
const max = (xs) => (xs.length ? Math.max(...xs) : undefined);

/** FLAGSTREAM_MAX_POOLS of the running control plane (its /proc environ), else this process', else 8. */
export function stackMaxPools(pidsFile) {
  try {
    const pid = JSON.parse(readFileSync(pidsFile, 'utf8'))['control-plane'];
    const line = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((l) => l.startsWith('FLAGSTREAM_MAX_POOLS='));
    const value = line?.slice('FLAGSTREAM_MAX_POOLS='.length);
    return value ? Number(value) : 8;
  } catch {
    return process.env.FLAGSTREAM_MAX_POOLS ? Number(process.env.FLAGSTREAM_MAX_POOLS) : 8;
  }
}

/** VmRSS in KiB of `pid` and every process below it (the stack's processes run their own children). */
export function treeRssKiB(pid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* gone meanwhile */
    }
  }
  let total = 0;
  const seen = new Set();
  const walk = (p) => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      total += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* gone meanwhile */
    }
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return total;
}

/** RSS per process of the stack (pids from <dataDir>/pids.json), children included, in KiB. */
export function stackRss(pidsFile) {
  const pids = JSON.parse(readFileSync(pidsFile, 'utf8'));
  return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, treeRssKiB(pid)]));
}

async function flinkJson(flinkUrl, path) {
  const reply = await fetch(`${flinkUrl}${path}`, { signal: AbortSignal.timeout(10_000) });
  if (!reply.ok) throw new Error(`Flink ${path} answered ${reply.status}`);
  return reply.json();
}

/** Active `flagstream-` jobs and, over them, the vertices reading the events source and their subtasks (readers). */
async function jobsAndReaders(flinkUrl) {
  const jobs = (await flinkJson(flinkUrl, '/jobs/overview')).jobs.filter((j) => j.name.startsWith('flagstream-') && ACTIVE.has(j.state));
  let sources = 0;
  let readers = 0;
  for (const job of jobs) {
    const vertices = (await flinkJson(flinkUrl, `/jobs/${job.jid}`).catch(() => ({ vertices: [] }))).vertices ?? [];
    for (const v of vertices.filter((x) => EVENTS_SOURCE.test(x.name))) {
      sources++;
      readers += v.parallelism ?? 1;
    }
  }
  return { jobs, sources, readers };
}

function definitionOf(tenant, j) {
  const [window, windowMs] = WINDOWS[(tenant.index + j) % WINDOWS.length];
  const groupBy = GROUP_BYS[(tenant.index + j) % GROUP_BYS.length];
  const flagKeys = j % 3 === 1 ? ['checkout', 'search'] : undefined;
  let environment;
  if (tenant.envs.length > 1) environment = j % 4 === 2 ? 'staging' : j % 4 === 3 ? 'production' : undefined;
  else if (j % 5 === 4) environment = 'production';
  const definition = {
    name: `bench pools t${tenant.index} a${j}`, kind: 'flag-evaluations', ...(environment ? { environment } : {}),
    params: { window, ...(flagKeys ? { flagKeys } : {}), ...(groupBy ? { groupBy } : {}) },
  };
  return { definition, windowMs, groupBy: groupBy ?? ['flagKey', 'variation'], flagKeys, environment };
}

/** A row's identity: window start and its dimensions, in a fixed order. */
function rowKey(row, groupBy) {
  const key = { windowStart: new Date(row.windowStart).toISOString() };
  for (const d of ['flagKey', 'variation', 'environment']) if (groupBy.includes(d)) key[d] = row[d] ?? null;
  return JSON.stringify(key);
}

/** The expected count of every row of an analysis, from the payloads the API accepted (a plain loop, no shared code). */
function expectedOf(analysis, sent) {
  const sums = new Map();
  for (const { env, events } of sent) {
    if (analysis.environment && analysis.environment !== env) continue;
    for (const e of events) {
      const windowStart = Math.floor(e.endDate / analysis.windowMs) * analysis.windowMs;
      for (const [flagKey, flag] of Object.entries(e.features)) {
        if (analysis.flagKeys && !analysis.flagKeys.includes(flagKey)) continue;
        for (const c of flag.counters) {
          const key = rowKey({ windowStart, flagKey, variation: c.variation, environment: env }, analysis.groupBy);
          sums.set(key, (sums.get(key) ?? 0) + c.count);
        }
      }
    }
  }
  return sums;
}

/**
 * @param {{ api: Function, say: (line: string) => void, admin: string, stack: { flinkUrl: string, pidsFile: string } }} ctx
 * @returns {Promise<[string, string][]>} the rows of the section's table
 */
export async function poolsBench({ api, say, admin, stack }) {
  const maxPools = stackMaxPools(stack.pidsFile);
  const stamp = Date.now().toString(36);
  const tenants = [];
  for (let i = 0; i < TENANTS; i++) {
    const envs = i % 2 === 1 ? ['production', 'staging'] : ['production'];
    const created = await api('POST', '/v1/tenants', { key: admin, body: { key: `bench-pools-${stamp}-${i}`, name: `Bench pools ${i}` } });
    if (created.status !== 201) throw new Error(`pools: creating a tenant answered ${created.status}`);
    const sdkKeys = {};
    for (const env of envs) sdkKeys[env] = (await api('POST', '/v1/environments', { key: created.body.apiKey, body: { key: env } })).body.sdkKey;
    tenants.push({ index: i, envs, apiKey: created.body.apiKey, sdkKeys });
  }

  // 1. The burst, sampling Flink's jobs every second meanwhile.
  const rssBefore = stackRss(stack.pidsFile);
  const before = await jobsAndReaders(stack.flinkUrl);
  let sampling = true;
  let mostJobs = before.jobs.length;
  const sampler = (async () => {
    while (sampling) {
      const jobs = await flinkJson(stack.flinkUrl, '/jobs/overview').catch(() => ({ jobs: [] }));
      mostJobs = Math.max(mostJobs, jobs.jobs.filter((j) => j.name.startsWith('flagstream-') && ACTIVE.has(j.state)).length);
      await sleep(1000);
    }
  })();
  say(`pools: ${TENANTS * PER_TENANT} analyses in one burst (FLAGSTREAM_MAX_POOLS=${maxPools})`);
  const burstAt = performance.now();
  let retried = 0;
  const analyses = await Promise.all(tenants.flatMap((tenant) => Array.from({ length: PER_TENANT }, async (_, j) => {
    const shape = definitionOf(tenant, j);
    for (let attempt = 0; ; attempt++) {
      const reply = await api('POST', '/v1/analyses', { key: tenant.apiKey, body: shape.definition });
      if (reply.status === 201) return { ...shape, tenant, id: reply.body.id };
      if (reply.status !== 503 || attempt >= 5) throw new Error(`pools: creating an analysis answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      retried++;
      await sleep(1000);
    }
  })));
  const createdMs = performance.now() - burstAt;
  const allRunning = async (list, timeoutMs) => {
    const started = Date.now();
    for (;;) {
      let running = 0;
      for (const tenant of tenants) {
        const mine = new Set(list.filter((a) => a.tenant === tenant).map((a) => a.id));
        if (!mine.size) continue;
        const listed = (await api('GET', '/v1/analyses', { key: tenant.apiKey })).body?.analyses ?? [];
        running += listed.filter((a) => mine.has(a.id) && a.status === 'RUNNING').length;
      }
      if (running === list.length) return;
      if (Date.now() - started > timeoutMs) throw new Error(`pools: ${running} of ${list.length} analyses RUNNING after ${timeoutMs / 1000} s`);
      await sleep(250);
    }
  };
  await allRunning(analyses, 300_000);
  const runningMs = performance.now() - burstAt;
  const rssRunning = stackRss(stack.pidsFile);
  sampling = false;
  await sampler;
  const after = await jobsAndReaders(stack.flinkUrl);
  const pools = new Map();
  for (const a of analyses) {
    a.pool = (await api('GET', `/v1/analyses/${a.id}`, { key: a.tenant.apiKey })).body?.pool;
    pools.set(a.pool, (pools.get(a.pool) ?? 0) + 1);
  }

  // 2. Traffic for every tenant, then one more analysis.
  say('pools: traffic for every tenant, then one analysis added');
  const sent = new Map(tenants.map((t) => [t, []]));
  let addedExists = false;
  let trafficUntil = Number.POSITIVE_INFINITY;
  let refused = 0;
  let seq = 0;
  const traffic = tenants.map(async (tenant) => {
    while (Date.now() < trafficUntil) {
      const env = tenant.envs[Math.floor(Math.random() * tenant.envs.length)];
      const now = Date.now();
      const features = {};
      const flags = tenant.index === 0 && addedExists ? [...FLAGS, [ADDED_FLAG, [0, 1]]] : FLAGS;
      for (const [flag, variations] of flags) {
        const counters = variations.filter(() => Math.random() < 0.6).map((v) => ({ value: v, variation: v, version: 1, count: 1 + Math.floor(Math.random() * 20) }));
        if (counters.length) features[flag] = { default: false, counters };
      }
      const events = [{ kind: 'summary', startDate: now - 1000, endDate: now, features }];
      const reply = await api('POST', '/bulk', {
        raw: JSON.stringify(events),
        headers: { authorization: tenant.sdkKeys[env], 'content-type': 'application/json', 'x-launchdarkly-payload-id': `bench-pools-${stamp}-${seq++}` },
      }).catch(() => ({ status: 0 }));
      if (reply.status === 202) sent.get(tenant).push({ env, events });
      else refused++;
      await sleep(700 + Math.random() * 600);
    }
  });

  // Every other analysis polled about once a second (6 requests in flight), keeping each row's changes.
  const others = analyses;
  const history = new Map(others.map((a) => [a.id, new Map()]));
  const lastPoll = new Map();
  const intervals = [];
  let polling = true;
  let pollFrom;
  const poller = (async () => {
    const queue = [...others];
    const workers = Array.from({ length: 6 }, async () => {
      while (polling) {
        const a = queue.shift();
        queue.push(a);
        const due = (lastPoll.get(a.id) ?? 0) + 1000;
        if (Date.now() < due) {
          await sleep(Math.min(50, due - Date.now()));
          continue;
        }
        lastPoll.set(a.id, Date.now());
        const from = pollFrom ? `&from=${new Date(pollFrom).toISOString()}` : '';
        const reply = await api('GET', `/v1/analyses/${a.id}/results?limit=10000${from}`, { key: a.tenant.apiKey }).catch(() => undefined);
        if (reply?.status !== 200) continue;
        const at = Date.now();
        const rows = history.get(a.id);
        for (const row of reply.body.rows) {
          const key = rowKey(row, a.groupBy);
          const changes = rows.get(key) ?? [];
          const last = changes[changes.length - 1];
          if (!last || last.evaluations !== row.evaluations || last.final !== (row.final === true)) changes.push({ at, evaluations: row.evaluations, final: row.final === true });
          rows.set(key, changes);
        }
        const previous = a.polledAt;
        a.polledAt = at;
        if (previous) intervals.push(at - previous);
      }
    });
    await Promise.all(workers);
  })();

  await sleep(WARM_UP_MS);
  const addAt = Date.now();
  pollFrom = addAt - 2 * 60_000; // windows ending around the add start after this (1 min at most)
  const addDefinition = { name: 'bench pools added', kind: 'flag-evaluations', params: { window: '5s', flagKeys: [ADDED_FLAG] } };
  const addStarted = performance.now();
  const added = await api('POST', '/v1/analyses', { key: tenants[0].apiKey, body: addDefinition });
  if (added.status !== 201) throw new Error(`pools: adding an analysis answered ${added.status}`);
  addedExists = true;
  const addedRecord = { id: added.body.id, tenant: tenants[0] };
  await allRunning([addedRecord], 180_000);
  const addRunningMs = performance.now() - addStarted;
  const addedRunningAt = Date.now();
  const addedPool = (await api('GET', `/v1/analyses/${added.body.id}`, { key: tenants[0].apiKey })).body?.pool;
  const aroundFrom = addAt - AROUND_BEFORE_MS;
  const aroundTo = addedRunningAt + AROUND_AFTER_MS;
  // Traffic goes on until every window around the add has ended (its payloads are all sent).
  trafficUntil = aroundTo + 2000;
  await Promise.all(traffic);

  // The windows around the add, per analysis: when each was served final and exact.
  const windowsAround = (a) => {
    const want = expectedOf(a, sent.get(a.tenant));
    const windows = new Map();
    for (const [key, count] of want) {
      const start = Date.parse(JSON.parse(key).windowStart);
      const end = start + a.windowMs;
      if (end < aroundFrom || end > aroundTo) continue;
      windows.set(start, [...(windows.get(start) ?? []), [key, count]]);
    }
    return [...windows].map(([start, rows]) => ({ end: start + a.windowMs, rows }));
  };
  const servedAt = (a, rows) => {
    let at = 0;
    for (const [key, count] of rows) {
      let since;
      for (const c of history.get(a.id).get(key) ?? []) since = c.final && c.evaluations === count ? since ?? c.at : undefined;
      if (since === undefined) return undefined;
      at = Math.max(at, since);
    }
    return at;
  };
  const lastEnd = Math.max(...others.flatMap((a) => windowsAround(a).map((w) => w.end)));
  const giveUpAt = lastEnd + GIVE_UP_MS;
  while (Date.now() < giveUpAt && others.some((a) => windowsAround(a).some((w) => servedAt(a, w.rows) === undefined))) await sleep(1000);
  polling = false;
  await poller;

  const delays = { mates: [], rest: [] };
  let never = 0;
  for (const a of others) {
    for (const w of windowsAround(a)) {
      const at = servedAt(a, w.rows);
      if (at === undefined) never++;
      else (a.pool === addedPool ? delays.mates : delays.rest).push(at - w.end);
    }
  }
  const all = [...delays.mates, ...delays.rest];
  const worst = max(all);
  const rssAfter = stackRss(stack.pidsFile);

  // Gone again: every analysis of the section.
  for (const a of [...analyses, addedRecord]) await api('DELETE', `/v1/analyses/${a.id}`, { key: a.tenant.apiKey }).catch(() => undefined);

  const rss = (r) => Object.entries(r).map(([name, kib]) => `${name} ${mib(kib)}`).join(', ');
  const total = (r) => Object.values(r).reduce((x, y) => x + y, 0);
  const poll = p50(intervals);
  const show = (xs) => (xs.length ? `p50 ${sec(p50(xs))}, max ${sec(max(xs))} (${xs.length} windows)` : 'no windows');
  return [
    [`${analyses.length} analyses (${TENANTS} tenants × ${PER_TENANT}) POSTed in one burst → all RUNNING`, `${sec(runningMs)} (the POSTs answered in ${sec(createdMs)}${retried ? `, ${retried} sent again after a 503` : ''})`],
    ['Flink jobs and events-stream readers, 100 analyses running', `${after.jobs.length} jobs (FLAGSTREAM_MAX_POOLS=${maxPools}; at most ${mostJobs} active while they started), ${after.sources} events-source vertices, ${after.readers} reading subtasks — one job and one reader per analysis would be ${analyses.length}; ${pools.size} pools, ${[...pools.values()].sort((x, y) => x - y).join('/')} members`],
    [`RSS of the stack (each process with its children), before the burst → all ${analyses.length} RUNNING`, `${mib(total(rssBefore))} → ${mib(total(rssRunning))} (before: ${rss(rssBefore)}; running: ${rss(rssRunning)})`],
    ['… after the traffic and the add below', `${mib(total(rssAfter))} (${rss(rssAfter)})`],
    ['One analysis added with traffic for every tenant: POST → RUNNING', `${sec(addRunningMs)} (pool ${addedPool})`],
    [`… other analyses' windows ending around the add (−${AROUND_BEFORE_MS / 1000} s … RUNNING + ${AROUND_AFTER_MS / 1000} s): window end → final, exact row served`, `${show(all)}; in the added one's pool ${show(delays.mates)}, in other pools ${show(delays.rest)}${never ? `; ${never} never within ${GIVE_UP_MS / 1000} s` : ''} — goal ≤ 30 s: ${worst !== undefined && worst <= GOAL_MS && !never ? 'met' : 'missed'} (polled every ${sec(poll)}${refused ? `; ${refused} payloads not accepted, left out` : ''})`],
  ];
}
