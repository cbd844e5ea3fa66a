import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { call, eventually, FlinkJob, newTenant, poolJobsOf, waitForStatus } from './client';
import { expectedEvaluationRows, sortRows } from './reference';

/**
 * CONTRACT §6: an analysis is back by itself, counting exactly, after its job was cancelled
 * behind the control plane's back, after the Flink cluster was killed, after the control
 * plane itself was killed mid-deploy, and after a restore that keeps failing. Each case
 * sends events before and after the fault and compares every row with the reference.
 * These tests kill processes of the shared stack; each waits until the stack is whole again.
 */

const FLINK = process.env.FLAGSTREAM_TEST_FLINK ?? 'http://127.0.0.1:18081';
const DATA_DIR = process.env.FLAGSTREAM_TEST_DATA_DIR ?? '';
const WINDOW_MS = 5_000;

type Summary = ReturnType<typeof summary>;
function summary(endDate: number, counters: Record<string, [variation: number, count: number][]>) {
  const features: Record<string, unknown> = {};
  for (const [flag, list] of Object.entries(counters)) features[flag] = { default: 'off', counters: list.map(([variation, count]) => ({ variation, count, version: 1, value: `v${variation}` })) };
  return { kind: 'summary', startDate: endDate - 1000, endDate, features };
}

/** Active jobs of the analysis' pool: each analysis of this file has its pool's one job. */
const activeJobsOf = (apiKey: string, id: string) => poolJobsOf(FLINK, apiKey, id);
const pids = (): Record<string, number> => JSON.parse(readFileSync(join(DATA_DIR, 'pids.json'), 'utf8'));

/** Analyses of this file, deleted at its end: each holds one of the local cluster's slots. */
const ownAnalyses: { apiKey: string; id: string }[] = [];

async function stackWhole(): Promise<void> {
  await eventually('the stack to answer /health again', async () => ((await call('GET', '/health')).status === 200 ? true : undefined), 180_000);
}

/** A tenant with one 5 s analysis that counts per flag and variation, RUNNING. */
async function runningAnalysis() {
  const tenant = await newTenant(['production']);
  const created = await call('POST', '/v1/analyses', { key: tenant.apiKey, body: { name: 'healing', kind: 'flag-evaluations', params: { window: '5s' } } });
  expect(created.status).toBe(201);
  ownAnalyses.push({ apiKey: tenant.apiKey, id: created.body.id });
  await waitForStatus(tenant.apiKey, created.body.id, 'RUNNING');
  const sent: Summary[] = [];
  let n = 0;
  return {
    tenant,
    id: created.body.id as string,
    sent,
    /** One payload of one summary, now, with the given counters. */
    async send(counters: Record<string, [number, number][]>) {
      const event = summary(Date.now(), counters);
      const reply = await call('POST', '/bulk', { key: tenant.sdkKeys.production, bareKey: true, body: [event], headers: { 'X-LaunchDarkly-Payload-ID': `${created.body.id}-${n++}` } });
      expect(reply.status).toBe(202);
      sent.push(event);
    },
    async exact(what: string, timeoutMs = 120_000) {
      const want = expectedEvaluationRows(this.sent, { windowMs: WINDOW_MS, groupBy: ['flagKey', 'variation'] });
      let last: unknown;
      await eventually(
        what,
        async () => {
          const rows = (await call('GET', `/v1/analyses/${this.id}/results`, { key: tenant.apiKey })).body.rows as Record<string, unknown>[];
          last = rows;
          const got = sortRows(rows.map(({ windowStart, windowEnd, flagKey, variation, evaluations }) => ({ windowStart, windowEnd, flagKey, variation, evaluations })));
          return JSON.stringify(got) === JSON.stringify(want) ? true : undefined;
        },
        timeoutMs,
      ).catch((error: Error) => {
        throw new Error(`${error.message}\nwant ${JSON.stringify(want)}\ngot  ${JSON.stringify(last)}`);
      });
    },
    async history(): Promise<{ at: string; status: string; reason?: string }[]> {
      const reply = await call('GET', `/v1/analyses/${created.body.id}/health`, { key: tenant.apiKey });
      expect(reply.status).toBe(200);
      return reply.body.history;
    },
  };
}

/** A completed checkpoint of the analysis' job, so that what it counted so far is in state. */
async function checkpointed(apiKey: string, id: string): Promise<FlinkJob> {
  return eventually(
    'a completed checkpoint',
    async () => {
      const [job] = await activeJobsOf(apiKey, id);
      if (!job) return undefined;
      const cps = (await (await fetch(`${FLINK}/jobs/${job.jid}/checkpoints`)).json()) as { counts?: { completed?: number } };
      return (cps.counts?.completed ?? 0) > 0 ? job : undefined;
    },
    60_000,
  );
}

describe('self-healing', () => {
  jest.setTimeout(400_000);
  afterAll(async () => {
    for (const { apiKey, id } of ownAnalyses) await call('DELETE', `/v1/analyses/${id}`, { key: apiKey });
  });

  it('restores a job cancelled behind its back from its checkpoint and counts exactly', async () => {
    const a = await runningAnalysis();
    await a.send({ alpha: [[0, 3], [1, 4]] });
    await a.exact('the rows before the fault');
    // FAILED lasts the restart backoff (2 s here): read it from the health history, not by polling
    // the status, which a loaded machine can miss. The pool is shared with other test files'
    // analyses: when one of them changed it just then, the job cancelled was already being
    // replaced and nothing failed; then the pool's new job is cancelled instead.
    let failed: { status: string; at: string; reason?: string } | undefined;
    for (let attempt = 1; !failed && attempt <= 3; attempt++) {
      const job = await checkpointed(a.tenant.apiKey, a.id);
      const cancelledAt = Date.now() - 1000;
      expect((await fetch(`${FLINK}/jobs/${job.jid}?mode=cancel`, { method: 'PATCH' })).status).toBe(202);
      failed = await eventually('the cancelled job recorded as FAILED', async () =>
        (await a.history()).find((h) => h.status === 'FAILED' && Date.parse(h.at) >= cancelledAt), 30_000).catch((error: Error) => {
        if (attempt === 3) throw error;
        return undefined;
      });
    }
    if (!failed) throw new Error('the cancelled job was never recorded as FAILED');
    expect(failed.reason).toContain('CANCELED');
    await a.send({ alpha: [[1, 2]], beta: [[0, 5]] }); // while it is down
    await waitForStatus(a.tenant.apiKey, a.id, 'RUNNING', 60_000);
    await a.send({ beta: [[0, 1]] });
    await a.exact('every event, each once, after the restore');
    const reasons = (await a.history()).map((h) => `${h.status} ${h.reason ?? ''}`);
    expect(reasons.some((r) => /^DEPLOYING pool p\d+: restoring from .*chk-\d+/.test(r))).toBe(true);
    expect(await activeJobsOf(a.tenant.apiKey, a.id)).toHaveLength(1);
  });

  it('comes back after the Flink cluster is killed with SIGKILL', async () => {
    const a = await runningAnalysis();
    await a.send({ gamma: [[0, 7]] });
    await a.exact('the rows before the kill');
    await checkpointed(a.tenant.apiKey, a.id);
    const before = pids().flink;
    process.kill(before, 'SIGKILL');
    await a.send({ gamma: [[1, 2]] }); // the stream keeps taking events while Flink is down
    await eventually('Flink to be started again', async () => (pids().flink !== before ? true : undefined), 60_000);
    await stackWhole();
    await waitForStatus(a.tenant.apiKey, a.id, 'RUNNING', 120_000);
    await a.send({ gamma: [[0, 1]] });
    await a.exact('every event, each once, after the cluster came back', 180_000);
    expect(await activeJobsOf(a.tenant.apiKey, a.id)).toHaveLength(1);
  });

  it('finishes a deployment the control plane was killed in the middle of, with exactly one job', async () => {
    const tenant = await newTenant(['production']);
    const created = await call('POST', '/v1/analyses', { key: tenant.apiKey, body: { name: 'interrupted', kind: 'flag-evaluations', params: { window: '5s' } } });
    expect(created.status).toBe(201);
    ownAnalyses.push({ apiKey: tenant.apiKey, id: created.body.id });
    const before = pids()['control-plane'];
    process.kill(before, 'SIGKILL'); // the deployment has just begun
    await eventually('the control plane to be started again', async () => (pids()['control-plane'] !== before ? true : undefined), 60_000);
    await stackWhole();
    await waitForStatus(tenant.apiKey, created.body.id, 'RUNNING', 120_000);
    // The job a half-done deployment may have started is either adopted or cancelled as an orphan.
    await eventually('exactly one job for the analysis', async () => ((await activeJobsOf(tenant.apiKey, created.body.id)).length === 1 ? true : undefined), 60_000);
    const now = Date.now();
    const event = summary(now, { delta: [[0, 9]] });
    expect((await call('POST', '/bulk', { key: tenant.sdkKeys.production, bareKey: true, body: [event] })).status).toBe(202);
    const want = expectedEvaluationRows([event], { windowMs: WINDOW_MS, groupBy: ['flagKey', 'variation'] });
    await eventually('the row of the analysis', async () => {
      const rows = (await call('GET', `/v1/analyses/${created.body.id}/results`, { key: tenant.apiKey })).body.rows as Record<string, unknown>[];
      const got = sortRows(rows.map(({ windowStart, windowEnd, flagKey, variation, evaluations }) => ({ windowStart, windowEnd, flagKey, variation, evaluations })));
      return JSON.stringify(got) === JSON.stringify(want) ? true : undefined;
    }, 90_000);
  });

  it('backs off while a restore keeps failing, shows FAILED with the cause, then recomputes instead of dropping state', async () => {
    const a = await runningAnalysis();
    await a.send({ eps: [[0, 4], [1, 1]] });
    await a.exact('the rows before the stop');
    await a.send({ eps: [[1, 6]] });
    await a.exact('the rows before the stop, again');
    const stopped = await call('POST', `/v1/analyses/${a.id}/stop`, { key: a.tenant.apiKey });
    expect(stopped.status).toBe(200);
    const done = await waitForStatus(a.tenant.apiKey, a.id, 'STOPPED', 120_000);
    // Damage the savepoint: every restore from it fails.
    const location = /savepoint (file:\S+)/.exec(done.statusMessage)![1].replace(/^file:(\/\/)?/, '');
    const metadata = existsSync(join(location, '_metadata')) ? join(location, '_metadata') : join(location, readdirSync(location)[0]);
    writeFileSync(metadata, 'not a savepoint');
    expect((await call('POST', `/v1/analyses/${a.id}/start`, { key: a.tenant.apiKey })).status).toBe(200);
    const failed = await waitForStatus(a.tenant.apiKey, a.id, 'FAILED', 60_000);
    expect(failed.statusMessage).toMatch(/next attempt in \d+ s/);
    await waitForStatus(a.tenant.apiKey, a.id, 'RUNNING', 180_000);
    const history = (await a.history()).reverse();
    const waits = history.filter((h) => h.status === 'FAILED').map((h) => Number(/next attempt in (\d+) s/.exec(h.reason ?? '')?.[1]));
    // Growing waits, then the savepoint is given up and the history recomputed from the stream.
    expect(waits.length).toBeGreaterThanOrEqual(3);
    expect(waits[1]).toBeGreaterThan(waits[0]);
    expect(history.some((h) => /recomputing windows from/.test(h.reason ?? ''))).toBe(true);
    await a.send({ eps: [[0, 2]] });
    await a.exact('every event, each once, after the recomputation');
  });
});
