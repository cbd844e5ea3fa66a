#!/usr/bin/env node
// End-to-end check of the Flink side against kinesis-mock + the local cluster/validator.
// Needs: emulator on KINESIS_ENDPOINT (default http://127.0.0.1:4568), LocalFlink running
// (REST 8081, validator 8082), runner jar built. Uses @aws-sdk/client-kinesis over HTTP/1.1.
//   node flink-sql/scripts/verify-e2e.cjs [--dedup] [--keep-running]
'use strict';
const fs = require('fs');
const path = require('path');
const { KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, ListShardsCommand,
  PutRecordCommand, PutRecordsCommand, GetShardIteratorCommand, GetRecordsCommand } = require('@aws-sdk/client-kinesis');
const { NodeHttpHandler } = require('@smithy/node-http-handler');

const ENDPOINT = process.env.KINESIS_ENDPOINT || 'http://127.0.0.1:4568';
const FLINK = process.env.FLINK_URL || 'http://127.0.0.1:8081';
const VALIDATOR = process.env.VALIDATOR_URL || 'http://127.0.0.1:8082';
const JAR = process.env.RUNNER_JAR || path.join(__dirname, '..', 'runner', 'target', 'flagstream-runner.jar');
const DEDUP = process.argv.includes('--dedup');
const KEEP = process.argv.includes('--keep-running');

const kinesis = new KinesisClient({
  region: 'us-east-1', endpoint: ENDPOINT,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  requestHandler: new NodeHttpHandler(), // HTTP/1.1: kinesis-mock's HTTP/2 upsets clients
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');
const log = (...a) => console.log(new Date().toISOString().slice(11, 23), ...a);

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

const connOpts = (stream) => `'connector'='kinesis', 'stream'='${stream}', 'aws.region'='us-east-1',
  'aws.endpoint'='${ENDPOINT}', 'aws.credentials.provider'='BASIC',
  'aws.credentials.basic.accesskeyid'='local', 'aws.credentials.basic.secretkey'='local'`;

function analysisSql(analysisId, tenant, startSec, { dedup = false } = {}) {
  const ddl = `CREATE TABLE events (
  tenant STRING, environment STRING, payloadId STRING, eventIndex INT, kind STRING, eventTime BIGINT,
  features MAP<STRING, ROW<counters ARRAY<ROW<variation INT, version INT, \`count\` BIGINT, \`unknown\` BOOLEAN>>>>,
  ts AS TO_TIMESTAMP_LTZ(eventTime, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (${connOpts('flagstream-events')},
  'scan.stream.initpos'='AT_TIMESTAMP', 'scan.stream.initpos-timestamp'='${startSec}',
  'format'='json', 'json.ignore-parse-errors'='true', 'json.fail-on-missing-field'='false');
CREATE TABLE results (analysisId STRING, windowStart TIMESTAMP_LTZ(3), windowEnd TIMESTAMP_LTZ(3), flagKey STRING, variation INT, evaluations BIGINT)
WITH (${connOpts('flagstream-results')},
  'aws.http.protocol.version'='HTTP1_1', 'sink.partitioner'='random', 'sink.flush-buffer.timeout'='1000',
  'format'='json', 'json.timestamp-format.standard'='ISO-8601');
`;
  const aid = `FROM_BASE64('${b64(analysisId)}')`, ten = `FROM_BASE64('${b64(tenant)}')`;
  if (!dedup) {
    return ddl + `INSERT INTO results
SELECT ${aid}, window_start, window_end, f.flagKey, c.variation, SUM(c.\`count\`)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND)) AS e
CROSS JOIN UNNEST(e.features) AS f(flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c(variation, version, \`count\`, \`unknown\`)
WHERE e.tenant = ${ten} AND e.kind = 'summary'
GROUP BY window_start, window_end, f.flagKey, c.variation;
`;
  }
  // window deduplication on (payloadId, eventIndex) before the aggregation
  return ddl + `INSERT INTO results
SELECT ${aid}, window_start, window_end, f.flagKey, c.variation, SUM(c.\`count\`)
FROM (
  SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, payloadId, eventIndex ORDER BY ts) AS rn
    FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    WHERE tenant = ${ten} AND kind = 'summary'
  ) WHERE rn = 1
) AS e
CROSS JOIN UNNEST(e.features) AS f(flagKey, flag)
CROSS JOIN UNNEST(f.flag.counters) AS c(variation, version, \`count\`, \`unknown\`)
GROUP BY window_start, window_end, f.flagKey, c.variation;
`;
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

function summary(tenant, payloadId, eventIndex, now, trueCount, falseCount) {
  return { tenant, environment: 'production', payloadId, eventIndex, receivedAt: now + 2, eventTime: now, kind: 'summary',
    startDate: now - 2, endDate: now,
    features: { 'new-checkout': { default: false, counters: [
      { value: false, count: falseCount, variation: 0, version: 1 }, { value: true, count: trueCount, variation: 1, version: 1 }],
    contextKinds: ['user'] } } };
}

async function main() {
  const eventShards = await ensureStream('flagstream-events', 2);
  const resultShards = await ensureStream('flagstream-results', 1);
  const runId = `an-${Date.now()}`;
  const startSec = Math.floor(Date.now() / 1000) - 2;
  const sql = analysisSql(runId, 'acme', startSec, { dedup: DEDUP });

  // --- validator: good script + two bad ones
  let v = await validate(sql);
  log(`validate good: valid=${v.valid} in ${v.ms} ms`, v.valid ? '' : v.error);
  if (!v.valid) process.exit(1);
  v = await validate(sql.replace('e.kind = ', 'e.kindd = ').replace('AND kind = ', 'AND kindd = '));
  log(`validate unknown column: valid=${v.valid} in ${v.ms} ms\n  ${v.error}`);
  v = await validate(sql.replace("'scan.stream.initpos'", "'scan.stream.initposition'").replace("'sink.partitioner'='random'", "'sink.partitioner'='bogus'"));
  log(`validate bad option: valid=${v.valid} in ${v.ms} ms\n  ${v.error}`);
  v = await validate(sql.replace("'format'='json', 'json.timestamp", "'format'='jsonx', 'json.timestamp"));
  log(`validate bad format: valid=${v.valid} in ${v.ms} ms\n  ${v.error}`);

  // --- submit through the REST API
  const form = new FormData();
  form.append('jarfile', new Blob([fs.readFileSync(JAR)], { type: 'application/java-archive' }), 'flagstream-runner.jar');
  let t = Date.now();
  const up = await (await fetch(`${FLINK}/jars/upload`, { method: 'POST', body: form })).json();
  const jarId = path.basename(up.filename);
  log(`uploaded ${jarId} in ${Date.now() - t} ms`);
  t = Date.now();
  const run = await flink('POST', `/jars/${jarId}/run`, { programArgsList: ['--sql-base64', b64(sql), '--job-name', runId] });
  const jobId = run.jobid;
  log(`/jars/run returned job ${jobId} in ${Date.now() - t} ms`);
  for (;;) {
    const j = await flink('GET', `/jobs/${jobId}`);
    if (j.state === 'RUNNING' && j.vertices.every((x) => x.status === 'RUNNING')) break;
    if (['FAILED', 'CANCELED', 'FINISHED'].includes(j.state)) throw new Error(`job ${j.state}: ${JSON.stringify(await flink('GET', `/jobs/${jobId}/exceptions`)).slice(0, 3000)}`);
    await sleep(100);
  }
  log(`job + all tasks RUNNING ${Date.now() - t} ms after /jars/run`);
  log('overview:', JSON.stringify((await flink('GET', '/jobs/overview')).jobs.map((j) => [j.jid, j.name, j.state])));

  // --- heartbeats to every shard, plus summaries
  const hb = setInterval(() => {
    for (const s of eventShards) {
      kinesis.send(new PutRecordCommand({ StreamName: 'flagstream-events', PartitionKey: 'hb', ExplicitHashKey: s.HashKeyRange.StartingHashKey,
        Data: Buffer.from(JSON.stringify({ kind: 'heartbeat', tenant: '', eventTime: Date.now() })) })).catch((e) => log('hb error', e.message));
    }
  }, 2000);
  await sleep(3000); // let the source start reading
  const now = Date.now();
  const recs = [
    summary('acme', 'p1', 0, now, 7, 13),
    summary('acme', 'p1', 1, now, 1, 2),
    summary('acme', 'p2', 0, now, 10, 0),
    summary('acme', 'p2', 0, now, 10, 0), // duplicate delivery of p2#0 (dedup should drop it)
    summary('other', 'p3', 0, now, 100, 100), // other tenant: filtered out
  ];
  await kinesis.send(new PutRecordsCommand({ StreamName: 'flagstream-events',
    Records: recs.map((r, i) => ({ PartitionKey: `${r.payloadId}-${i}`, Data: Buffer.from(JSON.stringify(r)) })) }));
  const windowStart = Math.floor(now / 10000) * 10000, windowEnd = windowStart + 10000;
  const expect = DEDUP ? { 0: 15, 1: 18 } : { 0: 15, 1: 28 };
  log(`put ${recs.length} summaries at ${new Date(now).toISOString()}, window [${new Date(windowStart).toISOString()}, ${new Date(windowEnd).toISOString()}), expect`, expect);

  // --- read the results stream from the start, wait for our rows
  let it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: 'flagstream-results', ShardId: resultShards[0].ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
  const got = {};
  const deadline = windowEnd + 60000;
  while (Date.now() < deadline && Object.keys(got).length < 2) {
    const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
    it = r.NextShardIterator;
    for (const rec of r.Records) {
      const row = JSON.parse(Buffer.from(rec.Data).toString('utf8'));
      if (row.analysisId !== runId) continue;
      log(`result row (+${Date.now() - windowEnd} ms after window end):`, JSON.stringify(row));
      got[row.variation] = row.evaluations;
    }
    await sleep(500);
  }
  clearInterval(hb);
  const ok = expect[0] === got[0] && expect[1] === got[1];
  log(ok ? 'RESULTS OK' : `RESULTS MISMATCH got ${JSON.stringify(got)}`);

  if (!KEEP) {
    t = Date.now();
    const trig = await flink('POST', `/jobs/${jobId}/stop`, { drain: false });
    for (;;) {
      const s = await flink('GET', `/jobs/${jobId}/savepoints/${trig['request-id']}`);
      if (s.status.id === 'COMPLETED') {
        if (s.operation['failure-cause']) throw new Error('stop failed: ' + JSON.stringify(s.operation['failure-cause']).slice(0, 2000));
        log(`stopped with savepoint ${s.operation.location} in ${Date.now() - t} ms`);
        break;
      }
      await sleep(200);
    }
    log('job state:', (await flink('GET', `/jobs/${jobId}`)).state);
  }
  process.exit(ok ? 0 : 1);
}
main().catch((e) => { console.error(e); process.exit(1); });
