// The `ingest` section of `npm run bench` (bench/run.mjs): the events API's throughput into the
// events stream (issue 9), in three parts, on a control plane of its own (as bench/lake.mjs' backfill:
// its own data dir, events and results streams and job names) on the stack's emulator (kinesalite)
// and Flink cluster. Its own streams, deleted at the end: the section fills its events stream with
// millions of events, and kinesalite finds an AT_TIMESTAMP position (every new Flink job's start)
// by scanning a shard from its start, so the stack's stream must stay small for later sections.
// Its lake writer is off (FLAGSTREAM_LAKE=off: on AWS the lake is a Lambda of its own).
//
// Run in the order 2, 3, 1 (see ingestBench); the block lists them as numbered here.
//
// 1. API vs bare PutRecords, side by side: for payloads of each size (BENCH_INGEST_SIZES events,
//    the Node SDK's recorded /bulk bodies from test/fixtures, with the round's time), and each
//    number of concurrent clients (BENCH_INGEST_CLIENTS), rounds of a fixed duration alternate
//    between a bare PutRecords loop and POST /bulk, the same clients each, both from a pool of
//    payloads built before the round. The bare loop writes exactly the records the API writes for
//    such a payload: built here with the control plane's own built code (control-plane/dist:
//    encodePayload, then packEvents: 16 KiB KPL aggregated records with a random UUID
//    partition key each, as EventsService.ingest calls them), put with the AWS SDK v3 client as the control plane
//    sets it up (HTTP/1.1 NodeHttpHandler, its KinesisJsonProtocol: the SDK's with a native base64 encoder). events/s medians;
//    a side's throughput is its best median over the numbers of clients (throughputOf), and the
//    ratio API / bare is of those.
// 2. End to end: one 10s flag-evaluations analysis, RUNNING; then concurrent clients POST
//    1,000-event payloads for a while; accepted events/s (2xx), and events/s from the first POST
//    until the results API counts every accepted evaluation (summaries' counters, as
//    test/e2e/reference.ts counts them), checked exact per window, flag and variation.
// 3. Flat over time: steady load through the API (a few clients, back to back) for
//    BENCH_INGEST_SUSTAIN_S, every POST timed, while a reader tails every shard of the events
//    stream (GetRecords, Limit 1000, following NextShardIterator), every call timed; medians per
//    bucket (a minute), last / first, and what the stream holds at the end (read whole).
//
// Every POST carries an X-LaunchDarkly-Payload-ID, as the SDKs send it; a payload the API does
// not accept (5xx, 429, a dropped connection) goes again with the same body and ID, as an SDK
// retries, so nothing is counted twice or lost.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { DeleteStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ROOT } from '../scripts/bootstrap.mjs';
import { CONTROL_PLANE_NODE_FLAGS } from '../scripts/local-stack.mjs';
import { recordedEvents } from './encode.mjs';

const require = createRequire(import.meta.url);
export const INGEST_START = '<!-- ingest: written by `npm run bench` or `npm run bench -- ingest` -->';
export const INGEST_END = '<!-- /ingest -->';

/** Issue 9's goals. */
const GOAL_RATIO = 0.8;
const GOAL_E2E = 20_000;
const GOAL_FLAT = 1.5;
/** The section's control plane, beside the stack's (run.mjs uses 28080–28084, bench/lake.mjs 28085). */
const PORT = 28086;
const JOB_PREFIX = 'bench-ingest-';
const ACTIVE = new Set(['CREATED', 'INITIALIZING', 'RUNNING', 'RESTARTING', 'CANCELLING', 'FAILING']);
/** As the control plane has them by default (config.ts; its process inherits this one's environment). */
const RECORD_BYTES = Number(process.env.FLAGSTREAM_STREAM_RECORD_BYTES || 16 * 1024);
const HORIZON_MS = 3600_000;
const WRITE_CONCURRENCY = Number(process.env.FLAGSTREAM_STREAM_WRITE_CONCURRENCY || 4);
const REGION = process.env.AWS_REGION || 'us-east-1';
const ENVIRONMENT = 'production';
const E2E_WINDOW_MS = 10_000;
/** Kinesis' limits on one PutRecords call. */
const CALL_RECORDS = 500;
const CALL_BYTES = 5 * 1024 * 1024;
const READ_LIMIT = 1000;
/** A reader that got less than READ_LIMIT waits this long before asking that shard again (Flink's connector polls every 200 ms). */
const READ_IDLE_MS = 200;
/** Placeholders for the times in a payload template: a summary's endDate and other events' creationDate, and a summary's startDate. */
const AT = '7000000000001';
const AT_START = '7000000000002';

const knob = (name, fallback) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not "${process.env[name]}"`);
  return value;
};
const knobList = (name, fallback) => {
  const raw = process.env[name] ?? fallback;
  const values = String(raw).split(',').map((x) => x.trim());
  if (!values.length || values.some((x) => !/^[1-9]\d*$/.test(x))) throw new Error(`${name} must be a comma-separated list of positive integers, not "${raw}"`);
  return values.map(Number);
};

/**
 * The section's settings from the BENCH_INGEST_* knobs, validated (run.mjs calls this before it
 * starts the stack). A quick run: BENCH_INGEST_ROUND_S=5 BENCH_INGEST_E2E_S=10 BENCH_INGEST_SUSTAIN_S=60.
 */
export function ingestSettings() {
  const sustainS = knob('BENCH_INGEST_SUSTAIN_S', 600);
  const settings = {
    /** Part 1: payload sizes (events), the numbers of concurrent clients each side is run with, seconds a round, rounds of each side per size and clients. */
    sizes: knobList('BENCH_INGEST_SIZES', '100,1000'),
    clients: knobList('BENCH_INGEST_CLIENTS', '8,16,32'),
    roundS: knob('BENCH_INGEST_ROUND_S', 15),
    rounds: knob('BENCH_INGEST_ROUNDS', 3),
    /** Part 2: clients, seconds of load, events a payload, seconds to wait for the results after the load. */
    e2eClients: knob('BENCH_INGEST_E2E_CLIENTS', 8),
    e2eS: knob('BENCH_INGEST_E2E_S', 30),
    e2ePayload: knob('BENCH_INGEST_E2E_PAYLOAD', 1000),
    e2eTimeoutS: knob('BENCH_INGEST_E2E_TIMEOUT_S', 300),
    /** Part 3: seconds of load, clients, events a payload, seconds a bucket (a minute; a quarter of a short run). */
    sustainS,
    sustainClients: knob('BENCH_INGEST_SUSTAIN_CLIENTS', 4),
    sustainPayload: knob('BENCH_INGEST_SUSTAIN_PAYLOAD', 500),
    bucketS: knob('BENCH_INGEST_BUCKET_S', Math.min(60, Math.max(5, Math.floor(sustainS / 4)))),
  };
  if (settings.bucketS * 2 > sustainS) throw new Error(`BENCH_INGEST_BUCKET_S (${settings.bucketS}) must be at most half of BENCH_INGEST_SUSTAIN_S (${sustainS}): the first and the last bucket are compared`);
  return settings;
}

/** The section's events stream (its control plane's). */
let EVENTS_STREAM;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, p) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);
const count = (x) => Math.round(x).toLocaleString('en-US');
const perSec = (x) => `${count(x)}/s`;
const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(x < 10 ? 1 : 0)} ms` : 'n/a');
const sec = (x) => `${(x / 1000).toFixed(1)} s`;
const times = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');

/** The control plane's built modules this section uses (the same code the API runs); loaded once. */
let built;
function dist() {
  if (built) return built;
  const dir = join(ROOT, 'control-plane/dist');
  const old = () => new Error('control-plane/dist is missing or old: run `npm run build --workspace control-plane` (or `node scripts/bootstrap.mjs`) first');
  if (!existsSync(join(dir, 'events/event-encoder.js')) || !existsSync(join(dir, 'stream/aggregated-record.js')) || !existsSync(join(dir, 'stream/kinesis-json-protocol.js'))) throw old();
  const code = {
    ...require(join(dir, 'events/event-encoder.js')),
    ...require(join(dir, 'events/payload-hash.js')),
    ...require(join(dir, 'stream/aggregated-record.js')),
    ...require(join(dir, 'stream/kinesis-json-protocol.js')),
  };
  if (typeof code.encodePayload !== 'function' || typeof code.packEvents !== 'function' || typeof code.unpackRecord !== 'function' || typeof code.KinesisJsonProtocol !== 'function') throw old();
  built = code;
  return code;
}


/**
 * A payload of `size` recorded events, as JSON with placeholders for its times (bodyAt fills
 * them: every event at `now`, a summary from now − 5 s to now), and the evaluations its
 * summaries count per flag and variation.
 */
function template(size) {
  const recorded = recordedEvents();
  const events = [];
  const counters = new Map();
  let markers = 0;
  for (let i = 0; i < size; i++) {
    const event = structuredClone(recorded[i % recorded.length]);
    if (event.kind === 'summary') {
      Object.assign(event, { startDate: Number(AT_START), endDate: Number(AT) });
      markers += 2;
      for (const [flagKey, flag] of Object.entries(event.features)) {
        for (const c of flag.counters) {
          const key = `${flagKey}\u0000${c.variation ?? null}`;
          counters.set(key, (counters.get(key) ?? 0) + c.count);
        }
      }
    } else {
      event.creationDate = Number(AT);
      markers++;
    }
    events.push(event);
  }
  const parts = JSON.stringify(events).split(new RegExp(`(${AT}|${AT_START})`));
  if (parts.length !== 2 * markers + 1) throw new Error('ingest: the recorded events contain a time placeholder of the payload template');
  const evaluations = [...counters.values()].reduce((a, b) => a + b, 0);
  return { size, parts, counters, evaluations };
}

/** The template's body with its times at `now`. */
function bodyAt(tpl, now) {
  const at = String(now);
  const start = String(now - 5000);
  const out = new Array(tpl.parts.length);
  for (let i = 0; i < tpl.parts.length; i++) out[i] = i % 2 === 0 ? tpl.parts[i] : tpl.parts[i] === AT ? at : start;
  return Buffer.from(out.join(''), 'utf8');
}

/**
 * The records the API writes for a payload (EventsService.ingest): the stream payloadId from the
 * header's ID and the body's hash, encodePayload, then packEvents (event-encoder.ts): aggregated
 * records of at most RECORD_BYTES with a random UUID partition key each.
 */
function recordsOf(code, body, headerId, tenant) {
  const payload = JSON.parse(body.toString('utf8'));
  const payloadId = code.streamPayloadId(headerId, code.canonicalJsonHash(payload));
  const { events, rejected } = code.encodePayload(payload, { tenant, environment: ENVIRONMENT, payloadId, receivedAt: Date.now() }, HORIZON_MS);
  if (rejected.length) throw new Error(`ingest: a recorded event was rejected: ${JSON.stringify(rejected[0])}`);
  const records = code.packEvents(events, RECORD_BYTES).map((r) => ({ Data: r.data, PartitionKey: r.partitionKey }));
  return { records, events: events.length };
}

/** PutRecords calls for a payload's records, within Kinesis' limits per call (as the API's writer cuts them). */
function calls(records) {
  const out = [];
  let batch = [];
  let bytes = 0;
  for (const r of records) {
    const size = r.Data.length + r.PartitionKey.length;
    if (batch.length && (batch.length >= CALL_RECORDS || bytes + size > CALL_BYTES)) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(r);
    bytes += size;
  }
  if (batch.length) out.push(batch);
  return out;
}

function kinesisClient(endpoint, requestTimeout = 15000) {
  // As the control plane's createKinesisClient: HTTP/1.1, 3 attempts, its protocol (the SDK's, with a native base64 encoder).
  return new KinesisClient({
    region: REGION, endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 3, protocol: dist().KinesisJsonProtocol,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 3000, requestTimeout, throwOnRequestTimeout: true }),
  });
}

function post(agent, port, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/bulk', method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * POSTs one payload until the API accepts it, as an SDK does (the same body and payload ID
 * again after a second); `onTry` gets every try's start (performance.now()), time and status.
 * Returns the tries it took.
 */
async function deliver({ agent, port, sdkKey }, body, payloadId, expected, onTry) {
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    let reply;
    try {
      reply = await post(agent, port, body, { authorization: sdkKey, 'x-launchdarkly-payload-id': payloadId });
    } catch (error) {
      reply = { status: 0, text: error.message };
    }
    onTry?.(started, performance.now() - started, reply.status);
    if (reply.status >= 200 && reply.status < 300) {
      const answer = JSON.parse(reply.text);
      if (answer.accepted !== expected || answer.rejected?.length) throw new Error(`ingest: a payload of ${expected} events was answered ${reply.text.slice(0, 500)}`);
      return attempt;
    }
    if (reply.status !== 0 && reply.status !== 429 && reply.status < 500) throw new Error(`ingest: POST /bulk answered ${reply.status}: ${reply.text.slice(0, 500)}`);
    if (attempt >= 30) throw new Error(`ingest: a payload was not accepted after ${attempt} tries (last: ${reply.status} ${reply.text.slice(0, 300)})`);
    await sleep(1000);
  }
}

/** `clients` loops of `one(client, n)` (returns the events it delivered) until `durationMs` has passed; the last call ends the round. */
async function closedLoop(clients, durationMs, one) {
  const start = performance.now();
  const deadline = start + durationMs;
  let n = 0;
  let events = 0;
  await Promise.all(Array.from({ length: clients }, async (_, client) => {
    while (performance.now() < deadline) {
      const delivered = await one(client, n++);
      events += delivered; // not `events += await …`: that reads `events` before the wait and loses the others' additions
    }
  }));
  return { events, payloads: n, ms: performance.now() - start };
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
/** A process' CPU time so far (user + system), in ms; NaN when it is gone. */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}
function cpuMeter(stack, apiPid) {
  const pids = { emulator: stack.pids.kinesis, api: apiPid };
  const read = () => ({ emulator: cpuMs(pids.emulator), api: cpuMs(pids.api), bench: (() => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; })() });
  const before = read();
  return () => {
    const after = read();
    return Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
  };
}

/** The API's own count of its PutRecords calls and their time (flagstream_stream_write_seconds). */
async function writeMetrics(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name) => text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`)).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return { calls: value('flagstream_stream_write_seconds_count'), seconds: value('flagstream_stream_write_seconds_sum') };
}

async function tenant(api, admin, key) {
  const created = await api('POST', '/v1/tenants', { port: PORT, key: admin, body: { key, name: `Bench ${key}` } });
  if (created.status !== 201) throw new Error(`ingest: creating tenant ${key} answered ${created.status}: ${JSON.stringify(created.body)}`);
  const env = await api('POST', '/v1/environments', { port: PORT, key: created.body.apiKey, body: { key: ENVIRONMENT } });
  if (env.status !== 201) throw new Error(`ingest: creating an environment answered ${env.status}: ${JSON.stringify(env.body)}`);
  return { key, apiKey: created.body.apiKey, sdkKey: env.body.sdkKey };
}

/** Part 1: API vs bare PutRecords, interleaved rounds per payload size and number of clients. */
async function sideBySide({ say, stack, port, apiPid, settings, code, owner }) {
  const { sizes, roundS, rounds } = settings;
  const kinesis = kinesisClient(stack.kinesisEndpoint);
  const results = [];
  try {
    for (const size of sizes) {
      const tpl = template(size);
      const levels = [];
      for (const clients of settings.clients) {
        const bare = [];
        const api = [];
        for (let round = 0; round < rounds; round++) {
          const label = `${size}-event payloads, ${clients} clients, round ${round + 1}/${rounds}`;
          // Bare: a pool of payloads' records, built with this round's time (not timed), put as fast as the emulator takes them.
          const pool = Array.from({ length: clients * 2 }, (_, i) => recordsOf(code, bodyAt(tpl, Date.now()), `bench-bare-${size}-${clients}-${round}-${i}-${randomUUID()}`, owner.key));
          const recordsPerPayload = median(pool.map((p) => p.records.length));
          const callMs = [];
          let retried = 0;
          let meter = cpuMeter(stack, apiPid);
          const b = await closedLoop(clients, roundS * 1000, async (client, n) => {
            const payload = pool[n % pool.length];
            for (let batch of calls(payload.records)) {
              for (let attempt = 1; batch.length; attempt++) {
                const t = performance.now();
                const out = await kinesis.send(new PutRecordsCommand({ StreamName: EVENTS_STREAM, Records: batch }));
                callMs.push(performance.now() - t);
                if (!out.FailedRecordCount) break;
                if (attempt >= 30) throw new Error(`ingest: the emulator refused records ${attempt} times: ${out.Records.find((r) => r.ErrorCode)?.ErrorCode}`);
                retried += out.FailedRecordCount;
                batch = batch.filter((_, j) => out.Records[j].ErrorCode);
                await sleep(100);
              }
            }
            return payload.events;
          });
          bare.push({ ...b, rate: b.events / (b.ms / 1000), callMs: median(callMs), calls: callMs.length, recordsPerPayload, retried, cpu: meter() });
          say(`ingest: ${label}, bare PutRecords: ${perSec(bare.at(-1).rate)} (${count(b.payloads)} payloads, ${recordsPerPayload} records each, PutRecords median ${ms(median(callMs))})`);

          // The API: a pool of the same payloads' bodies, built with this round's time as the bare side's
          // records are (so neither side spends the shared cores making payloads), each POST with an ID of its own.
          const bodies = Array.from({ length: clients * 2 }, () => bodyAt(tpl, Date.now()));
          const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
          const postMs = [];
          let tries = 0;
          const metricsBefore = await writeMetrics(port);
          meter = cpuMeter(stack, apiPid);
          const a = await closedLoop(clients, roundS * 1000, async (client, n) => {
            const took = await deliver({ agent, port, sdkKey: owner.sdkKey }, bodies[n % bodies.length], `bench-api-${size}-${clients}-${round}-${n}-${randomUUID()}`, size, (at, t) => postMs.push(t));
            tries += took;
            return size;
          });
          const cpu = meter();
          const metricsAfter = await writeMetrics(port);
          agent.destroy();
          const apiCalls = metricsAfter.calls - metricsBefore.calls;
          api.push({
            ...a, rate: a.events / (a.ms / 1000), postMs: median(postMs), retried: tries - a.payloads, cpu,
            calls: apiCalls, callMs: apiCalls ? ((metricsAfter.seconds - metricsBefore.seconds) / apiCalls) * 1000 : NaN,
            recordsPerCall: apiCalls ? (a.payloads * recordsPerPayload) / apiCalls : NaN,
          });
          say(`ingest: ${label}, POST /bulk: ${perSec(api.at(-1).rate)} (${count(a.payloads)} payloads, POST median ${ms(median(postMs))}; API/bare ${times(api.at(-1).rate / bare.at(-1).rate)})`);
        }
        const level = { clients, bare, api, apiRate: median(api.map((r) => r.rate)), bareRate: median(bare.map((r) => r.rate)) };
        levels.push(level);
        say(`ingest: ${size}-event payloads, ${clients} clients: API median ${perSec(level.apiRate)}, bare median ${perSec(level.bareRate)}: ${times(level.apiRate / level.bareRate)}`);
      }
      results.push(throughputOf(size, levels));
    }
  } finally {
    kinesis.destroy();
  }
  return results;
}

/**
 * A side's throughput is its best median over the numbers of clients it was run with: a closed loop of
 * few clients measures how long each one waits for its answer as much as how much gets through. The API
 * answers only once every record is in the stream, so it needs more payloads in flight than bare
 * PutRecords does to reach its plateau; each side is taken at its own.
 */
function throughputOf(size, levels) {
  const best = (key) => levels.reduce((a, b) => (b[key] > a[key] ? b : a));
  const api = best('apiRate');
  const bare = best('bareRate');
  return { size, levels, api, bare, ratio: api.apiRate / bare.bareRate };
}

/** Part 2: a flag-evaluations analysis, load, and the time until its results count every accepted evaluation. */
async function endToEnd({ api, say, port, settings, owner }) {
  const { e2eClients: clients, e2eS, e2ePayload: size, e2eTimeoutS } = settings;
  const created = await api('POST', '/v1/analyses', { port, key: owner.apiKey, body: { name: 'bench ingest end to end', kind: 'flag-evaluations', params: { window: '10s' } } });
  if (created.status !== 201) throw new Error(`ingest: creating the analysis answered ${created.status}: ${JSON.stringify(created.body)}`);
  const id = created.body.id;
  const deployStarted = performance.now();
  for (;;) {
    const status = (await api('GET', `/v1/analyses/${id}`, { port, key: owner.apiKey })).body?.status;
    if (status === 'RUNNING') break;
    if (status === 'FAILED') throw new Error(`ingest: the end-to-end analysis ${id} FAILED`);
    if (performance.now() - deployStarted > 120_000) throw new Error(`ingest: the end-to-end analysis ${id} is not RUNNING after 120 s (${status})`);
    await sleep(250);
  }
  const deployMs = performance.now() - deployStarted;
  const from = new Date(Date.now() - 60_000).toISOString();
  const rowsNow = async () => {
    const reply = await api('GET', `/v1/analyses/${id}/results?from=${from}&limit=10000`, { port, key: owner.apiKey });
    if (reply.status !== 200) throw new Error(`ingest: the results answered ${reply.status}`);
    return reply.body.rows;
  };
  const total = (rows) => rows.reduce((a, r) => a + (r.evaluations ?? 0), 0);
  const windowOf = (t) => new Date(Math.floor(t / E2E_WINDOW_MS) * E2E_WINDOW_MS).toISOString();
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
    // The job reads: a payload of one summary (one evaluation) counted before the load, so that the
    // job's start (its source's AT_TIMESTAMP position, its first checkpoint) is not timed as the load's.
    const expected = new Map();
    const probeAt = Date.now();
    const probe = Buffer.from(JSON.stringify([{ kind: 'summary', startDate: probeAt - 1000, endDate: probeAt, features: { 'bench-probe': { default: false, counters: [{ value: true, variation: 0, version: 1, count: 1 }] } } }]));
    await deliver({ agent, port, sdkKey: owner.sdkKey }, probe, `bench-e2e-probe-${randomUUID()}`, 1);
    expected.set(`${windowOf(probeAt)}\u0000bench-probe\u00000`, 1);
    for (;;) {
      if ((await rowsNow()).some((r) => r.flagKey === 'bench-probe' && r.evaluations >= 1)) break;
      if (performance.now() - deployStarted > 300_000) throw new Error('ingest: end to end: the analysis did not count a first payload within 300 s');
      await sleep(250);
    }
    const readingMs = performance.now() - deployStarted;
    say(`ingest: end to end: analysis RUNNING after ${sec(deployMs)}, counting after ${sec(readingMs)}; ${clients} clients POST ${count(size)}-event payloads for ${e2eS} s`);
    const tpl = template(size);
    let sent = 0;
    let accepted = 0;
    let tries = 0;
    let lastAccepted = 0;
    const progress = setInterval(() => say(`ingest: end to end: ${count(accepted)} events accepted`), 5000);
    const started = performance.now();
    let load;
    try {
      load = await closedLoop(clients, e2eS * 1000, async (client, n) => {
        const now = Date.now();
        const took = await deliver({ agent, port, sdkKey: owner.sdkKey }, bodyAt(tpl, now), `bench-e2e-${n}-${randomUUID()}`, size);
        tries += took;
        lastAccepted = performance.now();
        accepted += size;
        const window = windowOf(now);
        for (const [key, n2] of tpl.counters) expected.set(`${window}\u0000${key}`, (expected.get(`${window}\u0000${key}`) ?? 0) + n2);
        sent += tpl.evaluations;
        return size;
      });
    } finally {
      clearInterval(progress);
      agent.destroy();
    }
    const acceptMs = lastAccepted - started;
    say(`ingest: end to end: ${count(accepted)} events accepted in ${sec(acceptMs)} (${perSec(accepted / (acceptMs / 1000))}); waiting for the results to count ${count(sent)} evaluations`);

    let counted = 0;
    let doneAt;
    let lastSay = performance.now();
    while (performance.now() - lastAccepted < e2eTimeoutS * 1000) {
      counted = total(await rowsNow());
      if (counted >= sent + 1) {
        doneAt = performance.now();
        break;
      }
      if (performance.now() - lastSay > 5000) {
        say(`ingest: end to end: the results count ${count(counted - 1)} of ${count(sent)} evaluations`);
        lastSay = performance.now();
      }
      await sleep(250);
    }
    if (doneAt === undefined) throw new Error(`ingest: end to end: the results counted ${count(counted - 1)} of ${count(sent)} accepted evaluations ${e2eTimeoutS} s after the last 202 (BENCH_INGEST_E2E_TIMEOUT_S)`);
    // Exact: a few seconds on (later rows could still add), every window, flag and variation as sent.
    await sleep(3000);
    const rows = await rowsNow();
    const got = new Map();
    for (const r of rows) {
      const key = `${r.windowStart}\u0000${r.flagKey}\u0000${r.variation ?? null}`;
      got.set(key, (got.get(key) ?? 0) + r.evaluations);
    }
    const wrong = [...new Set([...expected.keys(), ...got.keys()])].filter((k) => expected.get(k) !== got.get(k));
    if (wrong.length || total(rows) !== sent + 1) {
      throw new Error(`ingest: end to end NOT EXACT: the results count ${count(total(rows))} evaluations, ${count(sent + 1)} were accepted (the first payload's one included); ${wrong.length} rows differ: ${wrong.slice(0, 5).map((k) => `${k.replaceAll('\u0000', ' ')}: ${got.get(k) ?? 0} of ${expected.get(k) ?? 0}`).join('; ')}`);
    }
    const e2eMs = doneAt - started;
    say(`ingest: end to end: every evaluation counted ${sec(doneAt - lastAccepted)} after the last 202: ${perSec(accepted / (e2eMs / 1000))} end to end, exact (${count(sent)} evaluations, ${got.size} rows)`);
    return { clients, size, seconds: e2eS, accepted, payloads: load.payloads, retried: tries - load.payloads, acceptMs, e2eMs, lagMs: doneAt - lastAccepted, evaluations: sent, rows: got.size, deployMs, readingMs };
  } finally {
    await api('DELETE', `/v1/analyses/${id}`, { port, key: owner.apiKey }).catch(() => {});
  }
}

/** What a record holds: an aggregated record's events, a heartbeat, or another plain record. */
function tally(code, data, into) {
  const items = code.unpackRecord(data);
  into.records++;
  into.bytes += data.length;
  const aggregated = data.length > 20 && data[0] === 0xf3 && data[1] === 0x89 && data[2] === 0x9a && data[3] === 0xc2 && !(items.length === 1 && items[0].length === data.length);
  if (aggregated) into.events += items.length;
  else if (Buffer.from(items[0].subarray(0, 19)).toString('utf8') === '{"kind":"heartbeat"') into.heartbeats++;
  else into.plain++;
  return items.length;
}

/**
 * How long a new reader waits for its AT_TIMESTAMP position on every shard at once: what each new
 * Flink job's source pays (scripts/kinesis-emulator.cjs finds it by a binary search; kinesalite
 * itself scanned the shard from its start). Infinity when it did not answer within 5 minutes.
 */
async function atTimestampMs(endpoint, shards, at) {
  const kinesis = new KinesisClient({
    region: REGION, endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 3000, requestTimeout: 300_000, throwOnRequestTimeout: true }),
  });
  const t = performance.now();
  try {
    await Promise.all(shards.map((shard) => kinesis.send(new GetShardIteratorCommand({ StreamName: EVENTS_STREAM, ShardId: shard.ShardId, ShardIteratorType: 'AT_TIMESTAMP', Timestamp: at }))));
    return performance.now() - t;
  } catch {
    return Infinity;
  } finally {
    kinesis.destroy();
  }
}

/** Part 3: steady load through the API while a reader tails the stream; medians per bucket. */
async function sustained({ say, stack, port, settings, code, owner }) {
  const { sustainS, sustainClients: clients, sustainPayload: size, bucketS } = settings;
  const kinesis = kinesisClient(stack.kinesisEndpoint, 120_000);
  try {
    const shards = (await kinesis.send(new ListShardsCommand({ StreamName: EVENTS_STREAM }))).Shards.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
    const before = { records: 0, events: 0, heartbeats: 0, plain: 0, bytes: 0 };
    const during = { records: 0, events: 0, heartbeats: 0, plain: 0, bytes: 0 };
    const iterators = new Map();
    // What the stream holds already: every shard read from its start (not timed into the buckets).
    const drainStarted = performance.now();
    say(`ingest: sustained: reading what the stream holds (${shards.length} shards, from TRIM_HORIZON)`);
    const drainProgress = setInterval(() => say(`ingest: sustained: ${count(before.records)} records read so far`), 10_000);
    try {
      await Promise.all(shards.map(async (shard) => {
        let iterator = (await kinesis.send(new GetShardIteratorCommand({ StreamName: EVENTS_STREAM, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
        for (;;) {
          const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: READ_LIMIT }));
          for (const r of out.Records) tally(code, r.Data, before);
          iterator = out.NextShardIterator;
          if (out.Records.length < READ_LIMIT) break;
        }
        iterators.set(shard.ShardId, iterator);
      }));
    } finally {
      clearInterval(drainProgress);
    }
    say(`ingest: sustained: the stream holds ${count(before.records)} records (${count(before.events)} events) before the load, read in ${sec(performance.now() - drainStarted)}; ${clients} clients POST ${count(size)}-event payloads back to back for ${sustainS} s`);

    const tpl = template(size);
    const posts = [];
    const reads = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
    const started = performance.now();
    const startedWall = Date.now();
    let loadDoneAt = Infinity;
    let loadDoneWall;
    let stopReading = false;
    let accepted = 0;
    const reader = Promise.all(shards.map(async (shard) => {
      let iterator = iterators.get(shard.ShardId);
      while (iterator && !stopReading) {
        const t = performance.now();
        const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: READ_LIMIT }));
        const took = performance.now() - t;
        let events = 0;
        for (const r of out.Records) events += tally(code, r.Data, during);
        reads.push({ at: t - started, ms: took, records: out.Records.length, events });
        iterator = out.NextShardIterator;
        if (out.Records.length < READ_LIMIT) {
          if (t > loadDoneAt) break; // asked after the last 202: this shard holds nothing more of the load
          await sleep(READ_IDLE_MS);
        }
      }
    }));
    const progress = setInterval(() => {
      const now = performance.now() - started;
      const recent = (xs) => xs.filter((x) => x.at >= now - 10_000);
      const p = recent(posts);
      const r = recent(reads);
      say(`ingest: sustained: ${sec(now)} of ${sustainS} s: ${count(accepted)} events accepted; last 10 s: ${perSec((p.filter((x) => x.ok).length * size) / 10)}, POST median ${ms(median(p.map((x) => x.ms)))}, GetRecords median ${ms(median(r.map((x) => x.ms)))} (${count(median(r.map((x) => x.records)))} records a call); stream records read ${count(during.records)}`);
    }, 10_000);
    let load;
    try {
      load = await closedLoop(clients, sustainS * 1000, async (client, n) => {
        await deliver({ agent, port, sdkKey: owner.sdkKey }, bodyAt(tpl, Date.now()), `bench-sustain-${n}-${randomUUID()}`, size, (at, t, status) => posts.push({ at: at - started, ms: t, ok: status >= 200 && status < 300 }));
        accepted += size;
        return size;
      });
    } finally {
      loadDoneAt = performance.now();
      loadDoneWall = Date.now();
      agent.destroy();
      if (!load) {
        // The load failed: stop the reader before the error goes up.
        stopReading = true;
        clearInterval(progress);
        await reader.catch(() => {});
      }
    }
    say(`ingest: sustained: load done (${count(accepted)} events in ${sec(load.ms)}); the reader catches up`);
    await reader;
    clearInterval(progress);
    // A new job's start, after the load (not to weigh on its buckets): positioned at the load's
    // first second (the stream as it was before it) and at its last seconds (the stream full).
    const seekBefore = await atTimestampMs(stack.kinesisEndpoint, shards, new Date(startedWall));
    const seekAfter = await atTimestampMs(stack.kinesisEndpoint, shards, new Date(loadDoneWall - 3000));
    say(`ingest: sustained: a new reader's AT_TIMESTAMP position: ${sec(seekBefore)} at the load's start, ${sec(seekAfter)} at its end`);

    const bucketMs = bucketS * 1000;
    const buckets = Array.from({ length: Math.floor((sustainS * 1000) / bucketMs) }, (_, b) => {
      const inside = (x) => x.at >= b * bucketMs && x.at < (b + 1) * bucketMs;
      const p = posts.filter(inside);
      const r = reads.filter(inside);
      return {
        posts: p.length, failed: p.filter((x) => !x.ok).length, rate: (p.filter((x) => x.ok).length * size) / bucketS,
        postMs: median(p.map((x) => x.ms)), postP90: pct(p.map((x) => x.ms), 90),
        reads: r.length, readMs: median(r.map((x) => x.ms)), readP90: pct(r.map((x) => x.ms), 90),
        recordsPerRead: median(r.filter((x) => x.records > 0).map((x) => x.records)), recordsRead: r.reduce((a, x) => a + x.records, 0),
      };
    });
    const first = buckets[0];
    const last = buckets.at(-1);
    const total = Object.fromEntries(Object.keys(before).map((k) => [k, before[k] + during[k]]));
    return {
      seconds: sustainS, clients, size, bucketS, buckets, accepted, payloads: load.payloads, loadMs: load.ms, shards: shards.length,
      retried: posts.filter((x) => !x.ok).length,
      postRatio: last.postMs / first.postMs, readRatio: last.readMs / first.readMs,
      before, during, total, seekBefore, seekAfter,
    };
  } finally {
    kinesis.destroy();
  }
}

/**
 * The section's control plane (bench/lake.mjs' pattern): its own port, data dir, streams and job
 * names, on the stack's emulator, Flink cluster and validator; the lake writer off.
 */
async function startControlPlane({ stack, admin, streams, say }) {
  const dataDir = join(stack.dataDir, 'bench-ingest');
  const logsDir = join(stack.dataDir, 'logs');
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(logsDir, { recursive: true });
  const log = createWriteStream(join(logsDir, 'bench-ingest-control-plane.log'));
  const child = spawn(process.execPath, [...CONTROL_PLANE_NODE_FLAGS, join(ROOT, 'control-plane/dist/main.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_NO_WARNINGS: '1',
      PORT: String(PORT),
      FLAGSTREAM_DATA_DIR: dataDir,
      FLAGSTREAM_ADMIN_KEY: admin,
      FLAGSTREAM_KINESIS_ENDPOINT: stack.kinesisEndpoint,
      FLAGSTREAM_FLINK_URL: stack.flinkUrl,
      FLAGSTREAM_VALIDATOR_URL: stack.validatorUrl,
      FLAGSTREAM_TARGET: 'local',
      FLAGSTREAM_EVENTS_STREAM: streams.events,
      FLAGSTREAM_RESULTS_STREAM: streams.results,
      // Its jobs share the stack's cluster: the stack's control plane must not take them for orphans.
      FLAGSTREAM_JOB_NAME_PREFIX: JOB_PREFIX,
      FLAGSTREAM_MAX_POOLS: '1',
      FLAGSTREAM_MAX_CUSTOM_POOLS: '0',
      FLAGSTREAM_HEALTH_INTERVAL_MS: '1000',
      FLAGSTREAM_LAKE: 'off',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (d) => {
    log.write(d);
    tail = (tail + d).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('exit', () => log.end());
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`ingest: the section's control plane exited while starting:\n${tail.slice(-3000)}`);
    const health = await fetch(`http://127.0.0.1:${PORT}/health`).catch(() => undefined);
    if (health?.status === 200) break;
    if (Date.now() - started > 60_000) {
      await stop();
      throw new Error(`ingest: the section's control plane did not answer /health within 60 s:\n${tail.slice(-3000)}`);
    }
    await sleep(300);
  }
  // Its events stream, created as it starts: ACTIVE before anything writes to it.
  const kinesis = kinesisClient(stack.kinesisEndpoint);
  try {
    for (;;) {
      const shards = await kinesis.send(new ListShardsCommand({ StreamName: streams.events })).then((o) => o.Shards ?? [], () => []);
      if (shards.length) break;
      if (Date.now() - started > 90_000) {
        await stop();
        throw new Error(`ingest: the section's events stream ${streams.events} has no shards 90 s after the start`);
      }
      await sleep(300);
    }
  } finally {
    kinesis.destroy();
  }
  say(`ingest: a control plane of its own on port ${PORT} (streams ${streams.events}, ${streams.results}; lake off), ready in ${sec(Date.now() - started)}`);
  return { pid: child.pid, stop };
}

/**
 * Runs the section on the stack; returns what ingestBlock writes. `settings` from ingestSettings().
 * @param {{ api: Function, say: Function, admin: string, stack: object, settings: object }} ctx
 */
export async function ingestBench({ api, say = console.log, admin, stack, settings = ingestSettings() }) {
  const code = dist();
  const stamp = Date.now().toString(36);
  const streams = { events: `flagstream-events-bench-ingest-${stamp}`, results: `flagstream-results-bench-ingest-${stamp}` };
  EVENTS_STREAM = streams.events;
  const loadAtStart = loadavg()[0];
  const started = Date.now();
  const cp = await startControlPlane({ stack, admin, streams, say });
  const port = PORT;
  try {
    const owner = await tenant(api, admin, 'bench-ingest');
    const e2eOwner = await tenant(api, admin, 'bench-ingest-e2e');
    // In this order: the end-to-end analysis' job starts on a nearly empty stream (kinesalite's
    // AT_TIMESTAMP scan), the flat part reads what the stream holds before it (little), and the
    // side-by-side rounds, which write the most, come last.
    const e2e = await endToEnd({ api, say, port, settings, owner: e2eOwner });
    const sustain = await sustained({ say, stack, port, settings, code, owner });
    say(`ingest: sustained: POST median last/first ${times(sustain.postRatio)}, GetRecords median last/first ${times(sustain.readRatio)}; the stream holds ${count(sustain.total.records)} records (${count(sustain.total.events)} events)`);
    say(`ingest: API vs bare PutRecords, payloads of ${settings.sizes.join(' and ')} events, ${settings.clients.join(', ')} clients, ${settings.rounds} rounds of ${settings.roundS} s each, interleaved`);
    const sides = await sideBySide({ say, stack, port, apiPid: cp.pid, settings, code, owner });
    for (const s of sides) say(`ingest: ${s.size}-event payloads: API ${perSec(s.api.apiRate)} (${s.api.clients} clients), bare ${perSec(s.bare.bareRate)} (${s.bare.clients} clients): ${times(s.ratio)}`);
    return { settings, sides, e2e, sustain, loadAtStart, loadAtEnd: loadavg()[0], minutes: (Date.now() - started) / 60_000 };
  } finally {
    await cp.stop();
    // Jobs left by a failure: this control plane's own, by their prefix.
    const jobs = await fetch(`${stack.flinkUrl}/jobs/overview`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.json()).catch(() => ({ jobs: [] }));
    for (const job of jobs.jobs ?? []) {
      if (job.name.startsWith(JOB_PREFIX) && ACTIVE.has(job.state)) await fetch(`${stack.flinkUrl}/jobs/${job.jid}?mode=cancel`, { method: 'PATCH' }).catch(() => undefined);
    }
    // Its streams leave the emulator (deleting every record of a full stream takes it a while).
    say('ingest: deleting the section\'s streams');
    const kinesis = kinesisClient(stack.kinesisEndpoint, 300_000);
    for (const name of [streams.events, streams.results]) {
      await kinesis.send(new DeleteStreamCommand({ StreamName: name, EnforceConsumerDeletion: true })).catch((error) => say(`ingest: deleting stream ${name}: ${error.message}`));
    }
    kinesis.destroy();
  }
}

/** The section's block of docs/benchmarks.md; `machine` and `today` as run.mjs writes them for every section. */
export function ingestBlock(result, { today, machine }) {
  const { settings, sides, e2e, sustain } = result;
  const list = (xs, f) => xs.map(f).join(', ');
  const met = (ok) => (ok ? 'met' : '**not met**');
  const per1000 = (rounds, key) => median(rounds.map((r) => (r.cpu[key] / r.events) * 1000));
  const rows = [];
  for (const s of sides) {
    const records = s.levels[0].bare[0].recordsPerPayload;
    rows.push([
      `POST /bulk vs bare PutRecords of the same records, ${count(s.size)}-event payloads (${records} records of ≤ ${RECORD_BYTES / 1024} KiB each): each side's throughput, its best median over ${settings.clients.join(', ')} clients (${settings.rounds} + ${settings.rounds} rounds of ${settings.roundS} s each, interleaved)`,
      `API ${perSec(s.api.apiRate)} (at ${s.api.clients} clients); bare ${perSec(s.bare.bareRate)} (at ${s.bare.clients} clients) — API/bare ${times(s.ratio)}`,
      `≥ ${GOAL_RATIO}×: ${met(s.ratio >= GOAL_RATIO)}`,
    ]);
    for (const level of s.levels) {
      const pairs = level.api.map((r, i) => r.rate / level.bare[i].rate);
      const retried = level.api.reduce((x, r) => x + r.retried, 0);
      rows.push([
        `… ${level.clients} clients each`,
        `API median ${perSec(level.apiRate)} (${list(level.api, (r) => perSec(r.rate))}); bare median ${perSec(level.bareRate)} (${list(level.bare, (r) => perSec(r.rate))}) — ${times(level.apiRate / level.bareRate)} (rounds side by side: ${list(pairs, times)})${retried ? `; ${retried} POSTs answered non-2xx and sent again` : ''}`,
        '—',
      ]);
    }
    const cpuAt = s.api;
    rows.push([
      `… per call, and CPU per 1,000 events (${count(s.size)}-event payloads, ${cpuAt.clients} clients)`,
      `POST median ${ms(median(cpuAt.api.map((r) => r.postMs)))}; the API's PutRecords: ${count(median(cpuAt.api.map((r) => r.recordsPerCall)))} records a call, mean ${ms(median(cpuAt.api.map((r) => r.callMs)))} (at most ${WRITE_CONCURRENCY} at once); bare PutRecords median ${ms(median(cpuAt.bare.map((r) => r.callMs)))} (${records} records a call, ${cpuAt.clients} at once). CPU, API rounds: control plane ${ms(per1000(cpuAt.api, 'api'))}, emulator ${ms(per1000(cpuAt.api, 'emulator'))}, bench ${ms(per1000(cpuAt.api, 'bench'))}; bare rounds: emulator ${ms(per1000(cpuAt.bare, 'emulator'))}, bench ${ms(per1000(cpuAt.bare, 'bench'))}, control plane ${ms(per1000(cpuAt.bare, 'api'))}`,
      '—',
    ]);
  }
  const accepted = e2e.accepted / (e2e.acceptMs / 1000);
  const endToEnd = e2e.accepted / (e2e.e2eMs / 1000);
  rows.push([
    `End to end: one 10s flag-evaluations analysis (RUNNING after ${sec(e2e.deployMs)}, counting a first one-summary payload after ${sec(e2e.readingMs)}), then ${e2e.clients} clients POSTing ${count(e2e.size)}-event payloads for ${e2e.seconds} s`,
    `accepted (2xx) ${perSec(accepted)} (${count(e2e.accepted)} events, first POST → last 202 ${sec(e2e.acceptMs)}); end to end ${perSec(endToEnd)} (first POST → the results count every accepted evaluation: ${sec(e2e.e2eMs)}, ${sec(e2e.lagMs)} after the last 202)${e2e.retried ? `; ${e2e.retried} POSTs sent again` : ''}`,
    `≥ ${count(GOAL_E2E)}/s end to end: ${met(endToEnd >= GOAL_E2E)}`,
  ]);
  rows.push([
    '… exact: the rows against the accepted summaries\' counters, per window, flag and variation',
    `exact: ${count(e2e.evaluations)} evaluations (and the first payload's one) in ${e2e.rows} rows (the section fails otherwise)`,
    'exact: met',
  ]);
  const seek = (x) => (Number.isFinite(x) ? sec(x) : 'no answer within 300 s');
  const flatOk = sustain.postRatio <= GOAL_FLAT && sustain.readRatio <= GOAL_FLAT;
  const bucket = sustain.bucketS === 60 ? 'minute' : `${sustain.bucketS} s`;
  rows.push([
    `Flat: ${sustain.clients} clients POSTing ${count(sustain.size)}-event payloads back to back for ${sustain.seconds} s (${perSec(sustain.accepted / (sustain.loadMs / 1000))} on average), a reader tailing the ${sustain.shards} shards (GetRecords, Limit ${READ_LIMIT})`,
    `last/first ${bucket}'s median: POST ${times(sustain.postRatio)} (${ms(sustain.buckets[0].postMs)} → ${ms(sustain.buckets.at(-1).postMs)}), GetRecords ${times(sustain.readRatio)} (${ms(sustain.buckets[0].readMs)} → ${ms(sustain.buckets.at(-1).readMs)})${sustain.retried ? `; ${sustain.retried} POSTs answered non-2xx and sent again` : ''}`,
    `≤ ${GOAL_FLAT}×: ${met(flatOk)}`,
  ]);
  rows.push([
    '… what the stream holds at the end (every shard read whole)',
    `${count(sustain.total.records)} records, ${(sustain.total.bytes / 2 ** 20).toFixed(0)} MiB: ${count(sustain.total.events)} events, ${count(sustain.total.heartbeats)} heartbeats${sustain.total.plain ? `, ${count(sustain.total.plain)} other plain records` : ''} (before the load: ${count(sustain.before.records)} records, ${count(sustain.before.events)} events); a new reader's AT_TIMESTAMP position on every shard (each new Flink job's start; a binary search in scripts/kinesis-emulator.cjs), asked after the load: ${seek(sustain.seekBefore)} for the load's start, ${seek(sustain.seekAfter)} for its last seconds; the reader got all ${count(sustain.accepted)} events accepted meanwhile: ${sustain.during.events >= sustain.accepted ? 'yes' : `**no** (${count(sustain.during.events)})`}`,
    '—',
  ]);
  const perBucket = sustain.buckets.map((b, i) => `| ${i + 1} | ${count(b.posts)}${b.failed ? ` (${b.failed} non-2xx)` : ''} | ${perSec(b.rate)} | ${ms(b.postMs)} (p90 ${ms(b.postP90)}) | ${count(b.reads)} | ${ms(b.readMs)} (p90 ${ms(b.readP90)}) | ${Number.isFinite(b.recordsPerRead) ? count(b.recordsPerRead) : 0} |`);
  return `${INGEST_START}
## Events API: throughput into the stream

Measured on ${today}, ${machine}, load average ${result.loadAtStart.toFixed(1)} when it began and ${result.loadAtEnd.toFixed(1)} at its end (bench/ingest.mjs, ${result.minutes.toFixed(0)} min).
A control plane of its own (its own data dir, events and results streams of ${sustain.shards} shards, job names; its lake
writer off: on AWS the lake is a Lambda of its own) on the stack's emulator (kinesalite) and Flink cluster, its
streams deleted after; all on one machine, the bench's clients too, sharing its cores.
Payloads are the Node SDK's recorded /bulk bodies (test/fixtures: index, feature, custom, identify and
summary events) repeated to the size, with fresh times; every POST carries an X-LaunchDarkly-Payload-ID
as the SDKs send it, and one the API does not accept goes again with the same body and ID.

- **API vs bare PutRecords**: what the events API costs over writing the stream directly. The bare
  side puts exactly the records the API writes for such a payload (the control plane's built
  encodePayload and packEvents, as EventsService.ingest calls them: KPL aggregated records of ≤ ${RECORD_BYTES / 1024} KiB, a random UUID
  partition key each), one payload's records per PutRecords call, with the AWS SDK v3 client as the
  control plane sets it up (HTTP/1.1; its protocol, the SDK's awsJson1_1 with a native base64 encoder), straight to the emulator. The API side POSTs the same
  payloads to /bulk: parse, hash, validate and encode, pack, and its writer's shared queue (at
  most ${WRITE_CONCURRENCY} PutRecords calls at once, several payloads' records a call), answering 202 once every
  record landed. Each side POSTs or puts from a pool of payloads built at the round's start. The
  same number of clients each, each as fast as it is answered, at ${settings.clients.join(', ')} clients; rounds
  alternate bare, API, bare, API, …; events/s = events of the finished payloads / the round's time.
  A side's throughput is its best median over those numbers of clients: a closed loop of few
  clients measures how long each waits for its answer as much as how much gets through, and the
  API, which answers only once every record is in the stream, needs more payloads in flight than
  bare PutRecords to reach its plateau (the rows by clients below show where each side levels off).
- **End to end**: through POST /bulk, the stream, the analysis' Flink job and the results API
  (polled every 250 ms after the last 202), once the analysis counted a first one-summary payload
  (its job's start is not timed): the accepted events / the time from the first POST until the
  results count every accepted evaluation (the summaries' counters), then, 3 s on, checked exact
  per window, flag and variation.
- **Flat**: the same API and stream as the stream fills: every POST timed, and a reader tailing
  every shard (GetRecords Limit ${READ_LIMIT}, following NextShardIterator, ${READ_IDLE_MS} ms between calls that got
  less than the limit), every call timed, in buckets of ${sustain.bucketS} s from the first POST; the stream
  was read whole before the load (its backlog) and the reader caught up after it.
- Run in the order end to end, flat, API vs bare: the side-by-side rounds write the most, and
  the end-to-end analysis starts on a small stream.

| What | Measured | Goal (issue 9) |
|---|---|---|
${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}

Flat, per ${bucket}:

| ${bucket === 'minute' ? 'Minute' : 'Bucket'} | POSTs | Accepted events/s | POST median | GetRecords calls | GetRecords median | Records a call (calls that got any) |
|---|---|---|---|---|---|---|
${perBucket.join('\n')}
${INGEST_END}`;
}
