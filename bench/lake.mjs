// The `lake` section of `npm run bench` (bench/run.mjs): the local data lake (README "Data lake
// and backfill"), measured through the HTTP APIs, the lake's files and the Flink REST API.
//
// 1. Throughput, on the stack's control plane (its lake writer as `npm start` runs it): rounds
//    of N events (the SDK's /bulk payloads: index, feature, custom events and a summary; several
//    tenants; a few concurrent senders, as fast as the API answers). Side by side on one clock
//    from the first request: events/s into the stream (the API's 202s) and events/s into the
//    lake (the tenants' committed lake files, polled), and the lake's lag behind the stream
//    (last 202 → every event in the lake). Each round's lake lines are checked to be exactly
//    the accepted events.
// 2. Backfill, on a control plane of its own (as test/e2e/backfill.e2e.ts sets it up: its own
//    data dir, events and results streams and job names, on the stack's emulator, Flink cluster
//    and validator): M events of one tenant into stream S1 and the lake, then a restart on a
//    fresh stream S2, so that they are in the lake only; M events of another tenant (the same
//    shapes) into S2, in the stream only. Per round, a new flag-evaluations analysis replays
//    from before the first event: the time from the replay call until the results API serves
//    every row exact and final, lake against stream.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DeleteStreamCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ROOT } from '../scripts/bootstrap.mjs';

export const LAKE_START = '<!-- lake: written by `npm run bench` or `npm run bench -- lake` -->';
export const LAKE_END = '<!-- /lake -->';

const knob = (name, fallback) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not "${process.env[name]}"`);
  return value;
};
/** Events per throughput round, rounds, concurrent senders, events per /bulk payload, tenants. */
const EVENTS = knob('BENCH_LAKE_EVENTS', 5000);
const ROUNDS = knob('BENCH_LAKE_ROUNDS', 3);
const SENDERS = knob('BENCH_LAKE_SENDERS', 4);
const PAYLOAD = knob('BENCH_LAKE_PAYLOAD', 100);
const TENANTS = knob('BENCH_LAKE_TENANTS', 3);
/** Events only the lake holds (and as many only the stream holds), and replays of each. */
const BACKFILL_EVENTS = knob('BENCH_LAKE_BACKFILL_EVENTS', 5000);
const REPLAYS = knob('BENCH_LAKE_REPLAYS', 3);

/** The backfill's control plane, beside the stack's (run.mjs uses 28080–28084). */
const BACKFILL_PORT = 28085;
const JOB_PREFIX = 'bench-lake-';
const WINDOW = '10s';
const WINDOW_MS = 10_000;
/** How often the lake's files are looked at, and the results API polled. */
const LAKE_POLL_MS = 200;
const RESULTS_POLL_MS = 500;
const REPLAY_TIMEOUT_MS = 180_000;
/** Allowed lateness (5 s) + the results' margin (1 s) + a second: a window this old can be final at once. */
const FINAL_AFTER_MS = 7_000;
const ACTIVE = new Set(['CREATED', 'INITIALIZING', 'RUNNING', 'RESTARTING', 'CANCELLING', 'FAILING']);
const FLAGS = [['new-checkout', [false, true]], ['search-v2', ['control', 'a', 'b']], ['dark-mode', [false, true]], ['pricing-page', [1, 2, 3, 4]], ['onboarding-flow', ['short', 'long']]];
const CUSTOM = ['checkout-completed', 'page-view', 'search-performed'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sec = (x) => `${(x / 1000).toFixed(1)} s`;
const perSec = (x) => `${Math.round(x).toLocaleString('en-US')}/s`;
const count = (x) => x.toLocaleString('en-US');

/** A small seeded generator: the same payloads every run. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * One /bulk payload of `size` events as a server-side SDK flushes it (the shapes of the recorded
 * node SDK payloads in test/fixtures): index events for contexts it had not seen, feature events
 * of tracked flags, custom events, and the flush's one summary counting every evaluation since
 * the last flush (the tracked ones and as many again untracked), ending now.
 */
function sdkPayload(size, now, rand) {
  const events = [];
  const counters = new Map();
  const evaluate = (flag, variation, times) => {
    const key = `${flag}\u0000${variation}`;
    counters.set(key, (counters.get(key) ?? 0) + times);
  };
  while (events.length < size - 1) {
    const n = Math.floor(rand() * 5000);
    const context = { kind: 'user', key: `user-${n}`, name: `User ${n}` };
    const creationDate = now - Math.floor(rand() * 4000);
    const x = rand();
    if (x < 0.15) events.push({ kind: 'index', creationDate, context });
    else if (x < 0.65) {
      const [flag, values] = FLAGS[Math.floor(rand() * FLAGS.length)];
      const variation = Math.floor(rand() * values.length);
      events.push({ kind: 'feature', creationDate, context, key: flag, value: values[variation], default: values[0], variation, version: 3 });
      evaluate(flag, variation, 1);
    } else {
      events.push({ kind: 'custom', creationDate, key: CUSTOM[Math.floor(rand() * CUSTOM.length)], context, metricValue: Math.round(rand() * 100) });
    }
  }
  for (const [flag, values] of FLAGS) values.forEach((_, variation) => evaluate(flag, variation, Math.floor(rand() * 20)));
  const features = {};
  for (const [key, times] of counters) {
    if (!times) continue;
    const [flag, variationText] = key.split('\u0000');
    const values = FLAGS.find(([f]) => f === flag)[1];
    const variation = Number(variationText);
    features[flag] ??= { default: values[0], counters: [], contextKinds: ['user'] };
    features[flag].counters.push({ value: values[variation], count: times, variation, version: 3 });
  }
  events.push({ kind: 'summary', startDate: now - 5000, endDate: now, features });
  return events;
}

/** The rows a flag-evaluations analysis (groupBy flagKey, variation) counts from accepted payloads. */
function expectedRows(sent) {
  const rows = new Map();
  for (const events of sent) {
    for (const e of events) {
      if (e.kind !== 'summary') continue;
      const windowStart = new Date(Math.floor(e.endDate / WINDOW_MS) * WINDOW_MS).toISOString();
      for (const [flagKey, flag] of Object.entries(e.features)) {
        for (const c of flag.counters) {
          const key = `${windowStart}|${flagKey}|${c.variation}`;
          rows.set(key, (rows.get(key) ?? 0) + c.count);
        }
      }
    }
  }
  return rows;
}

/**
 * Sends `total` events in payloads of PAYLOAD over `tenants` (round-robin), SENDERS at a time, as
 * fast as the API answers; a payload the API does not accept goes again with its payload ID (the
 * SDK's retry). Resolves when every payload was accepted.
 */
async function send({ api, port, tenants, total, label, seed }) {
  const payloads = Math.ceil(total / PAYLOAD);
  const rand = random(seed);
  const sent = [];
  let next = 0;
  let accepted = 0;
  let rejected = 0;
  let retries = 0;
  let first;
  let last;
  const senders = Array.from({ length: SENDERS }, async () => {
    for (;;) {
      const i = next++;
      if (i >= payloads) return;
      const tenant = tenants[i % tenants.length];
      const size = Math.min(PAYLOAD, total - i * PAYLOAD);
      const events = sdkPayload(size, Date.now(), rand);
      const raw = JSON.stringify(events);
      const headers = { authorization: tenant.sdkKey, 'content-type': 'application/json', 'x-launchdarkly-payload-id': `${label}-${i}` };
      first ??= Date.now();
      for (let attempt = 0; ; attempt++) {
        const reply = await api('POST', '/bulk', { port, raw, headers }).catch(() => ({ status: 0 }));
        if (reply.status === 202) {
          last = Date.now();
          accepted += reply.body.accepted;
          rejected += reply.body.rejected.length;
          sent.push({ tenant, events });
          break;
        }
        if (attempt >= 20) throw new Error(`lake: /bulk answered ${reply.status} ${attempt + 1} times for one payload`);
        retries++;
        await sleep(500);
      }
    }
  });
  await Promise.all(senders);
  if (rejected) throw new Error(`lake: the API rejected ${rejected} of the bench's events`);
  return { sent, accepted, retries, first, last };
}

/**
 * A tenant's committed lake files as a reader sees them: the final names (a file being written is
 * hidden until its rename), each read once. Returns the `receivedAt` of every line of the files
 * not seen before.
 */
function newLakeLines(lakeDir, tenantKeys, seen) {
  const receivedAts = [];
  let files = 0;
  for (const key of tenantKeys) {
    const root = join(lakeDir, `tenant=${key}`);
    if (!existsSync(root)) continue;
    for (const dt of readdirSync(root)) {
      for (const hour of readdirSync(join(root, dt))) {
        for (const name of readdirSync(join(root, dt, hour))) {
          if (name.startsWith('.') || !name.endsWith('.json.gz')) continue;
          const path = join(root, dt, hour, name);
          if (seen.has(path)) continue;
          let text;
          try {
            text = gunzipSync(readFileSync(path)).toString('utf8');
          } catch {
            continue; // deleted meanwhile (a failed flush's file): read again if it comes back
          }
          seen.add(path);
          files++;
          for (const line of text.split('\n')) if (line) receivedAts.push(JSON.parse(line).receivedAt);
        }
      }
    }
  }
  return { receivedAts, files };
}

/** A counter of the control plane's /metrics (Prometheus text), summed over its labels. */
async function metric(admin, name, port) {
  const reply = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${admin}` } });
  const text = await reply.text();
  let total = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.eE+-]+)$`, 'gm'))) total += Number(m[1]);
  return total;
}

/** A setting of the running control plane (its /proc environ), else undefined. */
function controlPlaneEnv(pidsFile, name) {
  try {
    const pid = JSON.parse(readFileSync(pidsFile, 'utf8'))['control-plane'];
    const line = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((l) => l.startsWith(`${name}=`));
    return line?.slice(name.length + 1);
  } catch {
    return undefined;
  }
}

async function tenantsOn(api, admin, port, prefix, n) {
  const tenants = [];
  for (let i = 0; i < n; i++) {
    const key = `${prefix}-${i}`;
    const created = await api('POST', '/v1/tenants', { port, key: admin, body: { key, name: `Bench lake ${i}` } });
    if (created.status !== 201) throw new Error(`lake: creating a tenant answered ${created.status}: ${JSON.stringify(created.body)}`);
    const env = await api('POST', '/v1/environments', { port, key: created.body.apiKey, body: { key: 'production' } });
    if (env.status !== 201) throw new Error(`lake: creating an environment answered ${env.status}`);
    tenants.push({ key, apiKey: created.body.apiKey, sdkKey: env.body.sdkKey });
  }
  return tenants;
}

/**
 * 1. Rounds of N events into the stack, one after another: stream and lake rates on one clock,
 * the lag, and exactly the accepted events in the lake. A lake line belongs to the round whose
 * requests span its `receivedAt` (the API stamps it while answering), so a round starts as soon
 * as the last one is in the lake, and a copy of an event would still show in its own round.
 */
async function throughput({ api: ctxApi, say, admin, stack, stamp }) {
  const port = new URL(stack.apiUrl).port;
  if (controlPlaneEnv(stack.pidsFile, 'FLAGSTREAM_LAKE') === 'off') throw new Error('lake: the stack runs without its lake writer (FLAGSTREAM_LAKE=off)');
  const flushMs = Number(controlPlaneEnv(stack.pidsFile, 'FLAGSTREAM_LAKE_FLUSH_MS') ?? 10_000);
  const lakeDir = controlPlaneEnv(stack.pidsFile, 'FLAGSTREAM_LAKE_DIR') ?? join(stack.dataDir, 'lake');
  const tenants = await tenantsOn(ctxApi, admin, port, `bench-lake-${stamp}`, TENANTS);
  const keys = tenants.map((t) => t.key);
  const seen = new Set();
  /** Every lake line of the tenants: its receivedAt and when the bench first saw it. */
  const lines = [];
  let files = 0;
  let watching = true;
  const look = () => {
    const got = newLakeLines(lakeDir, keys, seen);
    const at = Date.now();
    for (const receivedAt of got.receivedAts) lines.push({ receivedAt, at });
    files += got.files;
  };
  const watcher = (async () => {
    while (watching) {
      look();
      await sleep(LAKE_POLL_MS);
    }
  })();
  const writtenBefore = await metric(admin, 'flagstream_lake_records_written_total', port);
  const sends = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      say(`lake: throughput round ${r + 1} of ${ROUNDS}, ${count(EVENTS)} events (${TENANTS} tenants, ${SENDERS} senders, ${PAYLOAD}-event payloads)`);
      const out = await send({ api: ctxApi, port, tenants, total: EVENTS, label: `bench-lake-${stamp}-r${r}`, seed: 1000 + r });
      sends.push(out);
      const mine = () => lines.filter((l) => l.receivedAt >= out.first && l.receivedAt <= out.last).length;
      const deadline = Date.now() + 120_000 + 3 * flushMs;
      while (mine() < out.accepted && Date.now() < deadline) await sleep(LAKE_POLL_MS);
      say(`lake: round ${r + 1}: ${count(out.accepted)} accepted in ${sec(out.last - out.first)}, ${count(mine())} in the lake ${sec(Date.now() - out.last)} after the last 202`);
    }
    // A flush more: a copy of an event written late would show as a line too many.
    await sleep(flushMs + 2 * LAKE_POLL_MS + 1000);
  } finally {
    watching = false;
    await watcher;
  }
  look();
  const written = (await metric(admin, 'flagstream_lake_records_written_total', port)) - writtenBefore;
  const rounds = sends.map((out) => {
    const mine = lines.filter((l) => l.receivedAt >= out.first && l.receivedAt <= out.last).sort((a, b) => a.at - b.at);
    const complete = mine.length >= out.accepted ? mine[out.accepted - 1].at : Infinity;
    const round = { accepted: out.accepted, retries: out.retries, landed: mine.length, streamMs: out.last - out.first, lakeMs: complete - out.first, lagMs: complete - out.last };
    round.streamRate = (out.accepted / round.streamMs) * 1000;
    round.lakeRate = (out.accepted / round.lakeMs) * 1000;
    return round;
  });
  const stray = lines.length - rounds.reduce((a, r) => a + r.landed, 0);
  return { rounds, flushMs, files, written, stray };
}

/** The backfill's own control plane: start, stop (SIGTERM: the lake writer commits what it read), its log. */
function controlPlane({ stack, dataDir, admin, stamp, logsDir }) {
  let current;
  return {
    log: () => current?.text ?? '',
    async start(eventsStream) {
      const log = createWriteStream(join(logsDir, `bench-lake-${eventsStream}.log`));
      const child = spawn(process.execPath, [join(ROOT, 'control-plane/dist/main.js')], {
        cwd: ROOT,
        env: {
          ...process.env,
          NODE_NO_WARNINGS: '1',
          PORT: String(BACKFILL_PORT),
          FLAGSTREAM_DATA_DIR: dataDir,
          FLAGSTREAM_ADMIN_KEY: admin,
          FLAGSTREAM_KINESIS_ENDPOINT: stack.kinesisEndpoint,
          FLAGSTREAM_FLINK_URL: stack.flinkUrl,
          FLAGSTREAM_VALIDATOR_URL: stack.validatorUrl,
          FLAGSTREAM_TARGET: 'local',
          FLAGSTREAM_EVENTS_STREAM: eventsStream,
          FLAGSTREAM_RESULTS_STREAM: `flagstream-results-bench-lake-${stamp}`,
          // Its jobs share the stack's cluster: the stack's control plane must not take them for orphans.
          FLAGSTREAM_JOB_NAME_PREFIX: JOB_PREFIX,
          FLAGSTREAM_MAX_POOLS: '1',
          FLAGSTREAM_MAX_CUSTOM_POOLS: '0',
          FLAGSTREAM_HEALTH_INTERVAL_MS: '1000',
          FLAGSTREAM_LAKE_FLUSH_MS: '1000',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const proc = { child, text: '' };
      const keep = (d) => {
        log.write(d);
        proc.text = (proc.text + d).slice(-2_000_000);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.on('exit', () => log.end());
      current = proc;
      const started = Date.now();
      for (;;) {
        if (child.exitCode !== null) throw new Error(`lake: the backfill control plane exited while starting:\n${proc.text.slice(-3000)}`);
        const health = await fetch(`http://127.0.0.1:${BACKFILL_PORT}/health`).catch(() => undefined);
        if (health?.status === 200) return;
        if (Date.now() - started > 60_000) throw new Error(`lake: the backfill control plane did not answer /health within 60 s:\n${proc.text.slice(-3000)}`);
        await sleep(300);
      }
    },
    async stop() {
      const proc = current;
      if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
      await new Promise((resolve) => {
        proc.child.once('exit', resolve);
        proc.child.kill('SIGTERM');
      });
    },
  };
}

async function flinkJobs(flinkUrl) {
  const reply = await fetch(`${flinkUrl}/jobs/overview`, { signal: AbortSignal.timeout(10_000) });
  return ((await reply.json()).jobs ?? []).filter((j) => j.name.startsWith(JOB_PREFIX));
}

/** The replay's job (running, started after the call) as Flink's REST API shows it, with its vertices; undefined before it runs. */
async function replayJob(flinkUrl, replayAt) {
  try {
    const job = (await flinkJobs(flinkUrl)).find((j) => j.state === 'RUNNING' && j['start-time'] > replayAt);
    if (!job) return undefined;
    return await (await fetch(`${flinkUrl}/jobs/${job.jid}`, { signal: AbortSignal.timeout(10_000) })).json();
  } catch {
    return undefined;
  }
}

/**
 * One replay: a new analysis of `tenant`, RUNNING, replayed from `from`; the time from the replay
 * call until every row is `expected` and final; whether its job read the lake. Deleted after.
 */
async function replayOnce({ api, tenant, from, expected, lastWindowEnd, flinkUrl, cp, label }) {
  const port = BACKFILL_PORT;
  const created = await api('POST', '/v1/analyses', { port, key: tenant.apiKey, body: { name: `bench lake ${label}`, kind: 'flag-evaluations', params: { window: WINDOW } } });
  if (created.status !== 201) throw new Error(`lake: creating an analysis answered ${created.status}: ${JSON.stringify(created.body)}`);
  const id = created.body.id;
  const status = async () => (await api('GET', `/v1/analyses/${id}`, { port, key: tenant.apiKey })).body?.status;
  const runningBy = Date.now() + 120_000;
  while ((await status()) !== 'RUNNING') {
    if (Date.now() > runningBy) throw new Error(`lake: analysis ${id} not RUNNING within 120 s`);
    await sleep(250);
  }
  // Every window of the events has ended long enough ago to be final once the replay caught up.
  if (Date.now() < lastWindowEnd + FINAL_AFTER_MS) await sleep(lastWindowEnd + FINAL_AFTER_MS - Date.now());
  const logMark = cp.log().length;
  const replayAt = Date.now();
  const replay = await api('POST', `/v1/analyses/${id}/replay`, { port, key: tenant.apiKey, body: { from } });
  if (replay.status !== 200) throw new Error(`lake: replay answered ${replay.status}: ${JSON.stringify(replay.body)}`);
  let exactAt;
  let last = [];
  while (Date.now() - replayAt < REPLAY_TIMEOUT_MS) {
    const reply = await api('GET', `/v1/analyses/${id}/results?limit=10000`, { port, key: tenant.apiKey }).catch(() => undefined);
    last = reply?.body?.rows ?? [];
    const got = new Map(last.map((r) => [`${new Date(r.windowStart).toISOString()}|${r.flagKey}|${r.variation}`, r.evaluations]));
    const exact = got.size === expected.size && [...expected].every(([k, v]) => got.get(k) === v);
    if (exact && last.every((r) => r.final === true)) {
      exactAt = Date.now();
      break;
    }
    await sleep(RESULTS_POLL_MS);
  }
  // Its job's plan: whether it reads the lake. (How long the bounded lake source ran says little:
  // a finished source ends with the next checkpoint, every 10 s on the local cluster.)
  const job = await replayJob(flinkUrl, replayAt);
  const lakeSource = job ? job.vertices?.some((v) => v.name.includes('events_lake')) ?? false : undefined;
  const said = /reading (\d+) records of the data lake/.exec(cp.log().slice(logMark));
  const outcome = {
    ms: exactAt === undefined ? Infinity : exactAt - replayAt,
    lakeSource,
    lakeRecords: said ? Number(said[1]) : 0,
    rows: expected.size,
  };
  if (exactAt === undefined) {
    const want = [...expected.values()].reduce((a, b) => a + b, 0);
    const have = last.reduce((a, r) => a + (r.evaluations ?? 0), 0);
    outcome.failure = `${last.length} of ${expected.size} rows, ${count(have)} of ${count(want)} evaluations, ${last.filter((r) => r.final).length} final`;
  }
  const removed = await api('DELETE', `/v1/analyses/${id}`, { port, key: tenant.apiKey });
  if (removed.status !== 204) throw new Error(`lake: deleting an analysis answered ${removed.status}`);
  // Its job leaves the cluster before the next replay starts one.
  const goneBy = Date.now() + 60_000;
  while ((await flinkJobs(flinkUrl).catch(() => [])).some((j) => ACTIVE.has(j.state)) && Date.now() < goneBy) await sleep(500);
  return outcome;
}

/** 2. Backfill: events only in the lake against as many only in the stream. */
async function backfill({ api, say, admin, stack, stamp }) {
  const dataDir = join(stack.dataDir, 'bench-lake');
  const logsDir = join(stack.dataDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  const s1 = `flagstream-events-bench-lake-${stamp}-1`;
  const s2 = `flagstream-events-bench-lake-${stamp}-2`;
  const cp = controlPlane({ stack, dataDir, admin, stamp, logsDir });
  const kinesis = new KinesisClient({ region: 'us-east-1', endpoint: stack.kinesisEndpoint, credentials: { accessKeyId: 'l', secretAccessKey: 'l' }, requestHandler: new NodeHttpHandler() });
  try {
    say(`lake: backfill: a control plane of its own on ${s1}, ${count(BACKFILL_EVENTS)} events into it and the lake`);
    await cp.start(s1);
    const [lakeTenant, streamTenant] = await tenantsOn(api, admin, BACKFILL_PORT, `bench-lake-bf-${stamp}`, 2);
    const inLake = await send({ api, port: BACKFILL_PORT, tenants: [lakeTenant], total: BACKFILL_EVENTS, label: `bench-lake-bf-${stamp}-lake`, seed: 7 });
    // Every event committed to the lake (the writer commits every second here) before the stream goes.
    const lakeDir = join(dataDir, 'lake');
    const seen = new Set();
    let landed = 0;
    const landedBy = Date.now() + 120_000;
    while (landed < inLake.accepted && Date.now() < landedBy) {
      landed += newLakeLines(lakeDir, [lakeTenant.key], seen).receivedAts.length;
      await sleep(LAKE_POLL_MS);
    }
    if (landed !== inLake.accepted) throw new Error(`lake: ${landed} of ${inLake.accepted} events in the backfill's lake after 120 s`);
    const lakeLandedMs = Date.now() - inLake.last;
    await cp.stop();
    say(`lake: backfill: restarted on a fresh stream ${s2}; ${REPLAYS} replay(s) from the lake`);
    await cp.start(s2);
    const flinkUrl = stack.flinkUrl;
    const fromOf = (out) => new Date(Math.floor(out.first / WINDOW_MS) * WINDOW_MS - WINDOW_MS).toISOString();
    const lastWindowEndOf = (out) => Math.floor(out.last / WINDOW_MS) * WINDOW_MS + WINDOW_MS;
    const lakeExpected = expectedRows(inLake.sent.map((s) => s.events));
    // The lake's replays first, while the fresh stream holds nothing but heartbeats (its job reads
    // the whole stream too: the stream's events would be its work as well).
    const lake = [];
    for (let i = 0; i < REPLAYS; i++) {
      lake.push(await replayOnce({ api, tenant: lakeTenant, from: fromOf(inLake), expected: lakeExpected, lastWindowEnd: lastWindowEndOf(inLake), flinkUrl, cp, label: `lake ${i}` }));
      say(`lake: backfill: from the lake ${lake[i].failure ? `not exact within ${REPLAY_TIMEOUT_MS / 1000} s (${lake[i].failure})` : sec(lake[i].ms)} (${count(lake[i].lakeRecords)} lake records; job reads the lake: ${lake[i].lakeSource})`);
    }
    say(`lake: backfill: ${count(BACKFILL_EVENTS)} events into ${s2} only; ${REPLAYS} replay(s) from the stream`);
    const inStream = await send({ api, port: BACKFILL_PORT, tenants: [streamTenant], total: BACKFILL_EVENTS, label: `bench-lake-bf-${stamp}-stream`, seed: 7 });
    const streamExpected = expectedRows(inStream.sent.map((s) => s.events));
    const stream = [];
    for (let i = 0; i < REPLAYS; i++) {
      stream.push(await replayOnce({ api, tenant: streamTenant, from: fromOf(inStream), expected: streamExpected, lastWindowEnd: lastWindowEndOf(inStream), flinkUrl, cp, label: `stream ${i}` }));
      say(`lake: backfill: from the stream ${stream[i].failure ? `not exact within ${REPLAY_TIMEOUT_MS / 1000} s (${stream[i].failure})` : sec(stream[i].ms)} (${count(stream[i].lakeRecords)} lake records; job reads the lake: ${stream[i].lakeSource})`);
    }
    return { lake, stream, events: inLake.accepted, streamEvents: inStream.accepted, rows: lakeExpected.size, streamRows: streamExpected.size, lakeLandedMs };
  } finally {
    await cp.stop();
    // Jobs left by a failure: this control plane's own, by their prefix.
    for (const job of await flinkJobs(stack.flinkUrl).catch(() => [])) {
      if (ACTIVE.has(job.state)) await fetch(`${stack.flinkUrl}/jobs/${job.jid}?mode=cancel`, { method: 'PATCH' }).catch(() => undefined);
    }
    // Its streams leave the emulator, which writes every stream it holds to disk every 10 s.
    for (const name of [s1, s2, `flagstream-results-bench-lake-${stamp}`]) {
      await kinesis.send(new DeleteStreamCommand({ StreamName: name, EnforceConsumerDeletion: true })).catch(() => undefined);
    }
    kinesis.destroy();
  }
}

/**
 * @param {{ api: Function, say: (line: string) => void, admin: string, stack: { apiUrl: string, kinesisEndpoint: string, flinkUrl: string, validatorUrl: string, dataDir: string, pidsFile: string } }} ctx
 * @returns {Promise<object>} what lakeBlock writes
 */
export async function lakeBench(ctx) {
  const load = loadavg()[0];
  const stamp = Date.now().toString(36);
  const started = Date.now();
  const tp = await throughput({ ...ctx, stamp });
  const bf = await backfill({ ...ctx, stamp });
  ctx.say(`lake: done in ${sec(Date.now() - started)}`);
  return { load, throughput: tp, backfill: bf, sizes: { EVENTS, ROUNDS, SENDERS, PAYLOAD, TENANTS, BACKFILL_EVENTS, REPLAYS } };
}

/** The section's block of docs/benchmarks.md; `machine` and `today` as run.mjs writes them for every section. */
export function lakeBlock(result, { today, machine }) {
  const { throughput: tp, backfill: bf, sizes, load } = result;
  const finite = (xs) => xs.filter((x) => Number.isFinite(x));
  const list = (xs, f) => xs.map(f).join(', ');
  const rs = tp.rounds;
  const streamRate = median(rs.map((r) => r.streamRate));
  const lakeRate = median(rs.map((r) => r.lakeRate));
  const ratios = rs.map((r) => r.lakeRate / r.streamRate);
  const lags = rs.map((r) => r.lagMs);
  const exactRounds = rs.filter((r) => r.landed === r.accepted).length;
  const retries = rs.reduce((a, r) => a + r.retries, 0);
  const replays = (xs, n) => {
    const ok = finite(xs.map((x) => x.ms));
    const never = xs.length - ok.length;
    if (!ok.length) return { text: `never exact within ${REPLAY_TIMEOUT_MS / 1000} s (${xs.length} replays)`, ms: undefined };
    const m = median(ok);
    return { text: `${sec(m)} (${perSec((n / m) * 1000)})${never ? `; ${never} of ${xs.length} never exact within ${REPLAY_TIMEOUT_MS / 1000} s` : ''}`, ms: m };
  };
  const lake = replays(bf.lake, bf.events);
  const stream = replays(bf.stream, bf.streamEvents);
  const lakeCounted = bf.lake.map((x) => x.lakeRecords);
  const rows = [
    [`Into the stream: events accepted by POST /bulk, first request → last 202 (${sizes.ROUNDS} rounds of ${count(sizes.EVENTS)})`, `median ${perSec(streamRate)} (${list(rs, (r) => perSec(r.streamRate))})${retries ? `; ${retries} payloads sent again after a non-2xx` : ''}`],
    ['Into the lake: the same events committed in lake files, first request → the last one in the lake (same rounds, same clock)', `median ${perSec(lakeRate)} (${list(rs, (r) => perSec(r.lakeRate))}) — lake/stream median ${median(ratios).toFixed(2)}× (${list(ratios, (x) => `${x.toFixed(2)}×`)})`],
    [`The lake's lag: last 202 → the last event in the lake (the writer commits every ${sec(tp.flushMs)})`, `median ${sec(median(lags))}, max ${sec(Math.max(...lags))} (${list(lags, sec)})`],
    [`… every accepted event in the lake once (each round's lake lines against its accepted events, a flush after the last)`, `${exactRounds} of ${rs.length} rounds exact (${list(rs, (r) => `${count(r.landed)}/${count(r.accepted)}`)}) in ${tp.files} files${tp.stray ? `, ${count(tp.stray)} lines of no round` : ''}; flagstream_lake_records_written_total +${count(tp.written)} meanwhile`],
    [`Backfill: replay → every row exact and final, ${count(bf.events)} events only in the lake vs ${count(bf.streamEvents)} only in the stream (${sizes.REPLAYS} replays each; ${bf.rows} and ${bf.streamRows} rows)`, `lake: ${lake.text} vs stream: ${stream.text}${lake.ms && stream.ms ? ` — lake/stream ${(lake.ms / stream.ms).toFixed(2)}×` : ''}`],
    ['… each replay', `lake ${list(bf.lake, (x) => (Number.isFinite(x.ms) ? sec(x.ms) : `never (${x.failure})`))}; stream ${list(bf.stream, (x) => (Number.isFinite(x.ms) ? sec(x.ms) : `never (${x.failure})`))}; lake records the pool read: ${list(lakeCounted, count)} (lake) and ${list(bf.stream.map((x) => x.lakeRecords), count)} (stream); plans with the lake source: ${bf.lake.filter((x) => x.lakeSource).length}/${bf.lake.length} and ${bf.stream.filter((x) => x.lakeSource).length}/${bf.stream.length}`],
  ];
  return `${LAKE_START}
## Data lake: throughput and backfill

Measured on ${today}, ${machine}, load average ${load.toFixed(1)} when it began (bench/lake.mjs).

- **Throughput**, on the stack's control plane and its lake writer as \`npm start\` runs it
  (FLAGSTREAM_LAKE_FLUSH_MS ${tp.flushMs}): ${sizes.ROUNDS} rounds of ${count(sizes.EVENTS)} events in /bulk payloads of
  ${sizes.PAYLOAD} as a server-side SDK flushes them (index, feature and custom events and one summary),
  over ${sizes.TENANTS} tenants, ${sizes.SENDERS} senders at a time as fast as the API answers. Both rates on one clock
  from a round's first request: into the stream until the last 202, into the lake until the
  last of those events is in a committed lake file (the tenants' partitions, looked at every
  ${LAKE_POLL_MS} ms). The writer reads the stream every second and commits every ${sec(tp.flushMs)}, so a
  round's last events reach the lake up to a flush interval after their 202, by where the round
  ends in the writer's cycle: with rounds of a few seconds, the lake's rate measures mostly that
  interval, not what the writer could take (the lag row).
- **Backfill**, on a control plane of its own (test/e2e/backfill.e2e.ts' setup: its own data dir,
  streams and job names on the stack's emulator and Flink cluster; lake commits every 1 s; one
  pool): ${count(bf.events)} events of one tenant into stream S1 and the lake, then a restart on a fresh
  stream S2, so they are in the lake only; then as many (the same shapes, another tenant) into
  S2 only. Each replay: a new ${WINDOW} flag-evaluations analysis, RUNNING, then \`POST …/replay\` from
  before the first event (every window of the events ended ${FINAL_AFTER_MS / 1000} s or more before the call), timed
  until the results API (polled every ${RESULTS_POLL_MS} ms) serves every row with the count of the summaries
  sent, and final. Records/s = the events / that time: the whole replay (a new job, reading,
  progress and \`final\`), not the read alone. The lake's replays ran first, while S2 held only
  heartbeats (a replay older than the stream reads the whole stream as well), then the stream's.

| What | Measured |
|---|---|
${rows.map(([a, b]) => `| ${a} | ${b} |`).join('\n')}
${LAKE_END}`;
}
