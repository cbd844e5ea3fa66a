// The `encode` section of `npm run bench` (bench/run.mjs): what the events API does to a payload
// before the stream, on one core and without the stream (issue 9's goal: validation and encoding
// ≥ 200,000 events/s/core). The control plane's own built modules (control-plane/dist), the
// steps of EventsService.ingest in its order: parse the body, hash it (canonicalJsonHash, the
// payload ID's body hash), then encodePayload (events/event-encoder.ts): validate every event
// against the SDK event schema and write its stream record (toEventRecord's JSON, as UTF-8), and
// packEvents: pack the records into aggregated Kinesis records of 16 KiB (the default).
// Payloads are the Node SDK's recorded /bulk bodies (test/fixtures), resized to 100 events.
// Rounds of a fixed number of payloads; median events/s. Needs no stack (`npm run bench -- encode`).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from '../scripts/bootstrap.mjs';

const require = createRequire(import.meta.url);
export const ENCODE_START = '<!-- encode: written by `npm run bench` or `npm run bench -- encode` -->';
export const ENCODE_END = '<!-- /encode -->';
const GOAL = 200_000;
const EVENTS_PER_PAYLOAD = 100;

const knob = (name, fallback) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not "${process.env[name]}"`);
  return value;
};

/** The Node SDK's recorded /bulk events (index, feature, custom, identify, summary) in test/fixtures. */
export function recordedEvents() {
  const dir = join(ROOT, 'test/fixtures/launchdarkly-node-server-sdk-9.13.7');
  const events = ['bulk-summary-index-custom.jsonl', 'diagnostic-and-bulk-all-kinds.jsonl']
    .flatMap((file) => readFileSync(join(dir, file), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)))
    .filter((r) => r.path === '/bulk' && Array.isArray(r.body))
    .flatMap((r) => r.body);
  if (!events.length) throw new Error('no recorded /bulk events in test/fixtures');
  return events;
}

/** The recorded SDK bodies' events, repeated with fresh times to payloads of EVENTS_PER_PAYLOAD. */
function payloads(count) {
  const events = recordedEvents();
  const now = Date.now();
  return Array.from({ length: count }, (_, p) =>
    Buffer.from(JSON.stringify(Array.from({ length: EVENTS_PER_PAYLOAD }, (_, i) => {
      const event = structuredClone(events[(p * EVENTS_PER_PAYLOAD + i) % events.length]);
      if (event.kind === 'summary') Object.assign(event, { startDate: now - 5000 + i, endDate: now + i });
      else event.creationDate = now + i;
      return event;
    }))));
}

export async function encodeBench({ say = console.log } = {}) {
  const dist = join(ROOT, 'control-plane/dist');
  if (!existsSync(join(dist, 'events/event-encoder.js'))) throw new Error('control-plane/dist is missing or old: run `npm run build --workspace control-plane` (or `node scripts/bootstrap.mjs`) first');
  const { encodePayload, packEvents } = require(join(dist, 'events/event-encoder.js'));
  if (typeof packEvents !== 'function') throw new Error('control-plane/dist is old (no packEvents): run `npm run build --workspace control-plane` first');
  const RECORD_BYTES = 16 * 1024;
  const { canonicalJsonHash, streamPayloadId } = require(join(dist, 'events/payload-hash.js'));

  const rounds = knob('BENCH_ENCODE_ROUNDS', 5);
  const perRound = knob('BENCH_ENCODE_PAYLOADS', 2000);
  const bodies = payloads(perRound);
  const horizonMs = 3600_000;
  /** One payload as EventsService.ingest treats it before PutRecords; returns the bytes it would write. */
  const ingest = (raw, n) => {
    const text = raw.toString('utf8');
    const payload = JSON.parse(text);
    const payloadId = streamPayloadId(`bench-${n}`, canonicalJsonHash(payload));
    // With the body's text, as the API calls it: each event's JSON as sent.
    const { events, rejected } = encodePayload(payload, { tenant: 'bench', environment: 'production', payloadId, receivedAt: Date.now() }, horizonMs, text);
    if (rejected.length) throw new Error(`a recorded event was rejected: ${JSON.stringify(rejected[0])}`);
    let bytes = 0;
    for (const record of packEvents(events, RECORD_BYTES)) bytes += record.data.length;
    return bytes;
  };
  for (let i = 0; i < Math.min(200, bodies.length); i++) ingest(bodies[i], i); // warm-up: JIT and the compiled schema

  const results = [];
  for (let round = 0; round < rounds; round++) {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let bytes = 0;
    for (let i = 0; i < bodies.length; i++) bytes += ingest(bodies[i], i);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    const events = bodies.length * EVENTS_PER_PAYLOAD;
    results.push({ events, ms, cpuMs: (cpu.user + cpu.system) / 1000, bytes });
    say(`encode: round ${round + 1}/${rounds}: ${events.toLocaleString('en-US')} events in ${(ms / 1000).toFixed(2)} s (${Math.round(events / (ms / 1000)).toLocaleString('en-US')}/s), ${(bytes / events).toFixed(0)} bytes per event on the stream`);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rate = median(results.map((r) => r.events / (r.ms / 1000)));
  const cpuRate = median(results.map((r) => r.events / (r.cpuMs / 1000)));
  const load = loadavg()[0];
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const block = `${ENCODE_START}
## Events API: validation and encoding, one core

Measured on ${new Date().toISOString().slice(0, 10)}, ${machine}, load average ${load.toFixed(1)} at the end (bench/encode.mjs).
What the events API does to each payload before PutRecords, in one thread and without the stream,
with the control plane's own built code in EventsService.ingest's order: parse the body, hash it
(canonicalJsonHash, the payload ID's body hash), then encodePayload (events/event-encoder.ts):
validate every event against the SDK event schema and write its stream record as UTF-8 JSON,
byte for byte toEventRecord's (each event's JSON taken from the body's text, as the API does); then packEvents, which packs them into aggregated Kinesis records
of 16 KiB (KPL format, with its MD5). Payloads of ${EVENTS_PER_PAYLOAD} events from the
Node SDK's recorded /bulk bodies (index, feature, custom, identify, summary), ${perRound.toLocaleString('en-US')} payloads a
round, ${rounds} rounds after a warm-up; events/s by the wall clock and by the process' CPU time.
Before encodePayload (toEventRecord's object, JSON.stringify, a Buffer and a sha1 partition key per
event, and the iterative canonicalJsonHash): median 76,802/s by the clock, 62,424/s per CPU-second.

| What | Measured | Goal (issue 9) |
|---|---|---|
| Validation and encoding, events/s on one core | median ${Math.round(rate).toLocaleString('en-US')}/s by the clock, ${Math.round(cpuRate).toLocaleString('en-US')}/s per CPU-second (rounds: ${results.map((r) => Math.round(r.events / (r.ms / 1000)).toLocaleString('en-US')).join(', ')}) | ≥ ${GOAL.toLocaleString('en-US')}/s/core: ${cpuRate >= GOAL ? 'met' : '**not met**'} |
| Bytes on the stream per event | ${(results[0].bytes / results[0].events).toFixed(0)} (aggregated records of 16 KiB) | — |
${ENCODE_END}`;
  writeBlock(block);
  say(`encode: median ${Math.round(rate)}/s (${Math.round(cpuRate)}/s per CPU-second); docs/benchmarks.md updated`);
  return { rate, cpuRate };
}

/** Replaces the section's block in docs/benchmarks.md (or adds it before the closing notes), nothing else. */
function writeBlock(block) {
  const docPath = join(ROOT, 'docs/benchmarks.md');
  let text = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '# Benchmarks\n';
  const from = text.indexOf(ENCODE_START);
  const to = text.indexOf(ENCODE_END);
  if (from >= 0 && to > from) text = `${text.slice(0, from)}${block}${text.slice(to + ENCODE_END.length)}`;
  else {
    const at = text.indexOf('\nKnown limit of the local stack');
    text = at >= 0 ? `${text.slice(0, at)}\n${block}\n${text.slice(at)}` : `${text}\n${block}\n`;
  }
  writeFileSync(docPath, text);
}
