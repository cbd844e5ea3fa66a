import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ListShardsCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { API, call, eventually, newTenant } from './client';
import { RecordingProxy, sleep } from './proxy';
import { deliveredPayloads } from './reference';
import { SdkHost } from './sdk-host';
import { EVENTS_STREAM, kinesisClient } from './stream';

/**
 * The local data lake (CONTRACT §9) on the real stack: what the real LaunchDarkly SDK sends
 * (through the recording proxy, one answer lost so the SDK retries its payload) and what a
 * producer puts on the events stream twice lands under `<data dir>/lake/`, every event of
 * every 2xx payload exactly once, in its tenant's partition of the UTC hour the API received
 * it, as GZIP JSON lines. Read straight from the disk, as Athena reads Firehose's files.
 */

const DATA_DIR = process.env.FLAGSTREAM_TEST_DATA_DIR ?? '';
const LAKE = join(DATA_DIR, 'lake');

interface LakeLine {
  /** Below the lake's root: `tenant=…/dt=…/hour=…/<name>.json.gz`. */
  file: string;
  record: { tenant: string; environment: string; payloadId: string; eventIndex: number; receivedAt: number; kind: string; [field: string]: unknown };
}

/** Every line of every lake file of a tenant (none while its directory does not exist). */
function lakeLines(tenant: string): LakeLine[] {
  const out: LakeLine[] = [];
  const walk = (at: string) => {
    if (!existsSync(at)) return;
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      if (!name.endsWith('.json.gz')) continue; // a temp file being written
      const text = gunzipSync(readFileSync(path)).toString('utf8');
      expect(text.endsWith('\n')).toBe(true); // one line per record, each newline-terminated
      const file = relative(LAKE, path).split(sep).join('/');
      for (const line of text.slice(0, -1).split('\n')) out.push({ file, record: JSON.parse(line) });
    }
  };
  walk(join(LAKE, `tenant=${tenant}`));
  return out;
}

/** The key of an event in the lake: the payload ID the SDK (or test) sent, and the event's index. */
const keyOf = (record: LakeLine['record']) => `${record.payloadId.split('#')[0]}/${record.eventIndex}`;

/** `tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/` of a receive time (UTC). */
function partitionOf(tenant: string, receivedAt: number): string {
  const at = new Date(receivedAt).toISOString();
  return `tenant=${tenant}/dt=${at.slice(0, 10)}/hour=${at.slice(11, 13)}/`;
}

describe('the local data lake', () => {
  jest.setTimeout(120_000);

  it('holds every event of every accepted payload exactly once, in its tenant\'s partition of the hour it was received', async () => {
    if (!DATA_DIR) throw new Error('FLAGSTREAM_TEST_DATA_DIR is not set: run through the e2e project (its global setup starts the stack)');
    const tenant = await newTenant(['production']);
    const other = await newTenant(['production']);
    const proxy = await new RecordingProxy({ target: API }).start();
    const hosts: SdkHost[] = [];
    const kinesis = kinesisClient();
    /** Expected keys (payload ID header / index) with their receive time, per tenant. */
    const expected = new Map<string, Map<string, number>>([[tenant.key, new Map()], [other.key, new Map()]]);
    const expect1 = (tenantKey: string, payloadId: string, count: number, receivedAt: number) => {
      for (let i = 0; i < count; i++) expected.get(tenantKey)!.set(`${payloadId}/${i}`, receivedAt);
    };
    try {
      const a = await SdkHost.start({ name: 'lake-a', sdkKey: tenant.sdkKeys.production, eventsUri: proxy.eventsUri('lake-a'), flushIntervalSeconds: 1 });
      hosts.push(a);
      const b = await SdkHost.start({ name: 'lake-b', sdkKey: other.sdkKeys.production, eventsUri: proxy.eventsUri('lake-b'), flushIntervalSeconds: 1, gzip: true });
      hosts.push(b);
      // The API writes the host's next payload, but its answer is lost: the SDK sends it again with the same payload ID.
      proxy.dropAnswerNext('lake-a');
      const users = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => ({ kind: 'user', key: `${prefix}-${i}` }));
      await a.run([
        ...users(5, 'a').map((context) => ({ type: 'evaluate' as const, flagKey: 'new-checkout', context, times: 3 })),
        ...users(3, 'a').map((context) => ({ type: 'evaluate' as const, flagKey: 'pricing-experiment', context })), // feature events
        { type: 'track', eventKey: 'purchase', context: { kind: 'user', key: 'a-0' }, times: 2 },
        { type: 'identify', context: { kind: 'multi', user: { key: 'a-9' }, organization: { key: 'org-1' } } },
      ]);
      await b.run(users(4, 'b').map((context) => ({ type: 'evaluate' as const, flagKey: 'dark-mode', context })));
      await sleep(2500); // the timer flushes more than once
      await a.run(users(2, 'a2').map((context) => ({ type: 'evaluate' as const, flagKey: 'search-v2', context })));
      await a.close();
      await b.close();
      await proxy.idle();

      for (const [host, key] of [['lake-a', tenant.key], ['lake-b', other.key]]) {
        const deliveries = deliveredPayloads(proxy.recordsOf(host));
        expect(deliveries.length).toBeGreaterThan(0);
        for (const d of deliveries) {
          expect(d.receivedFrom).toBe(d.receivedTo); // the API's own stamp (X-Flagstream-Received-At)
          expect1(key, d.payloadId!, (d.events as unknown[]).length, d.receivedFrom);
        }
      }
      expect(deliveredPayloads(proxy.recordsOf('lake-a')).some((d) => d.attempts >= 2)).toBe(true); // the lost answer was retried

      // A payload the test itself sends twice with the same X-LaunchDarkly-Payload-ID.
      const directId = `lake-direct-${Date.now()}`;
      const directBody = [{ kind: 'custom', key: 'direct', creationDate: Date.now(), context: { kind: 'user', key: 'd' } }, { kind: 'identify', creationDate: Date.now(), context: { kind: 'user', key: 'd' } }];
      const sent = [];
      for (let i = 0; i < 2; i++) {
        const reply = await call('POST', '/bulk', { key: tenant.sdkKeys.production, bareKey: true, body: directBody, headers: { 'X-LaunchDarkly-Payload-ID': directId } });
        expect(reply.status).toBe(202);
        sent.push(Number(reply.headers.get('x-flagstream-received-at')));
      }
      expect(sent[1]).toBe(sent[0]);
      expect1(tenant.key, directId, directBody.length, sent[0]);

      // A record a producer puts on the stream twice (its retry after a lost answer: Kinesis holds it twice).
      const now = Date.now();
      const copy = {
        kind: 'custom', key: 'copied', creationDate: now, tenant: tenant.key, environment: 'production', payloadId: `lake-copy-${now}#0000000000000000`,
        eventIndex: 0, receivedAt: now, sdkTime: now, eventTime: now, late: false,
      };
      const data = Buffer.from(JSON.stringify(copy));
      for (let i = 0; i < 2; i++) {
        const out = await kinesis.send(new PutRecordsCommand({ StreamName: EVENTS_STREAM, Records: [{ Data: data, PartitionKey: 'lake-copy' }] }));
        expect(out.FailedRecordCount ?? 0).toBe(0);
      }
      expect1(tenant.key, `lake-copy-${now}`, 1, now);

      // Then one marker on every shard: once they are all in the lake, the writer has read and
      // committed everything written before them (both copies included), on every shard.
      const shards = (await kinesis.send(new ListShardsCommand({ StreamName: EVENTS_STREAM }))).Shards ?? [];
      const open = shards.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
      const markerAt = Date.now();
      const markers = open.map((shard, i) => ({
        Data: Buffer.from(JSON.stringify({ ...copy, key: 'marker', payloadId: `lake-marker-${markerAt}#0000000000000000`, eventIndex: i, receivedAt: markerAt })),
        PartitionKey: 'lake-marker',
        ExplicitHashKey: shard.HashKeyRange!.StartingHashKey,
      }));
      const put = await kinesis.send(new PutRecordsCommand({ StreamName: EVENTS_STREAM, Records: markers }));
      expect(put.FailedRecordCount ?? 0).toBe(0);
      expect1(tenant.key, `lake-marker-${markerAt}`, markers.length, markerAt);

      const lines = await eventually(
        'every marker in the lake',
        async () => {
          const found = lakeLines(tenant.key);
          return found.filter((l) => l.record.key === 'marker').length >= markers.length ? found : undefined;
        },
        60_000,
      );

      // Exactly the expected events of this tenant, each once, with the receive time the API answered.
      const counts = new Map<string, number>();
      for (const { record } of lines) counts.set(keyOf(record), (counts.get(keyOf(record)) ?? 0) + 1);
      const want = expected.get(tenant.key)!;
      expect([...counts.keys()].sort()).toEqual([...want.keys()].sort());
      expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
      for (const { file, record } of lines) {
        expect(record.tenant).toBe(tenant.key);
        expect(record.environment).toBe('production');
        expect(record.receivedAt).toBe(want.get(keyOf(record)));
        expect(file.startsWith(partitionOf(tenant.key, record.receivedAt))).toBe(true);
        expect(file).toMatch(/^tenant=[^/]+\/dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/[^/]+\.json\.gz$/);
      }
      // Heartbeats never land (tenant ''), nor does anything of this tenant elsewhere.
      expect(existsSync(join(LAKE, 'tenant='))).toBe(false);

      // The other tenant's events are in its own partitions, each once; none of them in this tenant's.
      const others = await eventually(
        'the other tenant\'s events in the lake',
        async () => {
          const found = lakeLines(other.key);
          return found.length >= expected.get(other.key)!.size ? found : undefined;
        },
        30_000,
      );
      expect(others.map((l) => keyOf(l.record)).sort()).toEqual([...expected.get(other.key)!.keys()].sort());
      for (const { file, record } of others) {
        expect(record.tenant).toBe(other.key);
        expect(file.startsWith(partitionOf(other.key, record.receivedAt))).toBe(true);
      }

      const metrics = await call('GET', '/metrics');
      expect(metrics.body).toMatch(/flagstream_lake_duplicates_skipped_total [1-9]/);
      expect(metrics.body).toMatch(/flagstream_lake_records_written_total [1-9]/);
    } finally {
      for (const host of hosts) host.kill();
      await proxy.stop();
      kinesis.destroy();
    }
  });
});
