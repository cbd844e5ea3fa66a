import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The local stack's supervision (scripts/supervisor.mjs), on a stand-in process so it
 * runs in seconds: a process that exits unexpectedly comes back with a log line and a
 * doubling backoff, <dataDir>/pids.json follows it, and stopping restarts nothing.
 * (The e2e tests that kill Flink and the control plane of the real stack rely on it.)
 */

const ROOT = join(__dirname, '../..');

function driver(dir: string, backoff: object) {
  const code = `
    import { createSupervisor, DEFAULT_BACKOFF } from ${JSON.stringify(join(ROOT, 'scripts/supervisor.mjs'))};
    console.log('DEFAULT ' + JSON.stringify(DEFAULT_BACKOFF));
    const supervisor = createSupervisor({ logsDir: ${JSON.stringify(dir)}, pidsFile: ${JSON.stringify(join(dir, 'pids.json'))},
      log: (line) => console.log(line), backoff: ${JSON.stringify(backoff)} });
    supervisor.start('sleeper', process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    supervisor.enableRestarts();
    console.log('STARTED');
    process.on('SIGTERM', async () => { console.log('STOPPING'); await supervisor.stop(); console.log('STOPPED'); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return { child, output: () => output };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

describe('local stack supervision', () => {
  let dir: string;
  let running: ChildProcess | undefined;
  const pidOf = () => {
    try {
      return JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')).sleeper as number;
    } catch {
      return undefined;
    }
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flagstream-supervisor-'));
  });

  afterEach(async () => {
    if (running && running.exitCode === null) {
      running.kill('SIGKILL');
      await exited(running);
    }
    const pid = pidOf();
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('brings a killed process back with a log line and a backoff doubling up to its cap, and pids.json follows', async () => {
    const d = driver(dir, { initialMs: 300, maxMs: 1000, resetAfterMs: 60_000 });
    running = d.child;
    await until('start', () => (d.output().includes('STARTED') ? true : undefined));
    // The stack's own backoff: 1 s doubling to 30 s.
    expect(d.output()).toContain('DEFAULT {"initialMs":1000,"maxMs":30000,"resetAfterMs":60000}');

    const seen: number[] = [await until('a pid', pidOf)];
    for (const delay of ['0.3', '0.6', '1', '1']) {
      const pid = seen[seen.length - 1];
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      const next = await until(`a new pid after ${pid}`, () => {
        const now = pidOf();
        return now && now !== pid ? now : undefined;
      });
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual(Number(delay) * 1000 - 50);
      await until('the restart line', () => (d.output().includes(`sleeper restarted (pid ${next})`) ? true : undefined));
      expect(d.output()).toContain(`sleeper exited (SIGKILL)`);
      expect(d.output()).toContain(`restarting it in ${delay} s (restart ${seen.length})`);
      expect(alive(next)).toBe(true);
      seen.push(next);
    }

    d.child.kill('SIGTERM');
    expect(await exited(d.child)).toBe(0);
    expect(alive(seen[seen.length - 1])).toBe(false);
    expect(existsSync(join(dir, 'pids.json'))).toBe(false);
    expect(d.output().split('STOPPING')[1]).not.toMatch(/restart/);
  });

  it('restarts nothing while stopping, also when a restart was pending', async () => {
    const d = driver(dir, { initialMs: 1500, maxMs: 3000, resetAfterMs: 60_000 });
    running = d.child;
    await until('start', () => (d.output().includes('STARTED') ? true : undefined));
    const pid = await until('a pid', pidOf);
    process.kill(pid, 'SIGKILL');
    await until('the exit', () => (d.output().includes('restarting it in 1.5 s') ? true : undefined));
    d.child.kill('SIGTERM');
    expect(await exited(d.child)).toBe(0);
    await new Promise((r) => setTimeout(r, 2000));
    expect(d.output()).not.toContain('sleeper restarted');
    expect(existsSync(join(dir, 'pids.json'))).toBe(false);
  });
});
