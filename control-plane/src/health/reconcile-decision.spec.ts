import type { Analysis } from '../analyses/analyses.repository';
import type { ObservedJob } from '../deployments/deployment-target';
import { backoffMs, decide, ReconcileSettings } from './reconcile-decision';

/** The reconciler's decisions alone: what it would do for every state an analysis and its job can be in. */
const NOW = Date.parse('2026-11-26T12:00:00.000Z');
const settings: ReconcileSettings = { backoffMs: 10_000, backoffMaxMs: 300_000, healthyAfterMs: 600_000 };
const ago = (ms: number) => new Date(NOW - ms).toISOString();

function analysis(over: Partial<Analysis> = {}): Analysis {
  return {
    id: 'a1', tenantId: 't', name: 'n', kind: 'flag-evaluations', params: { window: '10s' }, status: 'RUNNING', desiredState: 'RUNNING',
    statusChangedAt: ago(0), sql: '', createdAt: ago(60_000), updatedAt: ago(60_000), generation: 2, failures: 0, lateEvents: 0,
    jobId: 'j1', jobName: 'flagstream-flag-evaluations-a1-g2-ab12', ...over,
  };
}
const job = (phase: ObservedJob['phase'], state: string, over: Partial<ObservedJob> = {}): ObservedJob => ({
  id: 'j1', name: 'flagstream-flag-evaluations-a1-g2-ab12', phase, state, ...over,
});

describe('decide', () => {
  it('shows a running job as RUNNING and remembers since when', () => {
    expect(decide(analysis({ status: 'DEPLOYING' }), { job: job('RUNNING', 'RUNNING') }, NOW, settings)).toEqual({
      action: 'status', status: 'RUNNING', runningSince: new Date(NOW).toISOString(), resetFailures: false,
    });
  });

  it('forgets past failures only after the job ran healthily for a while', () => {
    const flapping = analysis({ failures: 3, runningSince: ago(60_000) });
    expect(decide(flapping, { job: job('RUNNING', 'RUNNING') }, NOW, settings)).toMatchObject({ resetFailures: false });
    const healthy = analysis({ failures: 3, runningSince: ago(600_000) });
    expect(decide(healthy, { job: job('RUNNING', 'RUNNING') }, NOW, settings)).toMatchObject({ resetFailures: true });
  });

  it('counts a job that failed or was cancelled behind its back as a failure, and a vanished one as lost', () => {
    expect(decide(analysis(), { job: job('FAILED', 'FAILED') }, NOW, settings)).toEqual({ action: 'failed', jobId: 'j1', reason: 'Flink job FAILED', lost: false });
    expect(decide(analysis(), { job: job('FINISHED', 'CANCELED') }, NOW, settings)).toMatchObject({ action: 'failed', reason: 'Flink job CANCELED' });
    expect(decide(analysis(), {}, NOW, settings)).toMatchObject({ action: 'failed', jobId: 'j1', lost: true });
  });

  it('shows FAILED while Flink itself restarts a failing job, and leaves the restarting to Flink', () => {
    expect(decide(analysis(), { job: job('FAILING', 'RESTARTING') }, NOW, settings)).toEqual({ action: 'status', status: 'FAILED', reason: 'Flink job RESTARTING' });
  });

  it('deploys an analysis without a job, unless it waits out a backoff', () => {
    expect(decide(analysis({ jobId: undefined }), {}, NOW, settings)).toEqual({ action: 'deploy' });
    expect(decide(analysis({ jobId: undefined, status: 'FAILED', nextAttemptAt: new Date(NOW + 5000).toISOString() }), {}, NOW, settings)).toEqual({ action: 'wait' });
    expect(decide(analysis({ jobId: undefined, status: 'FAILED', nextAttemptAt: ago(1) }), {}, NOW, settings)).toEqual({ action: 'deploy' });
  });

  it('cancels a running job of an older generation (after a PUT or replay)', () => {
    const old = job('RUNNING', 'RUNNING', { name: 'flagstream-flag-evaluations-a1-g1-ffff' });
    expect(decide(analysis(), { job: old }, NOW, settings)).toMatchObject({ action: 'cancel', jobId: 'j1' });
  });

  it('reads the generation of a Managed Flink application (named like its jobs without the nonce) too', () => {
    const app = (phase: ObservedJob['phase'], state: string, generation: number) =>
      job(phase, state, { id: `flagstream-flag-evaluations-a1-g${generation}`, name: `flagstream-flag-evaluations-a1-g${generation}` });
    const tracked = analysis({ jobId: 'flagstream-flag-evaluations-a1-g2' });
    expect(decide(tracked, { job: app('RUNNING', 'RUNNING', 2) }, NOW, settings)).toMatchObject({ action: 'status', status: 'RUNNING' });
    expect(decide(tracked, { job: app('RUNNING', 'RUNNING', 1) }, NOW, settings)).toMatchObject({ action: 'cancel', reason: expect.stringContaining('generation 1') });
    expect(decide(tracked, { job: app('FINISHED', 'READY', 2) }, NOW, settings)).toMatchObject({ action: 'failed', reason: 'Flink job READY' });
  });

  it('settles an operation a crashed control plane left: adopts the job it started, or goes on without it', () => {
    const interrupted = analysis({ jobId: undefined, status: 'DEPLOYING', operation: { type: 'deploy', at: ago(5000), jobName: 'flagstream-flag-evaluations-a1-g2-cd34' } });
    const started = job('RUNNING', 'RUNNING', { id: 'j9', name: 'flagstream-flag-evaluations-a1-g2-cd34' });
    expect(decide(interrupted, { named: started }, NOW, settings)).toMatchObject({ action: 'adopt', jobId: 'j9' });
    expect(decide(interrupted, {}, NOW, settings)).toMatchObject({ action: 'abandon' });
    const failedStart = job('FAILED', 'FAILED', { id: 'j9', name: 'flagstream-flag-evaluations-a1-g2-cd34' });
    expect(decide(interrupted, { named: failedStart }, NOW, settings)).toMatchObject({ action: 'abandon' });
  });

  it('stops a running job of a stopped analysis, retrying while it still runs', () => {
    expect(decide(analysis({ desiredState: 'STOPPED', status: 'STOPPING' }), { job: job('RUNNING', 'RUNNING') }, NOW, settings)).toEqual({ action: 'stop', jobId: 'j1' });
    expect(decide(analysis({ desiredState: 'STOPPED', status: 'STOPPING', jobId: undefined }), {}, NOW, settings)).toEqual({ action: 'status', status: 'STOPPED' });
  });

  it('waits longer after every consecutive failure, at most 5 minutes', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffMs(n, settings))).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });
});
