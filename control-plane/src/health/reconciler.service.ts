import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { randomBytes } from 'node:crypto';
import { CONFIG, Config } from '../config/config';
import { KeyedLock } from '../common/keyed-lock';
import { Limiter } from '../common/limiter';
import { ANALYSES_REPOSITORY, AnalysesRepository, Analysis, AnalysisStatus } from '../analyses/analyses.repository';
import { AnalysesService, kindParamsOf } from '../analyses/analyses.service';
import { recomputeOf } from '../analyses/kind-traits';
import { AnalysisChanges } from '../analyses/analysis-changes';
import { afterLoss } from '../analyses/recompute';
import { applicationNameOf, DEPLOYMENT_TARGET, DeploymentTarget, isJobNamed, jobNameFor, ObservedJob } from '../deployments/deployment-target';
import { HEALTH_HISTORY, HealthHistory } from './health-history.repository';
import { isCustomPool, MemberRef, Pool, poolIds, POOLS_REPOSITORY, PoolsRepository } from './pools.repository';
import { backoffMs, decide, Decision, isActive, memberStatus, ReconcileSettings, RESTORE_ATTEMPTS, sameMembers } from './reconcile-decision';

/** Pools a pass reconciles side by side. */
const PASS_CONCURRENCY = 4;
/** A job that ran this long without failing starts its failure count afresh. */
const HEALTHY_AFTER_MS = 10 * 60_000;
/**
 * A pool whose members change through the API waits until no change came for SETTLE_MS (at
 * most MAX_SETTLE_MS after the first): a burst of creations restarts each pool a few times,
 * not once per analysis.
 */
const SETTLE_MS = 2000;
const MAX_SETTLE_MS = 10_000;
/** Job starts at once: each plans its pool's script in the cluster, seconds of CPU. */
const DEPLOY_CONCURRENCY = 2;

type Observation = { jobs: Map<string, ObservedJob>; at: number };

const refOf = (a: Analysis): MemberRef => ({ id: a.id, generation: a.generation });

/**
 * The scheduled health check and the only caller of the deployment target. Analyses run in
 * pools (docs/pools.md): a pool is one job that reads the events stream once for all its
 * members. Each pass observes every job in one call, then makes each pool's job compute
 * exactly the members the store says should run (docs/counting.md §6). API changes are
 * reconciled at once; a pass every few seconds repairs what happened behind the control
 * plane's back. Work on one pool runs under its lock, on the pool as stored when the lock is taken.
 */
@Injectable()
export class Reconciler implements OnApplicationBootstrap {
  private readonly logger = new Logger('HealthCheck');
  private readonly locks = new KeyedLock();
  private readonly deploys = new Limiter(DEPLOY_CONCURRENCY);
  private readonly settings: ReconcileSettings;
  /** When this process last acted on a pool's job: an older observation of it is stale. */
  private readonly actedAt = new Map<string, number>();
  /** Pools whose members changed through the API and that wait for the changes to settle. */
  private readonly settling = new Map<string, { first: number; timer?: NodeJS.Timeout; done: Promise<void>; resolve: () => void }>();
  private passRunning = false;
  /** The clock; tests set their own. */
  now: () => number = Date.now;
  lastRun?: { at: string; ok: boolean; error?: string };

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ANALYSES_REPOSITORY) private readonly analyses: AnalysesRepository,
    @Inject(POOLS_REPOSITORY) private readonly pools: PoolsRepository,
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

  /** One pass over every pool, and the orphans. */
  async pass(): Promise<void> {
    if (this.passRunning) return;
    this.passRunning = true;
    try {
      this.assignPools();
      const observed = await this.observe();
      await this.cancelOrphans(observed.jobs);
      // A few pools at a time: one slow operation (a Managed Flink stop takes minutes) does
      // not hold up the others, and the target is not flooded.
      const queue = poolIds(this.config.maxPools, this.config.maxCustomPools);
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const id = next;
          // Its members are still changing: reconciled once they settle.
          if (this.settling.has(id)) continue;
          await this.locks.run(id, () => this.reconcilePool(id, observed)).catch((error: Error) => this.logger.error(`pool ${id}: ${error.message}`));
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

  /** After a change of the analysis through the API: its pool, once the changes settle. Resolves when that pool was reconciled. */
  reconcileNow(analysisId: string): Promise<void> {
    this.assignPools();
    const poolId = this.analyses.findById(analysisId)?.pool ?? this.pools.all().find((p) => p.members.some((m) => m.id === analysisId))?.id;
    if (!poolId) return Promise.resolve();
    let settling = this.settling.get(poolId);
    if (!settling) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      settling = { first: Date.now(), done, resolve };
      this.settling.set(poolId, settling);
    }
    clearTimeout(settling.timer);
    const { first, resolve } = settling;
    settling.timer = setTimeout(() => {
      this.settling.delete(poolId);
      void this.locks
        .run(poolId, async () => this.reconcilePool(poolId, await this.observe()))
        .catch((error: Error) => this.logger.warn(`pool ${poolId}: ${error.message}`))
        .then(resolve);
    }, Math.min(SETTLE_MS, Math.max(0, first + MAX_SETTLE_MS - Date.now())));
    return settling.done;
  }

  /**
   * Every analysis without a pool (new, or in a pool beyond FLAGSTREAM_MAX_POOLS) joins the one
   * with the fewest running members: custom-sql analyses one of the custom pools (`c…`), every
   * other kind one of the catalog's (`p…`). Synchronous: no other step interleaves.
   */
  private assignPools(): void {
    const ids = poolIds(this.config.maxPools, this.config.maxCustomPools);
    const load = new Map(ids.map((id) => [id, 0]));
    const fits = (a: Analysis, id: string) => isCustomPool(id) === (a.kind === 'custom-sql');
    const all = this.analyses.all();
    for (const a of all) if (a.pool && load.has(a.pool) && a.desiredState === 'RUNNING') load.set(a.pool, load.get(a.pool)! + 1);
    for (const a of all) {
      if (a.pool && load.has(a.pool) && fits(a, a.pool)) continue;
      const candidates = ids.filter((id) => fits(a, id));
      if (!candidates.length) continue; // no custom pools (FLAGSTREAM_MAX_CUSTOM_POOLS=0): refused at creation
      const pool = candidates.reduce((best, id) => (load.get(id)! < load.get(best)! ? id : best));
      this.analyses.update(a.id, { pool });
      if (a.desiredState === 'RUNNING') load.set(pool, load.get(pool)! + 1);
    }
  }

  private async observe(): Promise<Observation> {
    const at = this.now();
    return { jobs: await this.target.observe(), at };
  }

  private async reconcilePool(poolId: string, observed: Observation, steps = 1): Promise<void> {
    // Another action on this pool finished after the observation was made: look again.
    if ((this.actedAt.get(poolId) ?? 0) >= observed.at) observed = await this.observe();
    const pool = this.pools.get(poolId);
    const wanted = this.wanted(poolId).map(refOf);
    const job = pool.jobId ? observed.jobs.get(pool.jobId) : undefined;
    const previous = pool.previousJobId ? observed.jobs.get(pool.previousJobId) : undefined;
    const named = pool.operation?.jobName ? [...observed.jobs.values()].find((j) => isJobNamed(j.name, pool.operation!.jobName!)) : undefined;
    const decision = decide(pool, wanted, { job, previous, named }, this.now(), this.settings);
    await this.apply(pool, decision);
    await this.noteMembers(poolId, observed);
    // A step that only cleared the way (a job of other members cancelled, an interrupted
    // operation settled) is followed at once by the next, not a pass later.
    if (['handover', 'retire', 'abandon', 'release'].includes(decision.action) && steps < 4) return this.reconcilePool(poolId, await this.observe(), steps + 1);
  }

  /** The pool's members that should run, in a stable order. */
  private wanted(poolId: string): Analysis[] {
    return this.analyses.inPool(poolId).filter((a) => a.desiredState === 'RUNNING');
  }

  private async apply(pool: Pool, decision: Decision): Promise<void> {
    const id = pool.id;
    switch (decision.action) {
      case 'wait':
        return;
      case 'status': {
        const changes: Partial<Pool> = {};
        if (decision.runningSince && pool.runningSince !== decision.runningSince) changes.runningSince = decision.runningSince;
        if (decision.resetFailures) Object.assign(changes, { failures: 0, nextAttemptAt: undefined });
        if (Object.keys(changes).length) this.pools.update(id, changes);
        return;
      }
      case 'adopt':
        this.pools.update(id, { jobId: decision.jobId, operation: undefined });
        this.markComputed(this.pools.get(id), decision.jobId);
        return this.tell(this.pools.get(id).members, 'DEPLOYING', `pool ${id}: ${decision.reason}`);
      case 'abandon':
        this.pools.update(id, { operation: undefined });
        for (const a of this.analyses.inPool(id)) this.history.add(a.id, { at: this.iso(), status: a.status, reason: `pool ${id}: ${decision.reason}` });
        return;
      case 'deploy':
        return this.deploy(pool);
      case 'stop':
        return this.stop(pool, decision.jobId);
      case 'handover':
        this.actedAt.set(id, this.now());
        if (pool.previousJobId) {
          // The current job never caught up: the previous one still serves, a newer one replaces this one.
          await this.target.cancel(decision.jobId);
          this.pools.update(id, { jobId: undefined, runningSince: undefined, checkpoint: undefined, savepoint: undefined });
        } else {
          this.pools.update(id, { previousJobId: decision.jobId, previousMembers: pool.members, jobId: undefined, runningSince: undefined, checkpoint: undefined, savepoint: undefined });
        }
        for (const a of this.analyses.inPool(id)) {
          this.history.add(a.id, { at: this.iso(), status: a.status, reason: `pool ${id} restarts (${decision.reason}); job ${pool.previousJobId ?? decision.jobId} serves until the new job caught up` });
        }
        return;
      case 'retire': {
        this.actedAt.set(id, this.now());
        await this.target.cancel(decision.jobId);
        const served = pool.previousMembers ?? [];
        this.pools.update(id, { previousJobId: undefined, previousMembers: undefined });
        for (const a of this.analyses.inPool(id)) {
          if (!served.some((m) => m.id === a.id)) continue;
          this.history.add(a.id, { at: this.iso(), status: a.status, reason: `pool ${id}: cancelled job ${decision.jobId}, which served until now (${decision.reason})` });
          if (a.desiredState === 'STOPPED') this.note(a, 'STOPPED', `pool ${id} goes on without it; started again, it recomputes what it missed`);
        }
        return;
      }
      case 'failed': {
        const cause = decision.lost ? undefined : await this.target.failureCause(decision.jobId).catch(() => undefined);
        const checkpoint = await this.target.latestCheckpoint(decision.jobId).catch(() => undefined);
        return this.recordFailure(pool, cause ? `${decision.reason}: ${cause}` : decision.reason, checkpoint);
      }
      case 'release': {
        const checkpoint = await this.target.latestCheckpoint(decision.jobId).catch(() => undefined);
        this.pools.update(id, { jobId: undefined, runningSince: undefined, checkpoint: checkpoint ?? pool.checkpoint });
        return;
      }
    }
  }

  /**
   * Starts the pool's job: restored from its savepoint or checkpoint when that state is of the
   * same members, else without state, every member reading the stream from its own start; a
   * member whose generation had already run recomputes, as a new generation, what could still change.
   */
  private async deploy(pool: Pool): Promise<void> {
    const id = pool.id;
    let members = this.wanted(id);
    if (!members.length) return;
    const restorePoint = pool.savepoint ?? pool.checkpoint;
    const restoreFrom = restorePoint && pool.sql && sameMembers(pool.members, members.map(refOf)) ? restorePoint : undefined;
    let generation = pool.generation;
    let sql = pool.sql!;
    if (!restoreFrom) {
      for (const member of members) if (member.jobId) this.rereadLater(member, `pool ${id} starts a job without state`);
      members = this.wanted(id);
      generation = pool.generation + 1;
      const deployable = await this.lifecycle.deployableSql(members, { pool: id, generation });
      sql = deployable.sql;
      if (deployable.lake) {
        const { from, records } = deployable.lake;
        this.logger.log(`pool ${id}: reading ${records} records of the data lake from ${from.toISOString()}, then the stream`);
      }
    }
    const refs = members.map(refOf);
    const name = jobNameFor(id, generation, randomBytes(4).toString('hex'), this.config.jobNamePrefix);
    // Intent first: a crash from here on leaves a trace the next pass settles.
    this.pools.update(id, {
      operation: { type: 'deploy', at: this.iso(), jobName: name }, jobName: name, members: refs, sql, generation,
      ...(restoreFrom ? {} : { checkpoint: undefined, savepoint: undefined, startedAt: this.iso(), progressAt: undefined }),
    });
    const fresh = this.pools.get(id);
    for (const member of members) {
      const reason = restoreFrom ? `pool ${id}: restoring from ${restoreFrom}` : `pool ${id}: reading the stream from ${member.readFrom ?? member.createdAt}`;
      if (this.servedByPrevious(fresh, member)) this.history.add(member.id, { at: this.iso(), status: member.status, reason });
      else this.note(member, 'DEPLOYING', reason);
    }
    this.actedAt.set(id, this.now());
    let jobId: string;
    try {
      jobId = await this.deploys.run(() => this.target.deploy({ name, sql, restoreFrom }));
    } catch (error) {
      this.pools.update(id, { operation: undefined });
      await this.recordFailure(this.pools.get(id), `deployment failed: ${(error as Error).message.slice(0, 1000)}`, undefined);
      return;
    } finally {
      this.actedAt.set(id, this.now());
    }
    const deployed = this.pools.update(id, { jobId, savepoint: undefined, operation: undefined, runningSince: undefined });
    this.markComputed(deployed, jobId);
    for (const ref of refs) this.history.add(ref.id, { at: this.iso(), status: 'DEPLOYING', reason: `pool ${id}: job ${jobId} started` });
    this.logger.log(`pool ${id} deployed as job ${jobId} with ${refs.length} analyses${restoreFrom ? ` from ${restoreFrom}` : ''}`);
  }

  /** The members of the pool's job: their current generations have run (a stateless restart recomputes them). */
  private markComputed(pool: Pool, jobId: string): void {
    for (const ref of pool.members) {
      const analysis = this.analyses.findById(ref.id);
      if (analysis && analysis.generation === ref.generation && analysis.jobId !== jobId) this.analyses.update(ref.id, { jobId });
    }
  }

  /** No member should run: stopped with a savepoint when a stopped member may want it back, else cancelled. */
  private async stop(pool: Pool, jobId: string): Promise<void> {
    const id = pool.id;
    const stopped = this.analyses.inPool(id).filter((a) => pool.members.some((m) => m.id === a.id && m.generation === a.generation));
    this.actedAt.set(id, this.now());
    if (!stopped.length) {
      await this.target.cancel(jobId);
      this.pools.update(id, { jobId: undefined, checkpoint: undefined, savepoint: undefined, runningSince: undefined });
      this.actedAt.set(id, this.now());
      return;
    }
    this.pools.update(id, { operation: { type: 'stop', at: this.iso() } });
    try {
      const savepoint = await this.target.stopWithSavepoint(jobId);
      const checkpoint = savepoint ? pool.checkpoint : ((await this.target.latestCheckpoint(jobId).catch(() => undefined)) ?? pool.checkpoint);
      this.pools.update(id, { savepoint, checkpoint, jobId: undefined, operation: undefined, runningSince: undefined });
      for (const a of stopped) if (a.desiredState === 'STOPPED') this.note(a, 'STOPPED', savepoint ? `savepoint ${savepoint}` : 'stopped without a savepoint');
    } catch (error) {
      this.pools.update(id, { operation: undefined });
      for (const a of stopped) this.note(a, 'STOPPING', `could not stop the job (${(error as Error).message.slice(0, 300)}); trying again`);
    } finally {
      this.actedAt.set(id, this.now());
    }
  }

  /**
   * One more consecutive failure: FAILED with the cause, the next attempt after a growing wait.
   * A restore that keeps failing is given up: the next job starts without state.
   */
  private async recordFailure(pool: Pool, reason: string, checkpoint: string | undefined): Promise<void> {
    const failures = pool.failures + 1;
    const wait = backoffMs(failures, this.settings);
    let fresh = this.pools.update(pool.id, {
      failures, nextAttemptAt: new Date(this.now() + wait).toISOString(), runningSince: undefined, jobId: undefined,
      checkpoint: checkpoint ?? pool.checkpoint,
    });
    let next = 'restoring its last checkpoint';
    if (!(fresh.savepoint ?? fresh.checkpoint)) next = 'no checkpoint to restore: its members recompute';
    else if (failures >= RESTORE_ATTEMPTS) {
      fresh = this.pools.update(pool.id, { checkpoint: undefined, savepoint: undefined });
      next = `restoring failed ${failures} times in a row: its members recompute`;
    }
    for (const member of this.wanted(pool.id)) {
      const line = `pool ${pool.id}: ${reason}; next attempt in ${Math.round(wait / 1000)} s, ${next}`;
      if (this.servedByPrevious(fresh, member)) this.history.add(member.id, { at: this.iso(), status: member.status, reason: `${line} (the job it replaces serves meanwhile)` });
      else this.note(member, 'FAILED', line);
    }
    this.logger.warn(`pool ${pool.id}: ${reason}`);
  }

  /**
   * The member's state is not in the new job: it re-reads every window late events could still
   * change, as the same generation. Its rows' versions count the events they absorbed, so a
   * window the new job has not fully read yet never replaces the stored one (counting.md §4), and
   * the job it replaces may go on serving meanwhile.
   */
  private rereadLater(analysis: Analysis, why: string): void {
    const recompute = recomputeOf(kindParamsOf(analysis));
    if (recompute.type === 'cumulative') {
      // Its state (since the generation began) cannot be rebuilt from part of the stream: the
      // whole generation is recomputed as a new one, whose rows replace these once caught up.
      const readFrom = new Date(analysis.readFrom ?? analysis.createdAt);
      this.lifecycle.startGeneration(analysis, { readFrom });
      this.history.add(analysis.id, { at: this.iso(), status: analysis.status, reason: `${why}: recomputing everything since ${readFrom.toISOString()} as a new generation` });
      return;
    }
    const plan = afterLoss(analysis, recompute.windowMs, this.config.latenessHorizonSeconds * 1000, new Date(this.now() - this.config.streamRetentionHours * 3600_000));
    this.analyses.update(analysis.id, { readFrom: plan.readFrom.toISOString() });
    this.history.add(analysis.id, {
      at: this.iso(), status: analysis.status,
      reason: `${why}: recomputing windows from ${plan.resultsFrom?.toISOString()} (reading from ${plan.readFrom.toISOString()})`,
    });
  }

  /**
   * Jobs with our prefix that no pool expects (a deploy that timed out, a pool beyond
   * FLAGSTREAM_MAX_POOLS, a job of an older version): cancelled. So are retained ones (a
   * stopped Managed Flink application and its snapshots) no pool expects.
   */
  private async cancelOrphans(jobs: Map<string, ObservedJob>): Promise<void> {
    const names = poolIds(this.config.maxPools, this.config.maxCustomPools)
      .map((id) => this.pools.get(id))
      .flatMap((p) => [p.jobId, p.jobName, p.operation?.jobName, p.previousJobId])
      .filter((n): n is string => Boolean(n));
    const expected = new Set([...names, ...names.map(applicationNameOf).filter(Boolean)]);
    for (const job of jobs.values()) {
      if (!job.name.startsWith(this.config.jobNamePrefix) || !(isActive(job) || job.retained) || job.phase === 'STOPPING' || expected.has(job.id) || expected.has(job.name)) continue;
      this.logger.warn(`cancelling job ${job.id} (${job.name}): no pool expects it`);
      await this.target.cancel(job.id).catch((error: Error) => this.logger.warn(`could not cancel orphan job ${job.id}: ${error.message}`));
    }
  }

  /** Each member's status follows its pool's job. */
  private async noteMembers(poolId: string, observed: Observation): Promise<void> {
    const pool = this.pools.get(poolId);
    const job = pool.jobId ? observed.jobs.get(pool.jobId) : undefined;
    const previous = pool.previousJobId ? observed.jobs.get(pool.previousJobId) : undefined;
    let cause: string | undefined | null = null;
    for (const member of this.analyses.inPool(poolId)) {
      const next = memberStatus(member, pool, job, previous);
      if (!next) continue;
      if (next.status === 'FAILED') {
        if (member.status === 'FAILED') continue;
        if (cause === null) cause = job ? await this.target.failureCause(job.id).catch(() => undefined) : undefined;
        this.note(member, 'FAILED', cause ? `${next.reason}: ${cause}` : next.reason);
        continue;
      }
      this.note(member, next.status, next.reason ?? (next.status === member.status ? member.statusMessage : undefined));
    }
  }

  /** Whether the job the pool's current one replaces still computes this member generation. */
  private servedByPrevious(pool: Pool, member: Analysis): boolean {
    return Boolean(pool.previousJobId && pool.previousMembers?.some((m) => m.id === member.id && m.generation === member.generation));
  }

  /** Tells each member (that still computes the same generation) the same thing. */
  private tell(refs: MemberRef[], status: AnalysisStatus, reason: string): void {
    for (const ref of refs) {
      const analysis = this.analyses.findById(ref.id);
      if (analysis && analysis.generation === ref.generation) this.note(analysis, status, reason);
    }
  }

  /** A status with its reason, and one line of history whenever either changes. */
  private note(analysis: Analysis, status: AnalysisStatus, reason?: string): void {
    const fresh = this.analyses.findById(analysis.id);
    if (!fresh || (fresh.status === status && fresh.statusMessage === reason)) return;
    this.lifecycle.setStatus(fresh, status, reason);
    this.history.add(analysis.id, { at: this.iso(), status, reason });
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
