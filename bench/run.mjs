// `npm run bench`: measures the local stack side by side in one run and writes
// docs/benchmarks.md. Shared, noisy machines: read the medians and the ratios.
//
// `npm run bench -- freshness` (or any of the section names below) runs only those
// sections; a partial run rewrites only its own part of docs/benchmarks.md (the
// ingest, freshness, managed-flink, pools and lake blocks), or prints its rows when they belong to the main table.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KinesisAnalyticsV2Client, ListApplicationsCommand } from '@aws-sdk/client-kinesis-analytics-v2';
import { bootstrap, ROOT } from '../scripts/bootstrap.mjs';
import { managedFlinkEnv, standInCommand, startStack } from '../scripts/local-stack.mjs';
import { poolsBench } from './pools.mjs';
import { lakeBench, lakeBlock, LAKE_END, LAKE_START } from './lake.mjs';
import { catalogBench } from './catalog.mjs';
import { encodeBench } from './encode.mjs';
import { ingestBench, ingestBlock, ingestSettings, INGEST_END, INGEST_START } from './ingest.mjs';

const PORTS = { api: 28080, kinesis: 24568, flink: 28081, validator: 28082 };
/** The managed-flink section's own processes: the stand-in and a second control plane on the same stack. */
const MANAGED_PORTS = { standIn: 28083, api: 28084 };
const SECTIONS = ['validation', 'ingest', 'deploy', 'freshness', 'managed-flink', 'lake', 'pools', 'catalog', 'encode'];
const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of asked) if (!SECTIONS.includes(name)) throw new Error(`unknown bench section "${name}"; sections: ${SECTIONS.join(', ')}`);
const wanted = (name) => asked.length === 0 || asked.includes(name);
const fullRun = asked.length === 0;
const ADMIN = 'fs-admin-bench';
const say = (line) => console.log(`[bench] ${line}`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const ms = (x) => `${x.toFixed(x < 10 ? 1 : 0)} ms`;
const s = (x) => `${(x / 1000).toFixed(1)} s`;

async function api(method, path, { key, body, raw, headers = {}, port = PORTS.api } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: h, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function timed(fn) {
  const t = performance.now();
  const value = await fn();
  return [performance.now() - t, value];
}

async function until(probe, timeoutMs) {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const v = await probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out');
}

function javaValidate(lib, sql) {
  return new Promise((resolve, reject) => {
    const child = spawn('java', ['-cp', `${lib}/*:${join(ROOT, 'flink-sql/runner/target/flagstream-runner.jar')}`, 'dev.flagstream.runner.SqlRunner', '--validate', '--sql-base64', Buffer.from(sql).toString('base64')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

function rssMiB(pid) {
  try {
    // The process and its children (the emulator and Flink run as one process each).
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
  } catch {
    return NaN;
  }
}

/** A realistic payload: the real SDK's /bulk body (index, custom, summary), repeated to `size` events. */
function payload(size, now) {
  const recorded = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/launchdarkly-node-server-sdk-9.13.7/bulk-summary-index-custom.jsonl'), 'utf8').split('\n')[0]).body;
  const events = [];
  for (let i = 0; events.length < size; i++) {
    const e = structuredClone(recorded[i % recorded.length]);
    if (e.kind === 'summary') Object.assign(e, { startDate: now - 1000, endDate: now });
    else e.creationDate = now;
    events.push(e);
  }
  return events;
}

/**
 * Freshness (CONTRACT §6: a window's rows appear within 10 s of its end, also when no
 * further event arrives; late events update their window's row), on one 5 s analysis:
 * 1. idle: one payload shortly before a window ends, then nothing until the API shows
 *    the row with its complete count: (visible − window end), over ≥ 20 windows;
 * 2. busy: a payload every 0.5 s for 20 windows, the same measure for each window;
 * 3. late: a summary for a window 10 min old (long closed, within the 1 h horizon):
 *    from its 202 to the API showing it, first opening a row, then adding to it.
 * A sample that never shows within 30 s counts as such (the rows say how many).
 */
async function freshness(tenant, env) {
  freshnessLoad = loadavg()[0];
  const WINDOW = 5000;
  const FLAG = 'bench-freshness';
  const windows = Number(process.env.BENCH_FRESHNESS_WINDOWS ?? 20);
  const created = await api('POST', '/v1/analyses', { key: tenant.apiKey, body: { name: 'bench freshness', kind: 'flag-evaluations', params: { window: '5s', flagKeys: [FLAG] } } });
  if (created.status !== 201) throw new Error(`freshness: creating the analysis answered ${created.status}`);
  const id = created.body.id;
  await until(async () => (await api('GET', `/v1/analyses/${id}`, { key: tenant.apiKey })).body.status === 'RUNNING', 120_000);
  let seq = 0;
  const send = async (endDate, count) => {
    const reply = await api('POST', '/bulk', {
      raw: JSON.stringify([{ kind: 'summary', startDate: endDate - 1000, endDate, features: { [FLAG]: { default: false, counters: [{ value: true, variation: 0, version: 1, count }] } } }]),
      headers: { authorization: env.sdkKey, 'content-type': 'application/json', 'x-launchdarkly-payload-id': `bench-fresh-${Date.now()}-${seq++}` },
    });
    if (reply.status !== 202) throw new Error(`freshness: /bulk answered ${reply.status}`);
    return Date.now();
  };
  const rowOf = async (windowStart) => {
    const from = new Date(windowStart).toISOString();
    const to = new Date(windowStart + 1).toISOString();
    const rows = (await api('GET', `/v1/analyses/${id}/results?from=${from}&to=${to}`, { key: tenant.apiKey })).body?.rows ?? [];
    return rows.find((r) => r.flagKey === FLAG && r.windowStart === from);
  };
  /** When the row of `windowStart` first shows `count` (and when it is first final), polling every 100 ms. */
  const watch = async (windowStart, count, timeoutMs = 30_000) => {
    const started = Date.now();
    let visibleAt;
    let finalAt;
    while (Date.now() - started < timeoutMs && (visibleAt === undefined || finalAt === undefined)) {
      const row = await rowOf(windowStart).catch(() => undefined);
      if (row?.evaluations === count && visibleAt === undefined) visibleAt = Date.now();
      if (row?.evaluations === count && row.final === true && finalAt === undefined) finalAt = Date.now();
      if (visibleAt !== undefined && Date.now() - visibleAt > 15_000) break; // never final: do not wait forever
      await new Promise((r) => setTimeout(r, 100));
    }
    return { visibleAt, finalAt };
  };
  const summary = (xs, n) => {
    const got = xs.filter((x) => Number.isFinite(x));
    const missing = n - got.length;
    if (!got.length) return `never within 30 s (${n} windows)`;
    return `p50 ${s(median(got))}, p99 ${s(pct(got, 99))}, max ${s(Math.max(...got))}${missing ? `; ${missing} of ${n} never` : ''}`;
  };

  // 1. Idle: the last payload of a window 1 s before its end, then no event at all.
  say(`freshness: ${windows} windows without further events`);
  const idle = [];
  const idleFinal = [];
  for (let i = 0; i < windows; i++) {
    let end = Math.ceil((Date.now() + 1200) / WINDOW) * WINDOW;
    await new Promise((r) => setTimeout(r, end - 1000 - Date.now()));
    const count = 1 + (i % 17);
    await send(Date.now(), count);
    const seen = await watch(end - WINDOW, count);
    idle.push(seen.visibleAt === undefined ? Infinity : seen.visibleAt - end);
    idleFinal.push(seen.finalAt === undefined ? Infinity : seen.finalAt - end);
  }

  // 2. Busy: a payload every 0.5 s; each window's complete row after its end.
  say(`freshness: ${windows} windows with a payload every 0.5 s`);
  const totals = new Map();
  const busyStart = Math.ceil(Date.now() / WINDOW) * WINDOW;
  const busyEnd = busyStart + windows * WINDOW;
  await new Promise((r) => setTimeout(r, busyStart - Date.now()));
  const completeAt = new Map();
  let sending = true;
  const poller = (async () => {
    while (sending || [...totals.keys()].some((w) => !completeAt.has(w) && Date.now() - (w + WINDOW) < 30_000)) {
      const from = new Date(busyStart).toISOString();
      const rows = (await api('GET', `/v1/analyses/${id}/results?from=${from}&limit=10000`, { key: tenant.apiKey }).catch(() => ({ body: { rows: [] } }))).body?.rows ?? [];
      const now = Date.now();
      for (const row of rows) {
        const w = Date.parse(row.windowStart);
        // Complete: the window has ended (no more sends into it) and the row shows its total.
        if (row.flagKey === FLAG && !completeAt.has(w) && now >= w + WINDOW && totals.get(w) === row.evaluations) completeAt.set(w, now);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  for (let i = 0; Date.now() < busyEnd; i++) {
    const t = Date.now();
    const w = Math.floor(t / WINDOW) * WINDOW;
    const count = 1 + (i % 5);
    // Counted before sending: a window's total is known once it ends.
    totals.set(w, (totals.get(w) ?? 0) + count);
    await send(t, count);
    await new Promise((r) => setTimeout(r, Math.max(0, t + 500 - Date.now())));
  }
  sending = false;
  await poller;
  const busy = [...totals.keys()].map((w) => (completeAt.has(w) ? completeAt.get(w) - (w + WINDOW) : Infinity));

  // 3. Late: windows 10 min old, long closed: a first event opens the row, a second adds to it.
  const lateSamples = 10;
  say(`freshness: ${lateSamples} late events (windows 10 min old)`);
  const lateNew = [];
  const lateUpdate = [];
  for (let i = 0; i < lateSamples; i++) {
    const windowStart = Math.floor((Date.now() - 10 * 60_000) / WINDOW) * WINDOW - i * 3 * WINDOW;
    const acceptedFirst = await send(windowStart + 1000, 3);
    const first = await watch(windowStart, 3);
    lateNew.push(first.visibleAt === undefined ? Infinity : first.visibleAt - acceptedFirst);
    const acceptedSecond = await send(windowStart + 2000, 4);
    const second = await watch(windowStart, 7);
    lateUpdate.push(second.visibleAt === undefined ? Infinity : second.visibleAt - acceptedSecond);
  }
  await api('DELETE', `/v1/analyses/${id}`, { key: tenant.apiKey });

  const finite = (xs) => xs.filter((x) => Number.isFinite(x));
  const ratio = (a, b) => (finite(a).length && finite(b).length ? `${(median(finite(a)) / median(finite(b))).toFixed(2)}×` : 'n/a');
  return [
    [`Complete row in the API after its window ends, no further event (${windows} windows, 5 s)`, summary(idle, windows)],
    [`… and \`final: true\` (same windows)`, summary(idleFinal, windows)],
    [`Complete row after its window ends, a payload every 0.5 s (${busy.length} windows)`, `${summary(busy, busy.length)} — idle/busy medians ${ratio(idle, busy)}`],
    [`A late event (window 10 min old) opening its row, after its 202 (${lateSamples} events)`, `${summary(lateNew, lateSamples)} — ${ratio(lateNew, idle)} the idle freshness median`],
    [`A late event added to its existing, final row, after its 202 (${lateSamples} events)`, `${summary(lateUpdate, lateSamples)} — ${ratio(lateUpdate, idle)} the idle freshness median`],
  ];
}

/**
 * The managed-flink target's lifecycle on the local stand-in (which runs the applications on
 * the stack's Flink cluster), through a second control plane with FLAGSTREAM_TARGET=managed-flink,
 * as a user sees it: POST → RUNNING (create + start an application), stop → STOPPED (a
 * snapshot), start → RUNNING (restored from it), DELETE → the application gone. 3 analyses,
 * one after another. The real service takes minutes for each of these; this is the stand-in.
 */
async function managedFlinkLifecycle(stack) {
  const logs = join(stack.dataDir, 'logs');
  const children = [];
  const launch = (name, command, args, env) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => out.push(d));
    child.on('exit', () => writeFileSync(join(logs, `bench-${name}.log`), Buffer.concat(out)));
    children.push(child);
  };
  const standInUrl = `http://127.0.0.1:${MANAGED_PORTS.standIn}`;
  const env = managedFlinkEnv(standInUrl, { FLAGSTREAM_RESULTS_STREAM: 'flagstream-results-bench-mf' });
  const standIn = standInCommand({ port: MANAGED_PORTS.standIn, flinkUrl: stack.flinkUrl, dataDir: join(stack.dataDir, 'bench-managed-flink'), code: env.FLAGSTREAM_MANAGED_FLINK_CODE });
  launch('managed-flink', standIn.command, standIn.args, standIn.env);
  launch('managed-flink-control-plane', process.execPath, [join(ROOT, 'control-plane/dist/main.js')], {
    NODE_NO_WARNINGS: '1', PORT: String(MANAGED_PORTS.api), FLAGSTREAM_DATA_DIR: join(stack.dataDir, 'bench-managed-flink', 'control-plane'), FLAGSTREAM_ADMIN_KEY: ADMIN,
    FLAGSTREAM_KINESIS_ENDPOINT: stack.kinesisEndpoint, FLAGSTREAM_VALIDATOR_URL: stack.validatorUrl, FLAGSTREAM_FLINK_URL: 'http://127.0.0.1:9',
    FLAGSTREAM_HEALTH_INTERVAL_MS: '1000', FLAGSTREAM_RESULTS_STREAM: 'flagstream-results-bench-mf', FLAGSTREAM_LAKE: 'off', ...env,
  });
  const analytics = new KinesisAnalyticsV2Client({ region: env.AWS_REGION, endpoint: standInUrl, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    const port = MANAGED_PORTS.api;
    await until(async () => (await api('GET', '/health', { port }).catch(() => ({ status: 0 }))).status === 200, 60_000);
    const tenant = (await api('POST', '/v1/tenants', { port, key: ADMIN, body: { key: 'bench-mf', name: 'Bench MF' } })).body;
    const status = async (id) => (await api('GET', `/v1/analyses/${id}`, { port, key: tenant.apiKey })).body.status;
    const reach = (id, wanted) => until(async () => {
      const now = await status(id);
      if (now === 'FAILED') throw new Error(`managed-flink: analysis ${id} FAILED`);
      return now === wanted;
    }, 120_000);
    const apps = async () => (await analytics.send(new ListApplicationsCommand({ Limit: 50 }))).ApplicationSummaries ?? [];
    const times = { create: [], stop: [], start: [], remove: [] };
    for (let i = 0; i < 3; i++) {
      let t = performance.now();
      const created = await api('POST', '/v1/analyses', { port, key: tenant.apiKey, body: { name: `bench mf ${i}`, kind: 'flag-evaluations', params: { window: '5s' } } });
      if (created.status !== 201) throw new Error(`managed-flink: creating an analysis answered ${created.status}`);
      const id = created.body.id;
      await reach(id, 'RUNNING');
      times.create.push(performance.now() - t);
      t = performance.now();
      await api('POST', `/v1/analyses/${id}/stop`, { port, key: tenant.apiKey });
      await reach(id, 'STOPPED');
      times.stop.push(performance.now() - t);
      t = performance.now();
      await api('POST', `/v1/analyses/${id}/start`, { port, key: tenant.apiKey });
      await reach(id, 'RUNNING');
      times.start.push(performance.now() - t);
      t = performance.now();
      await api('DELETE', `/v1/analyses/${id}`, { port, key: tenant.apiKey });
      await until(async () => !(await apps()).some((a) => a.ApplicationName.includes(id)), 60_000);
      times.remove.push(performance.now() - t);
    }
    const row = (xs) => `median ${s(median(xs))} (${xs.map(s).join(', ')})`;
    return [
      ['Managed Flink stand-in: POST /v1/analyses → RUNNING (create + start an application; 3 analyses)', row(times.create)],
      ['… stop → STOPPED (a snapshot: Flink stop-with-savepoint; the target polls every 2 s)', row(times.stop)],
      ['… start → RUNNING (the same application restored from its snapshot)', row(times.start)],
      ['… DELETE → the application gone', row(times.remove)],
    ];
  } finally {
    analytics.destroy();
    await Promise.all(children.map((child) => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', resolve);
      child.kill('SIGTERM');
    })));
  }
}

// catalog (bench/catalog.mjs) runs its jobs on MiniClusters of its own and writes its own block:
// asked alone it needs no stack; otherwise it runs last, once the stack has stopped.
// encode (bench/encode.mjs) needs no stack either: the control plane's built code in this process.
if (asked.length && asked.every((name) => name === 'catalog' || name === 'encode')) {
  if (wanted('encode')) await encodeBench({ say });
  if (wanted('catalog')) await catalogBench({ say });
  process.exit(0);
}

// The ingest section's knobs (BENCH_INGEST_*), checked before the stack starts.
const ingestConfig = wanted('ingest') ? ingestSettings() : undefined;

await bootstrap();
const dataDir = mkdtempSync(join(tmpdir(), 'flagstream-bench-'));
say('starting the stack');
const [readyMs, stack] = await timed(() => startStack({ dataDir, ports: PORTS, env: { FLAGSTREAM_ADMIN_KEY: ADMIN }, log: say }));
const rows = [];
let freshnessRows;
let managedFlinkRows;
let poolsRows;
/** The ingest section's measurements (bench/ingest.mjs writes its block). */
let ingestResult;
/** The lake section's measurements (bench/lake.mjs writes its block). */
let lakeResult;
/** The 1-minute load average when the pools section began. */
let poolsLoad;
/** The 1-minute load average when the freshness section began (a shared machine: other work shows here). */
let freshnessLoad;
let ok = false;
try {
  const tenant = (await api('POST', '/v1/tenants', { key: ADMIN, body: { key: 'bench', name: 'Bench' } })).body;
  const env = (await api('POST', '/v1/environments', { key: tenant.apiKey, body: { key: 'production' } })).body;
  const definition = { name: 'bench', kind: 'flag-evaluations', params: { window: '5s' } };

  // 1. Validation: the warm validator through the API, against a cold JVM per request.
  if (wanted('validation')) {
  say('validation: warm planner vs a JVM start per request');
  const warm = [];
  for (let i = 0; i < 30; i++) warm.push((await timed(() => api('POST', '/v1/analyses/validate', { key: tenant.apiKey, body: definition })))[0]);
  const sql = (await api('POST', '/v1/analyses/validate', { key: tenant.apiKey, body: definition })).body.sql;
  const cold = [];
  const lib = join(ROOT, 'flink-sql/local-cluster/target/lib');
  for (let i = 0; i < 3; i++) {
    // Asynchronously: a blocked event loop would keep sockets the server has closed and fail the next request.
    const [t, run] = await timed(() => javaValidate(lib, sql));
    if (run.code !== 0) throw new Error(`cold validation failed: ${run.stderr.slice(-2000)}`);
    cold.push(t);
  }
  rows.push(['Validate a definition, warm planner via the API (30 runs)', `median ${ms(median(warm))}, p90 ${ms(pct(warm, 90))}`]);
  rows.push(['Validate, a JVM started per request (3 runs)', `median ${s(median(cold))} — ${(median(cold) / median(warm)).toFixed(0)}× the warm planner`]);
  }

  // 2. Ingest (bench/ingest.mjs): POST /bulk against a bare PutRecords loop of the same records,
  // end to end through an analysis, and flat over time as the stream fills; it writes its own block.
  if (wanted('ingest')) ingestResult = await ingestBench({ api, say, admin: ADMIN, stack, settings: ingestConfig });

  // 3. POST → RUNNING, and 4. a payload's count in the API.
  if (wanted('deploy')) {
  say('deploy time and window latency');
  const deploys = [];
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const [t, id] = await timed(async () => {
      const created = await api('POST', '/v1/analyses', { key: tenant.apiKey, body: definition });
      await until(async () => (await api('GET', `/v1/analyses/${created.body.id}`, { key: tenant.apiKey })).body.status === 'RUNNING', 120_000);
      return created.body.id;
    });
    deploys.push(t);
    ids.push(id);
  }
  rows.push(['POST /v1/analyses → RUNNING (3 analyses, one after another)', `median ${s(median(deploys))}`]);
  // Rows grow while their window is open: the time from an accepted payload to its count in the API.
  const latencies = [];
  for (let i = 0; i < 5; i++) {
    const now = Date.now();
    await api('POST', '/bulk', { raw: JSON.stringify(payload(10, now)), headers: { authorization: env.sdkKey } });
    const accepted = Date.now();
    const windowStart = new Date(Math.floor(now / 5000) * 5000).toISOString();
    await until(async () => (await api('GET', `/v1/analyses/${ids[0]}/results?from=${windowStart}`, { key: tenant.apiKey })).body.rows.some((r) => r.windowStart === windowStart), 60_000);
    latencies.push(Date.now() - accepted);
    await new Promise((r) => setTimeout(r, 5000));
  }
  rows.push(["A payload's count in the API after its 202 (5 payloads, 5 s windows, rows grow while the window is open)", `median ${s(median(latencies))} (mini-batch 1 s, sink flush 1 s, results poll 1 s)`]);
  }

  // 5. Freshness: complete rows after their window's end, idle and busy; late events.
  if (wanted('freshness')) freshnessRows = await freshness(tenant, env);

  // 6. The managed-flink target's lifecycle on the stand-in.
  if (wanted('managed-flink')) {
    say('managed-flink: the lifecycle on the stand-in');
    managedFlinkRows = await managedFlinkLifecycle(stack);
  }

  rows.push(['Stack start to ready (`npm start` after the build)', `${s(readyMs)} (emulator ${s(stack.timings.emulator)}, Flink ${s(stack.timings.flink)}, validator warm-up ${s(stack.timings.validator)})`]);
  if (fullRun) rows.push(['Memory after the run, 3 jobs deployed', `Flink + validator JVM ${rssMiB(stack.pids.flink).toFixed(0)} MiB, control plane ${rssMiB(stack.pids['control-plane']).toFixed(0)} MiB, emulator ${rssMiB(stack.pids.kinesis).toFixed(0)} MiB (RSS)`]);

  // The data lake (bench/lake.mjs): throughput into the lake vs the stream, and backfill from the
  // lake vs the stream (before pools, which leaves its 100 analyses running).
  if (wanted('lake')) lakeResult = await lakeBench({ api, say, admin: ADMIN, stack });

  // 7. Pools: 100 analyses sharing at most FLAGSTREAM_MAX_POOLS jobs, and one added among them
  // (last: it leaves the stack with many pool restarts behind it; the memory row above is before it).
  if (wanted('pools')) {
    poolsLoad = loadavg()[0];
    poolsRows = await poolsBench({ api, say, admin: ADMIN, stack });
  }
  ok = true;
} finally {
  await stack.stop();
  if (ok) rmSync(dataDir, { recursive: true, force: true });
  else say(`logs kept in ${join(dataDir, 'logs')}`);
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const java = spawnSync('java', ['-version'], { encoding: 'utf8' }).stderr.split('\n')[0];
const machine = `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${java}`;
const today = new Date().toISOString().slice(0, 10);
const table = (list) => `| What | Measured |\n|---|---|\n${list.map(([a, b]) => `| ${a} | ${b} |`).join('\n')}`;
const FRESHNESS_START = '<!-- freshness: written by `npm run bench` or `npm run bench -- freshness` -->';
const FRESHNESS_END = '<!-- /freshness -->';
const freshnessBlock = (list) => `${FRESHNESS_START}
## Freshness

Measured on ${today}, ${machine}, load average ${freshnessLoad?.toFixed(1)} when it began.
One 5 s flag-evaluations analysis; times as a client polling the API every 100 ms sees
them (the bench's clock is the server's). CONTRACT §6: a window's rows within 10 s of its end.

${table(list)}
${FRESHNESS_END}`;
const MANAGED_START = '<!-- managed-flink: written by `npm run bench` or `npm run bench -- managed-flink` -->';
const MANAGED_END = '<!-- /managed-flink -->';
const managedBlock = (list) => `${MANAGED_START}
## The managed-flink target on the local stand-in

Measured on ${today}, ${machine}. A second control plane with \`FLAGSTREAM_TARGET=managed-flink\`
drives the stand-in (control-plane/src/standin) through the AWS SDK; the stand-in runs each
application on the stack's Flink cluster; health check every 1 s. What Flagstream adds to a
lifecycle step, not what the real service takes (it starts and stops applications in minutes).

${table(list)}
${MANAGED_END}`;
const POOLS_START = '<!-- pools: written by `npm run bench` or `npm run bench -- pools` -->';
const POOLS_END = '<!-- /pools -->';
const poolsBlock = (list) => `${POOLS_START}
## Pools: 100 analyses sharing jobs

Measured on ${today}, ${machine}, load average ${poolsLoad?.toFixed(1)} when it began.
10 tenants × 10 flag-evaluations analyses (windows 5 s to 1 min, flag filters, groupBy
shapes, environment scoping) created at once, then a /bulk payload about every second
for every tenant and one analysis added (docs/pools.md: its pool starts a new job that
re-reads the last hour for every member, while the old job serves them until the new one
caught up; goal, no window of another analysis final later than 30 s after its end).
Jobs can exceed the pools while a new job catches up (two per pool at most). Times as a client polling the results API about once a second sees them.

${table(list)}
${POOLS_END}`;
const docPath = join(ROOT, 'docs/benchmarks.md');
const previous = (() => {
  try {
    return readFileSync(docPath, 'utf8');
  } catch {
    return '';
  }
})();
const previousFreshness = previous.includes(FRESHNESS_START) ? previous.slice(previous.indexOf(FRESHNESS_START), previous.indexOf(FRESHNESS_END) + FRESHNESS_END.length) : undefined;
const previousManaged = previous.includes(MANAGED_START) ? previous.slice(previous.indexOf(MANAGED_START), previous.indexOf(MANAGED_END) + MANAGED_END.length) : undefined;
const previousLake = previous.includes(LAKE_START) ? previous.slice(previous.indexOf(LAKE_START), previous.indexOf(LAKE_END) + LAKE_END.length) : undefined;
const previousIngest = previous.includes(INGEST_START) ? previous.slice(previous.indexOf(INGEST_START), previous.indexOf(INGEST_END) + INGEST_END.length) : undefined;
const previousPools = previous.includes(POOLS_START) ? previous.slice(previous.indexOf(POOLS_START), previous.indexOf(POOLS_END) + POOLS_END.length) : undefined;

let text;
if (fullRun) {
  text = `# Benchmarks

Written by \`npm run bench\` (bench/run.mjs) on ${today}.
Machine: ${machine}. Shared and noisy: read medians and ratios, not single times.

${table(rows)}

${ingestResult ? ingestBlock(ingestResult, { today, machine }) : previousIngest ?? ''}

${freshnessRows ? freshnessBlock(freshnessRows) : previousFreshness ?? ''}

${managedFlinkRows ? managedBlock(managedFlinkRows) : previousManaged ?? ''}

${poolsRows ? poolsBlock(poolsRows) : previousPools ?? ''}

${lakeResult ? lakeBlock(lakeResult, { today, machine }) : previousLake ?? ''}
`;
} else {
  // A partial run keeps the rest of the page; only its own blocks (ingest, freshness, managed-flink, pools, lake) are replaced (or added:
  // before `before`, a marker of the page, when given and there; otherwise at the end).
  text = previous;
  const replaceBlock = (old, block, before) => {
    // A function as the replacement: the block's text is taken as it is (no `$` patterns).
    if (old) text = text.replace(old, () => block);
    else {
      const at = before ? text.indexOf(before) : -1;
      text = at >= 0 ? `${text.slice(0, at)}${block}\n\n${text.slice(at)}` : `${text.trimEnd()}\n\n${block}\n`;
    }
  };
  if (ingestResult) replaceBlock(previousIngest, ingestBlock(ingestResult, { today, machine }), FRESHNESS_START);
  if (freshnessRows) replaceBlock(previousFreshness, freshnessBlock(freshnessRows));
  if (managedFlinkRows) replaceBlock(previousManaged, managedBlock(managedFlinkRows));
  if (poolsRows) replaceBlock(previousPools, poolsBlock(poolsRows));
  if (lakeResult) replaceBlock(previousLake, lakeBlock(lakeResult, { today, machine }));
  console.log(table(rows));
}
writeFileSync(docPath, text);
console.log(text);
if (wanted('encode')) await encodeBench({ say });
if (wanted('catalog')) await catalogBench({ say });
