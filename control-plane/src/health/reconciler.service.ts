import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { randomBytes } from 'node:crypto';
import { CONFIG, Config } from '../config/config';
import { KeyedLock } from '../common/keyed-lock';
import { ANALYSES_REPOSITORY, AnalysesRepository, Analysis, AnalysisStatus } from '../analyses/analyses.repository';
import { AnalysesService, windowMsOf } from '../analyses/analyses.service';
import { AnalysisChanges } from '../analyses/analysis-changes';
import { afterLoss } from '../analyses/recompute';
import { applicationNameOf, DEPLOYMENT_TARGET, DeploymentTarget, isJobNamed, JOB_NAME_PREFIX, jobNameFor, ObservedJob } from '../deployments/deployment-target';
import { HEALTH_HISTORY, HealthHistory } from './health-history.repository';
import { backoffMs, decide, Decision, isActive, ReconcileSettings, RESTORE_ATTEMPTS } from './reconcile-decision';

/** Analyses a pass reconciles side by side. */
const PASS_CONCURRENCY = 4;
/** A job that ran this long without failing starts its failure count afresh. */
const HEALTHY_AFTER_MS = 10 * 60_000;

/**
 * The scheduled health check and the only caller of the deployment target: observe every
 * job in one call, then make each analysis' job match what the store says it should be
 * (docs/counting.md §6). API changes are reconciled at once; a pass every few seconds
 * repairs what happened behind the control plane's back. Work on one analysis runs under
 * its lock, on the analysis as stored when the lock is taken.
 */
@Injectable()
export class Reconciler implements OnApplicationBootstrap {
  private readonly logger = new Logger('HealthCheck');
  private readonly locks = new KeyedLock();
  private readonly settings: ReconcileSettings;
  /** When this process last acted on an analysis' job: an older observation of it is stale. */
  private readonly actedAt = new Map<string, number>();
  private passRunning = false;
  /** The clock; tests set their own. */
  now: () => number = Date.now;
  lastRun?: { at: string; ok: boolean; error?: string };

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ANALYSES_REPOSITORY) private readonly analyses: AnalysesRepository,
    @Inject(DEPLOYMENT_TARGET) private readonly target: DeploymentTarget,
    @Inject(HEALTH_HISTORY) private readonly history: HealthHistory,
    private readonly lifecycle: AnalysesService,
    private readonly changes: AnalysisChanges,
    private readonly scheduler: SchedulerRegistry,
  ) {
    this.settings = { backoffMs: config.restartBackoffMs, backoffMaxMs: config.restartBackoffMaxMs, healthyAfterMs: HEALTHY_AFTER_MS };
  }

  onApplicationBootstrap() {
    this.changes.onChange((id) => void this.reconcileNow(id));
    if (this.config.healthIntervalMs > 0) {
      this.scheduler.addInterval('reconcile', setInterval(() => void this.pass(), this.config.healthIntervalMs));
      void this.pass();
    }
  }

  /** One pass over every analysis, and the orphans. */
  async pass(): Promise<void> {
    if (this.passRunning) return;
    this.passRunning = true;
    try {
      const observed = await this.observe();
      const analyses = this.analyses.all();
      await this.cancelOrphans(observed.jobs, analyses);
      // A few analyses at a time: one slow operation (a Managed Flink stop takes minutes)
      // does not hold up the others, and the target is not flooded.
      const queue = [...analyses];
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const id = next.id;
          await this.locks.run(id, () => this.reconcileOne(id, observed)).catch((error: Error) => this.logger.error(`analysis ${id}: ${error.message}`));
        }
      };
      await Promise.all(Array.from({ length: PASS_CONCURRENCY }, worker));
      this.lastRun = { at: new Date(this.now()).toISOString(), ok: true };
    } catch (error) {
      const message = (error as Error).message;
      if (this.lastRun?.ok !== false) this.logger.warn(`cannot observe jobs: ${message}`);
      this.lastRun = { at: new Date(this.now()).toISOString(), ok: false, error: message };
    } finally {
      this.passRunning = false;
    }
  }

  /** After a change through the API. */
  reconcileNow(id: string): Promise<void> {
    return this.locks
      .run(id, async () => this.reconcileOne(id, await this.observe()))
      .catch((error: Error) => this.logger.warn(`analysis ${id}: ${error.message}`));
  }

  private async observe(): Promise<{ jobs: Map<string, ObservedJob>; at: number }> {
    const at = this.now();
    return { jobs: await this.target.observe(), at };
  }

  private async reconcileOne(id: string, observed: { jobs: Map<string, ObservedJob>; at: number }, steps = 1): Promise<void> {
    // Another action on this analysis finished after the observation was made: look again.
    if ((this.actedAt.get(id) ?? 0) >= observed.at) observed = await this.observe();
    const analysis = this.analyses.findById(id);
    if (!analysis) return this.cancelJobsOf(id, observed.jobs);
    const job = analysis.jobId ? observed.jobs.get(analysis.jobId) : undefined;
    const named = analysis.operation?.jobName ? [...observed.jobs.values()].find((j) => isJobNamed(j.name, analysis.operation!.jobName!)) : undefined;
    const decision = decide(analysis, { job, named }, this.now(), this.settings);
    await this.apply(analysis, decision, job);
    // A step that only cleared the way (an old generation's job cancelled, an interrupted
    // operation settled) is followed at once by the next, not a pass later.
    if ((decision.action === 'cancel' || decision.action === 'abandon') && steps < 3) return this.reconcileOne(id, await this.observe(), steps + 1);
  }

  private async apply(analysis: Analysis, decision: Decision, job: ObservedJob | undefined): Promise<void> {
    const id = analysis.id;
    switch (decision.action) {
      case 'wait':
        return;
      case 'status': {
        const changes: Partial<Analysis> = {};
        if (decision.runningSince && analysis.runningSince !== decision.runningSince) changes.runningSince = decision.runningSince;
        if (decision.resetFailures) Object.assign(changes, { failures: 0, nextAttemptAt: undefined });
        if (Object.keys(changes).length) this.analyses.update(id, changes);
        if (decision.status === 'FAILED' && job && analysis.status !== 'FAILED') {
          const cause = await this.target.failureCause(job.id).catch(() => undefined);
          return this.note(analysis, 'FAILED', cause ? `${decision.reason}: ${cause}` : decision.reason);
        }
        if (decision.status === 'FAILED' && analysis.status === 'FAILED') return;
        return this.note(analysis, decision.status, decision.reason ?? (decision.status === analysis.status ? analysis.statusMessage : undefined));
      }
      case 'adopt':
        this.analyses.update(id, { jobId: decision.jobId, operation: undefined });
        return this.note(analysis, 'DEPLOYING', decision.reason);
      case 'abandon':
        this.analyses.update(id, { operation: undefined });
        this.history.add(id, { at: this.iso(), status: analysis.status, reason: decision.reason });
        return;
      case 'deploy':
        return this.deploy(analysis);
      case 'stop':
        return this.stop(analysis, decision.jobId);
      case 'cancel':
        this.actedAt.set(id, this.now());
        await this.target.cancel(decision.jobId);
        this.analyses.update(id, { jobId: undefined });
        this.history.add(id, { at: this.iso(), status: analysis.status, reason: `cancelled job ${decision.jobId}: ${decision.reason}` });
        return;
      case 'failed': {
        const cause = decision.lost ? undefined : await this.target.failureCause(decision.jobId).catch(() => undefined);
        const checkpoint = await this.target.latestCheckpoint(decision.jobId).catch(() => undefined);
        return this.recordFailure(analysis, cause ? `${decision.reason}: ${cause}` : decision.reason, checkpoint);
      }
    }
  }

  /** Starts the analysis' job: restored from its savepoint or checkpoint, else reading the stream from its generation's start. */
  private async deploy(analysis: Analysis): Promise<void> {
    const id = analysis.id;
    const restoreFrom = analysis.savepoint ?? analysis.checkpoint;
    const sql = restoreFrom ? analysis.sql : this.lifecycle.jobSql(analysis);
    const name = jobNameFor(analysis.kind, id, analysis.generation, randomBytes(4).toString('hex'));
    // Intent first: a crash from here on leaves a trace the next pass settles.
    this.analyses.update(id, { operation: { type: 'deploy', at: this.iso(), jobName: name }, jobName: name });
    this.note(analysis, 'DEPLOYING', restoreFrom ? `restoring from ${restoreFrom}` : `reading the stream from ${analysis.readFrom ?? analysis.createdAt}`);
    this.actedAt.set(id, this.now());
    let jobId: string;
    try {
      jobId = await this.target.deploy({ name, sql, restoreFrom });
    } catch (error) {
      this.analyses.update(id, { operation: undefined });
      const fresh = this.analyses.findById(id);
      if (fresh) await this.recordFailure(fresh, `deployment failed: ${(error as Error).message.slice(0, 1000)}`, undefined);
      return;
    } finally {
      this.actedAt.set(id, this.now());
    }
    const current = this.analyses.findById(id);
    if (!current || current.jobName !== name || current.generation !== analysis.generation) {
      // Deleted or changed meanwhile: this job is nobody's.
      await this.target.cancel(jobId);
      if (current) this.analyses.update(id, { operation: undefined });
      return;
    }
    this.analyses.update(id, { jobId, sql, savepoint: undefined, operation: undefined, runningSince: undefined });
    this.history.add(id, { at: this.iso(), status: 'DEPLOYING', reason: `job ${jobId} started` });
    this.logger.log(`analysis ${id} deployed as job ${jobId}${restoreFrom ? ` from ${restoreFrom}` : ''}`);
  }

  private async stop(analysis: Analysis, jobId: string): Promise<void> {
    const id = analysis.id;
    this.analyses.update(id, { operation: { type: 'stop', at: this.iso() } });
    this.note(analysis, 'STOPPING');
    this.actedAt.set(id, this.now());
    try {
      const savepoint = await this.target.stopWithSavepoint(jobId);
      const checkpoint = savepoint ? analysis.checkpoint : ((await this.target.latestCheckpoint(jobId).catch(() => undefined)) ?? analysis.checkpoint);
      this.analyses.update(id, { savepoint, checkpoint, jobId: undefined, operation: undefined, runningSince: undefined });
      const fresh = this.analyses.findById(id)!;
      if (!savepoint && !checkpoint) this.recomputeLater(fresh, 'stopped without a savepoint or checkpoint');
      this.note(this.analyses.findById(id)!, 'STOPPED', savepoint ? `savepoint ${savepoint}` : 'stopped without a savepoint');
    } catch (error) {
      this.analyses.update(id, { operation: undefined });
      this.note(this.analyses.findById(id)!, 'STOPPING', `could not stop the job (${(error as Error).message.slice(0, 300)}); trying again`);
    } finally {
      this.actedAt.set(id, this.now());
    }
  }

  /**
   * One more consecutive failure: FAILED with the cause, the next attempt after a growing
   * wait. Without state to restore, or when restoring keeps failing, the next job recomputes.
   */
  private async recordFailure(analysis: Analysis, reason: string, checkpoint: string | undefined): Promise<void> {
    const failures = analysis.failures + 1;
    const wait = backoffMs(failures, this.settings);
    this.analyses.update(analysis.id, {
      failures, nextAttemptAt: new Date(this.now() + wait).toISOString(), runningSince: undefined, jobId: undefined,
      checkpoint: checkpoint ?? analysis.checkpoint,
    });
    let fresh = this.analyses.findById(analysis.id)!;
    const restorePoint = fresh.savepoint ?? fresh.checkpoint;
    if (!restorePoint) this.recomputeLater(fresh, 'no checkpoint to restore');
    else if (failures >= RESTORE_ATTEMPTS) this.recomputeLater(fresh, `restoring failed ${failures} times in a row`);
    fresh = this.analyses.findById(analysis.id)!;
    this.note(fresh, 'FAILED', `${reason}; next attempt in ${Math.round(wait / 1000)} s`);
    this.logger.warn(`analysis ${analysis.id}: ${reason}`);
  }

  /** The state is gone: a new generation recomputes every window that could still change. */
  private recomputeLater(analysis: Analysis, why: string): void {
    const plan = afterLoss(analysis, windowMsOf(analysis.params), this.config.latenessHorizonSeconds * 1000, new Date(this.now() - this.config.streamRetentionHours * 3600_000));
    this.lifecycle.startGeneration(analysis, plan);
    this.history.add(analysis.id, {
      at: this.iso(), status: analysis.status,
      reason: `${why}: recomputing windows from ${plan.resultsFrom?.toISOString()} (reading from ${plan.readFrom.toISOString()})`,
    });
  }

  /**
   * Jobs with our prefix that no analysis expects (a deploy that timed out, a deleted analysis): cancelled.
   * So are retained ones (a stopped Managed Flink application and its snapshots) no analysis expects.
   */
  private async cancelOrphans(jobs: Map<string, ObservedJob>, analyses: Analysis[]): Promise<void> {
    const names = analyses.flatMap((a) => [a.jobId, a.jobName, a.operation?.jobName]).filter((n): n is string => Boolean(n));
    const expected = new Set([...names, ...names.map(applicationNameOf).filter(Boolean)]);
    for (const job of jobs.values()) {
      if (!job.name.startsWith(JOB_NAME_PREFIX) || !(isActive(job) || job.retained) || job.phase === 'STOPPING' || expected.has(job.id) || expected.has(job.name)) continue;
      this.logger.warn(`cancelling job ${job.id} (${job.name}): no analysis expects it`);
      await this.target.cancel(job.id).catch((error: Error) => this.logger.warn(`could not cancel orphan job ${job.id}: ${error.message}`));
    }
  }

  private async cancelJobsOf(id: string, jobs: Map<string, ObservedJob>): Promise<void> {
    for (const job of jobs.values()) {
      if (job.name.includes(`-${id}-g`) && (isActive(job) || job.retained)) await this.target.cancel(job.id).catch(() => undefined);
    }
  }

  /** A status with its reason, and one line of history whenever either changes. */
  private note(analysis: Analysis, status: AnalysisStatus, reason?: string): void {
    if (analysis.status === status && analysis.statusMessage === reason) return;
    this.lifecycle.setStatus(analysis, status, reason);
    this.history.add(analysis.id, { at: this.iso(), status, reason });
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
