import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * CONTRACT section 1 as a user meets it: `npm start` prints `ready`, creates the admin
 * key (0600), stops every process on SIGTERM/SIGINT, and its state survives a restart:
 * the analysis is still there and runs again.
 */

const ROOT = join(__dirname, '../..');
const PORTS = { api: 19080, kinesis: 19568, flink: 19081, validator: 19082 };
const API = `http://127.0.0.1:${PORTS.api}`;

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

function start(dataDir: string): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(PORTS.api),
      FLAGSTREAM_KINESIS_PORT: String(PORTS.kinesis),
      FLAGSTREAM_FLINK_PORT: String(PORTS.flink),
      FLAGSTREAM_VALIDATOR_PORT: String(PORTS.validator),
      FLAGSTREAM_DATA_DIR: dataDir,
      FLAGSTREAM_ADMIN_KEY: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "ready" within 180 s:\n${output.slice(-3000)}`)), 180_000);
    child.stdout!.on('data', () => {
      if (/\bready\b/.test(output)) {
        clearTimeout(timer);
        resolve({ child, output: () => output });
      }
    });
    child.on('exit', (code) => reject(new Error(`npm start exited (${code}) before ready:\n${output.slice(-3000)}`)));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

async function json(method: string, path: string, key: string, body?: unknown) {
  const res = await fetch(`${API}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function statusBecomes(key: string, id: string, status: string) {
  for (let i = 0; i < 240; i++) {
    const reply = await json('GET', `/v1/analyses/${id}`, key);
    if (reply.body.status === status) return reply.body;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`analysis ${id} never became ${status}`);
}

describe('npm start', () => {
  jest.setTimeout(600_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'flagstream-start-'));
  let running: ChildProcess | undefined;

  afterAll(async () => {
    if (running && running.exitCode === null) {
      running.kill('SIGKILL');
      await exited(running);
    }
    if (!process.env.FLAGSTREAM_KEEP_TEST_DATA) rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints ready, stops everything on a signal, and keeps its state across a restart', async () => {
    const first = await start(dataDir);
    running = first.child;
    const keyFile = join(dataDir, 'admin-key');
    expect(first.output()).toContain(keyFile);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const adminKey = readFileSync(keyFile, 'utf8').trim();

    const tenant = await json('POST', '/v1/tenants', adminKey, { key: 'restart', name: 'Restart Inc' });
    expect(tenant.status).toBe(201);
    const analysis = await json('POST', '/v1/analyses', tenant.body.apiKey, { name: 'survivor', kind: 'flag-evaluations', params: { window: '10s' } });
    expect(analysis.status).toBe(201);
    await statusBecomes(tenant.body.apiKey, analysis.body.id, 'RUNNING');

    first.child.kill('SIGTERM');
    expect(await exited(first.child)).toBe(0);
    for (const [name, port] of Object.entries(PORTS)) expect({ name, listening: await listening(port) }).toEqual({ name, listening: false });

    const second = await start(dataDir);
    running = second.child;
    // Same admin key, same tenant key, same analysis: deployed again on the new cluster.
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(adminKey);
    const again = await statusBecomes(tenant.body.apiKey, analysis.body.id, 'RUNNING');
    expect(again.name).toBe('survivor');

    second.child.kill('SIGINT');
    expect(await exited(second.child)).toBe(0);
    for (const [name, port] of Object.entries(PORTS)) expect({ name, listening: await listening(port) }).toEqual({ name, listening: false });
  });
});
