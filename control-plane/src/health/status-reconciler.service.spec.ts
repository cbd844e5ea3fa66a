import { SchedulerRegistry } from '@nestjs/schedule';
import { loadConfig } from '../config/config';
import type { AnalysesRepository, Analysis, AnalysisStatus } from '../analyses/analyses.repository';
import type { AnalysesService } from '../analyses/analyses.service';
import type { DeploymentTarget, ObservedJob } from '../deployments/deployment-target';
import { StatusReconciler } from './status-reconciler.service';

/**
 * The observe-then-reconcile loop against a target whose jobs the test sets: a real
 * Flink cannot be made to lose or fail a job on cue. Only the decisions are tested here;
 * the e2e tests run the same loop against the real cluster.
 */
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

function analysis(over: Partial<Analysis>): Analysis {
  return {
    id: 'a1', tenantId: 't', name: 'n', kind: 'flag-evaluations', params: { window: '10s' }, status: 'DEPLOYING', desiredState: 'RUNNING',
    statusChangedAt: minutesAgo(0), sql: '', createdAt: minutesAgo(5), updatedAt: minutesAgo(5), jobId: 'j1', ...over,
  };
}

describe('StatusReconciler', () => {
  let analyses: Analysis[];
  let jobs: ObservedJob[];
  let statuses: [string, AnalysisStatus, string | undefined][];
  let redeployed: string[];
  let busy: Set<string>;

  const target = {
    observe: async () => new Map(jobs.map((j) => [j.id, j])),
    failureCause: async () => 'java.lang.RuntimeException: the stream is gone',
  } as unknown as DeploymentTarget;
  const lifecycle = {
    setStatus: (a: Analysis, status: AnalysisStatus, message?: string) => statuses.push([a.id, status, message]),
    redeploy: async (id: string) => void redeployed.push(id),
    isBusy: (id: string) => busy.has(id),
  } as unknown as AnalysesService;
  const repository = { all: () => analyses } as unknown as AnalysesRepository;
  const reconciler = new StatusReconciler(loadConfig({}), repository, target, lifecycle, new SchedulerRegistry());
  const job = (phase: ObservedJob['phase'], state: string): ObservedJob => ({ id: 'j1', name: 'flagstream-a1', phase, state });

  beforeEach(() => {
    statuses = [];
    redeployed = [];
    busy = new Set();
  });

  it('marks an analysis RUNNING once its job runs', async () => {
    analyses = [analysis({})];
    jobs = [job('RUNNING', 'RUNNING')];
    await reconciler.reconcile();
    expect(statuses).toEqual([['a1', 'RUNNING', undefined]]);
    expect(reconciler.lastRun?.ok).toBe(true);
  });

  it('says why a job failed', async () => {
    analyses = [analysis({ status: 'RUNNING' })];
    jobs = [job('FAILED', 'FAILED')];
    await reconciler.reconcile();
    expect(statuses).toEqual([['a1', 'FAILED', 'Flink job FAILED: java.lang.RuntimeException: the stream is gone']]);
  });

  it('deploys again a job the cluster lost, and never touches a healthy one', async () => {
    analyses = [analysis({ status: 'RUNNING' }), analysis({ id: 'a2', jobId: 'j2', status: 'RUNNING' })];
    jobs = [{ ...job('RUNNING', 'RUNNING'), id: 'j2' }];
    await reconciler.reconcile();
    expect(redeployed).toEqual(['a1']);
    expect(statuses).toContainEqual(['a1', 'DEPLOYING', 'the job was lost; deploying it again']);
  });

  it('tries a failed deployment again after 30 s, not before', async () => {
    jobs = [];
    analyses = [analysis({ jobId: undefined, status: 'FAILED', statusChangedAt: minutesAgo(0.1) })];
    await reconciler.reconcile();
    expect(redeployed).toEqual([]);
    analyses = [analysis({ jobId: undefined, status: 'FAILED', statusChangedAt: minutesAgo(1) })];
    await reconciler.reconcile();
    expect(redeployed).toEqual(['a1']);
  });

  it('leaves alone an analysis a lifecycle operation is working on, and a stopped one', async () => {
    analyses = [analysis({ status: 'RUNNING' }), analysis({ id: 'a3', jobId: undefined, desiredState: 'STOPPED', status: 'STOPPED' })];
    busy.add('a1');
    jobs = [];
    await reconciler.reconcile();
    expect(redeployed).toEqual([]);
    expect(statuses).toEqual([]);
  });

  it('records a failed observation without throwing', async () => {
    const down = new StatusReconciler(loadConfig({}), repository, { observe: async () => Promise.reject(new Error('Flink did not answer')) } as unknown as DeploymentTarget, lifecycle, new SchedulerRegistry());
    await down.reconcile();
    expect(down.lastRun).toMatchObject({ ok: false, error: 'Flink did not answer' });
  });
});
