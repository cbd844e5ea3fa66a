import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { HttpError, httpJson } from '../deployments/http';
import type { FlinkJobs } from './managed-flink.standin';

/**
 * The stand-in's applications on a Flink cluster's REST API: the runner JAR uploaded once,
 * each start a `/jars/:id/run` with the application's runtime properties, in the JSON
 * format Managed Flink writes to /etc/flink/application_properties.json, as
 * `--properties-base64` (the runner reads them as it does on the service).
 */
export class FlinkRestJobs implements FlinkJobs {
  private jarId?: Promise<string>;

  constructor(private readonly baseUrl: string, private readonly runnerJar: string) {}

  async run(job: { jobName: string; properties: { PropertyGroupId: string; PropertyMap: Record<string, string> }[]; restoreFrom?: string }): Promise<string> {
    const body = JSON.stringify({
      programArgsList: ['--job-name', job.jobName, '--properties-base64', Buffer.from(JSON.stringify(job.properties), 'utf8').toString('base64')],
      ...(job.restoreFrom ? { savepointPath: job.restoreFrom, allowNonRestoredState: false } : {}),
    });
    const run = async () =>
      (await httpJson<{ jobid: string }>('Flink', `${this.baseUrl}/jars/${await this.uploaded()}/run`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body, timeoutMs: 120_000,
      })).jobid;
    try {
      return await run();
    } catch (error) {
      // The cluster restarted and forgot the JAR: upload it again once.
      if (!(error instanceof HttpError && error.status === 404)) throw error;
      this.jarId = undefined;
      return run();
    }
  }

  private uploaded(): Promise<string> {
    this.jarId ??= (async () => {
      const form = new FormData();
      form.append('jarfile', await openAsBlob(this.runnerJar, { type: 'application/x-java-archive' }), basename(this.runnerJar));
      const out = await httpJson<{ filename: string }>('Flink', `${this.baseUrl}/jars/upload`, { method: 'POST', body: form, timeoutMs: 120_000 });
      return basename(out.filename);
    })().catch((error) => {
      this.jarId = undefined;
      throw error;
    });
    return this.jarId;
  }

  async overview(): Promise<Map<string, { state: string; allTasksRunning: boolean }>> {
    const out = await httpJson<{ jobs: { jid: string; state: string; tasks?: { total: number; running: number } }[] }>('Flink', `${this.baseUrl}/jobs/overview`, { timeoutMs: 5000 });
    return new Map(out.jobs.map((j) => [j.jid, { state: j.state, allTasksRunning: !j.tasks || j.tasks.running >= j.tasks.total }]));
  }

  async stopWithSavepoint(jobId: string): Promise<string> {
    const { 'request-id': requestId } = await httpJson<{ 'request-id': string }>('Flink', `${this.baseUrl}/jobs/${jobId}/stop`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ drain: false }),
    });
    for (let i = 0; i < 240; i++) {
      const status = await httpJson<{ status: { id: string }; operation?: { location?: string; 'failure-cause'?: { 'class'?: string; 'stack-trace'?: string } } }>(
        'Flink', `${this.baseUrl}/jobs/${jobId}/savepoints/${requestId}`,
      );
      if (status.status.id === 'COMPLETED') {
        if (status.operation?.location) return status.operation.location;
        throw new Error(`savepoint failed: ${status.operation?.['failure-cause']?.['stack-trace']?.split('\n')[0] ?? 'no location'}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('savepoint did not complete within a minute');
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
