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
  let history: SqliteHealthHistory;
  let target: ScriptedTarget;
  let reconciler: Reconciler;
  let now: number;
  const config = { ...loadConfig({}), restartBackoffMs: 10_000, healthIntervalMs: 0 };

  // The lifecycle's part the reconciler uses, on the same store.
  const lifecycle = {
    jobSql: (a: Analysis) => `-- generation ${a.generation} from ${a.readFrom}`,
    setStatus: (a: Analysis, status: Analysis['status'], message?: string) => analyses.update(a.id, { status, statusMessage: message }),
    startGeneration: (a: Analysis, plan: { readFrom: Date; resultsFrom?: Date }) =>
      analyses.update(a.id, { generation: a.generation + 1, readFrom: plan.readFrom.toISOString(), resultsFrom: plan.resultsFrom?.toISOString(), savepoint: undefined, checkpoint: undefined }),
  } as unknown as AnalysesService;

  const insert = (over: Partial<Analysis> = {}) => {
    const at = new Date(now).toISOString();
    db.prepare(`INSERT INTO tenants (id, key, name, api_key_hash, created_at) VALUES ('t', 't', 't', 'h', ?) ON CONFLICT DO NOTHING`).run(at);
    analyses.insert({
      id: 'a1', tenantId: 't', name: 'n', kind: 'flag-evaluations', params: { window: '10s' }, status: 'PENDING', desiredState: 'RUNNING',
      statusChangedAt: at, sql: '-- first', createdAt: at, updatedAt: at, generation: 1, readFrom: at, failures: 0, lateEvents: 0, ...over,
    });
    return analyses.findById('a1')!;
  };
  const current = () => analyses.findById('a1')!;
  const newReconciler = () => {
    const r = new Reconciler(config, analyses, target, history, lifecycle, new AnalysisChanges(), new SchedulerRegistry());
    r.now = () => now;
    return r;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'reconciler-'));
    db = openDatabase(dir);
    analyses = new SqliteAnalysesRepository(db);
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
    let seenDuringDeploy: Analysis | undefined;
    target.onDeploy = () => (seenDuringDeploy = current());
    await reconciler.pass();
    expect(seenDuringDeploy!.operation).toMatchObject({ type: 'deploy', jobName: target.deployed[0].name });
    expect(current()).toMatchObject({ jobId: 'job1', operation: undefined, status: 'DEPLOYING' });
    await reconciler.pass();
    expect(current().status).toBe('RUNNING');
    expect(history.list('a1', 100).map((h) => h.status)).toEqual(['RUNNING', 'DEPLOYING', 'DEPLOYING']);
  });

  it('after a crash mid-deploy adopts the job that did start, instead of deploying twice', async () => {
    insert({ status: 'DEPLOYING', operation: { type: 'deploy', at: new Date(now).toISOString(), jobName: 'flagstream-flag-evaluations-a1-g1-dead' } });
    target.jobs.set('j7', { id: 'j7', name: 'flagstream-flag-evaluations-a1-g1-dead', phase: 'RUNNING', state: 'RUNNING' });
    await newReconciler().pass();
    expect(current()).toMatchObject({ jobId: 'j7', operation: undefined });
    expect(target.calls).toEqual([]);
  });

  it('after a crash mid-deploy whose job never started, deploys it again and cancels the late one as an orphan', async () => {
    insert({ status: 'DEPLOYING', operation: { type: 'deploy', at: new Date(now).toISOString(), jobName: 'flagstream-flag-evaluations-a1-g1-dead' } });
    await newReconciler().pass(); // settles the operation
    await reconciler.pass(); // deploys
    expect(target.calls).toEqual(['deploy fresh']);
    // The first request reached Flink after all: its job shows up later, expected by nobody.
    target.jobs.set('late', { id: 'late', name: 'flagstream-flag-evaluations-a1-g1-dead', phase: 'RUNNING', state: 'RUNNING' });
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'cancel late']);
    expect(current().jobId).toBe('job1');
  });

  it('restores a job cancelled behind its back from its last checkpoint, after a backoff, showing FAILED meanwhile', async () => {
    insert();
    await reconciler.pass();
    target.checkpoints.set('job1', 'file:///checkpoints/job1/chk-7');
    target.jobs.set('job1', { ...target.jobs.get('job1')!, phase: 'FINISHED', state: 'CANCELED' });
    await reconciler.pass();
    expect(current()).toMatchObject({ status: 'FAILED', failures: 1, checkpoint: 'file:///checkpoints/job1/chk-7', jobId: undefined });
    expect(current().statusMessage).toMatch(/CANCELED.*next attempt in 10 s/);
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh']); // still waiting
    now += 10_000;
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'deploy file:///checkpoints/job1/chk-7']);
    expect(target.deployed[1].sql).toBe(target.deployed[0].sql); // the very same script: the state fits
    expect(current().generation).toBe(1);
  });

  it('recomputes as a new generation when a lost job left no checkpoint', async () => {
    insert();
    await reconciler.pass();
    target.jobs.delete('job1'); // the cluster restarted and forgot it
    await reconciler.pass();
    expect(current()).toMatchObject({ generation: 2, status: 'FAILED' });
    expect(history.list('a1', 100).some((h) => /recomputing windows from/.test(h.reason ?? ''))).toBe(true);
    now += 10_000;
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'deploy fresh']);
    expect(target.deployed[1].name).toMatch(/-g2-/);
  });

  it('backs off longer after each failed deployment, and gives up a restore that keeps failing', async () => {
    insert({ savepoint: 'file:///savepoints/broken' });
    target.nextDeploy = new Error('Flink answered 500: Failed to rollback to checkpoint/savepoint');
    const waits: string[] = [];
    for (let i = 0; i < 3; i++) {
      await reconciler.pass();
      waits.push(current().statusMessage!.replace(/.*next attempt in /, ''));
      now = Date.parse(current().nextAttemptAt!);
    }
    expect(waits).toEqual(['10 s', '20 s', '40 s']);
    expect(target.calls).toEqual(['deploy file:///savepoints/broken', 'deploy file:///savepoints/broken', 'deploy file:///savepoints/broken']);
    // Three failed restores: the state is given up and the history recomputed, never restored with state dropped silently.
    expect(current()).toMatchObject({ savepoint: undefined, checkpoint: undefined, generation: 2 });
    target.nextDeploy = 'start';
    await reconciler.pass();
    expect(target.calls.at(-1)).toBe('deploy fresh');
  });

  it('keeps an analysis STOPPING and tries again while its job can be neither stopped nor cancelled', async () => {
    insert();
    await reconciler.pass();
    analyses.update('a1', { desiredState: 'STOPPED' });
    target.stopFails = true;
    await reconciler.pass();
    expect(current()).toMatchObject({ status: 'STOPPING', jobId: 'job1' });
    expect(current().statusMessage).toMatch(/trying again/);
    target.stopFails = false;
    await reconciler.pass();
    expect(current()).toMatchObject({ status: 'STOPPED', jobId: undefined, savepoint: 'file:///savepoints/job1' });
    expect(target.calls).toEqual(['deploy fresh', 'stop job1', 'stop job1']);
  });

  it('cancels the job of a deleted analysis and any job of ours that no analysis expects', async () => {
    insert();
    await reconciler.pass();
    target.jobs.set('stray', { id: 'stray', name: 'flagstream-flag-evaluations-zz-g1-0000', phase: 'RUNNING', state: 'RUNNING' });
    target.jobs.set('foreign', { id: 'foreign', name: 'someone-elses-job', phase: 'RUNNING', state: 'RUNNING' });
    analyses.delete('t', 'a1');
    await reconciler.pass();
    expect(target.calls.sort()).toEqual(['cancel job1', 'cancel stray', 'deploy fresh']);
  });

  it('with Managed Flink (one application per generation, named without the nonce) adopts the application of an interrupted deploy', async () => {
    insert({ status: 'DEPLOYING', jobName: 'flagstream-flag-evaluations-a1-g1-dead', operation: { type: 'deploy', at: new Date(now).toISOString(), jobName: 'flagstream-flag-evaluations-a1-g1-dead' } });
    target.jobs.set('flagstream-flag-evaluations-a1-g1', { id: 'flagstream-flag-evaluations-a1-g1', name: 'flagstream-flag-evaluations-a1-g1', phase: 'STARTING', state: 'STARTING', retained: true });
    await newReconciler().pass();
    expect(current()).toMatchObject({ jobId: 'flagstream-flag-evaluations-a1-g1', operation: undefined });
    expect(target.calls).toEqual([]);
  });

  it('deletes stopped applications (retained jobs) no analysis expects, and keeps the one of a stopped analysis', async () => {
    insert({ desiredState: 'STOPPED', status: 'STOPPED', jobName: 'flagstream-flag-evaluations-a1-g2-beef', savepoint: 'flagstream-flag-evaluations-a1-g2-1', generation: 2 });
    const app = (name: string) => ({ id: name, name, phase: 'FINISHED' as const, state: 'READY', retained: true });
    target.jobs.set('flagstream-flag-evaluations-a1-g2', app('flagstream-flag-evaluations-a1-g2'));
    target.jobs.set('flagstream-flag-evaluations-a1-g1', app('flagstream-flag-evaluations-a1-g1'));
    target.jobs.set('flagstream-flag-evaluations-zz-g1', app('flagstream-flag-evaluations-zz-g1'));
    // A finished Flink job holds nothing: left alone, as before.
    target.jobs.set('done', { id: 'done', name: 'flagstream-flag-evaluations-yy-g1-0000', phase: 'FINISHED', state: 'FINISHED' });
    await reconciler.pass();
    expect(target.calls.sort()).toEqual(['cancel flagstream-flag-evaluations-a1-g1', 'cancel flagstream-flag-evaluations-zz-g1']);
    // Deleting the analysis deletes its application too, stopped as it is.
    analyses.delete('t', 'a1');
    target.calls = [];
    target.jobs.delete('flagstream-flag-evaluations-a1-g1');
    target.jobs.delete('flagstream-flag-evaluations-zz-g1');
    await reconciler.reconcileNow('a1');
    expect(target.calls).toEqual(['cancel flagstream-flag-evaluations-a1-g2']);
  });

  it('cancels the job of an older generation and deploys the current one', async () => {
    insert();
    await reconciler.pass();
    analyses.update('a1', { generation: 2 });
    await reconciler.pass();
    await reconciler.pass();
    expect(target.calls).toEqual(['deploy fresh', 'cancel job1', 'deploy fresh']);
    expect(target.deployed[1].name).toMatch(/-g2-/);
  });
});
