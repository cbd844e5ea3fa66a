import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchedulerRegistry } from '@nestjs/schedule';
import { loadConfig } from '../config/config';
import { Analysis, SqliteAnalysesRepository } from '../analyses/analyses.repository';
import type { AnalysesService } from '../analyses/analyses.service';
import { AnalysisChanges } from '../analyses/analysis-changes';
import type { DeploymentTarget, JobSpec, ObservedJob } from '../deployments/deployment-target';
import { Db, openDatabase } from '../store/database';
import { SqliteHealthHistory } from './health-history.repository';
import { SqlitePoolsRepository } from './pools.repository';
import { Reconciler } from './reconciler.service';

/**
 * The reconciler acting on a real store against a target whose jobs the test scripts: a real
 * Flink cannot lose a job or refuse a stop on cue (the e2e tests do the rest on real Flink).
 * The target fails the test on any call it was not told to expect.
 */
class ScriptedTarget implements DeploymentTarget {
  readonly name = 'scripted';
  jobs = new Map<string, ObservedJob>();
  calls: string[] = [];
  deployed: JobSpec[] = [];
  /** What the next deploy does: start a job, or throw. */
  nextDeploy: 'start' | Error = 'start';
  stopFails = false;
  checkpoints = new Map<string, string>();
  onDeploy?: () => void;
  private seq = 0;

  async deploy(job: JobSpec) {
    this.calls.push(`deploy ${job.restoreFrom ?? 'fresh'}`);
    this.deployed.push(job);
    this.onDeploy?.();
    if (this.nextDeploy instanceof Error) throw this.nextDeploy;
    const id = `job${++this.seq}`;
    this.jobs.set(id, { id, name: job.name, phase: 'RUNNING', state: 'RUNNING' });
    return id;
  }
  async observe() {
    return new Map(this.jobs);
  }
  async stopWithSavepoint(jobId: string) {
    this.calls.push(`stop ${jobId}`);
    if (this.stopFails) throw new Error('Flink answered 500: cannot stop, cannot cancel');
    this.jobs.set(jobId, { ...this.jobs.get(jobId)!, phase: 'FINISHED', state: 'FINISHED' });
    return `file:///savepoints/${jobId}`;
  }
  async cancel(jobId: string) {
    this.calls.push(`cancel ${jobId}`);
    const job = this.jobs.get(jobId);
    if (job) this.jobs.set(jobId, { ...job, phase: 'FINISHED', state: 'CANCELED' });
  }
  async latestCheckpoint(jobId: string) {
    return this.checkpoints.get(jobId);
  }
  async failureCause() {
    return 'java.io.IOException: the results stream refused the write';
  }
  async ping() {}
}

describe('Reconciler', () => {
  let dir: string;
  let db: Db;
  let analyses: SqliteAnalysesRepository;
  let pools: SqlitePoolsRepository;
  let history: SqliteHealthHistory;
  let target: ScriptedTarget;
  let reconciler: Reconciler;
  let now: number;
  const config = { ...loadConfig({}), restartBackoffMs: 10_000, healthIntervalMs: 0, maxPools: 2 };

  // The lifecycle's part the reconciler uses, on the same store.
  const lifecycle = {
    deployableSql: async (members: Analysis[]) => ({ sql: `-- ${members.map((a) => `${a.id}@${a.generation} from ${a.readFrom}`).join(', ')}` }),
    setStatus: (a: Analysis, status: Analysis['status'], message?: string) => analyses.update(a.id, { status, statusMessage: message }),
    startGeneration: (a: Analysis, plan: { readFrom: Date; resultsFrom?: Date }) =>
      analyses.update(a.id, { generation: a.generation + 1, readFrom: plan.readFrom.toISOString(), resultsFrom: plan.resultsFrom?.toISOString(), jobId: undefined }),
  } as unknown as AnalysesService;

  const insert = (over: Partial<Analysis> = {}) => {
    const at = new Date(now).toISOString();
    db.prepare(`INSERT INTO tenants (id, key, name, api_key_hash, created_at) VALUES ('t', 't', 't', 'h', ?) ON CONFLICT DO NOTHING`).run(at);
    const id = over.id ?? 'a1';
    analyses.insert({
      id, tenantId: 't', name: 'n', kind: 'flag-evaluations', params: { window: '10s' }, status: 'PENDING', desiredState: 'RUNNING',
      statusChangedAt: at, sql: '-- first', createdAt: at, updatedAt: at, generation: 1, readFrom: at, lateEvents: 0, ...over,
    });
    return analyses.findById(id)!;
  };
  const current = (id = 'a1') => analyses.findById(id)!;
  const newReconciler = () => {
    const r = new Reconciler(config, analyses, pools, target, history, lifecycle, new AnalysisChanges(), new SchedulerRegistry());
    r.now = () => now;
    return r;
  };
  const activeJobs = () => [...target.jobs.values()].filter((j) => j.phase === 'RUNNING');
  /** The results ingestor saw the pool's new job read past its start. */
  const caughtUp = (pool = 'p0') => pools.update(pool, { progressAt: '2100-01-01T00:00:00.000Z' });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'reconciler-'));
    db = openDatabase(dir);
    analyses = new SqliteAnalysesRepository(db);
    pools = new SqlitePoolsRepository(db);
    history = new SqliteHealthHistory(db);
    target = new ScriptedTarget();
    now = Date.parse('2026-11-26T12:00:00Z');
    reconciler = newReconciler();
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records the job name before it calls the target, then the job id', async () => {
    insert();
    let seenDuringDeploy: ReturnType<typeof pools.get> | undefined;
    target.onDeploy = () => (seenDuringDeploy = pools.get('p0'));
    await reconciler.pass();
    expect(seenDuringDeploy!.operation).toMatchObject({ type: 'deploy', jobName: target.deployed[0].name });
    expect(seenDuringDeploy!.members).toEqual([{ id: 'a1', generation: 1 }]);
    expect(target.deployed[0].name).toMatch(/^flagstream-pool-p0-g1-[0-9a-f]{8}$/);
    expect(pools.get('p0')).toMatchObject({ jobId: 'job1', operation: undefined });
    expect(current()).toMatchObject({ pool: 'p0', jobId: 'job1', status: 'DEPLOYING' });
    await reconciler.pass();
    expect(current().status).toBe('RUNNING');
    expect(history.list('a1', 100).map((h) => h.status)).toEqual(['RUNNING', 'DEPLOYING', 'DEPLOYING']);
  });

  it('spreads analyses over at most FLAGSTREAM_MAX_POOLS jobs, each new one joining the pool with the fewest', async () => {
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5']) insert({ id });
    await reconciler.pass();
    expect(activeJobs()).toHaveLength(2);
    expect(target.deployed.map((j) => j.sql)).toEqual([
      expect.stringMatching(/^-- a1@1 .*, a3@1 .*, a5@1 /),
      expect.stringMatching(/^-- a2@1 .*, a4@1 /),
    ]);
    await reconciler.pass();
    expect(['a1', 'a2', 'a3', 'a4', 'a5'].map((id) => current(id).status)).toEqual(Array(5).fill('RUNNING'));
  });

  it('adds a member with a new job next to the old one, which serves until the new one caught up; the others re-read what could still change', async () => {
    insert({ progressAt: undefined });
    await reconciler.pass();
    now += 3 * 3600_000;
    analyses.update('a1', { progressAt: new Date(now - 2000).toISOString() });
    insert({ id: 'a2', pool: 'p0', readFrom: new Date(now).toISOString() });
    await reconciler.reconcileNow('a2');
    expect(target.calls).toEqual(['deploy fresh', 'deploy fresh']);
    expect(pools.get('p0')).toMatchObject({ jobId: 'job2', previousJobId: 'job1', previousMembers: [{ id: 'a1', generation: 1 }], startedAt: new Date(now).toISOString() });
    // Same generation: its rows' versions keep the complete ones served while the new job re-reads.
    expect(current('a1')).toMatchObject({ generation: 1, status: 'RUNNING' });
    // a1 re-reads from one horizon (1 h), a minute and the clock allowance before its progress.
    expect(Date.parse(current('a1').readFrom!)).toBeLessThan(now - 3600_000);
    expect(Date.parse(current('a1').readFrom!)).toBeGreaterThan(now - 2 * 3600_000);
    expect(current('a2')).toMatchObject({ generation: 1, jobId: 'job2' });
    expect(target.deployed[1].name).toMatch(/^flagstream-pool-p0-g2-/);
    expect(history.list('a1', 100).some((h) => /pool p0 restarts \(adding a2\); job job1 serves/.test(h.reason ?? ''))).toBe(true);
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'deploy fresh']); // not caught up yet
    caughtUp();
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'deploy fresh', 'cancel job1']);
    expect(pools.get('p0')).toMatchObject({ jobId: 'job2', previousJobId: undefined });
    expect([current('a1').status, current('a2').status]).toEqual(['RUNNING', 'RUNNING']);
  });

  it('replaces a new job that has not caught up yet when the members change again, keeping the one that serves', async () => {
    insert({ pool: 'p0' });
    await reconciler.pass();
    insert({ id: 'a2', pool: 'p0' });
    await reconciler.reconcileNow('a2');
    insert({ id: 'a3', pool: 'p0' });
    await reconciler.reconcileNow('a3');
    expect(target.calls).toEqual(['deploy fresh', 'deploy fresh', 'cancel job2', 'deploy fresh']);
    expect(pools.get('p0')).toMatchObject({ jobId: 'job3', previousJobId: 'job1' });
    expect(target.deployed[2].sql).toMatch(/a1@1 .*, a2@1 .*, a3@1 /);
  });

  it('after a crash mid-deploy adopts the job that did start, instead of deploying twice', async () => {
    insert({ pool: 'p0', status: 'DEPLOYING' });
    pools.update('p0', { generation: 1, members: [{ id: 'a1', generation: 1 }], operation: { type: 'deploy', at: new Date(now).toISOString(), jobName: 'flagstream-pool-p0-g1-dead' } });
    target.jobs.set('j7', { id: 'j7', name: 'flagstream-pool-p0-g1-dead', phase: 'RUNNING', state: 'RUNNING' });
    await newReconciler().pass();
    expect(pools.get('p0')).toMatchObject({ jobId: 'j7', operation: undefined });
    expect(current()).toMatchObject({ jobId: 'j7', status: 'RUNNING' });
    expect(target.calls).toEqual([]);
  });

  it('after a crash mid-deploy whose job never started, deploys it again and cancels the late one as an orphan', async () => {
    insert({ pool: 'p0', status: 'DEPLOYING' });
    pools.update('p0', { generation: 1, members: [{ id: 'a1', generation: 1 }], jobName: 'flagstream-pool-p0-g1-dead', operation: { type: 'deploy', at: new Date(now).toISOString(), jobName: 'flagstream-pool-p0-g1-dead' } });
    await newReconciler().pass(); // settles the operation, then deploys
    expect(target.calls).toEqual(['deploy fresh']);
    // The first request reached Flink after all: its job shows up later, expected by nobody.
    target.jobs.set('late', { id: 'late', name: 'flagstream-pool-p0-g1-dead', phase: 'RUNNING', state: 'RUNNING' });
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'cancel late']);
    expect(pools.get('p0').jobId).toBe('job1');
  });

  it('restores a job cancelled behind its back from its last checkpoint, after a backoff, showing FAILED meanwhile', async () => {
    insert({ pool: 'p0' });
    insert({ id: 'a2', pool: 'p0' });
    await reconciler.pass();
    target.checkpoints.set('job1', 'file:///checkpoints/job1/chk-7');
    target.jobs.set('job1', { ...target.jobs.get('job1')!, phase: 'FINISHED', state: 'CANCELED' });
    await reconciler.pass();
    expect(pools.get('p0')).toMatchObject({ failures: 1, checkpoint: 'file:///checkpoints/job1/chk-7', jobId: undefined });
    expect(current()).toMatchObject({ status: 'FAILED' });
    expect(current('a2').statusMessage).toMatch(/CANCELED.*next attempt in 10 s/);
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh']); // still waiting
    now += 10_000;
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'deploy file:///checkpoints/job1/chk-7']);
    expect(target.deployed[1].sql).toBe(target.deployed[0].sql); // the very same script: the state fits
    expect(target.deployed[1].name).toMatch(/^flagstream-pool-p0-g1-/);
    expect([current().generation, current('a2').generation]).toEqual([1, 1]);
  });

  it('re-reads what could still change when a lost job left no checkpoint', async () => {
    insert();
    await reconciler.pass();
    target.jobs.delete('job1'); // the cluster restarted and forgot it
    await reconciler.pass();
    expect(current()).toMatchObject({ status: 'FAILED' });
    expect(current().statusMessage).toMatch(/no checkpoint to restore/);
    now += 10_000;
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'deploy fresh']);
    expect(current().generation).toBe(1);
    expect(history.list('a1', 100).some((h) => /without state: recomputing windows from/.test(h.reason ?? ''))).toBe(true);
    expect(target.deployed[1].name).toMatch(/^flagstream-pool-p0-g2-/);
  });

  it('backs off longer after each failed deployment, and gives up a restore that keeps failing', async () => {
    insert({ pool: 'p0', jobId: 'old' });
    pools.update('p0', { generation: 1, members: [{ id: 'a1', generation: 1 }], sql: '-- the stopped job', savepoint: 'file:///savepoints/broken' });
    target.nextDeploy = new Error('Flink answered 500: Failed to rollback to checkpoint/savepoint');
    const waits: string[] = [];
    for (let i = 0; i < 3; i++) {
      await reconciler.pass();
      waits.push(current().statusMessage!.replace(/.*next attempt in (\d+ s).*/, '$1'));
      now = Date.parse(pools.get('p0').nextAttemptAt!);
    }
    expect(waits).toEqual(['10 s', '20 s', '40 s']);
    expect(target.calls).toEqual(['deploy file:///savepoints/broken', 'deploy file:///savepoints/broken', 'deploy file:///savepoints/broken']);
    // Three failed restores: the state is given up and the history recomputed, never restored with state dropped silently.
    expect(pools.get('p0')).toMatchObject({ savepoint: undefined, checkpoint: undefined });
    target.nextDeploy = 'start';
    await reconciler.pass();
    expect(target.calls.at(-1)).toBe('deploy fresh');
    expect(history.list('a1', 100).some((h) => /without state: recomputing windows from/.test(h.reason ?? ''))).toBe(true);
  });

  it('stops the job of a pool whose only member stops with a savepoint, and restores it when the member starts again', async () => {
    insert();
    await reconciler.pass();
    analyses.update('a1', { desiredState: 'STOPPED' });
    target.stopFails = true;
    await reconciler.pass();
    expect(current()).toMatchObject({ status: 'STOPPING' });
    expect(current().statusMessage).toMatch(/trying again/);
    target.stopFails = false;
    await reconciler.pass();
    expect(current()).toMatchObject({ status: 'STOPPED' });
    expect(pools.get('p0')).toMatchObject({ jobId: undefined, savepoint: 'file:///savepoints/job1' });
    analyses.update('a1', { desiredState: 'RUNNING' });
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'stop job1', 'stop job1', 'deploy file:///savepoints/job1']);
    expect(current().generation).toBe(1);
  });

  it('goes on without a stopped member; started again, it re-reads from its last progress what it missed', async () => {
    insert({ pool: 'p0' });
    insert({ id: 'a2', pool: 'p0' });
    await reconciler.pass();
    analyses.update('a2', { desiredState: 'STOPPED', progressAt: new Date(now).toISOString() });
    await reconciler.reconcileNow('a2');
    expect(target.calls).toEqual(['deploy fresh', 'deploy fresh']);
    expect(target.deployed[1].sql).toMatch(/^-- a1@1 [^,]*$/);
    expect(current('a2')).toMatchObject({ status: 'STOPPING' }); // the old job still computes it
    caughtUp();
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'deploy fresh', 'cancel job1']);
    expect(current('a2')).toMatchObject({ status: 'STOPPED', generation: 1 });
    now += 600_000;
    analyses.update('a2', { desiredState: 'RUNNING' });
    await reconciler.reconcileNow('a2');
    expect(target.calls.slice(3)).toEqual(['deploy fresh']);
    expect(current('a2')).toMatchObject({ generation: 1, readFrom: expect.any(String) });
    // From its creation (it is younger than the lateness horizon), the windows of its stop included.
    expect(Date.parse(current('a2').readFrom!)).toBeLessThanOrEqual(now - 600_000);
    expect(target.deployed[2].sql).toMatch(/a1@1 .*, a2@1 /);
  });

  it('goes on without a deleted member, cancels the job of a pool left empty, and any job of ours nobody expects', async () => {
    insert({ pool: 'p0' });
    insert({ id: 'a2', pool: 'p0' });
    await reconciler.pass();
    target.jobs.set('stray', { id: 'stray', name: 'flagstream-flag-evaluations-zz-g1-0000', phase: 'RUNNING', state: 'RUNNING' });
    target.jobs.set('foreign', { id: 'foreign', name: 'someone-elses-job', phase: 'RUNNING', state: 'RUNNING' });
    analyses.delete('t', 'a2');
    await reconciler.pass();
    expect(target.calls.sort()).toEqual(['cancel stray', 'deploy fresh', 'deploy fresh']);
    caughtUp();
    await reconciler.pass();
    expect(target.calls.at(-1)).toBe('cancel job1');
    analyses.delete('t', 'a1');
    await reconciler.reconcileNow('a1');
    expect(target.calls.at(-1)).toBe('cancel job2');
    expect(activeJobs().map((j) => j.id)).toEqual(['foreign']);
  });

  it('with Managed Flink (one application per pool generation, named without the nonce) adopts the application of an interrupted deploy', async () => {
    insert({ pool: 'p0', status: 'DEPLOYING' });
    pools.update('p0', { generation: 1, members: [{ id: 'a1', generation: 1 }], jobName: 'flagstream-pool-p0-g1-dead', operation: { type: 'deploy', at: new Date(now).toISOString(), jobName: 'flagstream-pool-p0-g1-dead' } });
    target.jobs.set('flagstream-pool-p0-g1', { id: 'flagstream-pool-p0-g1', name: 'flagstream-pool-p0-g1', phase: 'STARTING', state: 'STARTING', retained: true });
    await newReconciler().pass();
    expect(pools.get('p0')).toMatchObject({ jobId: 'flagstream-pool-p0-g1', operation: undefined });
    expect(target.calls).toEqual([]);
  });

  it('deletes stopped applications (retained jobs) no pool expects, and keeps the one of a stopped pool', async () => {
    insert({ pool: 'p0', desiredState: 'STOPPED', status: 'STOPPED', generation: 2 });
    pools.update('p0', { generation: 2, members: [{ id: 'a1', generation: 2 }], jobName: 'flagstream-pool-p0-g2-beef', savepoint: 'flagstream-pool-p0-g2-1' });
    const app = (name: string) => ({ id: name, name, phase: 'FINISHED' as const, state: 'READY', retained: true });
    target.jobs.set('flagstream-pool-p0-g2', app('flagstream-pool-p0-g2'));
    target.jobs.set('flagstream-pool-p0-g1', app('flagstream-pool-p0-g1'));
    target.jobs.set('flagstream-pool-p7-g1', app('flagstream-pool-p7-g1'));
    // A finished Flink job holds nothing: left alone, as before.
    target.jobs.set('done', { id: 'done', name: 'flagstream-pool-p1-g9-0000', phase: 'FINISHED', state: 'FINISHED' });
    await reconciler.pass();
    expect(target.calls.sort()).toEqual(['cancel flagstream-pool-p0-g1', 'cancel flagstream-pool-p7-g1']);
  });
});
