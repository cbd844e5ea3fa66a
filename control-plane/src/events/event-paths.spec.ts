import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { loadConfig } from '../config/config';
import { createApp } from '../main';
import { isEventPath } from './events.controller';
import { unpackRecord } from '../stream/aggregated-record';

/**
 * Express routes case-insensitively and takes a trailing slash; the raw-body exemption
 * of the event paths must match the same requests, or a body parsed as JSON first
 * leaves the request without an answer. The real application (createApp), over HTTP,
 * with a small stand-in for the Kinesis API behind it.
 */
function fakeKinesis(records: unknown[]): Promise<Server> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const action = String(req.headers['x-amz-target'] ?? '').split('.')[1];
      const input = body ? JSON.parse(body) : {};
      let out: unknown = {};
      if (action === 'PutRecords') {
        for (const r of input.Records) for (const item of unpackRecord(Buffer.from(r.Data, 'base64'))) records.push(JSON.parse(item.toString('utf8')));
        out = { FailedRecordCount: 0, Records: input.Records.map((_: unknown, i: number) => ({ SequenceNumber: String(i), ShardId: 'shardId-000000000000' })) };
      } else if (action === 'DescribeStreamSummary') {
        out = { StreamDescriptionSummary: { StreamName: input.StreamName, StreamStatus: 'ACTIVE', RetentionPeriodHours: 24, StreamCreationTimestamp: 1_700_000_000, OpenShardCount: 1 } };
      } else if (action === 'ListShards') {
        out = { Shards: [] };
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(out));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('event paths as Express routes them', () => {
  const ADMIN = 'fs-admin-paths-test';
  const records: any[] = [];
  let dir: string;
  let kinesis: Server;
  let app: NestExpressApplication;
  let base: string;
  let sdkKey: string;

  const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { authorization: sdkKey, 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(5000) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-paths-'));
    kinesis = await fakeKinesis(records);
    const config = loadConfig({
      FLAGSTREAM_DATA_DIR: dir,
      FLAGSTREAM_ADMIN_KEY: ADMIN,
      FLAGSTREAM_KINESIS_ENDPOINT: `http://127.0.0.1:${(kinesis.address() as AddressInfo).port}`,
      FLAGSTREAM_FLINK_URL: 'http://127.0.0.1:9',
      FLAGSTREAM_VALIDATOR_URL: 'http://127.0.0.1:9',
      FLAGSTREAM_HEALTH_INTERVAL_MS: '0',
      FLAGSTREAM_HEARTBEAT_INTERVAL_MS: '0',
      FLAGSTREAM_RESULTS_POLL_MS: '600000',
    });
    app = await createApp(config);
    app.useLogger(false);
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    const admin = { authorization: `Bearer ${ADMIN}` };
    const tenant: any = await (await post('/v1/tenants', JSON.stringify({ key: 'paths', name: 'Paths' }), admin)).json();
    const env: any = await (await post('/v1/environments', JSON.stringify({ key: 'production' }), { authorization: `Bearer ${tenant.apiKey}` })).json();
    sdkKey = env.sdkKey;
  });

  afterAll(async () => {
    await app?.close();
    await new Promise((r) => kinesis?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const event = (key: string) => JSON.stringify([{ kind: 'custom', creationDate: Date.now(), key }]);

  it.each(['/bulk', '/BULK', '/bulk/', '/Bulk/', '/v1/events/bulk', '/V1/EVENTS/BULK', '/v1/events/bulk/', '/V1/Events/Bulk/'])(
    'answers POST %s like /bulk and writes its event',
    async (path) => {
      const res = await post(path, event(`via ${path}`));
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ accepted: 1, rejected: [] });
      expect(records.map((r) => r.key)).toContain(`via ${path}`);
    },
  );

  it('answers a gzip body on an upper-case path', async () => {
    const res = await post('/BULK/', gzipSync(event('gzip')), { 'content-encoding': 'gzip' });
    expect(res.status).toBe(202);
    expect(records.map((r) => r.key)).toContain('gzip');
  });

  it.each(['/diagnostic', '/DIAGNOSTIC', '/diagnostic/', '/Diagnostic/'])('answers POST %s with 202', async (path) => {
    const res = await post(path, JSON.stringify({ kind: 'diagnostic' }));
    expect(res.status).toBe(202);
  });

  it('answers paths no route takes with a 404 problem, also with a body', async () => {
    for (const path of ['/bulk//', '/bulkx', '/v1/events/bulk/x']) {
      const res = await post(path, event('nowhere'));
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    expect(records.map((r) => r.key)).not.toContain('nowhere');
  });

  it('isEventPath matches exactly the event routes', () => {
    expect(['/bulk', '/BULK', '/bulk/', '/v1/events/BULK/', '/DIAGNOSTIC/'].every(isEventPath)).toBe(true);
    expect(['/bulk//', '/bulkx', '/v1/bulk', '/', '/v1/analyses'].some(isEventPath)).toBe(false);
  });
});
