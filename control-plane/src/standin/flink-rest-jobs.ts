import { FlinkRestClient } from '../deployments/flink-rest.client';
import type { FlinkJobs } from './managed-flink.standin';

/**
 * The stand-in's applications on a Flink cluster's REST API: each start runs the runner
 * JAR with the application's runtime properties, in the JSON format Managed Flink writes
 * to /etc/flink/application_properties.json, as `--properties-base64` (the runner reads
 * them as it does on the service).
 */
export class FlinkRestJobs implements FlinkJobs {
  private readonly flink: FlinkRestClient;

  constructor(baseUrl: string, runnerJar: string) {
    this.flink = new FlinkRestClient(baseUrl, runnerJar);
  }

  run(job: { jobName: string; properties: { PropertyGroupId: string; PropertyMap: Record<string, string> }[]; restoreFrom?: string }): Promise<string> {
    return this.flink.run(['--job-name', job.jobName, '--properties-base64', Buffer.from(JSON.stringify(job.properties), 'utf8').toString('base64')], job.restoreFrom);
  }

  async overview(): Promise<Map<string, { state: string; allTasksRunning: boolean }>> {
    const jobs = await this.flink.jobs();
    return new Map(jobs.map((j) => [j.jid, { state: j.state, allTasksRunning: !j.tasks || j.tasks.running >= j.tasks.total }]));
  }

  stopWithSavepoint(jobId: string): Promise<string> {
    return this.flink.stopWithSavepoint(jobId);
  }

  cancel(jobId: string): Promise<void> {
    return this.flink.cancel(jobId);
  }
}
