import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, WriteStream } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';

/**
 * A process a test starts, kills with SIGKILL and starts again with the same command and
 * environment (test/e2e/kill.e2e.ts: its own stream emulator and control plane). Every
 * start appends to one log file, with a line between starts.
 */
export class ManagedProcess {
  private child?: ChildProcess;
  private out?: WriteStream;
  /** How many times it was started. */
  starts = 0;

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly logsDir: string,
    private readonly cwd: string,
  ) {}

  get logFile(): string {
    return join(this.logsDir, `${this.name}.log`);
  }

  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.alive) throw new Error(`${this.name} is already running (pid ${this.child!.pid})`);
    mkdirSync(this.logsDir, { recursive: true });
    this.out ??= createWriteStream(this.logFile, { flags: 'a' });
    this.starts++;
    this.out.write(`\n----- start #${this.starts} at ${new Date().toISOString()} -----\n`);
    const child = spawn(process.execPath, this.args, { cwd: this.cwd, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => this.out?.write(d));
    child.stderr!.on('data', (d) => this.out?.write(d));
    child.once('exit', (code, signal) => this.out?.write(`----- exited (${signal ?? code}) at ${new Date().toISOString()} -----\n`));
    this.child = child;
  }

  /** SIGKILL, and resolves once the process is gone. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    const timer = setTimeout(() => this.alive && child.kill('SIGKILL'), graceMs);
    try {
      await this.signal('SIGTERM');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the log (after the last stop). */
  close(): void {
    this.out?.end();
    this.out = undefined;
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  /** The last lines of its log, for failure messages. */
  tail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}
