import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

/**
 * An SDK host: the real LaunchDarkly Node server SDK running in a child process
 * (test/e2e/sdk-host/host.cjs), flags from its TestData source, events sent by its own
 * flush timer to `eventsUri` (the recording proxy), its wall clock shifted by
 * `clockOffsetMs`. The test tells it what to evaluate; it tells nothing back but "done":
 * what it sent is read from the proxy's records, never from the host.
 */
export interface SdkHostOptions {
  /** Also the path prefix under the proxy that names this host (see proxy.ts). */
  name: string;
  sdkKey: string;
  /** Where the SDK posts its events, e.g. `${proxy.url}/h/${name}`. */
  eventsUri: string;
  /** The SDK's flushInterval, in seconds (production default 5). */
  flushIntervalSeconds?: number;
  /** How far the host's clock is off, in ms (negative: behind). */
  clockOffsetMs?: number;
  /** The SDK's enableEventCompression: gzip bodies. */
  gzip?: boolean;
  /**
   * More flags for the host's TestData, as LaunchDarkly's flag JSON (`key`, `version`, `on`,
   * `variations`, `fallthrough` with a `rollout`, `rules`, `trackEvents`, …), next to the
   * flags every host knows (host.cjs).
   */
  flags?: Record<string, unknown>[];
}

/** What `track` sends besides the event key: `data`, and `metricValue` (1 when absent; null: none). */
export interface TrackOptions {
  data?: unknown;
  metricValue?: number | null;
}

/** One step of `SdkHost.run`: the same calls, many in one message. */
export type HostStep =
  | { type: 'evaluate'; flagKey: string; context: LdContext; times?: number }
  | ({ type: 'track'; eventKey: string; context: LdContext; times?: number } & TrackOptions)
  | { type: 'identify'; context: LdContext };

export type LdContext = Record<string, unknown> & ({ kind?: string; key: string } | { kind: 'multi' });

const HOST_SCRIPT = join(__dirname, 'sdk-host/host.cjs');
const CLOCK_PRELOAD = join(__dirname, 'sdk-host/clock-offset.cjs');

export class SdkHost {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exited: Promise<number | null>;
  private stderr = '';
  /** What the host was asked to evaluate, per flag key (the test's own count, not the host's). */
  readonly asked = new Map<string, number>();

  private constructor(readonly options: SdkHostOptions, private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stderr?.on('data', (d) => (this.stderr = (this.stderr + d).slice(-8000)));
    child.on('message', (message: any) => {
      if (message?.id === undefined) return;
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`SDK host ${options.name}: ${message.error}`));
      else waiter.resolve(message.value);
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`SDK host ${options.name} exited (${signal ?? code}): ${this.stderr}`));
      this.pending.clear();
    });
  }

  static async start(options: SdkHostOptions): Promise<SdkHost> {
    const child = fork(HOST_SCRIPT, [], {
      execArgv: ['--require', CLOCK_PRELOAD],
      env: {
        ...process.env,
        FLAGSTREAM_CLOCK_OFFSET_MS: String(options.clockOffsetMs ?? 0),
        FLAGSTREAM_SDK_HOST_CONFIG: JSON.stringify({
          sdkKey: options.sdkKey,
          eventsUri: options.eventsUri,
          flushIntervalSeconds: options.flushIntervalSeconds ?? 5,
          gzip: options.gzip ?? false,
          flags: options.flags ?? [],
        }),
      },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'json',
    });
    const host = new SdkHost(options, child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`SDK host ${options.name} did not start: ${host.stderr}`)), 20_000);
      child.on('message', (m: any) => m?.ready && (clearTimeout(timer), resolve()));
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`SDK host ${options.name} exited (${code}) while starting: ${host.stderr}`))));
    });
    return host;
  }

  get name() {
    return this.options.name;
  }

  private send<T = unknown>(command: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...command, id }, (error) => error && (this.pending.delete(id), reject(error)));
    });
  }

  /** Evaluates `flagKey` for `context`, `times` times, one after another. */
  async evaluate(flagKey: string, context: LdContext, times = 1): Promise<void> {
    this.asked.set(flagKey, (this.asked.get(flagKey) ?? 0) + times);
    await this.send({ type: 'evaluate', flagKey, context, times });
  }

  /** `track` calls: custom events, which no flag-evaluations row counts. */
  async track(eventKey: string, context: LdContext, times = 1, options: TrackOptions = {}): Promise<void> {
    await this.send({ type: 'track', eventKey, context, times, ...options });
  }

  /** An `identify` call: an identify event for the context. */
  async identify(context: LdContext): Promise<void> {
    await this.send({ type: 'identify', context });
  }

  /** Evaluations, `track` and `identify` calls, in this order, in one message (many contexts quickly). */
  async run(steps: HostStep[]): Promise<void> {
    for (const step of steps) {
      if (step.type === 'evaluate') this.asked.set(step.flagKey, (this.asked.get(step.flagKey) ?? 0) + (step.times ?? 1));
    }
    await this.send({ type: 'run', steps });
  }

  /** Steps the host's clock to a new offset from real time. */
  async setClockOffset(offsetMs: number): Promise<void> {
    await this.send({ type: 'clock', offsetMs });
  }

  /** The SDK's warnings and errors so far (for failure messages). */
  async log(): Promise<string[]> {
    return this.send<string[]>({ type: 'log' });
  }

  /** Flushes what is queued, closes the SDK and waits for the process to end (retries included). */
  async close(timeoutMs = 20_000): Promise<void> {
    if (this.child.exitCode !== null) return;
    await this.send({ type: 'close' });
    const code = await Promise.race([this.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref())]);
    if (code === 'timeout') {
      this.kill();
      throw new Error(`SDK host ${this.name} did not exit within ${timeoutMs / 1000} s of close()`);
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** Total evaluations asked of this host. */
  get evaluationsAsked(): number {
    return [...this.asked.values()].reduce((a, b) => a + b, 0);
  }
}
