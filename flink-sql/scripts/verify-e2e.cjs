#!/usr/bin/env node
// End-to-end check of the Flink side: the SQL the control plane generates (its generator and
// templates, loaded from the source tree) run on the local cluster against the local emulator (scripts/kinesis-emulator.cjs).
// Needs: the emulator on KINESIS_ENDPOINT, LocalFlink (REST on FLINK_URL, validator on
// VALIDATOR_URL), the runner jar built, `typescript` and `@aws-sdk/client-kinesis` in node_modules.
//   node flink-sql/scripts/verify-e2e.cjs [--keep-running]
// Fresh streams per run. Checks (docs/counting.md §2–§3): a summary counts once however often the
// stream delivers it; a summary with version 2^40 and variation 2^33 counts; an event an hour back
// (within the horizon) updates its old window's row ("d" of the old row, then "c" of the new one,
// version 1 → 2); a summary older than the horizon counts only in the late figure; progress per
// shard follows the heartbeats; every record is a Debezium envelope keyed by the analysis id; a row's
// dimensions and measure arrive in `fields`, the text of a JSON object (exactly flagKey, variation,
// evaluations for the default groupBy); a job stopped with a savepoint and restored from it goes on
// from its state (rows, dedup). The script is generateSql's: a pool of one member (generatePoolSql).
// Exit code 0 = OK.
'use strict';
const fs = require('fs');
const path = require('path');
const ROOT = path.join(__dirname, '..', '..');
const { KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, ListShardsCommand,
  PutRecordCommand, PutRecordsCommand, GetShardIteratorCommand, GetRecordsCommand } = require('@aws-sdk/client-kinesis');
const { NodeHttpHandler } = require('@smithy/node-http-handler');

const ENDPOINT = process.env.KINESIS_ENDPOINT || 'http://127.0.0.1:4568';
const FLINK = process.env.FLINK_URL || 'http://127.0.0.1:8081';
const VALIDATOR = process.env.VALIDATOR_URL || 'http://127.0.0.1:8082';
const JAR = process.env.RUNNER_JAR || path.join(__dirname, '..', 'runner', 'target', 'flagstream-runner.jar');
const KEEP = process.argv.includes('--keep-running');

// The generator is TypeScript: transpile on require (no build, no type check).
const ts = require('typescript');
require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 }, fileName: filename });
  module._compile(out.outputText, filename);
};
const SQL_DIR = path.join(ROOT, 'control-plane', 'src', 'analyses', 'sql');
const { generateSql } = require(path.join(SQL_DIR, 'sql-generator.ts'));
// settings, eventsSource, resultsSink, deduplicate, progress, poolInserts, kinds (flink-sql/templates)
const { loadTemplates } = require(path.join(SQL_DIR, 'templates.ts'));

const kinesis = new KinesisClient({
  region: 'us-east-1', endpoint: ENDPOINT,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  requestHandler: new NodeHttpHandler(), // HTTP/1.1, as the control plane speaks to the emulator
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log(new Date().toISOString().slice(11, 23), ...a);
const iso = (ms) => new Date(ms).toISOString();
const WINDOW_MS = 10_000;
const align = (ms, size = WINDOW_MS) => ms - (ms % size);

async function ensureStream(name, shards) {
  try { await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards })); }
  catch (e) { if (e.name !== 'ResourceInUseException') throw e; }
  for (;;) {
    const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    if (s.StreamDescriptionSummary.StreamStatus === 'ACTIVE') break;
    await sleep(300);
  }
  return (await kinesis.send(new ListShardsCommand({ StreamName: name }))).Shards;
}

async function validate(sql) {
  const t = Date.now();
  const r = await (await fetch(`${VALIDATOR}/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql }) })).json();
  return { ...r, ms: Date.now() - t };
}

async function flink(method, p, body) {
  const res = await fetch(FLINK + p, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const j = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${p} -> ${res.status} ${JSON.stringify(j).slice(0, 2000)}`);
  return j;
}

/** A record as the events API writes it (control-plane/src/events/event-record.ts). */
function summary(tenant, payloadId, eventIndex, eventTime, receivedAt, late, flags) {
  const features = {};
  for (const [key, counters] of Object.entries(flags)) {
    features[key] = { default: false, counters: counters.map(([variation, version, count]) => ({ value: variation === 1, variation, version, count })) };
  }
  return { kind: 'summary', tenant, environment: 'production', payloadId, eventIndex, eventTime, receivedAt, sdkTime: eventTime, late,
    startDate: eventTime - 5000, endDate: eventTime, features };
}

async function putAll(stream, records) {
  const r = await kinesis.send(new PutRecordsCommand({ StreamName: stream,
    Records: records.map((rec, i) => ({ PartitionKey: `${rec.payloadId}-${rec.eventIndex}-${i}`, Data: Buffer.from(JSON.stringify(rec)) })) }));
  if (r.FailedRecordCount) throw new Error(`${r.FailedRecordCount} records refused`);
}

/** Reads every shard of the results stream from the start; keeps the shard, partition key and record. */
function resultsReader(stream, shards) {
  const iterators = new Map();
  const seen = [];
  return {
    seen,
    async poll() {
      for (const s of shards) {
        let it = iterators.get(s.ShardId);
        if (!it) it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
        const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
        iterators.set(s.ShardId, r.NextShardIterator);
        for (const rec of r.Records) {
          const data = Buffer.from(rec.Data).toString('utf8');
          seen.push({ shard: s.ShardId, partitionKey: rec.PartitionKey, data, record: JSON.parse(data) });
        }
      }
    },
  };
}

const rowOf = (r) => (r.op === 'c' ? r.after : r.before);
/** A row's dimensions and measures: `fields` is the text of a JSON object (keys sorted by name by Flink). */
const fieldsOf = (row) => JSON.parse(row.fields);
/** The control plane's key of a row: window and dimensions (the measure left out). */
const rowKey = (row) => { const f = fieldsOf(row); return `${Date.parse(row.windowStart)}|${f.flagKey}|${f.variation}`; };

/** The changelog applied as the control plane does: "c" replaces by key, "d" is ignored. */
function fold(seen, type, key) {
  const state = {};
  for (const { record } of seen) if (record.op === 'c' && record.after.type === type) state[key(record.after)] = record.after;
  return state;
}

async function waitFor(reader, what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await reader.poll();
    if (check()) return true;
    if (Date.now() > deadline) { log(`TIMEOUT waiting for ${what}`); return false; }
    await sleep(500);
  }
}

async function stopWithSavepoint(jobId) {
  const t = Date.now();
  const trig = await flink('POST', `/jobs/${jobId}/stop`, { drain: false });
  for (;;) {
    const s = await flink('GET', `/jobs/${jobId}/savepoints/${trig['request-id']}`);
    if (s.status.id === 'COMPLETED') {
      if (s.operation['failure-cause']) throw new Error('stop failed: ' + JSON.stringify(s.operation['failure-cause']).slice(0, 2000));
      log(`stopped ${jobId} with savepoint ${s.operation.location} in ${Date.now() - t} ms`);
      return s.operation.location;
    }
    await sleep(200);
  }
}

async function main() {
  const runId = `an-${Date.now()}`;
  const eventsStream = `fe-events-${runId}`, resultsStream = `fe-results-${runId}`;
  const eventShards = await ensureStream(eventsStream, 2);
  const resultShards = await ensureStream(resultsStream, 2);
  const sql = generateSql(
    { id: runId, tenantKey: 'acme', environment: 'production', kind: 'flag-evaluations', generation: 3, params: { window: '10s' } },
    { region: 'us-east-1', endpoint: ENDPOINT, eventsStream, resultsStream, latenessHorizonSeconds: 3600, retentionHours: 24 },
    { at: new Date(Date.now() - 5000) }, loadTemplates());

  // --- validator: the generated script, and broken variants
  let v = await validate(sql);
  log(`validate generated: valid=${v.valid} in ${v.ms} ms`, v.valid ? '' : v.error);
  if (!v.valid) process.exit(1);
  // broken variants: the text replaced must occur in the generated script, and the validator must refuse it
  for (const [what, from, to] of [['unknown column', "WHERE kind = 'summary'", "WHERE kindd = 'summary'"],
    ['bad format', "'format' = 'debezium-json'", "'format' = 'debezium-jsonx'"]]) {
    if (!sql.includes(from)) { log(`FAIL the generated script has no ${JSON.stringify(from)} to break`); process.exit(1); }
    v = await validate(sql.replace(from, to));
    log(`validate ${what}: valid=${v.valid} in ${v.ms} ms\n  ${v.error}`);
    if (v.valid !== false) { log(`FAIL the validator accepted the ${what} variant`); process.exit(1); }
  }

  // --- submit through the REST API
  const form = new FormData();
  form.append('jarfile', new Blob([fs.readFileSync(JAR)], { type: 'application/java-archive' }), 'flagstream-runner.jar');
  let t = Date.now();
  const up = await (await fetch(`${FLINK}/jars/upload`, { method: 'POST', body: form })).json();
  const jarId = path.basename(up.filename);
  log(`uploaded ${jarId} in ${Date.now() - t} ms`);
  t = Date.now();
  const run = await flink('POST', `/jars/${jarId}/run`, { programArgsList: ['--sql-base64', Buffer.from(sql).toString('base64'), '--job-name', runId] });
  const jobId = run.jobid;
  for (;;) {
    const j = await flink('GET', `/jobs/${jobId}`);
    if (j.state === 'RUNNING' && j.vertices.every((x) => x.status === 'RUNNING')) break;
    if (['FAILED', 'CANCELED', 'FINISHED'].includes(j.state)) throw new Error(`job ${j.state}: ${JSON.stringify(await flink('GET', `/jobs/${jobId}/exceptions`)).slice(0, 3000)}`);
    await sleep(100);
  }
  log(`job ${jobId} + all tasks RUNNING ${Date.now() - t} ms after /jars/run`);

  // --- heartbeats to every shard, as the control plane writes them
  const hb = setInterval(() => {
    for (const s of eventShards) {
      kinesis.send(new PutRecordCommand({ StreamName: eventsStream, PartitionKey: 'hb', ExplicitHashKey: s.HashKeyRange.StartingHashKey,
        Data: Buffer.from(JSON.stringify({ kind: 'heartbeat', tenant: '', shard: s.ShardId, eventTime: Date.now() })) })).catch((e) => log('hb error', e.message));
    }
  }, 2000);
  await sleep(3000); // let the source start reading

  const reader = resultsReader(resultsStream, resultShards);
  const now = Date.now();
  const current = align(now), old = align(now - 3_600_000 + 30_000);
  const HUGE_VERSION = 2 ** 40, HUGE_VARIATION = 2 ** 33;
  const p1 = summary('acme', 'p1', 0, now, now, false, { 'new-checkout': [[0, 1, 13], [1, 1, 7]] });
  const phase1 = [
    p1,
    p1, // the stream delivers it twice: counts once
    summary('acme', 'p2', 0, now, now, false, { 'dark-mode': [[HUGE_VARIATION, HUGE_VERSION, 5]] }),
    summary('acme', 'p3', 0, old + 1000, now, false, { 'new-checkout': [[0, 1, 2]] }), // an hour back: its old window
    summary('acme', 'p4', 0, now - 2 * 3_600_000, now, true, { 'new-checkout': [[0, 1, 50]] }), // beyond the horizon: late
    summary('other', 'p9', 0, now, now, false, { 'new-checkout': [[0, 1, 1000]] }), // another tenant
  ];
  await putAll(eventsStream, phase1);
  log(`phase 1: ${phase1.length} records at ${iso(now)}; windows ${iso(current)} and ${iso(old)} (an hour back)`);
  const rows = () => fold(reader.seen, 'row', rowKey);
  let ok = await waitFor(reader, 'phase-1 rows', () => Object.keys(rows()).length >= 4 && Object.keys(fold(reader.seen, 'late', (r) => r.bucketStart)).length >= 1, 30_000);
  log(`phase 1 rows after ${Date.now() - now} ms`);

  // --- phase 2: a second event for the old window, and p1 once more
  const now2 = Date.now();
  await putAll(eventsStream, [summary('acme', 'p5', 0, old + 4000, now2, false, { 'new-checkout': [[0, 1, 10]] }), p1]);
  log('phase 2: one more event in the old window, p1 a third time');
  const oldKey = `${old}|new-checkout|0`;
  ok = (await waitFor(reader, 'the old window updated', () => rows()[oldKey]?.version === 2, 30_000)) && ok;
  log(`old window updated after ${Date.now() - now2} ms`);
  await sleep(5000);
  await reader.poll();
  clearInterval(hb);

  // --- checks
  const expected = {
    [`${current}|new-checkout|0`]: 13, [`${current}|new-checkout|1`]: 7, [`${current}|dark-mode|${HUGE_VARIATION}`]: 5, [oldKey]: 12,
  };
  const got = Object.fromEntries(Object.entries(rows()).map(([k, r]) => [k, fieldsOf(r).evaluations]));
  const check = (cond, what) => { log(`${cond ? 'OK  ' : 'FAIL'} ${what}`); ok = ok && cond; };
  check(JSON.stringify(Object.keys(got).sort().map((k) => [k, got[k]])) === JSON.stringify(Object.keys(expected).sort().map((k) => [k, expected[k]])),
    `rows ${JSON.stringify(got)} = ${JSON.stringify(expected)}`);
  const oldChanges = reader.seen.map((s) => s.record).filter((r) => r.after?.type !== 'progress' && rowOf(r).type === 'row' && Date.parse(rowOf(r).windowStart) === old);
  const oldLog = oldChanges.map((r) => [r.op, fieldsOf(rowOf(r)).evaluations, rowOf(r).version]);
  check(JSON.stringify(oldLog) === JSON.stringify([['c', 2, 1], ['d', 2, 1], ['c', 12, 2]]), `old window changelog ${JSON.stringify(oldLog)}`);
  const rowRecords = reader.seen.map((s) => s.record).filter((r) => rowOf(r).type === 'row');
  check(rowRecords.length > 0 && rowRecords.every((r) => typeof rowOf(r).fields === 'string'
    && Object.keys(fieldsOf(rowOf(r))).sort().join() === 'evaluations,flagKey,variation'
    && Object.keys(rowOf(r)).join() === 'analysisId,generation,type,windowStart,windowEnd,fields,version'),
    `every row (${rowRecords.length} records): analysisId, generation, type, windowStart, windowEnd, fields, version; fields = JSON text of exactly flagKey, variation, evaluations`);
  check(reader.seen.some((s) => s.record.op === 'c' && s.record.after.type === 'row' && s.record.after.fields.includes(`"variation":${HUGE_VARIATION}`)),
    `variation 2^33 written as the JSON number ${HUGE_VARIATION} in fields`);
  const late = fold(reader.seen, 'late', (r) => r.bucketStart);
  check(Object.values(late).length === 1 && Object.values(late)[0].lateEvents === 1 && Date.parse(Object.keys(late)[0]) === align(now, 60_000),
    `late ${JSON.stringify(late)}`);
  const progress = fold(reader.seen, 'progress', (r) => r.shard);
  check(eventShards.every((s) => progress[s.ShardId] && Date.parse(progress[s.ShardId].progressAt) > now2),
    `progress ${JSON.stringify(Object.fromEntries(Object.entries(progress).map(([k, r]) => [k, r.progressAt])))}`);
  check(reader.seen.every((s) => s.partitionKey === runId) && new Set(reader.seen.map((s) => s.shard)).size === 1,
    `${reader.seen.length} records, all with partition key ${runId}, on shard(s) ${[...new Set(reader.seen.map((s) => s.shard))]}`);
  check(reader.seen.every(({ record: r }) => Object.keys(r).join() === 'before,after,op'
    && ((r.op === 'c' && r.before === null && r.after) || (r.op === 'd' && r.after === null && r.before))
    && rowOf(r).analysisId === runId && rowOf(r).generation === 3), 'every record {"before", "after", "op"} with analysisId and generation 3');
  for (const type of ['row', 'progress', 'late']) {
    const first = reader.seen.find((s) => s.record.op === 'c' && s.record.after.type === type);
    log(`example ${type}: ${first?.data}`);
  }
  const update = reader.seen.find((s) => s.record.op === 'd' && s.record.before.type === 'row');
  log(`example retraction: ${update?.data}`);

  // --- stop with a savepoint, restore from it (what a redeploy from a checkpoint does), and check
  // that the restored state goes on counting: the old window's row grows to version 3, and p1
  // delivered a fourth time is still a duplicate
  const savepoint = await stopWithSavepoint(jobId);
  const hb2 = setInterval(() => {
    for (const s of eventShards) {
      kinesis.send(new PutRecordCommand({ StreamName: eventsStream, PartitionKey: 'hb', ExplicitHashKey: s.HashKeyRange.StartingHashKey,
        Data: Buffer.from(JSON.stringify({ kind: 'heartbeat', tenant: '', shard: s.ShardId, eventTime: Date.now() })) })).catch((e) => log('hb error', e.message));
    }
  }, 2000);
  const now3 = Date.now();
  await putAll(eventsStream, [summary('acme', 'p6', 0, old + 6000, now3, false, { 'new-checkout': [[0, 1, 1]] }), p1]);
  log('while stopped: one more event in the old window, p1 a fourth time');
  t = Date.now();
  const restored = (await flink('POST', `/jars/${jarId}/run`, {
    programArgsList: ['--sql-base64', Buffer.from(sql).toString('base64'), '--job-name', runId], savepointPath: savepoint })).jobid;
  const before = reader.seen.length;
  ok = (await waitFor(reader, 'the restored job to update the old window', () => rows()[oldKey]?.version === 3, 60_000)) && ok;
  log(`restored job ${restored}: old window updated ${Date.now() - t} ms after /jars/run`);
  await sleep(4000);
  await reader.poll();
  clearInterval(hb2);
  const afterRestore = reader.seen.slice(before).map((s) => s.record);
  const oldRow = rows()[oldKey];
  check(oldRow !== undefined && fieldsOf(oldRow).evaluations === 13 && oldRow.version === 3, `old window after restore ${JSON.stringify(oldRow)}`);
  check(!afterRestore.some((r) => rowOf(r).type === 'row' && Date.parse(rowOf(r).windowStart) === current),
    'after restore: no change to the current window (p1 a duplicate for the restored dedup state)');
  check(afterRestore.some((r) => r.op === 'c' && r.after.type === 'progress'), 'after restore: progress goes on');
  if (!KEEP) await stopWithSavepoint(restored);
  log(ok ? 'RESULTS OK' : 'RESULTS MISMATCH');
  process.exit(ok ? 0 : 1);
}
main().catch((e) => { console.error(e); process.exit(1); });
