import type { ObservedJob } from '../deployments/deployment-target';
import type { MemberRef, Pool } from './pools.repository';
import { backoffMs, decide, describeChange, memberStatus, ReconcileSettings, sameMembers } from './reconcile-decision';

/** The reconciler's decisions alone: what it would do for every state a pool, its members and its job can be in. */
const NOW = Date.parse('2026-11-26T12:00:00.000Z');
const settings: ReconcileSettings = { backoffMs: 10_000, backoffMaxMs: 300_000, healthyAfterMs: 600_000 };
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const A: MemberRef = { id: 'a1', generation: 2 };
const B: MemberRef = { id: 'b1', generation: 1 };

function pool(over: Partial<Pool> = {}): Pool {
  return { id: 'p0', generation: 4, members: [A, B], sql: 'INSERT …', jobId: 'j1', jobName: 'flagstream-pool-p0-g4-ab12', failures: 0, ...over };
}
const job = (phase: ObservedJob['phase'], state: string, over: Partial<ObservedJob> = {}): ObservedJob => ({
  id: 'j1', name: 'flagstream-pool-p0-g4-ab12', phase, state, ...over,
});

describe('decide', () => {
  it('leaves a running job of the right members alone and remembers since when it runs', () => {
    expect(decide(pool(), [B, A], { job: job('RUNNING', 'RUNNING') }, NOW, settings)).toEqual({
      action: 'status', phase: 'RUNNING', runningSince: new Date(NOW).toISOString(), resetFailures: false,
    });
  });

  it('forgets past failures only after the job ran healthily for a while', () => {
    const flapping = pool({ failures: 3, runningSince: ago(60_000) });
    expect(decide(flapping, [A, B], { job: job('RUNNING', 'RUNNING') }, NOW, settings)).toMatchObject({ resetFailures: false });
    const healthy = pool({ failures: 3, runningSince: ago(600_000) });
    expect(decide(healthy, [A, B], { job: job('RUNNING', 'RUNNING') }, NOW, settings)).toMatchObject({ resetFailures: true });
  });

  it('hands over to a new job when a member is added, recomputed (a new generation), stopped or deleted', () => {
    const running = { job: job('RUNNING', 'RUNNING') };
    const C = { id: 'c1', generation: 1 };
    expect(decide(pool(), [A, B, C], running, NOW, settings)).toEqual({ action: 'handover', jobId: 'j1', reason: 'adding c1' });
    expect(decide(pool(), [{ id: 'a1', generation: 3 }, B], running, NOW, settings)).toEqual({ action: 'handover', jobId: 'j1', reason: 'recomputing a1' });
    expect(decide(pool(), [A], running, NOW, settings)).toEqual({ action: 'handover', jobId: 'j1', reason: 'removing b1' });
    // Also while it starts or restarts; never in the middle of a stop.
    expect(decide(pool(), [A], { job: job('STARTING', 'INITIALIZING') }, NOW, settings)).toMatchObject({ action: 'handover' });
    expect(decide(pool(), [A], { job: job('STOPPING', 'CANCELLING') }, NOW, settings)).toEqual({ action: 'wait' });
  });

  it('keeps the replaced job until the new one has read past its own start, then retires it', () => {
    const handing = pool({ previousJobId: 'j0', previousMembers: [A], startedAt: ago(30_000), progressAt: ago(40_000) });
    const previous = job('RUNNING', 'RUNNING', { id: 'j0', name: 'flagstream-pool-p0-g3-0000' });
    expect(decide(handing, [A, B], { job: job('RUNNING', 'RUNNING'), previous }, NOW, settings)).toMatchObject({ action: 'status', phase: 'RUNNING' });
    const caughtUp = { ...handing, progressAt: ago(29_000) };
    expect(decide(caughtUp, [A, B], { job: job('RUNNING', 'RUNNING'), previous }, NOW, settings)).toEqual({ action: 'retire', jobId: 'j0', reason: 'job j1 caught up' });
    // Progress alone is not enough: the new job must run.
    expect(decide(caughtUp, [A, B], { job: job('FAILING', 'RESTARTING'), previous }, NOW, settings)).toEqual({ action: 'status' });
    expect(decide(handing, [A, B], { job: job('RUNNING', 'RUNNING') }, NOW, settings)).toEqual({ action: 'retire', jobId: 'j0', reason: 'it ended' });
    expect(decide(handing, [], { job: job('RUNNING', 'RUNNING'), previous }, NOW, settings)).toMatchObject({ action: 'retire', jobId: 'j0' });
  });

  it('counts a job that failed or was cancelled behind its back as a failure, and a vanished one as lost', () => {
    expect(decide(pool(), [A, B], { job: job('FAILED', 'FAILED') }, NOW, settings)).toEqual({ action: 'failed', jobId: 'j1', reason: 'Flink job FAILED', lost: false });
    expect(decide(pool(), [A, B], { job: job('FINISHED', 'CANCELED') }, NOW, settings)).toMatchObject({ action: 'failed', reason: 'Flink job CANCELED' });
    expect(decide(pool(), [A, B], {}, NOW, settings)).toMatchObject({ action: 'failed', jobId: 'j1', lost: true });
    // A failed job of other members is a failure too: the next deployment starts the right ones.
    expect(decide(pool(), [A], { job: job('FAILED', 'FAILED') }, NOW, settings)).toMatchObject({ action: 'failed' });
  });

  it('leaves the restarting of a failing job to Flink', () => {
    expect(decide(pool(), [A, B], { job: job('FAILING', 'RESTARTING') }, NOW, settings)).toEqual({ action: 'status' });
  });

  it('deploys a pool without a job, unless it waits out a backoff', () => {
    expect(decide(pool({ jobId: undefined }), [A], {}, NOW, settings)).toEqual({ action: 'deploy' });
    expect(decide(pool({ jobId: undefined, nextAttemptAt: new Date(NOW + 5000).toISOString() }), [A], {}, NOW, settings)).toEqual({ action: 'wait' });
    expect(decide(pool({ jobId: undefined, nextAttemptAt: ago(1) }), [A], {}, NOW, settings)).toEqual({ action: 'deploy' });
  });

  it('stops the job once no member should run, and forgets a job that is gone', () => {
    expect(decide(pool(), [], { job: job('RUNNING', 'RUNNING') }, NOW, settings)).toEqual({ action: 'stop', jobId: 'j1' });
    expect(decide(pool(), [], {}, NOW, settings)).toEqual({ action: 'release', jobId: 'j1' });
    expect(decide(pool({ jobId: undefined }), [], {}, NOW, settings)).toEqual({ action: 'status' });
  });

  it('settles an operation a crashed control plane left: adopts the job it started, or goes on without it', () => {
    const interrupted = pool({ jobId: undefined, operation: { type: 'deploy', at: ago(5000), jobName: 'flagstream-pool-p0-g5-cd34' } });
    const started = job('RUNNING', 'RUNNING', { id: 'j9', name: 'flagstream-pool-p0-g5-cd34' });
    expect(decide(interrupted, [A, B], { named: started }, NOW, settings)).toMatchObject({ action: 'adopt', jobId: 'j9' });
    expect(decide(interrupted, [A, B], {}, NOW, settings)).toMatchObject({ action: 'abandon' });
    const failedStart = job('FAILED', 'FAILED', { id: 'j9', name: 'flagstream-pool-p0-g5-cd34' });
    expect(decide(interrupted, [A, B], { named: failedStart }, NOW, settings)).toMatchObject({ action: 'abandon' });
  });

  it('waits longer after every consecutive failure, at most 5 minutes', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffMs(n, settings))).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });
});

describe('members', () => {
  it('compares member generations in any order', () => {
    expect(sameMembers([A, B], [B, A])).toBe(true);
    expect(sameMembers([A, B], [A])).toBe(false);
    expect(sameMembers([A], [{ ...A, generation: 3 }])).toBe(false);
    expect(describeChange([A, B], [{ ...A, generation: 3 }, { id: 'c1', generation: 1 }])).toBe('adding c1; recomputing a1; removing b1');
  });

  it('shows each member the state of the job that computes it; one the job does not compute yet keeps its status', () => {
    const running = job('RUNNING', 'RUNNING');
    expect(memberStatus({ ...A, desiredState: 'RUNNING' }, pool(), running)).toEqual({ status: 'RUNNING' });
    expect(memberStatus({ ...A, desiredState: 'RUNNING' }, pool(), job('STARTING', 'INITIALIZING'))).toEqual({ status: 'DEPLOYING' });
    expect(memberStatus({ ...A, desiredState: 'RUNNING' }, pool(), job('FAILING', 'RESTARTING'))).toEqual({ status: 'FAILED', reason: 'Flink job RESTARTING' });
    expect(memberStatus({ id: 'c1', generation: 1, desiredState: 'RUNNING' }, pool(), running)).toBeUndefined();
    expect(memberStatus({ ...A, generation: 3, desiredState: 'RUNNING' }, pool(), running)).toBeUndefined();
  });

  it('shows a member the replaced job still serves RUNNING until the new job takes over', () => {
    const handing = pool({ members: [{ id: 'a1', generation: 2 }, { id: 'c1', generation: 1 }], previousJobId: 'j0', previousMembers: [A, B] });
    const previous = job('RUNNING', 'RUNNING', { id: 'j0' });
    expect(memberStatus({ ...A, desiredState: 'RUNNING' }, handing, job('STARTING', 'INITIALIZING'), previous)).toEqual({ status: 'RUNNING' });
    expect(memberStatus({ id: 'c1', generation: 1, desiredState: 'RUNNING' }, handing, job('STARTING', 'INITIALIZING'), previous)).toEqual({ status: 'DEPLOYING' });
    expect(memberStatus({ ...B, desiredState: 'STOPPED' }, handing, job('RUNNING', 'RUNNING'), previous)).toEqual({ status: 'STOPPING' });
    expect(memberStatus({ ...B, desiredState: 'STOPPED' }, { ...handing, previousJobId: undefined }, job('RUNNING', 'RUNNING'), undefined)).toEqual({ status: 'STOPPED' });
  });

  it('shows a stopped member STOPPING while the job still computes it, then STOPPED', () => {
    expect(memberStatus({ ...B, desiredState: 'STOPPED' }, pool(), job('RUNNING', 'RUNNING'))).toEqual({ status: 'STOPPING' });
    expect(memberStatus({ ...B, desiredState: 'STOPPED' }, pool({ jobId: undefined }), undefined)).toEqual({ status: 'STOPPED' });
    expect(memberStatus({ ...B, desiredState: 'STOPPED' }, pool({ members: [A] }), job('RUNNING', 'RUNNING'))).toEqual({ status: 'STOPPED' });
  });
});
