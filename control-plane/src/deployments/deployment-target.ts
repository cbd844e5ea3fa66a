/**
 * Where analysis jobs run. One interface for every target: the local Flink cluster
 * and any Flink cluster over its REST API (FlinkRestTarget), and Amazon Managed Service
 * for Apache Flink (ManagedFlinkTarget: one application per pool generation).
 */
export interface DeploymentTarget {
  readonly name: string;
  /** Starts the job of one pool; resolves with the target's job ID. */
  deploy(job: JobSpec): Promise<string>;
  /** Every job the target knows, by job ID. */
  observe(): Promise<Map<string, ObservedJob>>;
  /**
   * Stops the job, taking a savepoint; resolves with its path, or undefined when none could be
   * taken and the job was cancelled instead. Rejects when the job could be neither stopped nor cancelled.
   */
  stopWithSavepoint(jobId: string): Promise<string | undefined>;
  /** The latest retained checkpoint of a job (also of one that ended or that a restarted cluster forgot), if any. */
  latestCheckpoint(jobId: string): Promise<string | undefined>;
  /** Cancels the job without a savepoint. Resolves also when the job is already gone. */
  cancel(jobId: string): Promise<void>;
  /** The job's latest failure, in one line, when it has one. */
  failureCause(jobId: string): Promise<string | undefined>;
  ping(): Promise<void>;
}
export const DEPLOYMENT_TARGET = Symbol('DeploymentTarget');

export interface JobSpec {
  name: string;
  sql: string;
  /**
   * A savepoint or retained checkpoint to restore. Never with "allow non-restored state": a
   * restore that does not fit the job's plan fails instead of silently dropping state.
   */
  restoreFrom?: string;
}

/**
 * Job names carry the pool and its generation, so a job can be found again after a crash; and
 * the control plane's prefix (FLAGSTREAM_JOB_NAME_PREFIX), so that control planes sharing a
 * Flink cluster or an AWS account each leave the others' jobs alone.
 */
export function jobNameFor(pool: string, generation: number, nonce: string, prefix = JOB_NAME_PREFIX): string {
  return `${prefix}pool-${pool}-g${generation}-${nonce}`;
}
export const JOB_NAME_PREFIX = 'flagstream-';

/**
 * The generation in a job's name (`…-g<n>-<nonce>`) or in a Managed Flink application's
 * (`…-g<n>`), or undefined for a name of another shape.
 */
export function generationOfJob(name: string): number | undefined {
  const match = /-g(\d+)(?:-[0-9a-z]+)?$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Managed Flink runs one application per pool generation, named like the generation's
 * jobs without their nonce: a restore (same generation) finds its snapshots in it.
 * Undefined for a name of another shape.
 */
export function applicationNameOf(jobName: string): string | undefined {
  return /^(.+-g\d+)-[0-9a-z]+$/.exec(jobName)?.[1];
}

/** Whether the target's job named `observedName` is the one deployed as `jobName` (a job, or its Managed Flink application). */
export function isJobNamed(observedName: string, jobName: string): boolean {
  return observedName === jobName || observedName === applicationNameOf(jobName);
}

/** The target's own job states, reduced to what an analysis' status needs. */
export type JobPhase = 'STARTING' | 'RUNNING' | 'FAILING' | 'FAILED' | 'STOPPING' | 'FINISHED';

export interface ObservedJob {
  id: string;
  name: string;
  phase: JobPhase;
  /** The target's own state name, for messages. */
  state: string;
  /**
   * The target keeps it, and what it holds, until it is cancelled, also when it does not run:
   * a Managed Flink application with its snapshots. One that no analysis expects is cancelled
   * (deleted) even when stopped.
   */
  retained?: boolean;
}

/** Checks a script with Flink's planner without running it. */
export interface SqlValidator {
  validate(sql: string): Promise<{ valid: true; plan: string } | { valid: false; error: string }>;
  ping(): Promise<void>;
}
export const SQL_VALIDATOR = Symbol('SqlValidator');
