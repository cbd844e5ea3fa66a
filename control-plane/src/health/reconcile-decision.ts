import type { Analysis, AnalysisStatus } from '../analyses/analyses.repository';
import { generationOfJob, ObservedJob } from '../deployments/deployment-target';

/**
 * What the reconciler does next for one analysis: a pure function of the analysis as
 * stored, what the target shows of its job, and the time (the Flink Kubernetes Operator
 * keeps the same split between deciding and doing). One step per pass; the next pass
 * sees its effect.
 */
export type Decision =
  /** Nothing to do but (maybe) show a status. */
  | { action: 'status'; status: AnalysisStatus; reason?: string; resetFailures?: boolean; runningSince?: string }
  /** A deployment a crashed control plane began did start its job: record it. */
  | { action: 'adopt'; jobId: string; reason: string }
  /** An operation a crashed control plane began did not finish: forget it and go on. */
  | { action: 'abandon'; reason: string }
  | { action: 'deploy' }
  /** Stop with a savepoint (the user stopped the analysis). */
  | { action: 'stop'; jobId: string }
  /** Cancel a job that no longer matches the analysis (an older generation). */
  | { action: 'cancel'; jobId: string; reason: string }
  /** The job ended or vanished while it should run: count a failure, wait, deploy again. */
  | { action: 'failed'; jobId: string; reason: string; lost: boolean }
  | { action: 'wait' };

export interface ReconcileSettings {
  /** First wait after a failure; doubles with every consecutive failure. */
  backoffMs: number;
  backoffMaxMs: number;
  /** A job running this long without failing resets the failure count. */
  healthyAfterMs: number;
}

const ACTIVE = new Set(['STARTING', 'RUNNING', 'FAILING', 'STOPPING']);

export function isActive(job: ObservedJob): boolean {
  return ACTIVE.has(job.phase);
}

/**
 * `job`: the target's view of the analysis' recorded job (undefined when it has none or the
 * target does not know it); `named`: a job whose name is the one an interrupted deployment recorded.
 */
export function decide(analysis: Analysis, observed: { job?: ObservedJob; named?: ObservedJob }, now: number, settings: ReconcileSettings): Decision {
  // Under the reconciler's lock no operation of this process is in flight: one still recorded
  // was begun by a control plane that stopped mid-way. Settle it first.
  const operation = analysis.operation;
  if (operation) {
    if (operation.type === 'deploy' && observed.named && isActive(observed.named)) {
      return { action: 'adopt', jobId: observed.named.id, reason: 'found the job of a deployment interrupted by a restart of the control plane' };
    }
    return { action: 'abandon', reason: `a ${operation.type} was interrupted by a restart of the control plane; going on` };
  }

  const job = observed.job;
  if (analysis.desiredState === 'STOPPED') {
    if (job && isActive(job)) return { action: 'stop', jobId: job.id };
    return { action: 'status', status: 'STOPPED' };
  }

  if (analysis.jobId) {
    if (!job) return { action: 'failed', jobId: analysis.jobId, reason: 'the job is gone from the cluster', lost: true };
    if (generationOfJob(job.name) !== analysis.generation && isActive(job)) {
      return { action: 'cancel', jobId: job.id, reason: `the job computes generation ${generationOfJob(job.name)}; the analysis is at ${analysis.generation}` };
    }
    switch (job.phase) {
      case 'RUNNING': {
        const since = analysis.runningSince ?? new Date(now).toISOString();
        const healthy = analysis.failures > 0 && now - Date.parse(since) >= settings.healthyAfterMs;
        return { action: 'status', status: 'RUNNING', runningSince: since, resetFailures: healthy };
      }
      case 'STARTING':
        return { action: 'status', status: 'DEPLOYING' };
      case 'FAILING':
        // Flink restarts it from its last checkpoint, with its own growing backoff.
        return { action: 'status', status: 'FAILED', reason: `Flink job ${job.state}` };
      case 'STOPPING':
        return { action: 'wait' };
      case 'FAILED':
      case 'FINISHED':
        return { action: 'failed', jobId: job.id, reason: `Flink job ${job.state}`, lost: false };
    }
  }

  if (analysis.nextAttemptAt && now < Date.parse(analysis.nextAttemptAt)) return { action: 'wait' };
  return { action: 'deploy' };
}

/** The wait before the next attempt after `failures` consecutive failures. */
export function backoffMs(failures: number, settings: ReconcileSettings): number {
  return Math.min(settings.backoffMaxMs, settings.backoffMs * 2 ** Math.max(0, failures - 1));
}

/** A restore that failed this often is given up: the analysis is recomputed from the stream instead. */
export const RESTORE_ATTEMPTS = 3;
