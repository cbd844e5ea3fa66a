import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { HttpError, httpJson } from './http';

export interface FlinkJobOverview {
  jid: string;
  name: string;
  state: string;
  tasks?: { total: number; running: number };
}

/**
 * The calls to a Flink cluster's REST API that running the runner JAR needs: the JAR
 * uploaded once (again after the cluster forgot it), a run per job with its program
 * arguments, the jobs' overview, stop with a savepoint, cancel. Used by FlinkRestTarget
 * and by the Managed Flink stand-in.
 */
export class FlinkRestClient {
  private jarId?: Promise<string>;

  constructor(readonly baseUrl: string, private readonly runnerJar: string, private readonly onUpload?: (jar: string) => void) {}

  /** Runs the runner JAR; `restoreFrom` never allows non-restored state (a plan that does not fit fails). */
  async run(programArgs: string[], restoreFrom?: string): Promise<string> {
    const body = JSON.stringify({ programArgsList: programArgs, ...(restoreFrom ? { savepointPath: restoreFrom, allowNonRestoredState: false } : {}) });
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
      this.onUpload?.(basename(this.runnerJar));
      return basename(out.filename);
    })().catch((error) => {
      this.jarId = undefined;
      throw error;
    });
    return this.jarId;
  }

  async jobs(): Promise<FlinkJobOverview[]> {
    return (await httpJson<{ jobs: FlinkJobOverview[] }>('Flink', `${this.baseUrl}/jobs/overview`, { timeoutMs: 5000 })).jobs;
  }

  /**
   * Stops the job with a savepoint: its location, or an error saying why Flink could not
   * take it (the job then still runs).
   */
  async stopWithSavepoint(jobId: string, targetDirectory?: string): Promise<string> {
    const { 'request-id': requestId } = await httpJson<{ 'request-id': string }>('Flink', `${this.baseUrl}/jobs/${jobId}/stop`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ drain: false, ...(targetDirectory ? { targetDirectory } : {}) }),
    });
    for (let i = 0; i < 240; i++) {
      const status = await httpJson<{ status: { id: string }; operation?: { location?: string; 'failure-cause'?: { 'stack-trace'?: string } } }>(
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

  /** Resolves also when the job is already gone or ended. */
  async cancel(jobId: string): Promise<void> {
    try {
      await httpJson('Flink', `${this.baseUrl}/jobs/${jobId}?mode=cancel`, { method: 'PATCH' });
    } catch (error) {
      if (error instanceof HttpError && (error.status === 404 || error.status === 409)) return;
      throw error;
    }
  }
}
