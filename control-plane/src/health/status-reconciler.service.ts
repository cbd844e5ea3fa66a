import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CONFIG, Config } from '../config/config';
import { ANALYSES_REPOSITORY, AnalysesRepository, Analysis, AnalysisStatus } from '../analyses/analyses.repository';
import { AnalysesService } from '../analyses/analyses.service';
import { DEPLOYMENT_TARGET, DeploymentTarget, ObservedJob } from '../deployments/deployment-target';

/**
 * The scheduled health check: observe every job on the target in one call, then
 * reconcile each analysis' status with it (as the Flink Kubernetes Operator does).
 * It records when a status last changed. A job the cluster no longer knows (the
 * local cluster restarted) is deployed again, resuming after its last window.
 */
/** How long an analysis whose deployment failed waits before the next try. */
const REDEPLOY_AFTER_MS = 30_000;

@Injectable()
export class StatusReconciler implements OnApplicationBootstrap {
  private readonly logger = new Logger('HealthCheck');
  private running = false;
  lastRun?: { at: string; ok: boolean; error?: string };

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ANALYSES_REPOSITORY) private readonly analyses: AnalysesRepository,
    @Inject(DEPLOYMENT_TARGET) private readonly target: DeploymentTarget,
    private readonly lifecycle: AnalysesService,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  onApplicationBootstrap() {
    if (this.config.healthIntervalMs > 0) {
      this.scheduler.addInterval('analysis-status', setInterval(() => void this.reconcile(), this.config.healthIntervalMs));
    }
  }

  async reconcile(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const jobs = await this.target.observe();
      for (const analysis of this.analyses.all()) {
        if (!this.lifecycle.isBusy(analysis.id)) await this.reconcileOne(analysis, jobs);
      }
      this.lastRun = { at: new Date().toISOString(), ok: true };
    } catch (error) {
      const message = (error as Error).message;
      if (this.lastRun?.ok !== false) this.logger.warn(`cannot observe jobs: ${message}`);
      this.lastRun = { at: new Date().toISOString(), ok: false, error: message };
    } finally {
      this.running = false;
    }
  }

  private async reconcileOne(analysis: Analysis, jobs: Map<string, ObservedJob>): Promise<void> {
    const job = analysis.jobId ? jobs.get(analysis.jobId) : undefined;
    if (analysis.desiredState === 'STOPPED') {
      if (analysis.status !== 'STOPPING' && analysis.status !== 'STOPPED') this.lifecycle.setStatus(analysis, 'STOPPED');
      return;
    }
    if (!analysis.jobId) {
      // Its deployment failed (Flink was down, say): try again now and then, never a healthy one.
      const failedFor = Date.now() - Date.parse(analysis.statusChangedAt);
      if (analysis.status === 'FAILED' && failedFor > REDEPLOY_AFTER_MS) {
        this.logger.log(`deploying analysis ${analysis.id} again after a failed deployment`);
        this.lifecycle.setStatus(analysis, 'DEPLOYING', 'trying again after a failed deployment');
        void this.lifecycle.redeploy(analysis.id);
      }
      return;
    }
    if (!job) {
      this.logger.warn(`job ${analysis.jobId} of analysis ${analysis.id} is gone from the cluster; deploying it again`);
      this.lifecycle.setStatus(analysis, 'DEPLOYING', 'the job was lost; deploying it again');
      void this.lifecycle.redeploy(analysis.id);
      return;
    }
    const [status, message] = statusOf(job);
    if (job.phase === 'FAILING' || job.phase === 'FAILED') {
      // Say why, once per change: the planner accepted the job, the runtime did not.
      if (analysis.status !== status || !analysis.statusMessage) {
        const cause = await this.target.failureCause(job.id);
        this.lifecycle.setStatus(analysis, status, cause ? `${message}: ${cause}` : message);
      }
      return;
    }
    this.lifecycle.setStatus(analysis, status, message);
  }
}

function statusOf(job: ObservedJob): [AnalysisStatus, string | undefined] {
  switch (job.phase) {
    case 'RUNNING':
      return ['RUNNING', undefined];
    case 'STARTING':
      return ['DEPLOYING', undefined];
    case 'FAILING':
      return ['DEPLOYING', `Flink job is ${job.state}`];
    case 'STOPPING':
      return ['STOPPING', undefined];
    case 'FAILED':
      return ['FAILED', `Flink job ${job.state}`];
    case 'FINISHED':
      return ['FAILED', `Flink job ended (${job.state}) though the analysis should run`];
  }
}
