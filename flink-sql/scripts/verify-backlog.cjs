#!/usr/bin/env node
// "Backlog" end-to-end check: does a job that starts BEHIND (replay / redeploy after downtime /
// restore) count every event, when the shards of the events stream are drained at different speeds?
//
// 1. creates a fresh 2-shard events stream + 1-shard results stream (unique names per run);
// 2. writes BACKLOG_S (default 60) seconds of backlog in real time: every 2 s a heartbeat to each
//    shard (ExplicitHashKey = the shard's start hash, eventTime = write time) and two summary
//    events to shard B only (eventTime = write time and write time - 1 s), so shard B holds 3x
//    the records of shard A for the same minute;
// 3. THEN starts one job per connector (default both 'kinesis' and 'flagstream-kinesis'), each
//    reading the events stream from AT_TIMESTAMP = before the backlog, 10 s tumbling windows,
//    submitted via /jars/upload + /jars/:id/run like verify-e2e.cjs; heartbeats keep flowing;
// 4. reads the results stream and compares every window's sum with what was written.
// Exit 0 only if every connector listed in --must-be-exact (default flagstream-kinesis) got every
// window exact. The legacy 'kinesis' source's result is reported (lost/short windows), not asserted.
//
// To make the shards' drain speeds differ deterministically, both jobs read with
// 'scan.shard.getrecords.maxrecordcount' = MAX_RECORDS (default 10; --max-records N, 0 = connector
// default 10000): each GetRecords call then covers 20 s of shard A but ~7 s of shard B.
//
// Needs: the emulator (scripts/kinesis-emulator.cjs) on KINESIS_ENDPOINT, LocalFlink (FLINK_URL, VALIDATOR_URL), runner jar.
//   KINESIS_ENDPOINT=http://127.0.0.1:34568 FLINK_URL=http://127.0.0.1:38081 VALIDATOR_URL=http://127.0.0.1:38082 \
//     node flink-sql/scripts/verify-backlog.cjs [--connectors kinesis,flagstream-kinesis] [--max-records 10]
//     [--backlog-s 60] [--must-be-exact flagstream-kinesis]
'use strict';
const fs = require('fs');
const path = require('path');
const { KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, ListShardsCommand,
  PutRecordsCommand, GetShardIteratorCommand, GetRecordsCommand } = require('@aws-sdk/client-kinesis');
const { NodeHttpHandler } = require('@smithy/node-http-handler');

const ENDPOINT = process.env.KINESIS_ENDPOINT || 'http://127.0.0.1:4568';
const FLINK = process.env.FLINK_URL || 'http://127.0.0.1:8081';
const VALIDATOR = process.env.VALIDATOR_URL || 'http://127.0.0.1:8082';
const JAR = process.env.RUNNER_JAR || path.join(__dirname, '..', 'runner', 'target', 'flagstream-runner.jar');
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt; };
const CONNECTORS = arg('--connectors', 'kinesis,flagstream-kinesis').split(',');
const MUST_BE_EXACT = arg('--must-be-exact', 'flagstream-kinesis').split(',').filter(Boolean);
const MAX_RECORDS = Number(arg('--max-records', '10'));
const BACKLOG_MS = Number(arg('--backlog-s', '60')) * 1000;
const WINDOW_MS = 10000;

const kinesis = new KinesisClient({
  region: 'us-east-1', endpoint: ENDPOINT,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  requestHandler: new NodeHttpHandler(), // HTTP/1.1
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');
const iso = (ms) => new Date(ms).toISOString();
const log = (...a) => console.log(iso(Date.now()).slice(11, 23), ...a);

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

const aws = `'aws.region'='us-east-1', 'aws.endpoint'='${ENDPOINT}', 'aws.credentials.provider'='BASIC',
  'aws.credentials.basic.accesskeyid'='local', 'aws.credentials.basic.secretkey'='local'`;

function analysisSql(connector, analysisId, eventsStream, resultsStream, startSec) {
  const maxRecords = MAX_RECORDS > 0 ? `'scan.shard.getrecords.maxrecordcount'='${MAX_RECORDS}',` : '';
  return `CREATE TEMPORARY TABLE events (
  tenant STRING, environment STRING, payloadId STRING, eventIndex INT, kind STRING, eventTime BIGINT,
  \`key\` STRING, variation INT,
  features MAP<STRING, ROW<counters ARRAY<ROW<variation INT, version INT, \`count\` BIGINT, \`unknown\` BOOLEAN>>>>,
  ts AS TO_TIMESTAMP_LTZ(eventTime, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND(2)
) WITH ('connector'='${connector}', 'stream'='${eventsStream}', ${aws},
  'scan.stream.initpos'='AT_TIMESTAMP', 'scan.stream.initpos-timestamp'='${startSec}', ${maxRecords}
  'format'='json', 'json.ignore-parse-errors'='true', 'json.fail-on-missing-field'='false');
CREATE TEMPORARY TABLE results (analysisId STRING, windowStart TIMESTAMP_LTZ(3), windowEnd TIMESTAMP_LTZ(3), flagKey STRING, variation INT, evaluations BIGINT)
WITH ('connector'='kinesis', 'stream'='${resultsStream}', ${aws},
  'aws.http.protocol.version'='HTTP1_1', 'sink.partitioner'='random', 'sink.flush-buffer.timeout'='1000',
  'format'='json', 'json.timestamp-format.standard'='ISO-8601');
INSERT INTO results
SELECT FROM_BASE64('${b64(analysisId)}'), window_start, window_end, f.flagKey, c.variation, SUM(c.\`count\`)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND)) AS e
CROSS JOIN UNNEST(e.features) AS f(flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c(variation, version, \`count\`, \`unknown\`)
WHERE e.tenant = FROM_BASE64('${b64('acme')}') AND e.kind = 'summary'
GROUP BY window_start, window_end, f.flagKey, c.variation;
`;
}

async function flink(method, p, body) {
  const res = await fetch(FLINK + p, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const j = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${p} -> ${res.status} ${JSON.stringify(j).slice(0, 2000)}`);
  return j;
}

// sum of the window operators' numLateRecordsDropped metric over the job's vertices
async function lateDropped(jobId) {
  let sum = 0;
  for (const v of (await flink('GET', `/jobs/${jobId}`)).vertices) {
    const ids = (await flink('GET', `/jobs/${jobId}/vertices/${v.id}/metrics`)).map((m) => m.id).filter((id) => /LateRecordsDropped$/.test(id));
    if (!ids.length) continue;
    for (const m of await flink('GET', `/jobs/${jobId}/vertices/${v.id}/metrics?get=${ids.map(encodeURIComponent).join(',')}`)) sum += Number(m.value);
  }
  return sum;
}

const summary = (payloadId, eventTime, count) => ({
  tenant: 'acme', environment: 'production', payloadId, eventIndex: 0, kind: 'summary', eventTime,
  features: { 'new-checkout': { counters: [{ variation: 1, version: 1, count }] } } });

async function main() {
  const run = Date.now();
  const eventsStream = `backlog-events-${run}`, resultsStream = `backlog-results-${run}`;
  const shards = await ensureStream(eventsStream, 2);
  const resultShards = await ensureStream(resultsStream, 1);
  const [shardA, shardB] = shards;
  const startSec = Math.floor(Date.now() / 1000) - 1;
  log(`streams ${eventsStream} (${shards.map((s) => s.ShardId).join(', ')}), ${resultsStream}; AT_TIMESTAMP ${startSec}`);

  // --- backlog (and later live) writer
  const expect = {}; // windowStart ms -> sum
  let written = 0, summaries = 0, n = 0, withSummaries = true;
  const put = (shard, rec) => ({ PartitionKey: 'k', ExplicitHashKey: shard.HashKeyRange.StartingHashKey, Data: Buffer.from(JSON.stringify(rec)) });
  async function tick() {
    const now = Date.now();
    const recs = [put(shardA, { kind: 'heartbeat', tenant: '', eventTime: now }), put(shardB, { kind: 'heartbeat', tenant: '', eventTime: now })];
    if (withSummaries) {
      for (const et of [now, now - 1000]) {
        const count = ++n; // 1, 2, 3, ...: every event distinguishable in the sums
        recs.push(put(shardB, summary(`p${n}`, et, count)));
        const ws = Math.floor(et / WINDOW_MS) * WINDOW_MS;
        expect[ws] = (expect[ws] || 0) + count;
        summaries++;
      }
    }
    const r = await kinesis.send(new PutRecordsCommand({ StreamName: eventsStream, Records: recs }));
    if (r.FailedRecordCount) throw new Error(`PutRecords failed ${r.FailedRecordCount}`);
    written += recs.length;
  }
  const backlogStart = Date.now();
  await tick();
  const writer = setInterval(() => tick().catch((e) => log('put error', e.message)), 2000);
  log(`writing ${BACKLOG_MS / 1000} s of backlog ...`);
  await sleep(BACKLOG_MS);
  withSummaries = false; // from now on heartbeats only (keep the watermark moving)
  await sleep(100);
  log(`backlog written: ${written} records, ${summaries} summaries on shard B only; expected sums per window:`,
    JSON.stringify(Object.fromEntries(Object.entries(expect).map(([k, v]) => [iso(Number(k)).slice(11, 19), v]))));

  // --- start one job per connector
  const form = new FormData();
  form.append('jarfile', new Blob([fs.readFileSync(JAR)], { type: 'application/java-archive' }), 'flagstream-runner.jar');
  const up = await (await fetch(`${FLINK}/jars/upload`, { method: 'POST', body: form })).json();
  const jarId = path.basename(up.filename);
  const jobs = {};
  for (const connector of CONNECTORS) {
    const analysisId = `backlog-${connector}-${run}`;
    const sql = analysisSql(connector, analysisId, eventsStream, resultsStream, startSec);
    const v = await (await fetch(`${VALIDATOR}/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql }) })).json();
    if (!v.valid) throw new Error(`${connector}: validator says invalid: ${v.error}`);
    const pushed = !/WatermarkAssigner/.test(v.plan.slice(v.plan.indexOf('== Optimized Physical Plan ==')));
    const r = await flink('POST', `/jars/${jarId}/run`, { programArgsList: ['--sql-base64', b64(sql), '--job-name', analysisId] });
    jobs[analysisId] = { connector, jobId: r.jobid, got: {} };
    log(`${connector}: valid (watermark ${pushed ? 'pushed into the source' : 'assigned by a WatermarkAssigner after the source'}), job ${r.jobid}`);
  }
  const t0 = Date.now();
  for (const j of Object.values(jobs)) {
    for (;;) {
      const s = await flink('GET', `/jobs/${j.jobId}`);
      if (s.state === 'RUNNING' && s.vertices.every((x) => x.status === 'RUNNING')) break;
      if (['FAILED', 'CANCELED', 'FINISHED'].includes(s.state)) throw new Error(`job ${s.state}: ${JSON.stringify(await flink('GET', `/jobs/${j.jobId}/exceptions`)).slice(0, 3000)}`);
      await sleep(200);
    }
  }
  log(`all jobs RUNNING after ${Date.now() - t0} ms`);

  // --- read results: wait until every job has emitted the last backlog window (or a deadline)
  const windows = Object.keys(expect).map(Number).sort((a, b) => a - b);
  const lastWindow = windows[windows.length - 1];
  let it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: resultsStream, ShardId: resultShards[0].ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
  const deadline = Math.max(Date.now(), lastWindow + WINDOW_MS) + 60000;
  const done = () => Object.values(jobs).every((j) => j.got[lastWindow] !== undefined);
  let quietUntil = null;
  while (Date.now() < deadline) {
    const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
    it = r.NextShardIterator;
    for (const rec of r.Records) {
      const row = JSON.parse(Buffer.from(rec.Data).toString('utf8'));
      const j = jobs[row.analysisId];
      if (!j) continue;
      const ws = Date.parse(row.windowStart);
      j.got[ws] = (j.got[ws] || 0) + row.evaluations;
    }
    if (done() && quietUntil === null) quietUntil = Date.now() + 5000; // a few more seconds for stragglers
    if (quietUntil !== null && Date.now() > quietUntil) break;
    await sleep(500);
  }
  clearInterval(writer);

  // --- report
  const total = windows.reduce((s, w) => s + expect[w], 0);
  console.log(`\nwindow (UTC)  expected  ${CONNECTORS.map((c) => c.padStart(20)).join('')}`);
  for (const w of windows) {
    console.log(`${iso(w).slice(11, 19)}      ${String(expect[w]).padStart(6)}  ${Object.values(jobs).map((j) => {
      const g = j.got[w];
      return (g === undefined ? 'LOST' : g === expect[w] ? `${g} ok` : `${g} SHORT`).padStart(20);
    }).join('')}`);
  }
  let ok = true;
  for (const j of Object.values(jobs)) {
    const exact = windows.filter((w) => j.got[w] === expect[w]).length;
    const lost = windows.filter((w) => j.got[w] === undefined).length;
    const counted = windows.reduce((s, w) => s + (j.got[w] || 0), 0);
    log(`${j.connector}: ${exact}/${windows.length} windows exact, ${lost} lost, ${windows.length - exact - lost} short; counted ${counted}/${total};`
      + ` late records dropped by the window operator: ${await lateDropped(j.jobId)}`);
    if (MUST_BE_EXACT.includes(j.connector) && exact !== windows.length) ok = false;
    await flink('PATCH', `/jobs/${j.jobId}?mode=cancel`).catch((e) => log('cancel', e.message));
  }
  log(ok ? 'BACKLOG OK' : 'BACKLOG MISMATCH');
  process.exit(ok ? 0 : 1);
}
main().catch((e) => { console.error(e); process.exit(1); });
