// `npm run bench`: measures the local stack side by side in one run and writes
// docs/benchmarks.md. Shared, noisy machines: read the medians and the ratios.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { bootstrap, ROOT } from '../scripts/bootstrap.mjs';
import { startStack } from '../scripts/local-stack.mjs';

const PORTS = { api: 28080, kinesis: 24568, kinesisTls: 24567, flink: 28081, validator: 28082 };
const ADMIN = 'fs-admin-bench';
const say = (line) => console.log(`[bench] ${line}`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const ms = (x) => `${x.toFixed(x < 10 ? 1 : 0)} ms`;
const s = (x) => `${(x / 1000).toFixed(1)} s`;

async function api(method, path, { key, body, raw, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${PORTS.api}${path}`, { method, headers: h, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
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

await bootstrap();
const dataDir = mkdtempSync(join(tmpdir(), 'flagstream-bench-'));
say('starting the stack');
const [readyMs, stack] = await timed(() => startStack({ dataDir, ports: PORTS, env: { FLAGSTREAM_ADMIN_KEY: ADMIN }, log: say }));
const rows = [];
let ok = false;
try {
  const tenant = (await api('POST', '/v1/tenants', { key: ADMIN, body: { key: 'bench', name: 'Bench' } })).body;
  const env = (await api('POST', '/v1/environments', { key: tenant.apiKey, body: { key: 'production' } })).body;
  const definition = { name: 'bench', kind: 'flag-evaluations', params: { window: '5s' } };

  // 1. Validation: the warm validator through the API, against a cold JVM per request.
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

  // 2. Ingest, interleaved: the same 100 events straight to the emulator with PutRecords,
  // through POST /bulk, and through POST /bulk gzip. The first is the stream's own cost.
  say('ingest: 100-event payloads, direct PutRecords vs /bulk plain vs /bulk gzip, interleaved');
  const kinesis = new KinesisClient({ region: 'us-east-1', endpoint: stack.kinesisEndpoint, credentials: { accessKeyId: 'l', secretAccessKey: 'l' }, requestHandler: new NodeHttpHandler() });
  const direct = [];
  const plain = [];
  const gzip = [];
  for (let i = 0; i < 20; i++) {
    const events = payload(100, Date.now());
    const body = JSON.stringify(events);
    const headers = { authorization: env.sdkKey, 'content-type': 'application/json' };
    const records = events.map((e, j) => ({ Data: Buffer.from(JSON.stringify({ ...e, tenant: 'bench-direct', eventIndex: j })), PartitionKey: `${i}:${j}` }));
    direct.push((await timed(() => kinesis.send(new PutRecordsCommand({ StreamName: 'flagstream-events', Records: records }))))[0]);
    plain.push((await timed(() => api('POST', '/bulk', { raw: body, headers })))[0]);
    gzip.push((await timed(() => api('POST', '/bulk', { raw: gzipSync(body), headers: { ...headers, 'content-encoding': 'gzip' } })))[0]);
  }
  kinesis.destroy();
  rows.push(['PutRecords of 100 events straight to the emulator (20 runs)', `median ${ms(median(direct))}, p90 ${ms(pct(direct, 90))}`]);
  rows.push(['POST /bulk, 100 events, plain (20 runs, interleaved)', `median ${ms(median(plain))}, p90 ${ms(pct(plain, 90))} — ${(median(plain) / median(direct)).toFixed(2)}× the direct write`]);
  rows.push(['POST /bulk, 100 events, gzip (20 runs, interleaved)', `median ${ms(median(gzip))} — ${(median(gzip) / median(plain)).toFixed(2)}× plain`]);

  // 3. POST → RUNNING, and 4. a window's rows after the window's end.
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
  const latencies = [];
  for (let i = 0; i < 3; i++) {
    const now = Date.now();
    await api('POST', '/bulk', { raw: JSON.stringify(payload(10, now)), headers: { authorization: env.sdkKey } });
    const windowEnd = Math.floor(now / 5000) * 5000 + 5000;
    const windowStart = new Date(windowEnd - 5000).toISOString();
    await until(async () => (await api('GET', `/v1/analyses/${ids[0]}/results?from=${windowStart}`, { key: tenant.apiKey })).body.rows.some((r) => r.windowStart === windowStart), 60_000);
    latencies.push(Date.now() - windowEnd);
  }
  rows.push(["A window's rows in the API after the window ends, no later event (3 windows)", `median ${s(median(latencies))} (heartbeat 2 s, lateness 5 s, sink flush 1 s)`]);

  rows.push(['Stack start to ready (`npm start` after the build)', `${s(readyMs)} (emulator ${s(stack.timings.emulator)}, Flink ${s(stack.timings.flink)}, validator warm-up ${s(stack.timings.validator)})`]);
  rows.push(['Memory after the run, 3 jobs deployed', `Flink + validator JVM ${rssMiB(stack.pids.flink).toFixed(0)} MiB, control plane ${rssMiB(stack.pids['control-plane']).toFixed(0)} MiB, emulator ${rssMiB(stack.pids.kinesis).toFixed(0)} MiB (RSS)`]);
  ok = true;
} finally {
  await stack.stop();
  if (ok) rmSync(dataDir, { recursive: true, force: true });
  else say(`logs kept in ${join(dataDir, 'logs')}`);
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const java = spawnSync('java', ['-version'], { encoding: 'utf8' }).stderr.split('\n')[0];
const machine = `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${java}`;
const text = `# Benchmarks

Written by \`npm run bench\` (bench/run.mjs) on ${new Date().toISOString().slice(0, 10)}.
Machine: ${machine}. Shared and noisy: read medians and ratios, not single times.

| What | Measured |
|---|---|
${rows.map(([a, b]) => `| ${a} | ${b} |`).join('\n')}

Known limit of the local stack, measured by hand on 2026-11-25 (not by this script):
the emulator (kinesis-local) slows down as its streams fill. One PutRecords of 500
records took 0.4 s on an empty stream and 3–5 s (median 3.1 s) once the stream held
20,000 records, with and without its persistence. The events API adds 5–10 % to the
emulator's own time (the ratio above), so ingest figures here measure the emulator,
not Flagstream; the events API at scale needs the real Kinesis or a faster emulator.
`;
writeFileSync(join(ROOT, 'docs/benchmarks.md'), text);
console.log(text);
