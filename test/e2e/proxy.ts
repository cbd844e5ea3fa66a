import { createServer, IncomingHttpHeaders, request, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * A recording, fault-injecting HTTP proxy between SDK hosts and the events API.
 *
 * A host posts to `${url}/h/<host>/bulk` (its eventsUri is `${url}/h/<host>`); the proxy
 * forwards the very bytes and headers to `${target}/bulk` and answers with the API's
 * status, headers and body. Every request is recorded: the host, its payload ID, the
 * decoded body, when the proxy received it, when it forwarded it and when the API
 * answered, and the API's status. Faults, queued per host, apply to the host's next
 * /bulk requests:
 *
 * - `fail`: answer 503 without forwarding (the SDK retries once, 1 s later, same payload ID);
 * - `drop`: forward, let the API answer, then reset the connection instead of answering
 *   (the SDK sees an error and retries a payload the API has already written);
 * - `delay`: forward only after the given time.
 *
 * A fault waits for the host's next new payload (not a retry of one already seen), so
 * that one fault makes one retry, which succeeds; with `includeRetries` it takes the
 * very next request, retries included (two `fail`s in a row: the SDK drops the payload).
 *
 * With `edgeGuard`, a request that reaches the proxy within `marginMs` of a window
 * boundary is held until just after it, so that the API's own receive time (which lies
 * between the proxy's forwarding and the API's answer) falls in the same window as
 * the recorded one: an event that counts at its receive time is then unambiguous.
 */
export type Fault = ({ kind: 'fail' } | { kind: 'drop' } | { kind: 'delay'; ms: number }) & {
  /** Also hit a retry (a payload ID the proxy has seen before). By default a fault waits for a new payload. */
  includeRetries?: boolean;
};

export interface ProxyRecord {
  seq: number;
  host: string;
  method: string;
  /** Path as forwarded to the API (`/bulk`, `/diagnostic`). */
  path: string;
  payloadId?: string;
  contentEncoding?: string;
  /** Bytes as sent by the host. */
  raw: Buffer;
  /** The decoded JSON body (undefined when it is not JSON). */
  body: unknown;
  /** When the proxy had the whole request. */
  receivedAt: number;
  /** When it started forwarding (after any delay or edge guard); undefined when not forwarded. */
  forwardedAt?: number;
  /** When the API's answer was complete. */
  answeredAt?: number;
  /** The API's status (undefined when not forwarded or the API did not answer). */
  apiStatus?: number;
  apiBody?: string;
  /** The API's own receive stamp (X-Flagstream-Received-At), when it answered one. */
  apiReceivedAt?: number;
  /** What the host was told: the API's status, 503 (fault), or 'reset'. */
  hostSaw: number | 'reset';
  fault?: Fault['kind'];
  error?: string;
}

export interface ProxyOptions {
  /** The events API, e.g. http://127.0.0.1:18080. */
  target: string;
  edgeGuard?: { windowMs: number; marginMs: number };
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

export class RecordingProxy {
  readonly records: ProxyRecord[] = [];
  private readonly faults = new Map<string, Fault[]>();
  private server?: Server;
  private inFlight = 0;
  private seq = 0;
  url = '';

  constructor(private readonly options: ProxyOptions) {}

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.inFlight++;
        this.handle(req.method ?? 'GET', req.url ?? '/', req.headers, Buffer.concat(chunks), res)
          .catch(() => undefined)
          .finally(() => this.inFlight--);
      });
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    const server = this.server;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The events URI for a host named `host`. */
  eventsUri(host: string): string {
    return `${this.url}/h/${encodeURIComponent(host)}`;
  }

  /** Queues faults for the host's next /bulk requests, in order. */
  inject(host: string, ...faults: Fault[]): void {
    this.faults.set(host, [...(this.faults.get(host) ?? []), ...faults]);
  }
  failNext(host: string, n = 1, includeRetries = false): void {
    this.inject(host, ...Array.from({ length: n }, () => ({ kind: 'fail' as const, includeRetries })));
  }
  dropAnswerNext(host: string, n = 1, includeRetries = false): void {
    this.inject(host, ...Array.from({ length: n }, () => ({ kind: 'drop' as const, includeRetries })));
  }
  delayNext(host: string, ms: number, n = 1, includeRetries = false): void {
    this.inject(host, ...Array.from({ length: n }, () => ({ kind: 'delay' as const, ms, includeRetries })));
  }
  /** Faults queued for the host and not yet used. */
  pendingFaults(host: string): Fault[] {
    return [...(this.faults.get(host) ?? [])];
  }

  recordsOf(host: string | string[]): ProxyRecord[] {
    const hosts = new Set(Array.isArray(host) ? host : [host]);
    return this.records.filter((r) => hosts.has(r.host));
  }

  /** Resolves once no request has been in flight for `quietMs`. */
  async idle(quietMs = 1500, timeoutMs = 30_000): Promise<void> {
    const started = Date.now();
    let quietSince = Date.now();
    let lastCount = this.records.length;
    while (Date.now() - started < timeoutMs) {
      if (this.inFlight > 0 || this.records.length !== lastCount) {
        quietSince = Date.now();
        lastCount = this.records.length;
      } else if (Date.now() - quietSince >= quietMs) return;
      await sleep(100);
    }
    throw new Error(`the proxy was not idle within ${timeoutMs / 1000} s (${this.inFlight} in flight)`);
  }

  private async handle(method: string, url: string, headers: IncomingHttpHeaders, raw: Buffer, res: import('node:http').ServerResponse) {
    const receivedAt = Date.now();
    const match = /^\/h\/([^/]+)(\/.*)$/.exec(url);
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    const host = decodeURIComponent(match[1]);
    const path = match[2];
    const header = (name: string) => {
      const v = headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const record: ProxyRecord = {
      seq: this.seq++,
      host,
      method,
      path,
      payloadId: header('x-launchdarkly-payload-id'),
      contentEncoding: header('content-encoding'),
      raw,
      body: decode(raw, header('content-encoding')),
      receivedAt,
      hostSaw: 0,
    };
    const isBulk = method === 'POST' && path.split('?')[0] === '/bulk';
    const isRetry = record.payloadId !== undefined && this.records.some((r) => r.host === host && r.payloadId === record.payloadId);
    this.records.push(record);

    const queue = isBulk ? this.faults.get(host) : undefined;
    const fault = queue?.length && (!isRetry || queue[0].includeRetries) ? queue.shift() : undefined;
    if (fault) record.fault = fault.kind;

    if (fault?.kind === 'fail') {
      record.hostSaw = 503;
      const body = JSON.stringify({ status: 503, title: 'Service Unavailable', detail: 'injected by the test proxy' });
      res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1', 'content-length': Buffer.byteLength(body) }).end(body);
      return;
    }
    if (fault?.kind === 'delay') await sleep(fault.ms);
    if (this.options.edgeGuard) {
      const { windowMs, marginMs } = this.options.edgeGuard;
      const intoWindow = Date.now() % windowMs;
      if (intoWindow > windowMs - marginMs) await sleep(windowMs - intoWindow + 5);
    }

    const forwardHeaders: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'host') forwardHeaders[name] = value;
    }
    record.forwardedAt = Date.now();
    let answer: { status: number; headers: IncomingHttpHeaders; body: Buffer };
    try {
      answer = await forward(`${this.options.target}${path}`, method, forwardHeaders, raw);
    } catch (error) {
      record.error = (error as Error).message;
      record.hostSaw = 'reset';
      res.socket?.destroy();
      return;
    }
    record.answeredAt = Date.now();
    record.apiStatus = answer.status;
    record.apiBody = answer.body.toString('utf8').slice(0, 2000);
    const stamp = answer.headers['x-flagstream-received-at'];
    if (typeof stamp === 'string') record.apiReceivedAt = Number(stamp);

    if (fault?.kind === 'drop') {
      // The API wrote the payload and answered; the host never hears of it.
      record.hostSaw = 'reset';
      res.socket?.destroy();
      return;
    }
    record.hostSaw = answer.status;
    const replyHeaders: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) replyHeaders[name] = value;
    }
    replyHeaders['content-length'] = String(answer.body.length);
    res.writeHead(answer.status, replyHeaders).end(answer.body);
  }
}

function forward(url: string, method: string, headers: Record<string, string | string[]>, body: Buffer) {
  return new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, 'content-length': String(body.length) }, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('the API did not answer within 60 s')));
    req.end(body);
  });
}

function decode(raw: Buffer, encoding: string | undefined): unknown {
  try {
    const bytes = encoding && /gzip/i.test(encoding) ? gunzipSync(raw) : raw;
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
