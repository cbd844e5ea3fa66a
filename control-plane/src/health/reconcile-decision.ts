import type { AnalysisStatus, DesiredState } from '../analyses/analyses.repository';
import type { ObservedJob } from '../deployments/deployment-target';
import type { MemberRef, Pool } from './pools.repository';

/**
 * What the reconciler does next for one pool: a pure function of the pool as stored, the
 * members it should compute, what the target shows of its job, and the time (the Flink
 * Kubernetes Operator keeps the same split between deciding and doing). One step per
 * pass; the next pass sees its effect.
 */
export type Decision =
  /** Nothing to do to the job; members' statuses follow it. */
  | { action: 'status'; phase?: 'RUNNING'; resetFailures?: boolean; runningSince?: string }
  /** A deployment a crashed control plane began did start its job: record it. */
  | { action: 'adopt'; jobId: string; reason: string }
  /** An operation a crashed control plane began did not finish: forget it and go on. */
  | { action: 'abandon'; reason: string }
  | { action: 'deploy' }
  /** Every member is stopped: stop with a savepoint, which the same members restore from. */
  | { action: 'stop'; jobId: string }
  /**
   * The job no longer computes the members it should (one was added, changed, stopped or
   * deleted): a new job takes over, and this one serves its members until the new one caught up.
   */
  | { action: 'handover'; jobId: string; reason: string }
  /** The job the current one replaced is no longer needed (the current one caught up) or gone: cancel it. */
  | { action: 'retire'; jobId: string; reason: string }
  /** The job ended or vanished while it should run: count a failure, wait, deploy again. */
  | { action: 'failed'; jobId: string; reason: string; lost: boolean }
  /** No member should run and the job is gone: forget it, keep its last checkpoint. */
  | { action: 'release'; jobId: string }
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

/** Whether two member lists name the same analysis generations (in any order). */
export function sameMembers(a: readonly MemberRef[], b: readonly MemberRef[]): boolean {
  if (a.length !== b.length) return false;
  const key = (m: MemberRef) => `${m.id}#${m.generation}`;
  const keys = new Set(a.map(key));
  return b.every((m) => keys.has(key(m)));
}

/** What changed between the job's members and the wanted ones, in words. */
export function describeChange(running: readonly MemberRef[], wanted: readonly MemberRef[]): string {
  const byId = new Map(running.map((m) => [m.id, m.generation]));
  const wantedIds = new Set(wanted.map((m) => m.id));
  const parts: string[] = [];
  const added = wanted.filter((m) => !byId.has(m.id)).map((m) => m.id);
  const changed = wanted.filter((m) => byId.has(m.id) && byId.get(m.id) !== m.generation).map((m) => m.id);
  const removed = running.filter((m) => !wantedIds.has(m.id)).map((m) => m.id);
  if (added.length) parts.push(`adding ${added.join(', ')}`);
  if (changed.length) parts.push(`recomputing ${changed.join(', ')}`);
  if (removed.length) parts.push(`removing ${removed.join(', ')}`);
  return parts.join('; ') || 'its members changed';
}

/** Whether the pool's current job, deployed without state, has read past the moment it started. */
export function caughtUp(pool: Pool, job: ObservedJob | undefined): boolean {
  return job?.phase === 'RUNNING' && pool.progressAt !== undefined && pool.startedAt !== undefined && pool.progressAt >= pool.startedAt;
}

/**
 * `wanted`: the analysis generations that should run in the pool now; `job`: the target's view
 * of the pool's recorded job (undefined when it has none or the target does not know it);
 * `previous`: of the job it replaces; `named`: a job whose name is the one an interrupted
 * deployment recorded.
 */
export function decide(
  pool: Pool,
  wanted: readonly MemberRef[],
  observed: { job?: ObservedJob; previous?: ObservedJob; named?: ObservedJob },
  now: number,
  settings: ReconcileSettings,
): Decision {
  // Under the reconciler's lock no operation of this process is in flight: one still recorded
  // was begun by a control plane that stopped mid-way. Settle it first.
  const operation = pool.operation;
  if (operation) {
    if (operation.type === 'deploy' && observed.named && isActive(observed.named)) {
      return { action: 'adopt', jobId: observed.named.id, reason: 'found the job of a deployment interrupted by a restart of the control plane' };
    }
    return { action: 'abandon', reason: `a ${operation.type} was interrupted by a restart of the control plane; going on` };
  }

  const job = observed.job;
  if (pool.previousJobId) {
    const previous = observed.previous;
    if (!previous || !isActive(previous)) return { action: 'retire', jobId: pool.previousJobId, reason: 'it ended' };
    if (caughtUp(pool, job)) return { action: 'retire', jobId: previous.id, reason: `job ${job!.id} caught up` };
    if (!wanted.length) return { action: 'retire', jobId: previous.id, reason: 'no member runs' };
  }
  if (!wanted.length) {
    if (job && isActive(job)) return { action: 'stop', jobId: job.id };
    if (pool.jobId) return { action: 'release', jobId: pool.jobId };
    return { action: 'status' };
  }

  if (pool.jobId) {
    if (!job) return { action: 'failed', jobId: pool.jobId, reason: 'the job is gone from the cluster', lost: true };
    if (isActive(job) && job.phase !== 'STOPPING' && !sameMembers(pool.members, wanted)) {
      return { action: 'handover', jobId: job.id, reason: describeChange(pool.members, wanted) };
    }
    switch (job.phase) {
      case 'RUNNING': {
        const since = pool.runningSince ?? new Date(now).toISOString();
        const healthy = pool.failures > 0 && now - Date.parse(since) >= settings.healthyAfterMs;
        return { action: 'status', phase: 'RUNNING', runningSince: since, resetFailures: healthy };
      }
      case 'STARTING':
      case 'FAILING': // Flink restarts it from its last checkpoint, with its own growing backoff.
        return { action: 'status' };
      case 'STOPPING':
        return { action: 'wait' };
      case 'FAILED':
      case 'FINISHED':
        return { action: 'failed', jobId: job.id, reason: `Flink job ${job.state}`, lost: false };
    }
  }

  if (pool.nextAttemptAt && now < Date.parse(pool.nextAttemptAt)) return { action: 'wait' };
  return { action: 'deploy' };
}

/**
 * A member's status, given its pool's job and the one that job replaces (undefined: leave the
 * status as it is). A member the jobs do not compute yet waits for the pool's next deployment.
 */
export function memberStatus(
  member: MemberRef & { desiredState: DesiredState },
  pool: Pool,
  job: ObservedJob | undefined,
  previous?: ObservedJob,
): { status: AnalysisStatus; reason?: string } | undefined {
  const computes = (members: MemberRef[] | undefined) => Boolean(members?.some((m) => m.id === member.id && m.generation === member.generation));
  const inJob = Boolean(pool.jobId) && computes(pool.members);
  const inPrevious = Boolean(pool.previousJobId) && previous !== undefined && isActive(previous) && computes(pool.previousMembers);
  const active = inJob && job !== undefined && isActive(job);
  if (member.desiredState === 'STOPPED') return active || inPrevious ? { status: 'STOPPING' } : { status: 'STOPPED' };
  // Served by the job being replaced until the new one caught up.
  if (inPrevious && previous!.phase === 'RUNNING') return { status: 'RUNNING' };
  if (!inJob || !job) return undefined;
  switch (job.phase) {
    case 'RUNNING':
      return { status: 'RUNNING' };
    case 'STARTING':
      return { status: 'DEPLOYING' };
    case 'FAILING':
      return { status: 'FAILED', reason: `Flink job ${job.state}` };
    default:
      return undefined;
  }
}

/** The wait before the next attempt after `failures` consecutive failures. */
export function backoffMs(failures: number, settings: ReconcileSettings): number {
  return Math.min(settings.backoffMaxMs, settings.backoffMs * 2 ** Math.max(0, failures - 1));
}

/** A restore that failed this often is given up: the members are recomputed from the stream instead. */
export const RESTORE_ATTEMPTS = 3;
