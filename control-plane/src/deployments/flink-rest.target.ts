import { Logger } from '@nestjs/common';
import { existsSync, openAsBlob, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DeploymentTarget, JobPhase, JobSpec, ObservedJob } from './deployment-target';
import { HttpError, httpJson } from './http';

/** Flink's job states (JobStatus) as an analysis sees them. */
const PHASES: Record<string, JobPhase> = {
  INITIALIZING: 'STARTING', CREATED: 'STARTING', RUNNING: 'RUNNING', RESTARTING: 'FAILING', FAILING: 'FAILING',
  FAILED: 'FAILED', CANCELLING: 'STOPPING', CANCELED: 'FINISHED', FINISHED: 'FINISHED', SUSPENDED: 'FAILED', RECONCILING: 'STARTING',
};

/** A job whose tasks are not all running yet is still starting: a savepoint of it would fail. */
function phaseOf(state: string, tasks?: { total: number; running: number }): JobPhase {
  const phase = PHASES[state] ?? 'STARTING';
  return phase === 'RUNNING' && tasks && tasks.running < tasks.total ? 'STARTING' : phase;
}

const SAVEPOINT_ATTEMPTS = 3;

/**
 * Any Flink cluster through its REST API: the runner JAR is uploaded once, and each
 * analysis runs it with its own SQL script as a separate job.
 */
export class FlinkRestTarget implements DeploymentTarget {
  readonly name = 'flink-rest';
  private readonly logger = new Logger('FlinkRest');
  private jarId?: Promise<string>;

  /**
   * `checkpointsDir`: where the cluster keeps checkpoints, when this process can read it (the
   * local cluster): a job the restarted cluster forgot can still be restored from its last one.
   */
  constructor(
    private readonly baseUrl: string,
    private readonly runnerJar: string,
    private readonly options: { savepointDir?: string; checkpointsDir?: string } = {},
  ) {}

  async ping(): Promise<void> {
    await httpJson('Flink', `${this.baseUrl}/overview`, { timeoutMs: 3000 });
  }

  async deploy(job: JobSpec): Promise<string> {
    const run = async (jarId: string) =>
      httpJson<{ jobid: string }>('Flink', `${this.baseUrl}/jars/${jarId}/run`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          programArgsList: ['--job-name', job.name, '--sql-base64', Buffer.from(job.sql, 'utf8').toString('base64')],
          ...(job.restoreFrom ? { savepointPath: job.restoreFrom, allowNonRestoredState: false } : {}),
        }),
        timeoutMs: 120_000,
      });
    try {
      return (await run(await this.uploadedJar())).jobid;
    } catch (error) {
      // The cluster may have restarted and forgotten the JAR: upload again once.
      if (error instanceof HttpError && error.status === 404) {
        this.jarId = undefined;
        return (await run(await this.uploadedJar())).jobid;
      }
      throw error;
    }
  }

  private uploadedJar(): Promise<string> {
    if (!this.jarId) {
      this.jarId = this.upload().catch((error) => {
        this.jarId = undefined;
        throw error;
      });
    }
    return this.jarId;
  }

  private async upload(): Promise<string> {
    const form = new FormData();
    form.append('jarfile', await openAsBlob(this.runnerJar, { type: 'application/x-java-archive' }), basename(this.runnerJar));
    const out = await httpJson<{ filename: string }>('Flink', `${this.baseUrl}/jars/upload`, { method: 'POST', body: form, timeoutMs: 120_000 });
    this.logger.log(`uploaded ${basename(this.runnerJar)}`);
    return basename(out.filename);
  }

  async observe(): Promise<Map<string, ObservedJob>> {
    const out = await httpJson<{ jobs: { jid: string; name: string; state: string; tasks?: { total: number; running: number } }[] }>(
      'Flink', `${this.baseUrl}/jobs/overview`, { timeoutMs: 5000 },
    );
    return new Map(out.jobs.map((j) => [j.jid, { id: j.jid, name: j.name, state: j.state, phase: phaseOf(j.state, j.tasks) }]));
  }

  async stopWithSavepoint(jobId: string): Promise<string | undefined> {
    // A savepoint fails while tasks are still starting, say; try a few times before cancelling.
    for (let attempt = 1; attempt <= SAVEPOINT_ATTEMPTS; attempt++) {
      try {
        const location = await this.savepointAndStop(jobId);
        if (location) return location;
        this.logger.warn(`stop with savepoint of ${jobId} failed (attempt ${attempt} of ${SAVEPOINT_ATTEMPTS})`);
      } catch (error) {
        if (error instanceof HttpError && error.status === 404) return undefined;
        this.logger.warn(`stop with savepoint of ${jobId} failed (${(error as Error).message}; attempt ${attempt} of ${SAVEPOINT_ATTEMPTS})`);
      }
      if (attempt < SAVEPOINT_ATTEMPTS) await new Promise((r) => setTimeout(r, 2000));
    }
    this.logger.warn(`cancelling ${jobId} without a savepoint`);
    await this.cancel(jobId);
    return undefined;
  }

  /** The savepoint's location, or undefined when Flink could not take it. */
  private async savepointAndStop(jobId: string): Promise<string | undefined> {
    const { 'request-id': requestId } = await httpJson<{ 'request-id': string }>('Flink', `${this.baseUrl}/jobs/${jobId}/stop`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ drain: false, ...(this.options.savepointDir ? { targetDirectory: this.options.savepointDir } : {}) }),
    });
    for (let i = 0; i < 120; i++) {
      const status = await httpJson<{ status: { id: string }; operation?: { location?: string } }>('Flink', `${this.baseUrl}/jobs/${jobId}/savepoints/${requestId}`);
      if (status.status.id === 'COMPLETED') return status.operation?.location;
      await new Promise((r) => setTimeout(r, 500));
    }
    return undefined;
  }

  async latestCheckpoint(jobId: string): Promise<string | undefined> {
    try {
      const out = await httpJson<{ latest?: { completed?: { external_path?: string } | null } }>('Flink', `${this.baseUrl}/jobs/${jobId}/checkpoints`, { timeoutMs: 5000 });
      const path = out.latest?.completed?.external_path;
      if (path && path !== '<checkpoint-not-externally-addressable>') return path;
    } catch (error) {
      if (!(error instanceof HttpError && error.status === 404)) throw error;
    }
    return this.checkpointOnDisk(jobId);
  }

  /** The newest complete checkpoint (one with its _metadata) under <checkpointsDir>/<jobId>/chk-N. */
  private checkpointOnDisk(jobId: string): string | undefined {
    if (!this.options.checkpointsDir || !/^[0-9a-f]{32}$/.test(jobId)) return undefined;
    const dir = join(this.options.checkpointsDir, jobId);
    if (!existsSync(dir)) return undefined;
    const numbered = readdirSync(dir)
      .map((name) => /^chk-(\d+)$/.exec(name))
      .filter((m): m is RegExpExecArray => m !== null && existsSync(join(dir, m[0], '_metadata')))
      .sort((a, b) => Number(b[1]) - Number(a[1]));
    return numbered.length ? `file://${join(dir, numbered[0][0])}` : undefined;
  }

  async failureCause(jobId: string): Promise<string | undefined> {
    try {
      const out = await httpJson<{ 'root-exception'?: string; exceptionHistory?: { entries?: { exceptionName?: string; stacktrace?: string }[] } }>(
        'Flink', `${this.baseUrl}/jobs/${jobId}/exceptions?maxExceptions=1`,
      );
      const trace = out.exceptionHistory?.entries?.[0]?.stacktrace ?? out['root-exception'];
      return trace ? rootCause(trace) : undefined;
    } catch {
      return undefined;
    }
  }

  async cancel(jobId: string): Promise<void> {
    try {
      await httpJson('Flink', `${this.baseUrl}/jobs/${jobId}?mode=cancel`, { method: 'PATCH' });
    } catch (error) {
      if (error instanceof HttpError && (error.status === 404 || error.status === 409)) return;
      throw error;
    }
  }
}

/** The innermost "Caused by:" line of a Java stack trace: the cause a user can act on. */
export function rootCause(trace: string): string {
  const lines = trace.split('\n').map((l) => l.trim());
  const causes = lines.filter((l) => l.startsWith('Caused by: ')).map((l) => l.slice('Caused by: '.length));
  return (causes.at(-1) ?? lines[0] ?? '').slice(0, 500);
}
