import { Logger } from '@nestjs/common';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeploymentTarget, JobPhase, JobSpec, ObservedJob } from './deployment-target';
import { FlinkRestClient } from './flink-rest.client';
import { HttpError, httpJson } from './http';

/** Flink's job states (JobStatus) as an analysis sees them. */
const PHASES: Record<string, JobPhase> = {
  INITIALIZING: 'STARTING', CREATED: 'STARTING', RUNNING: 'RUNNING', RESTARTING: 'FAILING', FAILING: 'FAILING',
  FAILED: 'FAILED', CANCELLING: 'STOPPING', CANCELED: 'FINISHED', FINISHED: 'FINISHED', SUSPENDED: 'FAILED', RECONCILING: 'STARTING',
};

/**
 * A job whose tasks are not all running yet is still starting: a savepoint of it would fail.
 * A finished task counts as started: a bounded source (the data lake of a backfill) finishes
 * while the rest of the job runs on.
 */
export function phaseOf(state: string, tasks?: { total: number; running: number; finished?: number }): JobPhase {
  const phase = PHASES[state] ?? 'STARTING';
  return phase === 'RUNNING' && tasks && tasks.running + (tasks.finished ?? 0) < tasks.total ? 'STARTING' : phase;
}

const SAVEPOINT_ATTEMPTS = 3;

/**
 * Any Flink cluster through its REST API: the runner JAR is uploaded once, and each
 * analysis runs it with its own SQL script as a separate job.
 */
export class FlinkRestTarget implements DeploymentTarget {
  readonly name = 'flink-rest';
  private readonly logger = new Logger('FlinkRest');
  private readonly flink: FlinkRestClient;
  private readonly baseUrl: string;

  /**
   * `checkpointsDir`: where the cluster keeps checkpoints, when this process can read it (the
   * local cluster): a job the restarted cluster forgot can still be restored from its last one.
   */
  constructor(
    baseUrl: string,
    runnerJar: string,
    private readonly options: { savepointDir?: string; checkpointsDir?: string } = {},
  ) {
    this.baseUrl = baseUrl;
    this.flink = new FlinkRestClient(baseUrl, runnerJar, (jar) => this.logger.log(`uploaded ${jar}`));
  }

  async ping(): Promise<void> {
    await httpJson('Flink', `${this.baseUrl}/overview`, { timeoutMs: 3000 });
  }

  deploy(job: JobSpec): Promise<string> {
    return this.flink.run(['--job-name', job.name, '--sql-base64', Buffer.from(job.sql, 'utf8').toString('base64')], job.restoreFrom);
  }

  async observe(): Promise<Map<string, ObservedJob>> {
    const jobs = await this.flink.jobs();
    return new Map(jobs.map((j) => [j.jid, { id: j.jid, name: j.name, state: j.state, phase: phaseOf(j.state, j.tasks) }]));
  }

  async stopWithSavepoint(jobId: string): Promise<string | undefined> {
    // A savepoint fails while tasks are still starting, say; try a few times before cancelling.
    for (let attempt = 1; attempt <= SAVEPOINT_ATTEMPTS; attempt++) {
      try {
        return await this.flink.stopWithSavepoint(jobId, this.options.savepointDir);
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

  cancel(jobId: string): Promise<void> {
    return this.flink.cancel(jobId);
  }
}

/** The innermost "Caused by:" line of a Java stack trace: the cause a user can act on. */
export function rootCause(trace: string): string {
  const lines = trace.split('\n').map((l) => l.trim());
  const causes = lines.filter((l) => l.startsWith('Caused by: ')).map((l) => l.slice('Caused by: '.length));
  return (causes.at(-1) ?? lines[0] ?? '').slice(0, 500);
}
